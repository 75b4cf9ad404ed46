"""Stacking weights of predictive distributions from their pointwise log densities (ArviZ).

The weights that maximise the summed log score of the weighted predictive on held-out
positions (Yao et al. 2018), computed by ``arviz.compare(method="stacking")`` on the
given pointwise values (no leave-one-out: the positions are held out already).
"""

from __future__ import annotations

import warnings

import numpy as np

from bayeslm.exceptions import ConfigError

__all__ = ["stacking_weights"]


def stacking_weights(log_density) -> np.ndarray:
    """Stacking weights, shape (model,), for ``log_density`` of shape (model, position), nats."""
    import arviz as az
    import xarray as xr
    from arviz.stats.stats_utils import ELPDData

    lp = np.asarray(log_density, dtype=float)
    if lp.ndim != 2 or lp.shape[0] < 2 or lp.shape[1] < 1:
        raise ConfigError(f"stacking needs log densities of shape (model >= 2, position >= 1), got {lp.shape}")
    if not np.all(np.isfinite(lp)):
        raise ConfigError("stacking needs finite log densities (a model gives probability 0 or NaN somewhere)")
    elpds = {}
    for k, values in enumerate(lp):
        pointwise = xr.DataArray(values, dims=["position"])
        elpds[str(k)] = ELPDData(
            data=[values.sum(), np.sqrt(values.size * values.var()), 0.0, 1, values.size, False, pointwise,
                  "log", None],
            index=["elpd_loo", "se", "p_loo", "n_samples", "n_data_points", "warning", "loo_i", "scale", "good_k"],
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ's note that the values were precomputed
        table = az.compare(elpds, method="stacking")
    return table["weight"].reindex([str(k) for k in range(lp.shape[0])]).to_numpy(dtype=float)
