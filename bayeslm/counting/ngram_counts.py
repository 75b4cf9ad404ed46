"""OrderCounts and NgramCounts: the sparse n-gram counts of orders 1..n, their lookups, merge and files.

Contexts are numbered per order. A context of order ``k`` (its ``k - 1`` preceding
tokens) is identified by its *parent* (the same context without its oldest token, a
context of order ``k - 1``) and its oldest token, packed into one int64 key
``parent_id * V + oldest_token``. Keys are kept sorted, so a context's id is the position
of its key and every lookup is one ``np.searchsorted``. N-grams likewise have the key
``context_id * V + token``, sorted, so the n-grams of one context are a contiguous run
(CSR layout: ``context_start``). Nothing is ever a dense contexts x vocabulary array.
:func:`bayeslm.counting.counts.count` makes them from a corpus.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayeslm.exceptions import BayesLMError, CorpusError, ModelFileError

__all__ = ["OrderCounts", "NgramCounts"]


class _HashIndex:
    """Positions of int64 keys in a unique key array: a pandas hash table, -1 where absent.

    Several times faster than ``np.searchsorted`` for scattered queries into a large array
    (scoring looks up every position's context and n-gram at every order). Keys that fill
    most of a small range (order 1's n-grams and order 2's contexts: one per token) get a
    dense table instead, read with one gather.
    """

    def __init__(self, keys: np.ndarray):
        keys = np.asarray(keys, dtype=np.int64)
        self._dense = None
        if keys.size and keys[0] >= 0 and keys[-1] < max(2 * keys.size, 1024):
            self._dense = np.full(int(keys[-1]) + 1, -1, dtype=np.int64)
            self._dense[keys] = np.arange(keys.size)
        else:
            import pandas as pd

            self._index = pd.Index(keys)

    def __call__(self, queries) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.int64)
        if self._dense is None:
            return self._index.get_indexer(queries).astype(np.int64)
        inside = (queries >= 0) & (queries < self._dense.size)
        return np.where(inside, self._dense[np.where(inside, queries, 0)], -1)


@dataclass(eq=False)
class OrderCounts:
    """The counts of one order ``k``: contexts of ``k - 1`` tokens and their next tokens.

    Context arrays have shape (n_contexts,); n-gram arrays have shape (n_ngrams,), sorted
    by (context, token).
    """

    order: int
    vocab_size: int
    context_key: np.ndarray  # int64: parent_id * V + oldest token (order 1: [0])
    ngram_key: np.ndarray  # int64: context_id * V + token, sorted
    ngram_count: np.ndarray  # int64: c(u, w) > 0
    continuation: np.ndarray | None = None  # int64: N1+(. u w); None at the highest order

    # derived arrays (not saved)
    ngram_context: np.ndarray = field(init=False, repr=False)
    ngram_token: np.ndarray = field(init=False, repr=False)
    context_start: np.ndarray = field(init=False, repr=False)
    context_total: np.ndarray = field(init=False, repr=False)
    context_types: np.ndarray = field(init=False, repr=False)

    def index_of_context(self, keys: np.ndarray) -> np.ndarray:
        """Id of each context key, or -1 where absent (a hash lookup, built once)."""
        if getattr(self, "_context_index", None) is None:
            self._context_index = _HashIndex(self.context_key)
        return self._context_index(keys)

    def index_of_ngram(self, keys: np.ndarray) -> np.ndarray:
        """Index of each n-gram key, or -1 where absent (a hash lookup, built once)."""
        if getattr(self, "_ngram_index", None) is None:
            self._ngram_index = _HashIndex(self.ngram_key)
        return self._ngram_index(keys)

    def __post_init__(self):
        V = self.vocab_size
        self.ngram_context = (self.ngram_key // V).astype(np.int64)
        self.ngram_token = (self.ngram_key % V).astype(np.int32)
        n_ctx = self.context_key.size
        self.context_types = np.bincount(self.ngram_context, minlength=n_ctx).astype(np.int64)
        self.context_total = np.bincount(self.ngram_context, weights=self.ngram_count, minlength=n_ctx).astype(np.int64)
        self.context_start = np.concatenate([[0], np.cumsum(self.context_types)])

    @property
    def n_contexts(self) -> int:
        return int(self.context_key.size)

    @property
    def n_ngrams(self) -> int:
        return int(self.ngram_key.size)

    @property
    def context_parent(self) -> np.ndarray:
        """Id of each context's parent (order ``k - 1``); -1 at order 1."""
        if self.order == 1:
            return np.full(self.n_contexts, -1, dtype=np.int64)
        return self.context_key // self.vocab_size

    @property
    def context_oldest(self) -> np.ndarray:
        """Oldest token of each context (meaningless at order 1)."""
        return (self.context_key % self.vocab_size).astype(np.int32)

    def count_of_counts(self) -> np.ndarray:
        """``coc[c]`` = number of n-grams seen exactly ``c`` times (``coc[0]`` = 0)."""
        return np.bincount(self.ngram_count)

    def lookup(self, context_ids: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Index of each (context, token) n-gram, or -1 where it was never seen."""
        context_ids, tokens = np.broadcast_arrays(np.asarray(context_ids, dtype=np.int64),
                                                  np.asarray(tokens, dtype=np.int64))
        idx = np.full(context_ids.shape, -1, dtype=np.int64)
        seen = context_ids >= 0  # an unseen context has no n-grams: only seen ones are looked up
        idx[seen] = self.index_of_ngram(context_ids[seen] * self.vocab_size + tokens[seen])
        return idx

    def counts_of(self, context_ids, tokens) -> np.ndarray:
        """c(u, w) for each (context id, token) pair; 0 for unseen pairs or contexts."""
        idx = self.lookup(context_ids, tokens)
        return np.where(idx >= 0, self.ngram_count[np.maximum(idx, 0)], 0)


def _check_keys(k: int, V: int, parent_contexts: int, context_key, ngram_key, ngram_count) -> None:
    """ValueError unless order ``k``'s stored keys are sorted and every id within its range.

    Context keys are ``parent_id * V + token`` with ``parent_id`` below the number of
    contexts of order ``k - 1`` (order 1 has the one empty context, key 0); n-gram keys
    are ``context_id * V + token`` with ``context_id`` below this order's contexts.
    """
    if k == 1 and context_key.tolist() != [0]:
        raise ValueError("order 1 must have the one empty context")
    if ngram_count.shape != ngram_key.shape or np.any(ngram_count < 1):
        raise ValueError(f"order {k} n-gram counts are inconsistent")
    for name, key, bound in (("context", context_key, parent_contexts * V), ("n-gram", ngram_key, context_key.size * V)):
        if key.ndim != 1 or np.any(np.diff(key) <= 0) or (key.size and (key[0] < 0 or key[-1] >= bound)):
            raise ValueError(f"order {k} {name} keys are unsorted or outside the vocabulary")


class NgramCounts:
    """Sparse counts of every order ``1..order`` of a corpus.

    Use :func:`bayeslm.counting.counts.count` to make one. ``orders[k - 1]`` is the :class:`OrderCounts` of order k.
    """

    def __init__(self, orders: list[OrderCounts], vocab_size: int):
        self.orders = orders
        self.vocab_size = int(vocab_size)

    @property
    def order(self) -> int:
        return len(self.orders)

    @property
    def n_events(self) -> int:
        """Predicted positions counted (tokens plus one ``</s>`` per sentence)."""
        return int(self.orders[0].ngram_count.sum())

    def __getitem__(self, k: int) -> OrderCounts:
        """Counts of order ``k`` (1-based)."""
        if not 1 <= k <= self.order:
            raise IndexError(f"order {k} not in 1..{self.order}")
        return self.orders[k - 1]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{o.order}: {o.n_ngrams}" for o in self.orders)
        return f"NgramCounts(order={self.order}, events={self.n_events}, ngrams={{{sizes}}})"

    # -- lookups -------------------------------------------------------------------
    def context_ids(self, context_tokens: np.ndarray) -> list[np.ndarray]:
        """Ids of the contexts of every order for rows of ``context_tokens``.

        Parameters
        ----------
        context_tokens : int array, shape (m, order - 1)
            The ``order - 1`` tokens before each position, oldest first (a wrong shape or
            an id outside the vocabulary is a :class:`BayesLMError`).

        Returns
        -------
        list of int64 arrays of shape (m,), one per order 1..order; -1 where the context
        of that order was never seen (then so were all longer ones).
        """
        context_tokens = np.atleast_2d(np.asarray(context_tokens, dtype=np.int64))
        if context_tokens.shape[1] != self.order - 1:
            raise BayesLMError(f"contexts must have shape (m, {self.order - 1}) for an order-{self.order} model, "
                               f"got {context_tokens.shape}")
        if context_tokens.size and (context_tokens.min() < 0 or context_tokens.max() >= self.vocab_size):
            raise BayesLMError("context token ids outside the vocabulary")
        m = context_tokens.shape[0]
        ids = np.zeros(m, dtype=np.int64)
        out = [ids]
        V = self.vocab_size
        for k in range(2, self.order + 1):
            seen = np.flatnonzero(ids >= 0)  # a context extends only a seen one: only those are looked up
            parent = ids[seen]
            ids = np.full(m, -1, dtype=np.int64)
            ids[seen] = self.orders[k - 1].index_of_context(parent * V + context_tokens[seen, self.order - k])
            out.append(ids)
        return out

    def context_tokens(self, k: int) -> np.ndarray:
        """The tokens of every context of order ``k``: shape (n_contexts, k - 1), oldest first."""
        oc = self[k]
        cols = []
        ids = np.arange(oc.n_contexts)
        for j in range(k, 1, -1):
            level = self[j]
            cols.append(level.context_oldest[ids])
            ids = level.context_parent[ids]
        return np.stack(cols, axis=1) if cols else np.zeros((oc.n_contexts, 0), dtype=np.int32)

    def ngram_tokens(self, k: int) -> np.ndarray:
        """Every n-gram of order ``k`` as tokens: shape (n_ngrams, k), oldest first."""
        oc = self[k]
        ctx = self.context_tokens(k)[oc.ngram_context]
        return np.concatenate([ctx, oc.ngram_token[:, None]], axis=1).astype(np.int32)

    # -- combination ---------------------------------------------------------------
    def merge(self, other: "NgramCounts") -> "NgramCounts":
        """Counts of both corpora together (same vocabulary and order)."""
        if other.order != self.order or other.vocab_size != self.vocab_size:
            raise CorpusError(
                f"cannot merge counts of order {other.order} / vocabulary {other.vocab_size} "
                f"into order {self.order} / vocabulary {self.vocab_size}"
            )
        grams = [
            (np.concatenate([self.ngram_tokens(k), other.ngram_tokens(k)]),
             np.concatenate([self[k].ngram_count, other[k].ngram_count]))
            for k in range(1, self.order + 1)
        ]
        return _from_grams(grams, self.vocab_size)

    # -- files ---------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"vocab_size": np.array(self.vocab_size), "order": np.array(self.order)}
        for oc in self.orders:
            k = oc.order
            arrays[f"o{k}_context_key"] = oc.context_key
            arrays[f"o{k}_ngram_key"] = oc.ngram_key
            arrays[f"o{k}_ngram_count"] = oc.ngram_count
            if oc.continuation is not None:
                arrays[f"o{k}_continuation"] = oc.continuation
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> "NgramCounts":
        try:
            V, n = int(arrays["vocab_size"]), int(arrays["order"])
            if V < 1:
                raise ValueError(f"vocabulary size {V}")
            orders = []
            for k in range(1, n + 1):
                cont = arrays[f"o{k}_continuation"] if k < n else None
                keys = {name: np.asarray(arrays[f"o{k}_{name}"], dtype=np.int64)
                        for name in ("context_key", "ngram_key", "ngram_count")}
                _check_keys(k, V, orders[-1].n_contexts if orders else 1, **keys)
                if cont is not None and np.shape(cont) != keys["ngram_key"].shape:
                    raise ValueError(f"order {k} continuation counts do not match its n-grams")
                orders.append(OrderCounts(order=k, vocab_size=V, **keys,
                                          continuation=None if cont is None else np.asarray(cont, dtype=np.int64)))
        except (KeyError, ValueError, TypeError, OverflowError) as err:
            raise ModelFileError(f"corrupt n-gram counts: {err}") from None
        return cls(orders, V)

    def save(self, path: str | Path) -> None:
        """Write the counts as a compressed ``.npz`` (no pickled objects)."""
        np.savez_compressed(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> "NgramCounts":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls.from_arrays({k: data[k] for k in data.files})
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no counts file") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise ModelFileError(f"{path}: corrupt counts file ({err})") from None


def _from_grams(grams: list[tuple[np.ndarray, np.ndarray]], vocab_size: int) -> NgramCounts:
    """Build counts from n-gram token rows of every order (rows may repeat).

    ``grams[k - 1]`` is ``(tokens, weights)``: tokens of shape (m, k), oldest first,
    weights of shape (m,). Every context of order k must occur as an event of order k - 1.
    """
    V = int(vocab_size)
    orders: list[OrderCounts] = []
    partial = NgramCounts(orders, V)  # grows as orders are built, for context lookups
    for k, (tokens, weights) in enumerate(grams, start=1):
        tokens = np.asarray(tokens, dtype=np.int64)
        if k == 1:
            context_key = np.zeros(1, dtype=np.int64)
            context_id = np.zeros(tokens.shape[0], dtype=np.int64)
        else:
            parent = partial.context_ids(tokens[:, 1 : k - 1])[-1] if k > 2 else np.zeros(tokens.shape[0], np.int64)
            if np.any(parent < 0):
                raise CorpusError(f"order {k} n-grams have contexts unseen at order {k - 1}")
            context_key, context_id = np.unique(parent * V + tokens[:, 0], return_inverse=True)
        ngram_key, inverse = np.unique(context_id * V + tokens[:, k - 1], return_inverse=True)
        ngram_count = np.bincount(inverse, weights=weights).astype(np.int64)
        orders.append(OrderCounts(k, V, context_key, ngram_key, ngram_count))
    for low, high in zip(orders[:-1], orders[1:]):
        # each (v u, w) of order k+1 is one distinct left extension of (u, w) at order k
        parent_of_ngram = high.context_parent[high.ngram_context]
        idx = low.lookup(parent_of_ngram, high.ngram_token)
        low.continuation = np.bincount(idx, minlength=low.n_ngrams).astype(np.int64)
    return NgramCounts(orders, V)
