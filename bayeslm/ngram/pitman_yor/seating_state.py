"""The seating of every restaurant of a hierarchical Pitman-Yor LM and the likelihood of (d, theta).

:class:`SeatingState` holds the seating (numba arrays, kernels in
:mod:`bayeslm.ngram.pitman_yor.seating` and :mod:`bayeslm.ngram.pitman_yor.table_counts`)
and, from its count-of-counts statistics, log p(seating | d, theta) with its gradient.
The Gibbs step (:class:`bayeslm.ngram.pitman_yor.step.SeatingStep`) and the log-density
Op of the hyperparameters share one state object.
"""

from __future__ import annotations

import numpy as np

from bayeslm.exceptions import BayesLMError
from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy
from bayeslm.ngram.special import lgamma_ratio

__all__ = ["SeatingState"]


class SeatingState:
    """The seating of every restaurant (numba arrays) and the hyperparameters' likelihood.

    Shared by the seating step and the log-density Op of the hyperparameters.
    """

    REFRESH_CELLS = 5_000_000  # (c + 1)(t + 1) above which a pair's sizes are not redrawn (40 MB)

    STIRLING_MAX = 2000  # the table-count step leaves pairs with more raw counts (or such a parent) to the sweep

    def __init__(self, hier: Hierarchy, base, gibbs: bool, refresh_min: int = 0, table_step: bool = False):
        """``base``: P_0 below the unigram level, one number (uniform) or an array over the vocabulary
        (an open vocabulary's spelling base, ``NgramLM.base_probs``)."""
        from bayeslm.ngram.pitman_yor import seating as S
        self.hier, self.gibbs = hier, bool(gibbs)
        unigram_tokens = hier.counts[1].ngram_token
        base = np.asarray(base, dtype=float)
        # per unigram pair (the level-0 pair index the kernels read), the base of its token
        self.base = np.full(unigram_tokens.size, float(base)) if base.ndim == 0 else base[unigram_tokens].copy()
        self.table_step = bool(table_step)
        self._stirling_cache: dict = {}
        refresh_min = int(refresh_min)
        self.refresh_pairs = (np.flatnonzero(hier.raw >= max(refresh_min, 3)).astype(np.int64) if refresh_min > 0
                              else np.zeros(0, np.int64))
        P, nctx = hier.n_pairs, hier.n_contexts
        self.cust = np.zeros(P, np.int64)
        self.tabs = np.zeros(P, np.int64)
        self.nent = np.zeros(P, np.int64)
        cap = S.slots_for(hier.raw) if gibbs else np.ones(P, np.int64)
        self.slot = np.concatenate([[0], np.cumsum(cap)[:-1]]).astype(np.int64)
        self.hsize = np.zeros(int(cap.sum()), np.int64)
        self.hcount = np.zeros(int(cap.sum()), np.int64)
        self.ctx_cust = np.zeros(nctx, np.int64)
        self.ctx_tabs = np.zeros(nctx, np.int64)
        self.sweep_order = np.arange(P, dtype=np.int64)[::-1].copy()
        # the table-count step updates the pairs its Stirling tables cover (fixed by the raw
        # counts, which bound the customers); with it the customer sweep keeps the others, and
        # every pair's sizes are refreshed
        parent_raw = np.where(hier.pair_parent >= 0, hier.raw[np.maximum(hier.pair_parent, 0)], 0)
        self.table_pairs = (hier.raw <= self.STIRLING_MAX) & (parent_raw <= self.STIRLING_MAX)
        # per order: the flagged pairs, and how far its Stirling table must reach (its own
        # pairs' and the parents the order above reads; raw counts bound customers)
        self._table_flags = [self.table_pairs[hier.level(L + 1)] for L in range(hier.n)]
        self._stirling_need = [int(hier.raw[hier.level(L + 1)][flags].max(initial=2))
                               for L, flags in enumerate(self._table_flags)]
        for L in range(1, hier.n):
            parents = hier.pair_parent[hier.level(L + 1)][self._table_flags[L]]
            self._stirling_need[L - 1] = max(self._stirling_need[L - 1], int(hier.raw[parents].max(initial=2)))
        if self.table_step:
            self.sweep_order = self.sweep_order[~self.table_pairs[self.sweep_order]]
            self.refresh_pairs = np.flatnonzero(hier.raw >= 3).astype(np.int64)
        self.one_table()

    # -- seating -------------------------------------------------------------------------
    def one_table(self) -> None:
        from bayeslm.ngram.pitman_yor import seating as S
        self.cust[:] = self.hier.customers(self.hier.one_table())
        S.init_one_table(self.cust, self.tabs, self.nent, self.hsize, self.hcount, self.slot,
                         self.ctx_cust, self.ctx_tabs, self.hier.pair_ctx)
        self._update_stats()

    def _args(self):
        h = self.hier
        return (self.cust, self.tabs, self.nent, self.hsize, self.hcount, self.slot, self.ctx_cust, self.ctx_tabs,
                h.pair_ctx, h.pair_parent, h.pair_level)

    def initialise(self, d, theta, seed: int) -> None:
        """Seat the observed customers one at a time, in random order, by the CRP rule."""
        from bayeslm.ngram.pitman_yor import seating as S
        if not self.gibbs:
            return
        h = self.hier
        for arr in (self.cust, self.tabs, self.nent, self.ctx_cust, self.ctx_tabs):
            arr[:] = 0
        top = np.arange(h.po[h.n - 1], h.po[h.n], dtype=np.int64)
        events = np.repeat(top, h.raw[top])
        np.random.default_rng(seed).shuffle(events)
        S.seed(int(seed))
        S.add_sequence(events, *self._args(), np.asarray(d, float), np.asarray(theta, float), self.base)
        self._update_stats()

    def sweep(self, d, theta, seed: int) -> int:
        from bayeslm.ngram.pitman_yor import seating as S
        if not self.gibbs:
            return 0
        S.seed(int(seed))
        d = np.asarray(d, float)
        moves = S.sweep(self.sweep_order, *self._args(), d, np.asarray(theta, float), self.base)
        if self.refresh_pairs.size:
            S.refresh_partitions(self.refresh_pairs, self.cust, self.tabs, self.nent, self.hsize, self.hcount,
                                 self.slot, self.hier.pair_level, d, self.REFRESH_CELLS)
        if self.table_step:
            self.update_table_counts(d, np.asarray(theta, float))
        self._update_stats()
        return int(moves)

    def _stirling_tables(self, need: list[int], d: np.ndarray) -> list[np.ndarray]:
        """Per order, log S_{d_k}(c, t) for c <= need[k] (:func:`bayeslm.ngram.pitman_yor.table_counts.stirling_table`);
        only the last call's tables are kept (up to 16 MB each), reused while d_k stays."""
        from bayeslm.ngram.pitman_yor import table_counts as TC
        kept = {}
        for L, n_max in enumerate(need):
            key = (L, int(n_max), float(d[L]))
            kept[key] = self._stirling_cache.get(key)
            if kept[key] is None:
                kept[key] = TC.stirling_table(int(n_max), float(d[L]))
        self._stirling_cache = kept
        return list(kept.values())

    def update_table_counts(self, d: np.ndarray, theta: np.ndarray) -> int:
        """Draw every pair's table count from its full conditional, highest order first
        (:mod:`bayeslm.ngram.pitman_yor.table_counts`). Returns how many changed."""
        from bayeslm.ngram.pitman_yor import table_counts as TC
        h = self.hier
        which = self._table_flags
        tables = self._stirling_tables(self._stirling_need, d)
        changed = 0
        for L in range(h.n - 1, -1, -1):
            if not which[L].any():
                continue
            ls = tables[L]
            ls_par = tables[L - 1] if L > 0 else ls
            d_par, th_par = (float(d[L - 1]), float(theta[L - 1])) if L > 0 else (0.5, 1.0)
            changed += TC.sweep_level(L, h.po, h.co, which[L], self.cust, self.tabs, self.nent, self.hsize, self.hcount,
                                      self.slot, self.ctx_cust, self.ctx_tabs, h.pair_ctx, h.pair_parent,
                                      float(d[L]), float(theta[L]), d_par, th_par, self.base, ls, ls_par)
        return changed

    def table_counts(self) -> np.ndarray:
        return self.tabs.astype(np.int32)

    def total_tables(self) -> int:
        return int(self.tabs.sum())

    # -- sufficient statistics and the likelihood of (d, theta) ----------------------------
    def _update_stats(self) -> None:
        from bayeslm.ngram.pitman_yor import seating as S
        h = self.hier
        stats = []
        for k in range(1, h.n + 1):
            lo, hi = int(h.po[k - 1]), int(h.po[k])
            if self.gibbs:
                size_counts = S.table_size_counts(lo, hi, self.nent, self.hsize, self.hcount, self.slot,
                                                  int(self.cust[lo:hi].max()))
            else:
                size_counts = np.bincount(self.cust[lo:hi])
            # H[j-1] = tables with more than j customers, j = 1..max-1
            above = np.cumsum(size_counts[::-1])[::-1]
            H = above[2:].astype(float)
            T = self.ctx_tabs[h.co[k - 1]:h.co[k]]
            C = self.ctx_cust[h.co[k - 1]:h.co[k]]
            keep = C > 0
            t_above = np.cumsum(np.bincount(T[keep])[::-1])[::-1]
            A = t_above[2:].astype(float)  # restaurants with more than i tables, i = 1..
            c_values, c_mult = np.unique(C[keep], return_counts=True)
            stats.append((H, A, c_values.astype(float), c_mult.astype(float)))
        self.stats = stats
        self.tables = None  # Chebyshev tables of the per-order likelihood (fixed seating only)
        self._cache = {}

    def hyper_logp(self, d, theta) -> tuple[float, np.ndarray, np.ndarray]:
        """log p(seating | d, theta) (up to a constant) and its gradient, per-order vectors in.

        Each order's term involves only (d_k, theta_k) and is cached, so a sampler that
        moves one coordinate at a time recomputes one order.
        """
        d = np.atleast_1d(np.asarray(d, dtype=float))
        theta = np.atleast_1d(np.asarray(theta, dtype=float))
        total, gd, gt = 0.0, np.zeros(d.size), np.zeros(theta.size)
        for k in range(len(self.stats)):
            value, gd[k], gt[k] = self._order_logp(k, float(d[k]), float(theta[k]))
            total += value
        if not np.isfinite(total):
            return -np.inf, np.zeros(d.size), np.zeros(theta.size)
        return total, gd, gt

    def _order_logp(self, k: int, dk: float, tk: float) -> tuple[float, float, float]:

        cached = self._cache.get(k)
        if cached is not None and cached[0] == (dk, tk):
            return cached[1]
        table = self.tables[k] if self.tables is not None else None
        if table is not None and 0.0 < dk < 1.0 and tk > -dk:
            x, y = np.log(dk / (1.0 - dk)), np.log(tk + dk)
            if table.covers(x, y):
                value, fx, fy = table(x, y)
                g_t = fy / (tk + dk)
                result = (value, fx / (dk * (1.0 - dk)) + g_t, g_t)
                self._cache[k] = ((dk, tk), result)
                return result
        result = self._exact_order_logp(k, dk, tk)
        self._cache[k] = ((dk, tk), result)
        return result

    def _exact_order_logp(self, k: int, dk: float, tk: float) -> tuple[float, float, float]:
        if not (0.0 <= dk < 1.0 and tk > -dk):
            result = (-np.inf, 0.0, 0.0)
        else:
            H, A, cv, cm = self.stats[k]
            i = np.arange(1, A.size + 1, dtype=float)
            j = np.arange(1, H.size + 1, dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                x = tk + dk * i
                ratio, dratio = lgamma_ratio(tk + 1.0, cv - 1.0)
                value = float((A * np.log(x)).sum() + (H * np.log(j - dk)).sum() - (cm * ratio).sum())
                g_d = float((A * i / x).sum() - (H / (j - dk)).sum())
                g_t = float((A / x).sum() - (cm * dratio).sum())
            result = (value, g_d, g_t) if np.isfinite([value, g_d, g_t]).all() else (-np.inf, 0.0, 0.0)
        return result

    def tabulate(self, d0: np.ndarray) -> list[bool]:
        """Tabulate each order's log likelihood around its mode (fixed seating only).

        In the sampler's coordinates x = logit d, y = log(theta + d): the mode by L-BFGS
        from (logit d0_k, log(1 + d0_k)), then a checked Chebyshev table
        (:func:`bayeslm.core.tabulate.tabulate2d`); outside it, or where the check fails, the
        exact sums answer. Returns, per order, whether a table is in use.
        """
        from scipy.optimize import minimize

        from bayeslm.core.tabulate import tabulate2d

        if self.gibbs:
            raise BayesLMError("the seating moves every sweep: only a fixed seating (ikn) can be tabulated")
        self.tables = [None] * len(self.stats)
        self.modes = np.full((2, len(self.stats)), np.nan)  # (d, theta) per order at the likelihood's mode
        for k in range(len(self.stats)):
            def in_xy(x, y, k=k):
                dk = 1.0 / (1.0 + np.exp(-x))
                s = np.exp(y)
                value, g_d, g_t = self._exact_order_logp(k, dk, s - dk)
                return value, (g_d - g_t) * dk * (1.0 - dk), g_t * s

            def negative(z):
                value, fx, fy = in_xy(*z)
                return (-value, -np.array([fx, fy])) if np.isfinite(value) else (np.inf, np.zeros(2))

            d = float(np.clip(d0[k], 1e-3, 0.999))
            found = minimize(negative, [np.log(d / (1 - d)), np.log(1.0 + d)], jac=True, method="L-BFGS-B")
            if np.isfinite(found.fun):
                self.tables[k] = tabulate2d(in_xy, found.x)
                d_mode = 1.0 / (1.0 + np.exp(-found.x[0]))
                self.modes[:, k] = d_mode, np.exp(found.x[1]) - d_mode
        self._cache = {}
        return [t is not None for t in self.tables]
