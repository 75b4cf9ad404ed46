"""The comparison section: models of any family and tokenizer ranked on the same held-out text.

Every model prices the same lines: per sentence, ``e_j = log2 p(sentence j)`` under each
model's posterior predictive (its tokens and ``</s>``), in bits. Models rank by the total;
per character of the priced text (the same for every model, or the comparison is refused)
and, where the models cut the text into the same tokens, per token. Differences to the best
carry paired standard errors over sentences (as ``arviz.compare`` over observations), and
the stacking weights come from ArviZ on the sentences' log densities.
"""

from __future__ import annotations

import math

import numpy as np

from bayeslm.exceptions import VocabularyMismatchError
from bayeslm.report.heldout import corpus_lines
from bayeslm.report.sections.entropy import HeldOutScores
from bayeslm.stats.stacking import stacking_weights
from bayeslm.text.corpus import Corpus

__all__ = ["METHOD", "comparison_section"]

LN2 = math.log(2.0)
METHOD = ("e_j = log2 p(sentence j) under each model's posterior predictive (its tokens and </s>; "
          "model.predictive_log_prob / ln 2 summed per sentence), in bits; elpd = sum_j e_j, per character of the "
          "priced text (C, the same for every model) and, when the models share their tokens, per scored token (N); "
          "difference to the best d_j = e_best,j - e_j; se = sqrt(J * var(d_j)) / C (or / N) (J sentences, var with "
          "ddof 0, as arviz.compare); stacking weights: arviz.compare(method='stacking') on the sentences' log densities")


class _Scored:
    """One model's scores on the text: per position (nats), per sentence (bits), its characters."""

    def __init__(self, encoded: Corpus, log_prob: np.ndarray, evaluation):
        self.encoded, self.log_prob, self.evaluation = encoded, np.asarray(log_prob, dtype=float), evaluation
        sentence_of = np.repeat(np.arange(encoded.n_sentences), encoded.sentence_lengths + 1)
        self.per_sentence = np.bincount(sentence_of, weights=self.log_prob, minlength=encoded.n_sentences) / LN2
        token_sentence = np.repeat(np.arange(encoded.n_sentences), encoded.sentence_lengths)
        self.characters = np.bincount(token_sentence, weights=encoded.surface.chars,
                                      minlength=encoded.n_sentences).astype(np.int64) + 1  # and the newline


def _scored(model, label: str, first, raw: Corpus, lines: list[str] | None, hdi_prob: float) -> _Scored:
    """``model``'s scores on the held-out sentences, read with its own tokenizer (``first``: the reported model)."""
    text = raw
    if model.tokenizer_ != first.tokenizer_:
        if lines is None:
            raise VocabularyMismatchError(
                f"cannot compare {label!r}: it uses another tokenizer, and the test corpus does not keep its lines (its "
                "tokens do not spell them exactly); give the test text as lines or paths")
        text = Corpus.from_lines(lines, tokenizer=model.tokenizer_)
    try:
        encoded = model.encode(text)
    except VocabularyMismatchError as err:
        raise VocabularyMismatchError(f"cannot compare {label!r} on this text: {err}") from None
    return _Scored(encoded, model.predictive_log_prob(encoded), model.evaluate(encoded, hdi_prob=hdi_prob))


def _check_same_text(scored: list[_Scored], labels: list[str]) -> None:
    """Every model prices the same characters of the same sentences, normalised alike."""
    first = scored[0]
    for s, label in zip(scored[1:], labels[1:]):
        if s.encoded.n_sentences != first.encoded.n_sentences:
            raise VocabularyMismatchError(f"cannot compare {label!r}: it reads {s.encoded.n_sentences} sentences, "
                                          f"{labels[0]!r} {first.encoded.n_sentences}")
        if s.evaluation.text != first.evaluation.text or not np.array_equal(s.characters, first.characters):
            what = lambda e: "the exact text" if e.text == "exact" else f"normalised text ({e.text})"
            raise VocabularyMismatchError(
                f"cannot compare {label!r} with {labels[0]!r}: they price different text ({what(s.evaluation)} vs "
                f"{what(first.evaluation)}); compare models whose tokenizers keep the same characters")


def _row(model, label: str, s: _Scored, same_tokens: bool) -> dict:
    n_pos, chars, e = s.log_prob.size, int(s.characters.sum()), s.per_sentence
    summary = s.evaluation.to_dict()
    return {
        "label": label,
        "family": model.family,
        "order": model.order,
        "id": model.id,
        "tokenizer": model.tokenizer_.kind,
        "positions": int(n_pos),
        "characters": chars,
        "text": s.evaluation.text,
        "oov": int(s.evaluation.oov),
        "oov_priced": bool(s.evaluation.oov_priced),
        "elpd_sum_bits": float(e.sum()),
        "elpd_per_char_bits": float(e.sum() / chars),
        "elpd_se_per_char_bits": float(np.sqrt(e.size * np.var(e)) / chars),
        "bits_per_character": float(-e.sum() / chars),
        "elpd_per_token_bits": float(e.sum() / n_pos) if same_tokens else None,
        "elpd_se_per_token_bits": float(np.sqrt(e.size * np.var(e)) / n_pos) if same_tokens else None,
        "predictive_cross_entropy_bits": float(-s.log_prob.sum() / n_pos / LN2),
        "predictive_perplexity": summary["predictive_perplexity"],
        "perplexity": summary["perplexity"],
        "cross_entropy_bits": summary["cross_entropy_bits"],
        "fit_seconds": float(model.fit_seconds_) if model.fit_seconds_ is not None else None,
    }


def _ranked(rows: list[dict], scored: list[_Scored], same_tokens: bool) -> list[dict]:
    """Rows by elpd, best first, with the difference to the best, its paired standard error and stacking weights."""
    weights = (stacking_weights(np.stack([s.per_sentence * LN2 for s in scored])) if len(scored) > 1
               else np.ones(1))
    ranking = sorted(range(len(rows)), key=lambda j: -rows[j]["elpd_sum_bits"])
    best = ranking[0]
    chars, n_pos = rows[best]["characters"], rows[best]["positions"]
    out = []
    for rank, j in enumerate(ranking, start=1):
        diff = scored[best].per_sentence - scored[j].per_sentence  # >= 0 on average: how much worse than the best
        se = None if j == best else float(np.sqrt(diff.size * np.var(diff)))
        row = dict(rows[j])
        row.update(rank=rank, stacking_weight=float(weights[j]),
                   elpd_diff_per_char_bits=float(diff.sum() / chars),
                   elpd_diff_se_per_char_bits=None if se is None else se / chars,
                   elpd_diff_per_token_bits=float(diff.sum() / n_pos) if same_tokens else None,
                   elpd_diff_se_per_token_bits=None if se is None or not same_tokens else se / n_pos)
        out.append(row)
    return out


def comparison_section(models: list, labels: list[str], raw: Corpus, lines: list[str] | None, main: Corpus,
                       main_scores: HeldOutScores, hdi_prob: float) -> dict:
    """``models[0]`` (scored in ``main_scores`` on ``main``, which is ``raw`` in its vocabulary) and the
    others, each reading the same sentences (``lines``, where their tokenizer differs), ranked."""
    if lines is None and any(m.tokenizer_ != models[0].tokenizer_ for m in models[1:]):
        lines = corpus_lines(raw)  # spelled out only when a model of another tokenizer needs them
    scored = [_Scored(main, main_scores.log_prob, main_scores.evaluation)]
    scored += [_scored(model, label, models[0], raw, lines, hdi_prob) for model, label in zip(models[1:], labels[1:])]
    _check_same_text(scored, labels)
    same_tokens = all(np.array_equal(s.encoded.offsets, main.offsets) for s in scored)
    rows = [_row(model, label, s, same_tokens) for model, label, s in zip(models, labels, scored)]
    return {"method": METHOD, "sentences": int(main.n_sentences), "positions": int(main.n_tokens + main.n_sentences),
            "characters": int(scored[0].characters.sum()), "same_tokens": bool(same_tokens),
            "fair": all(r["oov_priced"] or r["oov"] == 0 for r in rows),
            "models": _ranked(rows, scored, same_tokens)}
