"""Packed n-gram keys: an n-gram of token ids as one int64, and runs of equal keys.

The n-gram ``w[t-n+1] ... w[t-1] w[t]`` of order ``n >= 2`` is the base-``V`` number
with digits, most significant first, ``w[t-1], w[t-2], ..., w[t-n+1], w[t]``: the newest
context token leads, the predicted token is the last digit. So ``key // V`` is the
context, and sorted keys put every context after its parent (the context without its
oldest token), the order of :class:`~bayeslm.counting.ngram_counts.OrderCounts`. A key
fits int64 while ``V ** n <= 2 ** 63``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["packed_keys", "newest_context_token", "without_oldest_context_token", "run_starts"]


def packed_keys(stream: np.ndarray, targets: np.ndarray, order: int, V: int) -> np.ndarray:
    """int64 key (n,) of the order-``order`` n-gram ending at each of the n ``targets``.

    ``stream`` holds the padded token ids (:meth:`bayeslm.Corpus.padded`), ``targets``
    the positions predicted; ``order >= 2``.
    """
    key = stream[targets - 1].astype(np.int64)
    for j in range(2, order):
        key = key * V + stream[targets - j]
    return key * V + stream[targets]


def newest_context_token(keys: np.ndarray, order: int, V: int) -> np.ndarray:
    """``w[t-1]`` of each order-``order`` key: its leading digit."""
    return keys // V ** (order - 1)


def without_oldest_context_token(keys: np.ndarray, V: int) -> np.ndarray:
    """The keys one order lower: their second-lowest digit (the oldest context token) dropped."""
    return (keys // (V * V)) * V + keys % V


def run_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Boolean mask (n,) of the first element of every run of equal values."""
    first = np.empty(sorted_values.size, dtype=bool)
    first[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=first[1:])
    return first
