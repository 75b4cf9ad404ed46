"""The restaurants and dishes of a hierarchical Pitman-Yor LM, as flat arrays over all orders.

Restaurant u of order k is the context u; a dish in it is a token w seen after u (a
"pair" (u, w), one n-gram of ``NgramCounts``). Each table of (u, w) is one customer of
(u', w) one order below (u' is u without its oldest token); only the highest order's
customers are the observed counts.
"""

from __future__ import annotations

import numpy as np

from bayeslm.counting.counts import NgramCounts
from bayeslm.exceptions import CorpusError

__all__ = ["Hierarchy"]


class Hierarchy:
    """The restaurants and dishes of every order, as flat arrays over all orders.

    Pair ("dish in a restaurant") i of order k has global index ``po[k-1] + local`` where
    ``local`` indexes ``counts[k]``'s n-gram arrays; contexts likewise with ``co``.
    """

    def __init__(self, counts: NgramCounts):
        n = counts.order
        self.counts, self.n, self.V = counts, n, counts.vocab_size
        self.po = np.concatenate([[0], np.cumsum([counts[k].n_ngrams for k in range(1, n + 1)])]).astype(np.int64)
        self.co = np.concatenate([[0], np.cumsum([counts[k].n_contexts for k in range(1, n + 1)])]).astype(np.int64)
        P = int(self.po[-1])
        self.pair_ctx = np.empty(P, np.int64)
        self.pair_parent = np.full(P, -1, np.int64)
        self.pair_level = np.empty(P, np.int64)
        self.raw = np.empty(P, np.int64)
        for k in range(1, n + 1):
            oc, sl = counts[k], slice(self.po[k - 1], self.po[k])
            self.pair_ctx[sl] = oc.ngram_context + self.co[k - 1]
            self.pair_level[sl] = k - 1
            self.raw[sl] = oc.ngram_count
            if k > 1:
                idx = counts[k - 1].lookup(oc.context_parent[oc.ngram_context], oc.ngram_token)
                if np.any(idx < 0):
                    raise CorpusError("inconsistent n-gram counts (a parent n-gram is missing)")
                self.pair_parent[sl] = idx + self.po[k - 2]

    @property
    def n_pairs(self) -> int:
        return int(self.po[-1])

    @property
    def n_contexts(self) -> int:
        return int(self.co[-1])

    def level(self, k: int) -> slice:
        return slice(int(self.po[k - 1]), int(self.po[k]))

    def customers(self, tables: np.ndarray) -> np.ndarray:
        """Customers of every pair: the top order's counts, below the tables of the children."""
        cust = np.empty(self.n_pairs, dtype=np.int64)
        top = self.level(self.n)
        cust[top] = self.raw[top]
        for k in range(self.n - 1, 0, -1):
            child = self.level(k + 1)
            lo = self.level(k)
            cust[lo] = np.bincount(self.pair_parent[child] - self.po[k - 1], weights=tables[child],
                                   minlength=lo.stop - lo.start).astype(np.int64)
        return cust

    def totals(self, cust: np.ndarray, tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Customers and tables of every restaurant."""
        C = np.bincount(self.pair_ctx, weights=cust, minlength=self.n_contexts).astype(np.int64)
        T = np.bincount(self.pair_ctx, weights=tables, minlength=self.n_contexts).astype(np.int64)
        return C, T

    def one_table(self) -> np.ndarray:
        return np.ones(self.n_pairs, dtype=np.int64)
