"""Sample statistics and closed forms shared by the n-gram tests (their texts: tests/corpora.py)."""

from __future__ import annotations

import numpy as np
from scipy.special import digamma


def shortest_interval(samples: np.ndarray, mass: float) -> tuple[float, float]:
    """The shortest interval holding ``mass`` of the samples (sorted; every window of k + 1)."""
    x = np.sort(samples)
    k = int(np.floor(mass * x.size))
    i = int(np.argmin(x[k:] - x[: x.size - k]))
    return float(x[i]), float(x[i + k])


def expected_entropy(A: np.ndarray) -> np.ndarray:
    """E[H(p)] of p ~ Dirichlet(A) over the last axis, in closed form (nats): digamma(A. + 1)
    - sum_w A_w / A. digamma(A_w + 1); zero parameters are absent categories."""
    total = A.sum(axis=-1)
    terms = np.where(A > 0, A / total[..., None] * digamma(A + 1), 0.0)
    return digamma(total + 1) - terms.sum(axis=-1)
