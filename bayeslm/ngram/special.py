"""Differences of log-gamma functions without cancellation, for the n-gram evidences.

``lgamma(x + n) - lgamma(x)`` appears in the Dirichlet-multinomial evidence of the
Dirichlet LM and in the seating likelihood of the Pitman-Yor LM; both need it, with its
derivative, for concentrations from 1e-3 to beyond 1e20.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

__all__ = ["lgamma_ratio"]

#: lgamma differences lose digits as x grows; from here on Stirling's series is exact to round-off
_STIRLING_FROM = 100.0


def lgamma_ratio(x, n) -> tuple[np.ndarray, np.ndarray]:
    """``lgamma(x + n) - lgamma(x)`` and its derivative ``psi(x + n) - psi(x)`` (x > 0, n > 0).

    For large ``x`` the plain differences cancel catastrophically (``lgamma(1e20)`` is
    4.5e21, so a difference of a few thousand is lost entirely, and the evidence of a large
    concentration came out as arbitrary positive values that NUTS then wandered into);
    there the difference of Stirling's series is used, written without cancellation.
    Shapes broadcast; floats out.
    """
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    big = x >= _STIRLING_FROM
    if not big.any():
        return gammaln(x + n) - gammaln(x), digamma(x + n) - digamma(x)
    if big.all():
        return _stirling_ratio(x, n)
    x, n = np.broadcast_arrays(x, n)
    big = np.broadcast_to(big, x.shape)
    value, deriv = np.empty(x.shape), np.empty(x.shape)
    xs, ns = x[~big], n[~big]
    value[~big] = gammaln(xs + ns) - gammaln(xs)
    deriv[~big] = digamma(xs + ns) - digamma(xs)
    value[big], deriv[big] = _stirling_ratio(x[big], n[big])
    return value, deriv


def _stirling_ratio(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lgamma_ratio` for x >= 100 from Stirling's series (terms to z^-5 / z^-6)."""
    y = x + n
    r = np.log1p(n / x)
    wx, wy = 1.0 / x, 1.0 / y
    # Stirling remainders in w = 1 / z: of lgamma, and of psi beside log z
    s = lambda w: w * (1.0 / 12 - w**2 * (1.0 / 360 - w**2 / 1260))
    t = lambda w: -w / 2 - w**2 * (1.0 / 12 - w**2 * (1.0 / 120 - w**2 / 252))
    return (x - 0.5) * r + n * np.log(y) - n + (s(wy) - s(wx)), r + (t(wy) - t(wx))
