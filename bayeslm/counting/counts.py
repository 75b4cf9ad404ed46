"""``count``: the sparse n-gram counts of orders 1..n of a corpus, computed with vectorised numpy.

Sentences are padded as by :meth:`bayeslm.Corpus.padded`: every token and each ``</s>``
is an event, its context the ``k - 1`` tokens before it with ``<s>`` padding, so every
order counts the same events. Continuation counts ``N1+(. u w)`` (distinct left
extensions of ``u w`` among the order ``k + 1`` n-grams) count ``<s>`` as a left context
like any other token. The result is an :class:`~bayeslm.counting.ngram_counts.NgramCounts`
(re-exported here with :class:`OrderCounts`); ``count(..., client=)`` counts on a Dask
cluster instead (:mod:`bayeslm.counting.distributed`, the same arrays).
"""

from __future__ import annotations

import numpy as np

from bayeslm.counting.keys import packed_keys, run_starts
from bayeslm.counting.ngram_counts import NgramCounts, OrderCounts
from bayeslm.exceptions import CorpusError

__all__ = ["OrderCounts", "NgramCounts", "count"]

_PACK_BITS = 62  # orders with V ** k below 2 ** _PACK_BITS are sorted on packed token keys


def _argsort_with_keys(key: np.ndarray, key_bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``(perm, key[perm])`` with ``perm`` a stable argsort of non-negative ``key < key_bound``.

    Where the key and the event index fit in 63 bits together, the index is packed into
    the key's low bits and the packed values are sorted by value: numpy's SIMD sort of
    int64 values is 2-3x faster than its argsort. Otherwise a stable argsort.
    """
    index_bits = max(int(key.size - 1).bit_length(), 1)
    if int(key_bound - 1).bit_length() + index_bits <= 63:
        packed = np.sort((key << index_bits) | np.arange(key.size, dtype=np.int64))
        return packed & ((1 << index_bits) - 1), packed >> index_bits
    perm = np.argsort(key, kind="stable")
    return perm, key[perm]


def _runs_of_order(stream: np.ndarray, targets: np.ndarray, k: int, V: int):
    """Sort the events of order k on their packed keys (:func:`~bayeslm.counting.keys.packed_keys`).

    That is the order of the hierarchical keys (a context's id is its rank, and contexts
    sort by parent first), so runs of equal keys are the n-grams and runs of equal
    ``key // V`` the contexts. Returns, per event, its context and n-gram ids, and for
    every context and n-gram the index of one of its events.
    """
    perm, key = _argsort_with_keys(packed_keys(stream, targets, k, V), V**k)
    new_ngram = run_starts(key)
    new_context = run_starts(key // V)
    n = key.size
    event_ctx, event_ngram = np.empty(n, np.int64), np.empty(n, np.int64)
    event_ctx[perm] = np.cumsum(new_context) - 1
    event_ngram[perm] = np.cumsum(new_ngram) - 1
    starts = np.flatnonzero(new_ngram)
    return {
        "event_ctx": event_ctx,
        "event_ngram": event_ngram,
        "context_first": perm[new_context],
        "ngram_first": perm[starts],
        "ngram_count": np.diff(np.append(starts, n)).astype(np.int64),
    }


def _count_events(stream: np.ndarray, targets: np.ndarray, order: int, V: int, steps) -> NgramCounts:
    """Counts of aligned events: position ``t`` is one event of every order.

    Each order is one sort (:func:`_runs_of_order`); orders whose packed keys fit in int64
    are sorted in parallel threads (numpy releases the GIL while sorting). Each event's
    context id at order k - 1 is its context's parent at order k, and each new n-gram of
    order k + 1 names one distinct left extension of its event's order-k n-gram (the
    continuation counts), so no lookups are needed. Orders too long to pack (V ** k >=
    2 ** 62) fall back to sorting hierarchical keys one order after the other.
    """
    from concurrent.futures import ThreadPoolExecutor

    tokens = stream[targets].astype(np.int64)
    n = tokens.size
    packable = [k for k in range(2, order + 1) if k * np.log2(max(V, 2)) < _PACK_BITS]
    with ThreadPoolExecutor(max_workers=min(2, max(1, len(packable)))) as pool:
        runs = {k: pool.submit(_runs_of_order, stream, targets, k, V) for k in packable}
        runs = {k: f.result() for k, f in runs.items()}
    orders: list[OrderCounts] = []
    event_ctx = np.zeros(n, dtype=np.int64)
    event_ngram = None
    for k in steps:
        if k == 1:
            present = np.bincount(tokens, minlength=V)
            ngram_key = np.flatnonzero(present).astype(np.int64)  # context 0: key = token
            orders.append(OrderCounts(1, V, np.zeros(1, np.int64), ngram_key, present[ngram_key].astype(np.int64)))
            event_ngram = (np.cumsum(present > 0) - 1)[tokens]
            continue
        oldest = stream[targets - (k - 1)].astype(np.int64)
        if k in runs:
            r = runs.pop(k)
            first = r["context_first"]
            context_key = event_ctx[first] * V + oldest[first]  # parent id * V + oldest token
            next_ctx, next_ngram, first_events = r["event_ctx"], r["event_ngram"], r["ngram_first"]
            ngram_key = next_ctx[first_events] * V + tokens[first_events]
            ngram_count = r["ngram_count"]
        else:
            context_key, next_ctx = np.unique(event_ctx * V + oldest, return_inverse=True)
            ngram_key, first_events, next_ngram, ngram_count = np.unique(
                next_ctx * V + tokens, return_index=True, return_inverse=True, return_counts=True)
        low = orders[-1]
        low.continuation = np.bincount(event_ngram[first_events], minlength=low.n_ngrams).astype(np.int64)
        orders.append(OrderCounts(k, V, context_key.astype(np.int64), ngram_key.astype(np.int64),
                                  ngram_count.astype(np.int64)))
        event_ctx, event_ngram = next_ctx, next_ngram
    return NgramCounts(orders, V)


def count(corpus, order: int, progress: bool = False, client=None) -> NgramCounts:
    """Sparse n-gram counts of orders ``1..order`` of a corpus.

    Parameters
    ----------
    corpus : Corpus
    order : int
        Highest order (3 for trigrams); contexts are padded with ``order - 1`` ``<s>``.
    progress : bool
        Show a progress bar over the orders.
    client : distributed.Client, optional
        Count partitions of the corpus on this Dask cluster and merge them (the same
        arrays; :mod:`bayeslm.counting.distributed`, ``pip install 'bayeslm[dask]'``).
    """
    order = int(order)
    if order < 1:
        raise CorpusError(f"order must be at least 1, got {order}")
    if corpus.n_tokens == 0:
        raise CorpusError("cannot count an empty corpus")
    if client is not None:
        from bayeslm.counting.distributed import count_corpus

        return count_corpus(corpus, order, client, progress=progress)
    stream, targets = corpus.padded(order)
    steps = range(1, order + 1)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="counting n-grams", unit="order", leave=False)
    return _count_events(stream, targets, order, len(corpus.vocab), steps)
