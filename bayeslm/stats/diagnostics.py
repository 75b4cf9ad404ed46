"""Posterior diagnostics as pandas tables (ArviZ underneath).

Thresholds follow current practice (Vehtari et al. 2021): R-hat <= 1.01 and bulk and
tail ESS >= 400 for every parameter; no divergent transitions; E-BFMI >= 0.3 per chain
(Betancourt 2016). Fits without MCMC (ADVI, Laplace) are checked by their ELBO trace and,
where importance sampling applies, by PSIS Pareto k <= 0.7 (Vehtari et al. 2024).

Where a non-MCMC family puts its checks (the contract :func:`approximation_checks` reads):
``posterior.attrs["inference_method"]`` names the method (``"advi"``, ``"laplace"``, ...);
the ELBO per iteration is a variable ``elbo`` (one dim, not ``chain``/``draw``) in an
``approximation`` group or in ``sample_stats``; PSIS Pareto k is a variable or attr
``pareto_k`` in the same places.

Stats only: nothing here imports matplotlib.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayeslm.stats.intervals import HDI_PROB

__all__ = [
    "RHAT_MAX", "ESS_MIN", "BFMI_MIN", "PARETO_K_MAX", "summary", "sampler_problems",
    "variables_to_check", "hyperparameter_names", "parameter_table", "chain_table", "inference_method", "CHAIN_METHODS",
    "approximation_checks",
]

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3
PARETO_K_MAX = 0.7
#: methods whose draws come in chains, so that R-hat and ESS apply: NUTS ("mcmc"), Gibbs sweeps
#: with slice steps ("gibbs"), independent exact draws given a fixed state ("exact")
CHAIN_METHODS = ("mcmc", "gibbs", "exact")
_MAX_HYPER_SIZE = 64  # posterior variables with more elements are parameters, not hyperparameters


def summary(idata, var_names=None, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """ArviZ's summary plus an ``ok`` column checking R-hat and bulk / tail ESS."""
    import arviz as az

    table = az.summary(idata, var_names=var_names, hdi_prob=hdi_prob)
    table["ok"] = (table["r_hat"] <= RHAT_MAX) & (table["ess_bulk"] >= ESS_MIN) & (table["ess_tail"] >= ESS_MIN)
    return table


def sampler_problems(idata) -> dict:
    """Divergences, tree-depth hits and E-BFMI per chain, where the sampler recorded them."""
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
        import arviz as az

        out["bfmi"] = [float(v) for v in np.atleast_1d(az.bfmi(idata))]
    return out


def hyperparameter_names(idata, max_size: int = _MAX_HYPER_SIZE) -> list[str]:
    """Posterior variables with at most ``max_size`` elements per draw (the ones worth a table row).

    A Dirichlet LM has one ``concentration`` per order; a Bayesian last layer would also
    hold thousands of output weights, which are summarised elsewhere, not row by row.
    """
    post = idata["posterior"]
    names = []
    for name, da in post.data_vars.items():
        size = int(np.prod([n for d, n in da.sizes.items() if d not in ("chain", "draw")], dtype=np.int64))
        if size <= max_size:
            names.append(str(name))
    return names


def variables_to_check(idata, var_names: list[str] | None) -> list[str]:
    """The posterior variables that get R-hat / ESS rows: a model's ``diagnostic_var_names``.

    None (the protocol's default) means every variable small enough for a row
    (:func:`hyperparameter_names`); an empty list means none (independent draws).
    """
    return hyperparameter_names(idata) if var_names is None else [v for v in var_names if v in idata["posterior"]]


def parameter_table(
    idata, *, var_names=None, hdi_prob: float = HDI_PROB, rhat_max: float = RHAT_MAX, ess_min: float = ESS_MIN,
) -> pd.DataFrame:
    """One row per scalar parameter: ArviZ's summary (unrounded) and pass/fail flags.

    Columns: ``mean``, ``sd``, ``hdi_low``, ``hdi_high``, ``mcse_mean``, ``mcse_sd``,
    ``ess_bulk``, ``ess_tail``, ``r_hat``; ``r_hat_ok`` (R-hat <= ``rhat_max``; a missing
    R-hat, as with one chain, fails), ``ess_bulk_ok``, ``ess_tail_ok`` (>= ``ess_min``),
    ``ok`` (all three) and ``problems`` (a short text naming what failed, "" if none).
    """
    import arviz as az

    if var_names is None:
        var_names = hyperparameter_names(idata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant or single chains: NaN R-hat, handled below
        table = az.summary(idata, var_names=list(var_names), hdi_prob=hdi_prob, kind="all", round_to="none")
    low, high = [c for c in table.columns if c.startswith("hdi_")]
    table = table.rename(columns={low: "hdi_low", high: "hdi_high"})
    table["r_hat_ok"] = table["r_hat"] <= rhat_max  # NaN compares False
    table["ess_bulk_ok"] = table["ess_bulk"] >= ess_min
    table["ess_tail_ok"] = table["ess_tail"] >= ess_min
    table["ok"] = table["r_hat_ok"] & table["ess_bulk_ok"] & table["ess_tail_ok"]
    problems = []
    for row in table.itertuples():
        found = []
        if not row.r_hat_ok:
            found.append(f"R-hat {row.r_hat:.4f} > {rhat_max}" if np.isfinite(row.r_hat) else "R-hat not computable (needs 2+ chains)")
        if not row.ess_bulk_ok:
            found.append(f"bulk ESS {row.ess_bulk:.0f} < {ess_min}")
        if not row.ess_tail_ok:
            found.append(f"tail ESS {row.ess_tail:.0f} < {ess_min}")
        problems.append("; ".join(found))
    table["problems"] = problems
    return table


def chain_table(idata, *, bfmi_min: float = BFMI_MIN) -> pd.DataFrame:
    """Sampler statistics per chain: ``draws``, ``divergences``, ``max_treedepth_hits``, ``bfmi``, ``bfmi_ok``.

    Columns the sampler did not record are absent (an empty frame without MCMC).
    """
    import arviz as az

    if "sample_stats" not in idata.groups():
        return pd.DataFrame()
    stats = idata["sample_stats"]
    if "chain" not in stats.dims:
        return pd.DataFrame()
    frame = pd.DataFrame(index=pd.Index(stats["chain"].values, name="chain"))
    frame["draws"] = int(stats.sizes["draw"])
    if "diverging" in stats:
        frame["divergences"] = stats["diverging"].sum("draw").values.astype(int)
    if "reached_max_treedepth" in stats:
        frame["max_treedepth_hits"] = stats["reached_max_treedepth"].sum("draw").values.astype(int)
    if "energy" in stats:
        frame["bfmi"] = np.atleast_1d(az.bfmi(idata)).astype(float)
        frame["bfmi_ok"] = frame["bfmi"] >= bfmi_min
    return frame


def inference_method(idata) -> str:
    """``"mcmc"`` when the sampler recorded divergences or energy, else the posterior's
    ``inference_method`` attr (e.g. ``"advi"``, ``"laplace"``), else ``"unknown"``."""
    stats = idata["sample_stats"] if "sample_stats" in idata.groups() else None
    if stats is not None and ("diverging" in stats or "energy" in stats):
        return "mcmc"
    return str(idata["posterior"].attrs.get("inference_method", "unknown"))


def approximation_checks(idata, *, pareto_k_max: float = PARETO_K_MAX) -> dict:
    """The checks of a fit without MCMC: ELBO trace and PSIS Pareto k, where recorded.

    Returns ``{"elbo": array or None, "elbo_final": float or None,
    "elbo_relative_change_last_10pct": float or None, "pareto_k": float or None,
    "pareto_k_ok": bool or None}``. The relative change compares the mean ELBO of the last
    tenth of the iterations with the tenth before it (near 0: converged).
    """
    def find(name):
        for group in ("approximation", "sample_stats"):
            if group in idata.groups():
                ds = idata[group]
                if name in ds:
                    return np.asarray(ds[name].values, dtype=float).ravel()
                if name in ds.attrs:
                    return np.atleast_1d(np.asarray(ds.attrs[name], dtype=float)).ravel()
        if name in idata["posterior"].attrs:
            return np.atleast_1d(np.asarray(idata["posterior"].attrs[name], dtype=float)).ravel()
        return None

    elbo = find("elbo")
    out = {"elbo": elbo, "elbo_final": None, "elbo_relative_change_last_10pct": None, "pareto_k": None, "pareto_k_ok": None}
    if elbo is not None and elbo.size:
        out["elbo_final"] = float(elbo[-1])
        tenth = max(elbo.size // 10, 1)
        if elbo.size >= 2 * tenth:
            last, before = elbo[-tenth:].mean(), elbo[-2 * tenth : -tenth].mean()
            out["elbo_relative_change_last_10pct"] = float(abs(last - before) / max(abs(before), 1e-300))
    k = find("pareto_k")
    if k is not None and k.size:
        out["pareto_k"] = float(np.max(k))
        out["pareto_k_ok"] = bool(out["pareto_k"] <= pareto_k_max)
    return out
