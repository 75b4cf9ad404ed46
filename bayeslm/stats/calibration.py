"""Calibration of next-token predictions: reliability bins and expected calibration error.

The confidence of a prediction is the top-1 posterior-predictive probability
``max_w p(w | u)``; it is correct when that top token is the observed one. Perfectly
calibrated predictions are right as often as they are confident. The expected calibration
error (ECE) bins predictions by confidence into ``n_bins`` equal-width bins over [0, 1]
(bin ``b`` holds confidences in ``(b / n_bins, (b + 1) / n_bins]``, bin 0 also holds 0) and
averages ``|accuracy - mean confidence|`` over bins, weighted by the share of predictions
in each (Guo et al. 2017, 15 bins).

Top-1 predictions are computed once per distinct context with the model's
``predictive_probs`` in chunks sized to bound memory (never positions x vocabulary).
Stats only: nothing here imports matplotlib.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeslm.exceptions import BayesLMError
from bayeslm.text.corpus import Corpus

__all__ = ["N_BINS", "bin_index", "reliability_bins", "expected_calibration_error", "distinct_contexts", "top1_of_contexts",
           "top1_predictions"]

N_BINS = 15
_CHUNK_ELEMENTS = 4_000_000  # contexts x vocabulary per predictive_probs call (32 MB of float64)


def _check(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidence, dtype=float).ravel()
    hit = np.asarray(correct, dtype=bool).ravel()
    if conf.shape != hit.shape:
        raise BayesLMError(f"confidence and correct differ in length ({conf.size} vs {hit.size})")
    if conf.size and (np.isnan(conf).any() or conf.min() < 0 or conf.max() > 1):
        raise BayesLMError("confidences must lie in [0, 1]")
    return conf, hit


def bin_index(confidence, n_bins: int = N_BINS) -> np.ndarray:
    """Bin of each confidence: ``b`` for ``(b / n, (b + 1) / n]``, 0 for a confidence of 0."""
    conf = np.asarray(confidence, dtype=float)
    return np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def reliability_bins(confidence, correct, n_bins: int = N_BINS) -> pd.DataFrame:
    """One row per bin: ``bin_low``, ``bin_high``, ``count``, ``mean_confidence``, ``accuracy``.

    Empty bins have count 0 and NaN means.
    """
    conf, hit = _check(confidence, correct)
    b = bin_index(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(b, weights=hit.astype(float), minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame({
        "bin_low": edges[:-1],
        "bin_high": edges[1:],
        "count": count.astype(np.int64),
        "mean_confidence": mean_conf,
        "accuracy": accuracy,
    })


def expected_calibration_error(confidence, correct, n_bins: int = N_BINS) -> float:
    """ECE: sum over bins of (share of predictions in the bin) x |accuracy - mean confidence|."""
    conf, _ = _check(confidence, correct)
    if conf.size == 0:
        return float("nan")
    bins = reliability_bins(confidence, correct, n_bins)
    full = bins["count"] > 0
    gap = (bins["accuracy"] - bins["mean_confidence"]).abs()[full]
    return float((bins["count"][full] / conf.size * gap).sum())


def distinct_contexts(corpus: Corpus, context_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct contexts of a corpus' scored positions.

    Returns
    -------
    contexts : int array (u, context_length)
        Each distinct context, oldest token first (``<s>``-padded).
    inverse : int array (positions,)
        Row of ``contexts`` of each scored position.
    tokens : int array (positions,)
        The token at each scored position.
    """
    n = int(context_length) + 1
    stream, targets = corpus.padded(n)
    tokens = stream[targets].astype(np.int64)
    if n == 1:
        return np.zeros((1, 0), dtype=np.int64), np.zeros(targets.size, dtype=np.int64), tokens
    ctx = np.stack([stream[targets - (n - 1) + j] for j in range(n - 1)], axis=1).astype(np.int64)
    V = len(corpus.vocab)
    if V ** (n - 1) < 2**62:  # pack each context into one int64 key: one fast 1-d unique
        key = np.zeros(targets.size, dtype=np.int64)
        for j in range(n - 1):
            key = key * V + ctx[:, j]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return ctx[first], inverse.ravel(), tokens
    contexts, inverse = np.unique(ctx, axis=0, return_inverse=True)
    return contexts, inverse.ravel(), tokens


def top1_of_contexts(model, contexts, *, chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 posterior-predictive probability and token of each context, shape (m,) each.

    Calls ``model.predictive_probs`` on chunks of at most ``chunk_size`` contexts (default:
    about 4 million probabilities per call), so memory stays bounded.
    """
    contexts = np.asarray(contexts, dtype=np.int64)
    V = len(model.vocabulary)
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // V)
    conf = np.empty(contexts.shape[0])
    top = np.empty(contexts.shape[0], dtype=np.int64)
    for start in range(0, contexts.shape[0], chunk_size):
        sl = slice(start, start + chunk_size)
        p = np.asarray(model.predictive_probs(contexts[sl]))
        top[sl] = p.argmax(axis=1)
        conf[sl] = p[np.arange(p.shape[0]), top[sl]]
    return np.clip(conf, 0.0, 1.0), top


def top1_predictions(model, corpus, *, chunk_size: int | None = None) -> pd.DataFrame:
    """Top-1 posterior-predictive token and its probability at every scored position.

    Computed once per distinct context (see :func:`top1_of_contexts`).

    Returns
    -------
    DataFrame with one row per scored position: ``confidence`` (top-1 probability),
    ``predicted`` (its token id), ``correct`` (it is the observed token).
    """
    corpus = model.encode(corpus)
    contexts, inverse, tokens = distinct_contexts(corpus, model.context_length)
    conf, top = top1_of_contexts(model, contexts, chunk_size=chunk_size)
    predicted = top[inverse]
    return pd.DataFrame({"confidence": conf[inverse], "predicted": predicted, "correct": predicted == tokens})
