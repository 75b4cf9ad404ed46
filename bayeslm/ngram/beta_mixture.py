"""Quantiles and the highest-density interval of an equal-weight mixture of Beta distributions.

The posterior of one next-token probability p(w | u) is, given a posterior draw, the Beta
marginal of a Dirichlet; over draws it is a mixture of those Betas. ``NgramLM.prob``
reports its HDI.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import betainc, betaincinv

from bayeslm.exceptions import BayesLMError

__all__ = ["beta_mixture_cdf", "beta_mixture_quantile", "beta_mixture_hdi"]

_TINY = np.finfo(float).tiny


def _parameters(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.atleast_1d(np.asarray(a, dtype=float))
    b = np.atleast_1d(np.asarray(b, dtype=float))
    if a.shape != b.shape or a.size == 0 or np.any(a < 0) or np.any(b < 0) or not np.all(np.isfinite(a + b)):
        raise BayesLMError("a Beta mixture needs equal-length arrays of finite parameters >= 0")
    # a parameter of 0 is a point mass at an end of [0, 1]: its limit, a Beta with a tiny parameter
    return np.maximum(a, _TINY), np.maximum(b, _TINY)


def beta_mixture_cdf(x: float, a, b) -> float:
    """P(X <= x) for X an equal-weight mixture of Beta(a[i], b[i])."""
    a, b = _parameters(a, b)
    return float(betainc(a, b, min(max(float(x), 0.0), 1.0)).mean())


def beta_mixture_quantile(q: float, a, b) -> float:
    """The q-quantile of an equal-weight mixture of Beta(a[i], b[i]) (0 <= q <= 1).

    It lies between the smallest and the largest component quantile; inside that bracket
    the mixture CDF is solved for q in log x (probabilities of rare tokens are 1e-9 and
    smaller, where a linear bracket on [0, 1] converges slowly or not at all).
    """
    a, b = _parameters(a, b)
    q = float(q)
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    own = betaincinv(a, b, q)
    low, high = max(float(own.min()), _TINY), max(float(own.max()), _TINY)
    gap = lambda log_x: betainc(a, b, np.exp(log_x)).mean() - q
    if high <= low or gap(np.log(low)) >= 0.0:  # one point, or point masses at 0 hold q already
        return low if low > _TINY else 0.0
    if gap(np.log(high)) <= 0.0:  # the bracket's end to round-off
        return high
    return float(np.exp(brentq(gap, np.log(low), np.log(high), xtol=1e-14, rtol=1e-13, maxiter=500)))


def beta_mixture_hdi(a, b, hdi_prob: float) -> tuple[float, float]:
    """Highest-density interval of mass ``hdi_prob`` of an equal-weight mixture of Betas.

    For a unimodal mixture the HDI is the shortest interval holding that mass: among the
    intervals ``[Q(t), Q(t + hdi_prob)]`` (``Q`` the quantile function, ``t`` the mass
    below) the one of least width, found by minimising the width over ``t`` in
    ``[0, 1 - hdi_prob]``. A density that falls from 0 (J-shaped, e.g. a rare token's
    Beta with ``a < 1``) puts it at ``[0, Q(hdi_prob)]``; one that rises to 1 at
    ``[Q(1 - hdi_prob), 1]``. Both ends are compared with the interior optimum.

    Parameters
    ----------
    a, b : array_like, shape (components,)
        Beta parameters of the components (>= 0; 0 is a point mass at that end).
    hdi_prob : float
        Mass of the interval, in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
    """
    if not 0.0 < float(hdi_prob) < 1.0:
        raise BayesLMError(f"hdi_prob must be in (0, 1), not {hdi_prob!r}")
    mass = float(hdi_prob)
    a, b = _parameters(a, b)
    interval = lambda t: (beta_mixture_quantile(t, a, b), beta_mixture_quantile(t + mass, a, b))
    width = lambda t: (lambda lo_hi: lo_hi[1] - lo_hi[0])(interval(t))
    slack = 1.0 - mass
    found = minimize_scalar(width, bounds=(0.0, slack), method="bounded", options={"xatol": 1e-10 * slack})
    candidates = [interval(0.0), interval(float(found.x)), interval(slack)]
    return min(candidates, key=lambda lo_hi: lo_hi[1] - lo_hi[0])
