"""Credible intervals of posterior draws: the one default mass (``HDI_PROB``) and ArviZ's HDI (in numpy)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayeslm.exceptions import BayesLMError

__all__ = ["HDI_PROB", "hdi", "interval_summary"]

#: probability mass of every credible interval bayeslm reports unless asked otherwise (ArviZ's default)
HDI_PROB = 0.94


def _draws(x, sample_dims) -> np.ndarray:
    """The draws of ``x`` as a 1-d float array."""
    sample_dims = [sample_dims] if isinstance(sample_dims, str) else sample_dims
    if isinstance(x, xr.DataArray):
        extra = [d for d in x.dims if d not in sample_dims]
        if extra:
            raise BayesLMError(f"expected only sample dims {tuple(sample_dims)}, found also {extra}")
    values = np.asarray(x, dtype=float).ravel()
    if values.size == 0:
        raise BayesLMError("no draws given")
    if np.isnan(values).any():
        raise BayesLMError("draws contain NaN")
    return values


def hdi(x, *, hdi_prob: float = HDI_PROB, sample_dims=("chain", "draw")):
    """Highest-density interval of scalar draws: :func:`arviz.hdi`'s (its unimodal ``_hdi``) in numpy,
    so that scoring imports no ArviZ (``tests/stats/`` checks it against ArviZ).

    Parameters
    ----------
    x : xarray.DataArray or numpy.ndarray
        Draws: a DataArray whose dims are all in ``sample_dims``, or a numpy array
        (every element is a draw, e.g. shape (n_draws,) or (chain, draw)).
    hdi_prob : float
        Probability mass of the interval, in (0, 1).

    Returns
    -------
    tuple of float
        ``(low, high)``, in the units of ``x``.
    """
    if not 0 < hdi_prob < 1:
        raise BayesLMError(f"hdi_prob must be in (0, 1), not {hdi_prob!r}")
    draws = np.sort(_draws(x, sample_dims))
    inside = int(np.floor(hdi_prob * draws.size))  # ArviZ's ``_hdi``: the narrowest of the intervals holding
    widths = np.subtract(draws[inside:], draws[:draws.size - inside], dtype=np.float64)  # ``inside`` + 1 draws
    if widths.size == 0:
        raise BayesLMError(f"too few draws ({draws.size}) for a {hdi_prob:.0%} interval")
    start = int(np.argmin(widths))
    return float(draws[start]), float(draws[start + inside])


def interval_summary(x, *, hdi_prob: float = HDI_PROB, sample_dims=("chain", "draw")):
    """Posterior mean and HDI of scalar draws (see :func:`hdi` for ``x``).

    Returns
    -------
    dict
        ``{"mean", "hdi_low", "hdi_high", "hdi_prob"}`` as python floats.
    """
    low, high = hdi(x, hdi_prob=hdi_prob, sample_dims=sample_dims)
    mean = float(np.mean(_draws(x, sample_dims)))
    return {"mean": mean, "hdi_low": low, "hdi_high": high, "hdi_prob": float(hdi_prob)}
