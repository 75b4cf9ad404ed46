"""The fast mode of the Pitman-Yor LM (``inference="fast"``): one seating, then exact draws of (d, theta).

The observed customers are seated once, one at a time in random order, by the Chinese
restaurant rule (:meth:`SeatingState.initialise`, the Gibbs chains' start) with the
Kneser-Ney estimate of the discounts; given that seating each order's (d_k, theta_k) has a
two-dimensional posterior of its own, tabulated on a grid around its mode and drawn from
exactly (independent draws). Why this and not the expected table counts, and what it
costs: docs/pitman_yor.md ("The fast mode").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bayeslm.exceptions import BayesLMError
from bayeslm.ngram.special import lgamma_ratio

__all__ = ["OrderStatistics", "seating_statistics", "order_log_likelihood", "HyperPosterior", "prior_log_density"]

#: grid points per free coordinate (half of them in the first, coarse grid), and the half-width
#: of the coarse grid in sd of the Gaussian at the mode
GRID_POINTS = 40
GRID_HALF_WIDTH = 6.0
#: a grid is wide enough when its border is this far (in log density) below its peak (a
#: Gaussian's is 18 nats at 6 sd)
BORDER_DROP = 15.0
#: nats added to the largest corner value of a grid cell to bound the density inside it
ENVELOPE_MARGIN = 0.1
#: the most elements a batch of log likelihood terms holds at once (8 bytes each)
BATCH_ELEMENTS = 2_000_000


@dataclass
class OrderStatistics:
    """The seating of one order as distinct values and their multiplicities.

    ``sizes``: customers at a table, ``restaurant_tables`` and ``restaurant_customers``: totals
    of the restaurants that have customers; each with ``*_mult``, how many tables or
    restaurants have that value.
    """

    sizes: np.ndarray
    size_mult: np.ndarray
    restaurant_tables: np.ndarray
    tables_mult: np.ndarray
    restaurant_customers: np.ndarray
    customers_mult: np.ndarray


def seating_statistics(state) -> list[OrderStatistics]:
    """Per order, the statistics of the seating held by ``state`` (a :class:`SeatingState`)."""
    from bayeslm.ngram.pitman_yor import seating as S

    h = state.hier
    out = []
    for k in range(1, h.n + 1):
        lo, hi = int(h.po[k - 1]), int(h.po[k])
        size_counts = S.table_size_counts(lo, hi, state.nent, state.hsize, state.hcount, state.slot,
                                          int(state.cust[lo:hi].max()))
        sizes = np.flatnonzero(size_counts)
        C = state.ctx_cust[h.co[k - 1]:h.co[k]]
        T = state.ctx_tabs[h.co[k - 1]:h.co[k]]
        keep = C > 0
        t_values, t_mult = np.unique(T[keep], return_counts=True)
        c_values, c_mult = np.unique(C[keep], return_counts=True)
        out.append(OrderStatistics(sizes.astype(float), size_counts[sizes].astype(float), t_values.astype(float),
                                   t_mult.astype(float), c_values.astype(float), c_mult.astype(float)))
    return out


def order_log_likelihood(stats: OrderStatistics, d, theta, gradient: bool = False):
    """log p(seating of one order | d, theta), for arrays of (d, theta) of one shape.

        sum_u [ sum_{i=1}^{T_u - 1} log(theta + d i) - sum_{i=1}^{C_u - 1} log(theta + i) ]
        + sum_tables sum_{j=1}^{n - 1} log(j - d)

    (docs/pitman_yor.md), summed over distinct values: (T - 1) log d + lgamma ratio of
    theta / d + 1, lgamma ratios of theta + 1 and of 1 - d. With ``gradient`` also the
    derivatives by d and by theta (same shape). -inf outside d in (0, 1), theta > -d.
    """
    d, theta = np.broadcast_arrays(np.asarray(d, float), np.asarray(theta, float))
    shape = d.shape
    d, theta = d.ravel(), theta.ravel()
    value, g_d, g_t = np.zeros(d.size), np.zeros(d.size), np.zeros(d.size)
    ok = (d > 0) & (d < 1) & (theta > -d)
    longest = max(stats.sizes.size, stats.restaurant_tables.size, stats.restaurant_customers.size, 1)
    step = max(BATCH_ELEMENTS // longest, 1)
    for start in range(0, d.size, step):
        sl = slice(start, start + step)
        dd, tt = np.where(ok[sl], d[sl], 0.5)[:, None], np.where(ok[sl], theta[sl], 1.0)[:, None]
        T, C, n = stats.restaurant_tables, stats.restaurant_customers, stats.sizes
        ratio_t, dratio_t = lgamma_ratio(tt / dd + 1.0, T - 1.0)
        ratio_c, dratio_c = lgamma_ratio(tt + 1.0, C - 1.0)
        ratio_s, dratio_s = lgamma_ratio(1.0 - dd, n - 1.0)
        value[sl] = (((T - 1.0) * np.log(dd) + ratio_t) @ stats.tables_mult - ratio_c @ stats.customers_mult
                     + ratio_s @ stats.size_mult)
        if gradient:
            g_t[sl] = (dratio_t / dd) @ stats.tables_mult - dratio_c @ stats.customers_mult
            g_d[sl] = ((T - 1.0) / dd - tt * dratio_t / dd**2) @ stats.tables_mult - dratio_s @ stats.size_mult
    value = np.where(ok, value, -np.inf)
    if not gradient:
        return value.reshape(shape)
    return value.reshape(shape), np.where(ok, g_d, 0.0).reshape(shape), np.where(ok, g_t, 0.0).reshape(shape)


def prior_log_density(prior) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``values -> (log density, its derivative)`` of a :class:`bayeslm.core.priors.Prior`, elementwise.

    Compiled once with PyTensor from the PyMC distribution (imports PyMC).
    """
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    value = pt.dvector("value")
    with pm.Model():
        rv = prior.create_variable("x")
    logp = pm.logp(rv, value)
    fn = pytensor.function([value], [logp, pt.grad(logp.sum(), value)], mode="FAST_COMPILE")
    return lambda x: tuple(np.asarray(a, float) for a in fn(np.atleast_1d(np.asarray(x, float))))


class HyperPosterior:
    """The posterior of one order's (d_k, theta_k) given a seating, in the coordinates of the
    free ones: x = logit d (when d is free), y = log(theta + d) (when theta is free).

    ``log_prior_d`` and ``log_prior_s`` (from :func:`prior_log_density`) are the priors of d
    and of theta + d; a fixed value is a number in ``fixed_d`` / ``fixed_theta``.
    """

    def __init__(self, stats: OrderStatistics, log_prior_d, log_prior_s, fixed_d: float | None = None,
                 fixed_theta: float | None = None):
        self.stats, self.log_prior_d, self.log_prior_s = stats, log_prior_d, log_prior_s
        self.fixed_d, self.fixed_theta = fixed_d, fixed_theta
        self.free = (fixed_d is None) + (fixed_theta is None)

    def values(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(d, theta) at points z, shape (m, free)."""
        z = np.atleast_2d(z)
        if self.fixed_d is None:
            d = 1.0 / (1.0 + np.exp(-z[:, 0]))
        else:
            d = np.full(z.shape[0], self.fixed_d)
        theta = np.exp(z[:, -1]) - d if self.fixed_theta is None else np.full(z.shape[0], self.fixed_theta)
        return d, theta

    def coordinates(self, d: float, theta: float) -> np.ndarray:
        z = []
        if self.fixed_d is None:
            z.append(np.log(d / (1.0 - d)))
        if self.fixed_theta is None:
            z.append(np.log(theta + d))
        return np.array(z)

    def log_density(self, z: np.ndarray, gradient: bool = False):
        """Log posterior density at points z (m, free), with its gradient (m, free) if asked."""
        d, theta = self.values(z)
        value, g_d, g_t = order_log_likelihood(self.stats, d, theta, gradient=True)
        grads = []
        if self.fixed_d is None:
            prior, dprior = self.log_prior_d(d)
            jac = d * (1.0 - d)
            value = value + prior + np.log(jac)
            shift = g_t if self.fixed_theta is None else 0.0  # theta = s - d moves with d at fixed s
            grads.append((g_d - shift + dprior) * jac + (1.0 - 2.0 * d))
        if self.fixed_theta is None:
            s = theta + d
            prior, dprior = self.log_prior_s(s)
            value = value + prior + np.log(s)
            grads.append((g_t + dprior) * s + 1.0)
        value = np.where(np.isfinite(value), value, -np.inf)
        return (value, np.stack(grads, axis=1)) if gradient else value

    def mode(self, d0: float, theta0: float) -> tuple[np.ndarray, np.ndarray]:
        """The posterior mode in z, and the covariance of the Gaussian there (from the Hessian)."""
        from scipy.optimize import minimize

        def negative(z):
            value, grad = self.log_density(z[None, :], gradient=True)
            return (-value[0], -grad[0]) if np.isfinite(value[0]) else (np.inf, np.zeros(z.size))

        found = minimize(negative, self.coordinates(d0, theta0), jac=True, method="L-BFGS-B")
        z = found.x
        h = 1e-4
        hess = np.empty((z.size, z.size))
        for i in range(z.size):
            e = np.zeros(z.size)
            e[i] = h
            hess[i] = (negative(z + e)[1] - negative(z - e)[1]) / (2 * h)
        hess = 0.5 * (hess + hess.T)
        eig, vec = np.linalg.eigh(hess)
        cov = (vec / np.maximum(eig, 1e-12)) @ vec.T
        return z, cov

    def draw(self, n: int, rng: np.random.Generator, d0: float, theta0: float) -> tuple[np.ndarray, np.ndarray]:
        """n independent draws of (d, theta), by rejection from an envelope on a grid.

        In the axes of the Gaussian at the mode (unit: its sd), a coarse grid of +-6 is
        widened until its border lies 15 nats below the peak; a fine grid (40 points per
        coordinate) then spans the cells within 20 nats of the peak. On each fine cell the
        envelope is the largest log density at its corners plus 0.1 nats (over a cell of
        ~0.3 sd a smooth log density bends by ~0.01); a draw picks a cell by its envelope,
        a uniform point in it, and keeps it with probability density / envelope.
        """
        if self.free == 0:
            return np.full(n, self.fixed_d), np.full(n, self.fixed_theta)
        center, cov = self.mode(d0, theta0)
        eig, vec = np.linalg.eigh(cov)
        scale = vec * np.sqrt(np.maximum(eig, 1e-300))
        to_z = lambda u: center + u @ scale.T
        half = GRID_HALF_WIDTH
        for _ in range(8):
            u, axes = _grid([(-half, half)] * self.free, GRID_POINTS // 2)
            logp = self.log_density(to_z(u))
            border = np.any(np.abs(u) == half, axis=1)
            if np.max(logp[border], initial=-np.inf) < np.max(logp) - BORDER_DROP:
                break
            half *= 2.0
        if not np.isfinite(np.max(logp)):
            raise BayesLMError("the posterior of (d, theta) given the seating has no finite density near its mode "
                               f"(found at d = {self.values(center)[0][0]:.4g}); fix the discount or strength")
        step = axes[0][1] - axes[0][0]
        inside = u[logp > np.max(logp) - BORDER_DROP - 5.0]
        u, axes = _grid(list(zip(inside.min(axis=0) - step, inside.max(axis=0) + step)), GRID_POINTS)
        corners = self.log_density(to_z(u)).reshape((GRID_POINTS,) * self.free)
        envelope = np.full((GRID_POINTS - 1,) * self.free, -np.inf)
        for offset in itertools.product((0, 1), repeat=self.free):
            envelope = np.maximum(envelope, corners[tuple(slice(o, GRID_POINTS - 1 + o) for o in offset)])
        envelope = envelope.ravel() + ENVELOPE_MARGIN
        p = np.exp(envelope - envelope.max())
        low = np.stack(np.meshgrid(*[a[:-1] for a in axes], indexing="ij"), axis=-1).reshape(-1, self.free)
        width = np.array([a[1] - a[0] for a in axes])
        kept: list[np.ndarray] = []
        missing = n
        while missing > 0:
            m = int(1.25 * missing) + 8  # most candidates are kept: about one batch
            cell = rng.choice(p.size, size=m, p=p / p.sum())
            u_try = low[cell] + rng.uniform(size=(m, self.free)) * width
            accept = np.log(rng.uniform(size=m)) < self.log_density(to_z(u_try)) - envelope[cell]
            kept.append(u_try[accept])
            missing -= int(accept.sum())
        return self.values(to_z(np.concatenate(kept)[:n]))


def _grid(bounds: list[tuple[float, float]], points: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The points of a regular grid over ``bounds`` (one (low, high) per coordinate), shape
    (points ** len(bounds), len(bounds)), and its axes."""
    axes = [np.linspace(lo, hi, points) for lo, hi in bounds]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack(mesh, axis=-1).reshape(-1, len(bounds)), axes
