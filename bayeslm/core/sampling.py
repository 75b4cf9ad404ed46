"""What every fit does before PyMC runs: PyTensor's BLAS resolved, ``pm.sample``'s keywords, the cores.

A family's ``_fit`` receives its call's sampler settings (configuration merged with the
``fit`` keywords) and passes :func:`pm_sample_kwargs` of them to ``pm.sample``, adding
only what is its own (``step``, ``initvals``). Fits call :func:`prepare_pytensor` first.
"""

from __future__ import annotations

import logging
import os
import warnings

__all__ = ["available_cores", "pm_sample_kwargs", "prepare_pytensor"]

_log = logging.getLogger("bayeslm")
_NO_BLAS = "PyTensor could not link to a BLAS"


def prepare_pytensor() -> str:
    """Resolve PyTensor's BLAS link flags once per process, without its pip-install warning.

    Without a system BLAS (a pip-only install, no root for ``libopenblas-dev``) PyTensor
    warns that BLAS operations "will be severely degraded" and leaves its matrix products to
    numpy, whose wheels carry their own OpenBLAS. For bayeslm's models that costs nothing
    measurable (``bench/blas_fallback.py``, whole processes: 0.84x-1.01x the time with a
    system BLAS), so the warning is replaced by one INFO log line. Returns the flags ("" if
    none was found).
    """
    import pytensor

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f"{_NO_BLAS}.*", category=UserWarning)
        flags = pytensor.config.blas__ldflags
    if not flags:
        _log.info("no system BLAS for PyTensor's C code: its matrix products run in numpy (same speed for "
                  "bayeslm's models; bench/blas_fallback.py)")
    return flags

#: settings that are not passed to ``pm.sample`` as they are
_TRANSLATED = ("random_seed", "nuts_sampler", "progressbar", "cores")


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pm_sample_kwargs(sampler: dict, *, nuts: bool = True) -> dict:
    """Keyword arguments of ``pm.sample`` for the sampler settings ``sampler``.

    ``draws``, ``tune``, ``chains`` (and ``target_accept``) pass as they are;
    ``cores`` defaults to one per available CPU up to ``chains`` (PyMC assumes half the
    CPUs are hyper-threads and would sample 2 chains one after the other on 2 cores);
    convergence checks are left to :mod:`bayeslm.stats.diagnostics`.

    Parameters
    ----------
    sampler : dict
        The settings of this fit (:attr:`BayesianLM.default_sampler_config` keys).
    nuts : bool
        False when the family passes its own step methods: ``target_accept`` and
        ``nuts_sampler`` belong to those steps and are left out.
    """
    kwargs = {k: v for k, v in sampler.items() if k not in _TRANSLATED}
    if not nuts:
        kwargs.pop("target_accept", None)
    else:
        kwargs["nuts_sampler"] = sampler.get("nuts_sampler", "pymc")
    kwargs["random_seed"] = sampler.get("random_seed")
    kwargs["progressbar"] = bool(sampler.get("progressbar", True))
    kwargs["cores"] = sampler.get("cores") or min(int(sampler.get("chains", 2)), available_cores())
    kwargs["compute_convergence_checks"] = False
    return kwargs
