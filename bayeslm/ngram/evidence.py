"""The Dirichlet-multinomial evidence of one order's counts given a fixed base, and its mode.

``OrderEvidence`` is the likelihood of one concentration a: the Dirichlet LM samples it
(one per order and bucket), and a spelling model (:mod:`bayeslm.ngram.spelling`) takes
each order's at its mode (:func:`concentration_mode`).
"""

from __future__ import annotations

import numpy as np

from bayeslm.ngram.special import lgamma_ratio

__all__ = ["OrderEvidence", "JointEvidence", "MODE_GRID", "concentration_mode", "fixed_base"]


class OrderEvidence:
    """The sufficient statistics of one order's evidence given its fixed base.

    Contexts with equal totals share one ``lgamma(a) - lgamma(a + c_u)`` term. For an
    n-gram seen ``c <= small_max`` times, ``lgamma(a m + c) - lgamma(a m)`` is written as
    ``log(a m) + sum_{j=1}^{c-1} log(a m + j)`` (singletons need no term but ``log a``),
    which is several times cheaper to evaluate and differentiate than two lgammas; rarer
    large counts keep the lgamma form. ``context_scale`` (per context, shape (contexts,))
    makes context u's concentration ``a T_u`` (then ``base`` holds ``T_u m_uw``; an adapted
    model's power prior, :mod:`bayeslm.ngram.adapt`).

    Sampling uses :meth:`logp_and_grad`, which after :meth:`tabulate` answers from a
    Chebyshev table in log a around the mode (checked against the exact sums to round-off,
    see :mod:`bayeslm.core.tabulate`) and falls back to the exact sums outside it; ``logp`` is
    always exact.
    """

    small_max = 8

    def __init__(self, counts_k, base: np.ndarray, context_scale=None):
        if context_scale is None:  # contexts with equal totals share a term
            self.total_value, self.total_mult = np.unique(counts_k.context_total, return_counts=True)
            self.context_scale = 1.0
        else:
            self.total_value, self.total_mult = counts_k.context_total, np.ones(counts_k.context_total.size, np.int64)
            self.context_scale = np.asarray(context_scale, dtype=float)
        c = counts_k.ngram_count
        small = c <= self.small_max
        self.n_small = int(small.sum())
        self.n_single = int((c == 1).sum())
        self.small_const = float(np.log(base[small]).sum())
        c_small, m_small = c[small], base[small]
        reps = c_small - 1  # log(a m + j) for j = 1..c-1
        self.pair_base = np.repeat(m_small, reps)
        self.pair_shift = (np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps) + 1).astype(float)
        self.large_base = base[~small]
        self.large_count = c[~small].astype(float)
        self._last = None
        self._table = None

    def tabulate(self, a_center: float) -> bool:
        """Tabulate the log evidence in log a around ``a_center`` (the mode); True if kept."""
        from bayeslm.core.tabulate import tabulate

        def in_log_a(t: float) -> tuple[float, float]:
            a = float(np.exp(t))
            value, grad = self.exact_logp_and_grad(a)
            return value, grad * a

        self._table = tabulate(in_log_a, float(np.log(a_center)))
        self._last = None
        return self._table is not None

    def logp_and_grad(self, a: float) -> tuple[float, float]:
        """Log evidence at concentration ``a`` and its derivative d/da, for the sampler.

        From the table where :meth:`tabulate` made one and ``log a`` lies inside it, else
        :meth:`exact_logp_and_grad`. The last result is cached: PyMC asks for the value
        and the gradient at the same point one after the other.
        """
        if self._last is not None and self._last[0] == a:
            return self._last[1]
        if self._table is not None and a > 0 and self._table.covers(np.log(a)):
            value, d_log_a = self._table(float(np.log(a)))
            result = (value, d_log_a / a)
        else:
            result = self.exact_logp_and_grad(a)
        self._last = (a, result)
        return result

    def exact_logp_and_grad(self, a: float) -> tuple[float, float]:
        """Log evidence at concentration ``a`` and its derivative d/da (numpy, vectorised)."""
        if not (a > 0 and np.isfinite(a)):  # outside the support: reject the proposal
            return -np.inf, 0.0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = self._logp_and_grad(a)
        if not (np.isfinite(result[0]) and np.isfinite(result[1])):
            result = (-np.inf, 0.0)  # a numerically out of reach: reject the proposal
        return result

    def _logp_and_grad(self, a: float) -> tuple[float, float]:
        ratio, d_ratio = lgamma_ratio(a * self.context_scale, self.total_value)
        ctx = -float((self.total_mult * ratio).sum())
        g_ctx = -float((self.total_mult * d_ratio * self.context_scale).sum())
        shifted = a * self.pair_base
        shifted += self.pair_shift
        pairs, g_pairs = float(np.log(shifted).sum()), float((self.pair_base / shifted).sum())
        am = a * self.large_base
        ratio, d_ratio = lgamma_ratio(am, self.large_count)
        large, g_large = float(ratio.sum()), float((self.large_base * d_ratio).sum())
        logp = ctx + self.n_small * np.log(a) + self.small_const + pairs + large
        return logp, g_ctx + self.n_small / a + g_pairs + g_large

    def logp(self, a) -> np.ndarray:
        """Log evidence for concentration value(s) ``a``, shape of ``np.atleast_1d(a)``."""
        return np.array([self.exact_logp_and_grad(float(ai))[0] for ai in np.atleast_1d(a)])

    def logp_tensor(self, a):
        """The log evidence as a PyTensor expression of a scalar ``a`` (gradient included).

        A small Op over the numpy kernel: numpy's vectorised log and scipy's special
        functions evaluate these few hundred thousand terms faster than the compiled
        elementwise graph, and NUTS spends nearly all its time here.
        """
        import pytensor.tensor as pt

        return JointEvidence([self]).logp_tensor(pt.stack([a]))


class JointEvidence:
    """The evidences of several (order, bucket) cells as one function of their concentrations.

    One Op call per gradient instead of one per cell: NUTS evaluates it thousands of times.
    """

    def __init__(self, evidences: list["OrderEvidence"]):
        self.evidences = evidences

    def logp_and_grad(self, a: np.ndarray) -> tuple[float, np.ndarray]:
        values = [ev.logp_and_grad(float(ai)) for ev, ai in zip(self.evidences, a)]
        return float(sum(v for v, _ in values)), np.array([g for _, g in values])

    def logp_tensor(self, a):
        from bayeslm.core.ops import VectorLogpOp

        return VectorLogpOp(self)(a)


#: the range of log a searched for a mode
MODE_GRID = (-9.0, 16.0)


def concentration_mode(evidence: OrderEvidence, prior_logp, grid: tuple[float, float] = MODE_GRID) -> float:
    """Mode of a under prior x evidence: a grid of 101 points over ``grid`` (log a), then
    golden-section refinement between the best point's neighbours; a mode at the grid's edge
    (or where it is flat) is that edge's point.

    ``prior_logp``: the prior's log density, numpy array of a in, array out.
    """
    from scipy.optimize import minimize_scalar

    def neg(log_a):
        a = np.exp(np.atleast_1d(log_a))
        return -(evidence.logp(a) + prior_logp(a) + np.log(a))

    points = np.linspace(*grid, 101)
    values = neg(points)
    at = int(np.argmin(values))
    if at in (0, points.size - 1) or not values[at] < min(values[at - 1], values[at + 1]):
        return float(np.exp(points[at]))  # at the edge, or flat there: no bracket
    res = minimize_scalar(lambda t: float(neg(t)[0]), bracket=(points[at - 1], points[at], points[at + 1]))
    return float(np.exp(res.x))


def fixed_base(backoff, k: int) -> np.ndarray:
    """The base m_uw = P_{k-1}(w | u') of order k (k >= 2) at every order-k n-gram (u, w) with c_uw > 0.

    ``backoff``: a :class:`~bayeslm.ngram.backoff.Backoff` at the lower orders' fixed concentrations.
    """
    oc = backoff.counts[k]
    parent = oc.context_parent[oc.ngram_context]
    return backoff.prob(backoff.ancestors(k - 1, parent), oc.ngram_token, k - 1)
