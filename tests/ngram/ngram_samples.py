"""Sample statistics and closed forms shared by the n-gram tests (their texts: tests/corpora.py)."""

from __future__ import annotations

import collections
import math

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


def log_stirling(d: float, c: int, t: int) -> float:
    """log S_d(c, t), generalised Stirling numbers: S(m+1, k) = S(m, k-1) + (m - k d) S(m, k)."""
    S = np.zeros((c + 1, c + 2))
    S[0, 0] = 1.0
    for m in range(c):
        for k in range(1, m + 2):
            S[m + 1, k] = S[m, k - 1] + (m - k * d) * S[m, k]
    return math.log(S[c, t])


def log_restaurant(d, theta, T, C):
    """log of a Pitman-Yor restaurant's seating term with T tables and C customers:
    sum_{i=1}^{T-1} log(theta + d i) - sum_{i=1}^{C-1} log(theta + i)."""
    return sum(math.log(theta + d * i) for i in range(1, T)) - sum(math.log(theta + i) for i in range(1, C))


def total_variation(seen: collections.Counter, exact: dict) -> float:
    """Total variation between the frequencies of the states ``seen`` (counts) and the probabilities ``exact``."""
    n = sum(seen.values())
    return 0.5 * sum(abs(seen[k] / n - exact.get(k, 0.0)) for k in set(seen) | set(exact))
