"""Chebyshev tables of smooth, expensive 1-D and 2-D log densities, checked against the function.

NUTS evaluates a hyperparameter's log evidence thousands of times, always near its
posterior mode, where the function is smooth and nearly quadratic. A Chebyshev
interpolant of degree ~20 on an interval of +-``width`` posterior standard deviations
reproduces it (value and derivative) to round-off, for the cost of ``degree + 1`` exact
evaluations once; outside the interval the caller evaluates the function itself. A table
is only returned after it was checked at points between the nodes; otherwise ``None``
(callers then always use the exact function).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.polynomial import chebyshev as C

__all__ = ["ChebyshevTable", "ChebyshevTable2D", "tabulate", "tabulate2d"]


class ChebyshevTable:
    """f(t) and f'(t) on ``[lo, hi]`` from Chebyshev coefficients (``coef``, ``dcoef``)."""

    def __init__(self, lo: float, hi: float, coef: np.ndarray):
        self.lo, self.hi = float(lo), float(hi)
        self.coef = np.asarray(coef, dtype=float)
        self.dcoef = C.chebder(self.coef) * (2.0 / (self.hi - self.lo))

    def covers(self, t: float) -> bool:
        return self.lo <= t <= self.hi

    def __call__(self, t: float) -> tuple[float, float]:
        x = (2.0 * t - self.lo - self.hi) / (self.hi - self.lo)
        return float(C.chebval(x, self.coef)), float(C.chebval(x, self.dcoef))


def tabulate(fn: Callable[[float], tuple[float, float]], center: float, *, width: float = 40.0,
             max_half: float = 2.0, degree: int = 20, atol: float = 1e-6,
             rtol: float = 1e-9) -> ChebyshevTable | None:
    """A checked Chebyshev table of ``fn`` (``t -> (f(t), f'(t))``) around ``center``.

    The interval is ``center +- min(width * s, max_half)`` with ``s = 1 / sqrt(-f''(center))``
    (the posterior standard deviation in t if f is the log density; ``f''`` by a central
    difference of ``f'``). The table is accepted if at 2 * degree points between the nodes
    both f and f' agree with ``fn`` within ``atol + rtol * |value|``. Returns ``None`` if f
    is not concave at ``center``, not finite on the interval, or the check fails.
    """
    h = 1e-4
    curvature = (fn(center + h)[1] - fn(center - h)[1]) / (2 * h)
    if not np.isfinite(curvature) or curvature >= 0:
        return None
    half = min(width / np.sqrt(-curvature), max_half)
    lo, hi = center - half, center + half
    nodes = C.chebpts1(degree + 1)
    values = np.array([fn(lo + (x + 1) * half)[0] for x in nodes])
    if not np.isfinite(values).all():
        return None
    table = ChebyshevTable(lo, hi, C.chebfit(nodes, values, degree))
    for t in np.linspace(lo, hi, 2 * degree + 3)[1:-1]:
        value, deriv = fn(float(t))
        got_value, got_deriv = table(float(t))
        if not (abs(got_value - value) <= atol + rtol * abs(value) and abs(got_deriv - deriv) <= atol + rtol * abs(deriv)):
            return None
    return table


class ChebyshevTable2D:
    """f(x, y) and its gradient on the box ``[lo, hi]`` (2-vectors) from a coefficient matrix."""

    def __init__(self, lo, hi, coef: np.ndarray):
        self.lo, self.hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        self.coef = np.asarray(coef, dtype=float)
        scale = 2.0 / (self.hi - self.lo)
        self.dx = C.chebder(self.coef, axis=0) * scale[0]
        self.dy = C.chebder(self.coef, axis=1) * scale[1]

    def covers(self, x: float, y: float) -> bool:
        return bool(self.lo[0] <= x <= self.hi[0] and self.lo[1] <= y <= self.hi[1])

    def __call__(self, x: float, y: float) -> tuple[float, float, float]:
        u, v = (2.0 * np.array([x, y]) - self.lo - self.hi) / (self.hi - self.lo)
        n = np.arange(self.coef.shape[0])
        tu, tv = np.cos(n * np.arccos(np.clip(u, -1.0, 1.0))), np.cos(n * np.arccos(np.clip(v, -1.0, 1.0)))
        return (float(tu @ self.coef @ tv), float(tu[:-1] @ self.dx @ tv), float(tu @ self.dy @ tv[:-1]))


def tabulate2d(fn: Callable[[float, float], tuple[float, float, float]], center, *, width: float = 40.0,
               max_half: float = 2.0, degree: int = 20, atol: float = 1e-6, rtol: float = 1e-9,
               seed: int = 0) -> ChebyshevTable2D | None:
    """A checked tensor-Chebyshev table of ``fn`` (``(x, y) -> (f, df/dx, df/dy)``) around ``center``.

    The box is ``center +- min(width * s, max_half)`` per coordinate, ``s`` the marginal
    standard deviations of the Gaussian with precision ``-H`` (``H``, the Hessian at
    ``center``, from central differences of the gradient); ``(degree + 1)^2`` exact
    evaluations. Accepted if f and its gradient agree with ``fn`` within
    ``atol + rtol * |value|`` at ``4 * degree`` random points of the box (fixed ``seed``);
    otherwise, or if ``H`` is not negative definite, ``None``. The table keeps ``center``
    and ``cov = (-H)^-1`` (a sampler's starting point and mass matrix).
    """
    center = np.asarray(center, dtype=float)
    h = 1e-5
    hess = np.empty((2, 2))
    for i in range(2):
        step = np.zeros(2)
        step[i] = h
        plus, minus = fn(*(center + step)), fn(*(center - step))
        hess[:, i] = (np.array(plus[1:]) - np.array(minus[1:])) / (2 * h)
    hess = (hess + hess.T) / 2
    if not np.isfinite(hess).all() or np.any(np.linalg.eigvalsh(hess) >= 0):
        return None
    sd = np.sqrt(np.diag(np.linalg.inv(-hess)))
    half = np.minimum(width * sd, max_half)
    lo, hi = center - half, center + half
    nodes = C.chebpts1(degree + 1)
    xs, ys = lo[0] + (nodes + 1) * half[0], lo[1] + (nodes + 1) * half[1]
    values = np.array([[fn(float(x), float(y))[0] for y in ys] for x in xs])
    if not np.isfinite(values).all():
        return None
    inv = np.linalg.inv(C.chebvander(nodes, degree))  # values = V coef V^T on the node grid
    table = ChebyshevTable2D(lo, hi, inv @ values @ inv.T)
    table.center, table.cov = center, np.linalg.inv(-hess)  # the Gaussian at the mode, for samplers
    for x, y in np.random.default_rng(seed).uniform(lo, hi, size=(4 * degree, 2)):
        exact = fn(float(x), float(y))
        got = table(float(x), float(y))
        if not all(abs(g - e) <= atol + rtol * abs(e) for g, e in zip(got, exact)):
            return None
    return table
