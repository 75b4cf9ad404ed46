"""The comparison section: models ranked by held-out elpd per token, with paired standard errors.

``elpd_i = log2 mean_s p(y_i | theta_s)`` per scored position, in bits
(``model.predictive_log_prob / ln 2``); standard errors are taken over sentences (tokens
within a sentence are not independent), as ``arviz.compare`` does over observations.
"""

from __future__ import annotations

import math

import numpy as np

from bayeslm.exceptions import VocabularyMismatchError
from bayeslm.report.sections.entropy import HeldOutScores
from bayeslm.text.corpus import Corpus

__all__ = ["METHOD", "comparison_section"]

LN2 = math.log(2.0)
METHOD = ("elpd_i = log2 mean_s p(y_i | theta_s) per scored position, in bits (model.predictive_log_prob / ln 2); "
          "per-sentence sums e_j; difference to the best d_j = e_best,j - e_j; "
          "se = sqrt(J * var(d_j)) / N per token (J sentences, N scored tokens, var with ddof 0, as arviz.compare)")


def _scores_of(model, label: str, first_label: str, raw: Corpus, main: Corpus, hdi_prob: float):
    """(log_prob per position, Evaluation) of a compared model on the main model's scored positions."""
    try:
        encoded = model.encode(raw)
    except VocabularyMismatchError as err:
        raise VocabularyMismatchError(f"cannot compare {label!r} on the same tokens: {err}") from None
    if encoded.n_sentences != main.n_sentences or not np.array_equal(encoded.offsets, main.offsets):
        raise VocabularyMismatchError(
            f"cannot compare {label!r}: it splits the test text into other tokens than {first_label!r} "
            "(models are compared on the same scored tokens; use the same tokenizer)"
        )
    return np.asarray(model.predictive_log_prob(encoded), dtype=float), model.evaluate(encoded, hdi_prob=hdi_prob)


def _row(model, label: str, lp: np.ndarray, evaluation, per_sentence: np.ndarray) -> dict:
    """The model's row: ``lp`` log predictive probability per position (nats), ``per_sentence`` its sums in bits."""
    n_pos = lp.size
    summary = evaluation.to_dict()
    return {
        "label": label,
        "family": model.family,
        "order": model.order,
        "id": model.id,
        "positions": int(n_pos),
        "elpd_sum_bits": float(lp.sum() / LN2),
        "elpd_per_token_bits": float(lp.sum() / LN2 / n_pos),
        "elpd_se_per_token_bits": float(np.sqrt(per_sentence.size * np.var(per_sentence)) / n_pos),
        "predictive_cross_entropy_bits": float(-lp.sum() / n_pos / LN2),
        "predictive_perplexity": summary["predictive_perplexity"],
        "perplexity": summary["perplexity"],
        "cross_entropy_bits": summary["cross_entropy_bits"],
        "fit_seconds": float(model.fit_seconds_) if model.fit_seconds_ is not None else None,
    }


def _ranked(rows: list[dict], per_sentence: list[np.ndarray], n_pos: int) -> list[dict]:
    """Rows by elpd, best first, with the difference to the best and its paired standard error."""
    ranking = sorted(range(len(rows)), key=lambda j: -rows[j]["elpd_sum_bits"])
    best = ranking[0]
    out = []
    for rank, j in enumerate(ranking, start=1):
        diff = per_sentence[best] - per_sentence[j]  # >= 0 on average: how much worse than the best
        row = dict(rows[j])
        row["rank"] = rank
        row["elpd_diff_per_token_bits"] = float(diff.sum() / n_pos)
        row["elpd_diff_se_per_token_bits"] = None if j == best else float(np.sqrt(diff.size * np.var(diff)) / n_pos)
        out.append(row)
    return out


def comparison_section(models: list, labels: list[str], raw: Corpus, main: Corpus, main_scores: HeldOutScores,
                       hdi_prob: float) -> dict:
    """``models[0]`` (scored in ``main_scores``) and the others ranked on the same positions of ``raw``.

    ``main`` is ``raw`` in the first model's vocabulary.
    """
    n_pos = main.n_tokens + main.n_sentences
    sentence_of = np.repeat(np.arange(main.n_sentences), main.sentence_lengths + 1)
    rows, per_sentence = [], []
    for i, (model, label) in enumerate(zip(models, labels)):
        if i == 0:
            lp, evaluation = main_scores.log_prob, main_scores.evaluation
        else:
            lp, evaluation = _scores_of(model, label, labels[0], raw, main, hdi_prob)
        if lp.size != n_pos:
            raise VocabularyMismatchError(f"{label!r} scores {lp.size} positions, {labels[0]!r} scores {n_pos}")
        sums = np.bincount(sentence_of, weights=lp, minlength=main.n_sentences) / LN2  # bits
        per_sentence.append(sums)
        rows.append(_row(model, label, lp, evaluation, sums))
    return {"method": METHOD, "sentences": int(main.n_sentences), "positions": int(n_pos),
            "models": _ranked(rows, per_sentence, n_pos)}
