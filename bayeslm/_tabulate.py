"""Chebyshev tables of smooth, expensive 1-D log densities, checked against the function.

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

__all__ = ["ChebyshevTable", "tabulate"]


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
