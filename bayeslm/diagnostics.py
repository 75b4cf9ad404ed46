"""Posterior diagnostics as pandas tables (ArviZ underneath).

Thresholds follow current practice (Vehtari et al. 2021): R-hat <= 1.01 and bulk and
tail ESS >= 400 for every parameter; no divergent transitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RHAT_MAX", "ESS_MIN", "summary", "sampler_problems"]

RHAT_MAX = 1.01
ESS_MIN = 400


def summary(idata, var_names=None, hdi_prob: float = 0.94) -> pd.DataFrame:
    """ArviZ's summary plus an ``ok`` column checking R-hat and bulk / tail ESS."""
    import arviz as az

    table = az.summary(idata, var_names=var_names, hdi_prob=hdi_prob)
    table["ok"] = (table["r_hat"] <= RHAT_MAX) & (table["ess_bulk"] >= ESS_MIN) & (table["ess_tail"] >= ESS_MIN)
    return table


def sampler_problems(idata) -> dict:
    """Divergences, tree-depth hits and E-BFMI per chain, where the sampler recorded them."""
    import arviz as az

    stats = idata["sample_stats"] if "sample_stats" in idata.groups() else None
    out: dict = {}
    if stats is None:
        return out
    if "diverging" in stats:
        out["divergences"] = int(stats["diverging"].sum())
        out["divergences_per_chain"] = [int(v) for v in stats["diverging"].sum("draw").values]
    if "reached_max_treedepth" in stats:
        out["max_treedepth_hits"] = int(stats["reached_max_treedepth"].sum())
    if "energy" in stats:
        out["bfmi"] = [float(v) for v in np.atleast_1d(az.bfmi(idata))]
    return out
