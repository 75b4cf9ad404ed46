"""The entropy section: how well the model predicts the held-out text and where it is unsure.

:func:`score_held_out` computes, once, what this section, the calibration and the
comparison share: the evaluation (cross-entropy per draw with its HDI, and predictive), the
log posterior-predictive probability of every scored position, and the split of every
position's predictive entropy into aleatoric and epistemic parts (computed once per
distinct context with the protocol's ``context_entropy_split``).
:func:`entropy_section` summarises them: distributions, a passage, the most surprising
tokens and the most uncertain contexts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayeslm.core.evaluation import Evaluation
from bayeslm.report.heldout import TextView
from bayeslm.stats.calibration import distinct_contexts
from bayeslm.text.corpus import Corpus

__all__ = ["HeldOutScores", "score_held_out", "entropy_split_bits", "entropy_section"]

LN2 = math.log(2.0)
N_HIST = 40  # bins of the per-position histograms
N_HIST_DRAWS = 30  # bins of the cross-entropy histogram over posterior draws
_CHUNK_CONTEXT_SAMPLES = 1 << 23  # contexts x posterior samples per context_entropy_split call (64 MB per array)


@dataclass
class HeldOutScores:
    """Per scored position of the held-out text, what the entropy, calibration and comparison share.

    ``log_prob``: log posterior-predictive probability, shape (position,), nats.
    ``contexts``: the distinct contexts, shape (context, context_length) token ids;
    ``inverse``: the row of ``contexts`` of each position and ``tokens`` its token id, shape
    (position,) each. ``total_bits``, ``aleatoric_bits``, ``epistemic_bits``: the
    predictive entropy and its split, shape (position,), bits.
    """

    evaluation: Evaluation
    log_prob: np.ndarray
    contexts: np.ndarray
    inverse: np.ndarray
    tokens: np.ndarray
    total_bits: np.ndarray
    aleatoric_bits: np.ndarray
    epistemic_bits: np.ndarray

    @property
    def surprisal_bits(self) -> np.ndarray:
        """-log2 p of the token that came, shape (position,)."""
        return -self.log_prob / LN2


def entropy_split_bits(model, contexts: np.ndarray, inverse: np.ndarray):
    """(total, aleatoric, epistemic) bits per scored position, each of shape (position,).

    Computed once per distinct context with ``model.context_entropy_split``, in chunks of
    contexts sized so that a (contexts, posterior samples) array stays near 64 MB.
    """
    chunk = max(256, _CHUNK_CONTEXT_SAMPLES // max(int(model.n_samples), 1))
    parts = [model.context_entropy_split(contexts[start : start + chunk]) for start in range(0, contexts.shape[0], chunk)]
    per_context = {k: np.concatenate([p[k].to_numpy() for p in parts]) / LN2 for k in ("total", "aleatoric", "epistemic")}
    return per_context["total"][inverse], per_context["aleatoric"][inverse], per_context["epistemic"][inverse]


def score_held_out(model, encoded: Corpus, hdi_prob: float, timing: dict) -> HeldOutScores:
    """Evaluate ``model`` on ``encoded`` (in its vocabulary); seconds spent go to ``timing``."""
    from time import perf_counter

    start = perf_counter()
    evaluation = model.evaluate(encoded, hdi_prob=hdi_prob)
    log_prob = np.asarray(model.predictive_log_prob(encoded), dtype=float)
    timing["evaluate"] = perf_counter() - start
    start = perf_counter()
    contexts, inverse, tokens = distinct_contexts(encoded, model.context_length)
    total, aleatoric, epistemic = entropy_split_bits(model, contexts, inverse)
    timing["entropy_split"] = perf_counter() - start
    return HeldOutScores(evaluation, log_prob, contexts, inverse, tokens, total, aleatoric, epistemic)


def _interval(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std()), "median": float(np.median(v)),
            "q05": float(np.quantile(v, 0.05)), "q95": float(np.quantile(v, 0.95)), "max": float(v.max())}


def _histogram(values, edges) -> dict:
    counts, edges = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {"bin_edges_bits": [float(e) for e in edges], "count": [int(c) for c in counts]}


def _distributions(scores: HeldOutScores) -> dict:
    """The cross-entropy over draws, and summaries and histograms of the per-position entropies."""
    total, ale, epi = scores.total_bits, scores.aleatoric_bits, scores.epistemic_bits
    ce_counts, ce_edges = np.histogram(np.asarray(scores.evaluation.cross_entropy_bits).ravel(), bins=N_HIST_DRAWS)
    shared = np.linspace(0.0, float(max(total.max(), ale.max(), 1e-9)), N_HIST + 1)
    epi_edges = np.linspace(0.0, float(max(epi.max(), 1e-9)), N_HIST + 1)
    return {
        "cross_entropy_bits_histogram": {"bin_edges_bits": ce_edges.tolist(), "count": ce_counts.tolist()},
        "per_position_bits": {"total": _interval(total), "aleatoric": _interval(ale), "epistemic": _interval(epi),
                              "surprisal": _interval(scores.surprisal_bits)},
        "epistemic_share": float(epi.sum() / total.sum()) if total.sum() > 0 else None,
        "histograms": {"total": _histogram(total, shared), "aleatoric": _histogram(ale, shared),
                       "epistemic": _histogram(epi, epi_edges)},
    }


def _passage(scores: HeldOutScores, text: TextView, passage_tokens: int) -> dict:
    """The first ``passage_tokens`` scored positions, token by token."""
    n = int(min(max(passage_tokens, 1), scores.log_prob.size))
    where = list(zip(text.sentence[:n], text.index[:n]))
    return {
        "positions": n,
        "tokens": [text.token(int(s), int(i)) for s, i in where],
        "oov": [text.is_oov(int(s), int(i)) for s, i in where],
        "sentence_starts": [int(p) for p in np.flatnonzero(text.index[:n] == 0)],
        "surprisal_bits": scores.surprisal_bits[:n].tolist(),
        "entropy_bits": scores.total_bits[:n].tolist(),
        "aleatoric_bits": scores.aleatoric_bits[:n].tolist(),
        "epistemic_bits": scores.epistemic_bits[:n].tolist(),
    }


def _most_surprising(scores: HeldOutScores, text: TextView, top_k: int) -> list[dict]:
    """The ``top_k`` positions of lowest predictive probability (ties: earlier first)."""
    lp, surprisal = scores.log_prob, scores.surprisal_bits
    worst = np.argsort(lp, kind="stable")[: int(min(top_k, lp.size))]
    return [{**text.where(int(p)), "surprisal_bits": float(surprisal[p]),
             "entropy_bits": float(scores.total_bits[p]), "epistemic_bits": float(scores.epistemic_bits[p])}
            for p in worst]


def _most_uncertain_contexts(scores: HeldOutScores, text: TextView, top_k: int) -> list[dict]:
    """The ``top_k`` distinct contexts of highest mutual information, each with its first occurrence."""
    n_positions, n_contexts = scores.log_prob.size, scores.contexts.shape[0]
    first = np.full(n_contexts, n_positions, dtype=np.int64)
    np.minimum.at(first, scores.inverse, np.arange(n_positions))
    occurrences = np.bincount(scores.inverse, minlength=n_contexts)
    epi = scores.epistemic_bits
    # highest epistemic first; ties (contexts with equal counts share their entropies) by occurrences, then position
    order = np.lexsort((first, -occurrences, -np.round(epi[first], 9)))[: int(min(top_k, n_contexts))]
    return [
        {"context": [text.vocabulary_tokens[int(t)] for t in scores.contexts[c]], "occurrences": int(occurrences[c]),
         "epistemic_bits": float(epi[first[c]]), "aleatoric_bits": float(scores.aleatoric_bits[first[c]]),
         "entropy_bits": float(scores.total_bits[first[c]]), "example": text.where(int(first[c]))}
        for c in order
    ]


def entropy_section(scores: HeldOutScores, text: TextView, passage_tokens: int, top_k: int) -> dict:
    """Evaluation, entropy distributions, a passage, the most surprising tokens and uncertain contexts."""
    return {
        "evaluation": scores.evaluation.to_dict(),
        **_distributions(scores),
        "passage": _passage(scores, text, passage_tokens),
        "most_surprising": _most_surprising(scores, text, top_k),
        "most_uncertain_contexts": _most_uncertain_contexts(scores, text, top_k),
    }
