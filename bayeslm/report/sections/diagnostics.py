"""The diagnostics section: can the posterior be trusted?

MCMC fits get R-hat, ESS, divergences, tree-depth hits and E-BFMI per chain
(:mod:`bayeslm.stats.diagnostics`); fits without chains get their own checks (ELBO trace,
PSIS Pareto k) and a message saying what the missing chain diagnostics mean. The variables
checked are the model's ``diagnostic_var_names``
(:func:`bayeslm.stats.diagnostics.variables_to_check`).
"""

from __future__ import annotations

import math

import numpy as np

from bayeslm.stats import diagnostics as dg

__all__ = ["diagnostics_section"]

LN2 = math.log(2.0)

_SUMMARY_COLUMNS = ("mean", "sd", "hdi_low", "hdi_high", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat")
_VERDICT_COLUMNS = ("r_hat_ok", "ess_bulk_ok", "ess_tail_ok", "ok")
_METHOD_NAMES = {"advi": "variational inference (ADVI)", "laplace": "a Laplace approximation"}
_NO_SAMPLER_STATISTICS = (
    "No MCMC sampler statistics were recorded (no divergences or energy in sample_stats), so R-hat, "
    "ESS, divergences and E-BFMI cannot show whether the posterior was explored. Treat the intervals "
    "below as unchecked."
)
_APPROXIMATION = (
    "This model was fitted by {what}, not MCMC. There are no Markov chains, so R-hat, ESS, "
    "divergences, tree depth and E-BFMI do not exist, and nothing here shows that independent chains "
    "agree. An approximation can be confidently wrong: ADVI tends to understate posterior spread, a "
    "Laplace approximation assumes a Gaussian around the mode. Its own checks are the ELBO trace (did "
    "the optimisation converge?) and, where importance sampling applies, PSIS Pareto k (k <= 0.7: "
    "close enough to the posterior to correct by importance sampling)."
)


def diagnostics_section(idata, var_names: list[str] | None, hdi_prob: float) -> dict:
    """Every check of the fit as plain data; ``ok`` when no check failed.

    ``var_names``: the model's ``diagnostic_var_names`` (None: every small variable).
    """
    method = dg.inference_method(idata)
    names = dg.variables_to_check(idata, var_names)
    out = {
        "method": method,
        "has_chains": method in dg.CHAIN_METHODS,
        "thresholds": {"r_hat_max": dg.RHAT_MAX, "ess_min": dg.ESS_MIN, "bfmi_min": dg.BFMI_MIN,
                       "pareto_k_max": dg.PARETO_K_MAX, "divergences_max": 0},
        "hdi_prob": hdi_prob,
        "var_names": names,
        "parameters": [],
        "chains": [],
        "divergences": None,
        "max_treedepth_hits": None,
        "approximation": None,
        "message": None,
        "problems": [],
        "warnings": [],
    }
    chains = method in dg.CHAIN_METHODS
    if names:
        table = dg.parameter_table(idata, var_names=names, hdi_prob=hdi_prob)
        out["parameters"] = _parameter_rows(table, chains, out["problems"])
    if chains:
        _check_chains(idata, out)
        out["message"] = idata["posterior"].attrs.get("inference_note")  # the family's word on its sampler
    else:
        _check_approximation(idata, method, out)
    out["ok"] = not out["problems"]
    return out


def _parameter_rows(table, chains: bool, problems: list) -> list[dict]:
    """One row per scalar parameter; verdicts only for draws in chains (None without)."""
    rows = []
    for name, row in table.iterrows():
        entry = {"name": str(name)}
        for col in _SUMMARY_COLUMNS:
            entry[col] = float(row[col])
        if chains:
            for col in _VERDICT_COLUMNS:
                entry[col] = bool(row[col])
            entry["problems"] = row["problems"]
            if not row["ok"]:
                problems.append(f"{name}: {row['problems']}")
        else:
            entry.update({"r_hat_ok": None, "ess_bulk_ok": None, "ess_tail_ok": None, "ok": None, "problems": ""})
        rows.append(entry)
    return rows


def _check_chains(idata, out: dict) -> None:
    """Per-chain sampler statistics into ``out``: divergences, tree-depth hits, E-BFMI."""
    chains = dg.chain_table(idata)
    for chain, row in chains.iterrows():
        out["chains"].append({"chain": int(chain), **{k: row[k] for k in chains.columns}})
    if "divergences" in chains:
        out["divergences"] = int(chains["divergences"].sum())
        if out["divergences"] > 0:
            out["problems"].append(f"{out['divergences']} divergent transitions (after tuning)")
    if "max_treedepth_hits" in chains:
        out["max_treedepth_hits"] = int(chains["max_treedepth_hits"].sum())
        if out["max_treedepth_hits"] > 0:
            out["warnings"].append(f"{out['max_treedepth_hits']} transitions hit the maximum tree depth (slow mixing)")
    if "bfmi" in chains:
        for chain, row in chains.iterrows():
            if not row["bfmi_ok"]:
                out["problems"].append(f"chain {chain}: E-BFMI {row['bfmi']:.2f} < {dg.BFMI_MIN}")


def _check_approximation(idata, method: str, out: dict) -> None:
    """A fit without chains: ELBO (in bits) and Pareto k into ``out``, and what the missing diagnostics mean."""
    approx = dg.approximation_checks(idata)
    elbo, final = approx["elbo"], approx["elbo_final"]
    out["approximation"] = {
        "elbo_bits": None if elbo is None else np.asarray(elbo, dtype=float) / LN2,
        "elbo_final_bits": None if final is None else final / LN2,
        **{k: approx[k] for k in ("elbo_relative_change_last_10pct", "pareto_k", "pareto_k_ok")},
    }
    if approx["pareto_k_ok"] is False:
        out["problems"].append(f"Pareto k {approx['pareto_k']:.2f} > {dg.PARETO_K_MAX}: the approximation is far from the posterior")
    what = _METHOD_NAMES.get(method)
    out["message"] = _NO_SAMPLER_STATISTICS if what is None else _APPROXIMATION.format(what=what)
