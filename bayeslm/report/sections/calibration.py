"""The calibration part of the entropy section: is the model right as often as it is confident?

Top-1 predictions come once per distinct context (:mod:`bayeslm.stats.calibration`
defines confidence, the bins and the expected calibration error).
"""

from __future__ import annotations

from bayeslm.report.sections.entropy import HeldOutScores
from bayeslm.stats.calibration import N_BINS, expected_calibration_error, reliability_bins, top1_of_contexts

__all__ = ["calibration_section"]


def calibration_section(model, scores: HeldOutScores) -> dict:
    """ECE, accuracy, mean confidence and reliability bins over the held-out positions."""
    conf_of_context, top_of_context = top1_of_contexts(model, scores.contexts)
    confidence = conf_of_context[scores.inverse]
    correct = top_of_context[scores.inverse] == scores.tokens
    bins = reliability_bins(confidence, correct, N_BINS)
    return {
        "n_bins": N_BINS,
        "ece": expected_calibration_error(confidence, correct, N_BINS),
        "positions": int(confidence.size),
        "distinct_contexts": int(scores.contexts.shape[0]),
        "accuracy": float(correct.mean()),
        "mean_confidence": float(confidence.mean()),
        "bins": bins.to_dict(orient="records"),
    }
