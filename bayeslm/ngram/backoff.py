"""Interpolated (Dirichlet-smoothed) predictives over sparse counts, without dense tables.

``P_j(w | u) = (c_j(u, w) + a_j P_{j-1}(w | u')) / (c_j(u) + a_j)`` down to ``P_0``, the
base measure (uniform over the vocabulary without ``<s>``, or a spelling model's); sums
over the vocabulary such as entropies recurse to the unigram level through
the sparse counts (docs/dirichlet.md, "Sums over the vocabulary without dense tables").
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from bayeslm.counting.counts import NgramCounts

__all__ = ["Backoff", "sample_base"]


class Backoff:
    """The plug-in predictives P_1..P_n of fixed concentrations over sparse counts.

    Parameters
    ----------
    counts : NgramCounts
    concentrations : float array, shape (n,) or (n, buckets)
        ``a_1..a_n``, or one per order and context-frequency bucket.
    bos_id : int
        Id of ``<s>``, which is never predicted.
    bounds : int array, shape (buckets - 1,)
        Bucket boundaries on context totals: a context seen ``c`` times is in bucket
        ``searchsorted(bounds, c, side="right")`` (an unseen one, c = 0, in bucket 0).
    base : float array, shape (V,), optional
        ``P_0``, summing to 1 with 0 at ``<s>``; None: uniform over the other V - 1 tokens.
    """

    #: seen tokens per pass of :meth:`vocab_sum` (a pass holds a few float arrays of this length)
    vocab_sum_rows = 1 << 17

    def __init__(self, counts: NgramCounts, concentrations, bos_id: int = 1, bounds=(), base=None):
        self.counts = counts
        a = np.asarray(concentrations, dtype=float)
        self.a = a if a.ndim == 2 else a[:, None]  # (order, bucket)
        self.bounds = np.asarray(bounds, dtype=np.int64)
        self.V = counts.vocab_size
        self.bos_id = bos_id
        self.base = None if base is None else np.asarray(base, dtype=float)
        uni = counts[1]
        self.unigram_counts = np.zeros(self.V, dtype=uni.ngram_count.dtype)  # weighted counts stay float
        self.unigram_counts[uni.ngram_token] = uni.ngram_count
        self.n_events = uni.ngram_count.sum().item()
        self.a1 = float(self.a[0, self.bucket(np.array([self.n_events]))[0]])
        # a_1 P_0(w) per token (a_1 / (V - 1) when uniform, as the closed vocabulary always computed it)
        self.base_mass = np.full(self.V, self.a1 / (self.V - 1)) if base is None else self.a1 * self.base
        # distinct (unigram count, base mass) among predictable tokens (all but <s>): value -> multiplicity
        predictable = np.ones(self.V, dtype=bool)
        predictable[bos_id] = False
        pairs = np.stack([self.unigram_counts[predictable].astype(float), self.base_mass[predictable]], axis=1)
        groups, self.group_size = np.unique(pairs, axis=0, return_counts=True)
        self.group_count, self.group_mass = groups[:, 0], groups[:, 1]

    def bucket(self, totals) -> np.ndarray:
        """Bucket of contexts with these totals."""
        return np.searchsorted(self.bounds, np.asarray(totals), side="right")

    def conc(self, j: int, ctx: np.ndarray) -> np.ndarray:
        """Concentration of order j for context ids ``ctx`` (-1: an unseen context, bucket 0)."""
        ctx = np.asarray(ctx, dtype=np.int64)
        total = np.where(ctx >= 0, self.counts[j].context_total[np.maximum(ctx, 0)], 0)
        return self.a[j - 1, self.bucket(total)]

    # -- probabilities -----------------------------------------------------------------
    def unigram(self, tokens) -> np.ndarray:
        """P_1(w) for token ids."""
        tokens = np.asarray(tokens)
        p = (self.unigram_counts[tokens] + self.base_mass[tokens]) / (self.n_events + self.a1)
        return np.where(tokens == self.bos_id, 0.0, p)

    def group_probs(self) -> np.ndarray:
        """P_1(w) of each group of tokens sharing a unigram count and base (``group_size`` tokens each)."""
        return (self.group_count + self.group_mass) / (self.n_events + self.a1)

    def level_stats(self, j: int, ctx: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(c_j(u, w), c_j(u)) for context ids of order j (-1: unseen, both 0)."""
        oc = self.counts[j]
        c = oc.counts_of(ctx, tokens).astype(float)
        total = np.where(ctx >= 0, oc.context_total[np.maximum(ctx, 0)], 0).astype(float)
        return c, total

    def prob(self, chain: list[np.ndarray], tokens, upto: int) -> np.ndarray:
        """P_upto(w | u) for positions whose context ids per order are ``chain[j - 1]``."""
        tokens = np.asarray(tokens)
        p = self.unigram(tokens)
        for j in range(2, upto + 1):
            c, total = self.level_stats(j, chain[j - 1], tokens)
            a_j = self.conc(j, chain[j - 1])
            p = (c + a_j * p) / (total + a_j)
        return p

    def ancestors(self, j: int, ctx: np.ndarray) -> list[np.ndarray]:
        """Context ids of orders 1..j for seen contexts ``ctx`` of order j (via parents)."""
        chain = [None] * j
        chain[j - 1] = np.asarray(ctx, dtype=np.int64)
        for k in range(j, 1, -1):
            chain[k - 2] = self.counts[k].context_parent[chain[k - 1]]
        return chain

    def seen(self, j: int, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (row, token, count) of the tokens seen after the contexts ``ctx`` of order j."""
        oc = self.counts[j]
        ctx = np.asarray(ctx, dtype=np.int64)
        seen_ok = ctx >= 0
        start = np.where(seen_ok, oc.context_start[np.maximum(ctx, 0)], 0)
        length = np.where(seen_ok, oc.context_types[np.maximum(ctx, 0)], 0)
        rows = np.repeat(np.arange(ctx.size), length)
        offsets = np.concatenate([[0], np.cumsum(length)[:-1]])
        idx = np.repeat(start - offsets, length) + np.arange(int(length.sum()))
        return rows, oc.ngram_token[idx], oc.ngram_count[idx].astype(float)

    # -- sums over the vocabulary ------------------------------------------------------
    def vocab_sum(self, f: Callable, level_one: Callable, j: int, ctx: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``sum_w f(x P_j(w | u))`` for seen contexts ``ctx`` of order j, scales ``x`` (> 0).

        ``level_one(x)`` must return ``sum_w f(x P_1(w))`` (see :meth:`unigram_sum`);
        ``f(0)`` must be 0.
        """
        ctx = np.asarray(ctx, dtype=np.int64)
        x = np.asarray(x, dtype=float)
        if j == 1:
            return level_one(x)
        # many positions share (context, scale): compute each pair once
        key = np.stack([ctx.astype(float), x], axis=1)
        uniq, inverse = np.unique(key, axis=0, return_inverse=True)
        u_ctx, u_x = uniq[:, 0].astype(np.int64), uniq[:, 1]
        # the seen tokens of many contexts at once: at most about ``vocab_sum_rows`` of them per pass
        lengths = np.where(u_ctx >= 0, self.counts[j].context_types[np.maximum(u_ctx, 0)], 0)
        ends = np.searchsorted(np.cumsum(lengths), np.arange(1, lengths.sum() // self.vocab_sum_rows + 1)
                               * self.vocab_sum_rows, side="right")
        bounds = np.unique(np.concatenate([[0], ends, [u_ctx.size]]))
        out = np.empty(u_ctx.size)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            out[lo:hi] = self._vocab_sum_unique(f, level_one, j, u_ctx[lo:hi], u_x[lo:hi])
        return out[inverse.ravel()]

    def _vocab_sum_unique(self, f: Callable, level_one: Callable, j: int, ctx: np.ndarray, x: np.ndarray) -> np.ndarray:
        """:meth:`vocab_sum` for distinct (context, scale) pairs of order j > 1."""
        oc = self.counts[j]
        a_j = self.conc(j, ctx)
        lam = a_j / (oc.context_total[ctx] + a_j)
        rows, tokens, c = self.seen(j, ctx)
        parent_chain = self.ancestors(j - 1, oc.context_parent[ctx][rows])
        lower = self.prob(parent_chain, tokens, j - 1)
        here = (c + a_j[rows] * lower) / (oc.context_total[ctx][rows] + a_j[rows])
        xr = x[rows]
        explicit = np.bincount(rows, weights=f(xr * here) - f(xr * lam[rows] * lower), minlength=ctx.size)
        return explicit + self.vocab_sum(f, level_one, j - 1, oc.context_parent[ctx], x * lam)

    def unigram_sum(self, f: Callable, x: np.ndarray) -> np.ndarray:
        """``sum_w f(x P_1(w))`` exactly, over the distinct unigram counts."""
        p = self.group_probs()
        x = np.asarray(x, dtype=float)
        out = np.empty(x.shape)
        for block in range(0, x.size, 4096):
            xb = x.ravel()[block : block + 4096]
            out.ravel()[block : block + 4096] = (f(xb[:, None] * p[None, :]) * self.group_size).sum(axis=1)
        return out

    def unigram_sum_spline(self, f: Callable, x: np.ndarray, per_decade: int = 200) -> np.ndarray:
        """:meth:`unigram_sum` through a cubic spline in log x (relative error below ~1e-9).

        For many distinct scales: the exact sum costs (#scales x #distinct counts).
        """
        from scipy.interpolate import CubicSpline

        x = np.asarray(x, dtype=float)
        lo, hi = np.log10(x.min()) - 0.1, np.log10(x.max()) + 0.1
        grid = np.logspace(lo, hi, max(int((hi - lo) * per_decade), 16))
        if grid.size >= x.size:
            return self.unigram_sum(f, x)
        spline = CubicSpline(np.log(grid), self.unigram_sum(f, grid))
        return spline(np.log(x))

    def sample(self, chain: list[np.ndarray], upto: int, rng: np.random.Generator, top=None) -> np.ndarray:
        """One token from P_upto(. | u) for every row, without building a distribution.

        The predictive is a mixture: with probability ``c_j(u) / (c_j(u) + a_j)`` the token
        is one of the tokens counted after ``u`` (chosen in proportion to its count), else it
        comes from the order below; order 0 is the base (uniform over the vocabulary without
        ``<s>`` unless given).
        ``top`` (array of shape (rows,)) replaces ``a_upto`` per row, e.g. a posterior draw.
        """
        m = chain[0].size
        out = np.full(m, -1, dtype=np.int64)
        pending = np.ones(m, dtype=bool)
        for j in range(upto, 0, -1):
            rows = np.flatnonzero(pending & (chain[j - 1] >= 0))
            if rows.size == 0:
                continue
            oc = self.counts[j]
            ctx = chain[j - 1][rows]
            total = oc.context_total[ctx].astype(float)
            a_j = top[rows] if (top is not None and j == upto) else self.conc(j, ctx)
            take = rng.random(rows.size) * (total + a_j) < total
            rows, ctx = rows[take], ctx[take]
            if rows.size:
                cum = np.cumsum(oc.ngram_count)  # running count over the sorted n-grams
                before = np.where(oc.context_start[ctx] > 0, cum[oc.context_start[ctx] - 1], 0)
                pick = before + rng.random(rows.size) * oc.context_total[ctx]  # weighted counts need no floor
                out[rows] = oc.ngram_token[np.searchsorted(cum, pick, side="right")]
                pending[rows] = False
        rows = np.flatnonzero(pending)
        if rows.size:
            out[rows] = self.sample_base(rows.size, rng)
        return out

    def sample_base(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` tokens drawn from ``P_0``."""
        return sample_base(self.base, self.V, self.bos_id, size, rng)

    def dense(self, chain: list[np.ndarray], upto: int) -> np.ndarray:
        """P_upto(. | u) over the whole vocabulary, shape (contexts, V). For small batches."""
        m = chain[0].size
        p = np.broadcast_to(self.unigram(np.arange(self.V)), (m, self.V)).copy()
        for j in range(2, upto + 1):
            ctx = chain[j - 1]
            rows, tokens, c = self.seen(j, ctx)
            dense_c = np.zeros((m, self.V))
            dense_c[rows, tokens] = c
            _, total = self.level_stats(j, ctx, np.zeros(m, dtype=np.int64))
            a_j = self.conc(j, ctx)[:, None]
            p = (dense_c + a_j * p) / (total[:, None] + a_j)
        return p


def sample_base(base: np.ndarray | None, V: int, bos_id: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` token ids drawn from the base measure ``base`` (V,); None: uniform over all tokens but ``<s>``."""
    if base is None:
        draw = rng.integers(0, V - 1, size=size)
        return draw + (draw >= bos_id)
    cum = np.cumsum(base)
    return np.minimum(np.searchsorted(cum, rng.random(size) * cum[-1], side="right"), V - 1)
