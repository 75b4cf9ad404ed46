"""What every fit does before PyMC runs (bayeslm.core.sampling): keywords, cores, PyTensor's BLAS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from bayeslm.core.sampling import available_cores, pm_sample_kwargs

NO_BLAS = """
import warnings
import pytensor

def no_blas_found():  # what PyTensor does on a pip-only install without a system BLAS
    warnings.warn("PyTensor could not link to a BLAS installation. Operations that might benefit "
                  "from BLAS will be severely degraded.", UserWarning)
    return ""

pytensor.config._config_var_dict["blas__ldflags"]._default = no_blas_found
"""


def test_pm_sample_kwargs_translate_the_settings():
    settings = {"draws": 7, "tune": 3, "chains": 3, "target_accept": 0.8, "nuts_sampler": "pymc",
                "random_seed": 5, "cores": None, "progressbar": False}
    kwargs = pm_sample_kwargs(settings)
    assert kwargs["draws"] == 7 and kwargs["tune"] == 3 and kwargs["target_accept"] == 0.8
    assert kwargs["random_seed"] == 5 and kwargs["progressbar"] is False
    assert kwargs["cores"] == min(3, available_cores()) and kwargs["compute_convergence_checks"] is False
    steps = pm_sample_kwargs({**settings, "cores": 1}, nuts=False)
    assert "target_accept" not in steps and "nuts_sampler" not in steps and steps["cores"] == 1


def _fit_without_blas(code: str) -> subprocess.CompletedProcess:
    script = NO_BLAS + textwrap.dedent(code) + "\nprint('ldflags', repr(pytensor.config.blas__ldflags))\n"
    return subprocess.run([sys.executable, "-W", "always", "-c", script], capture_output=True, text=True, timeout=600)


def test_a_fit_without_a_system_blas_runs_without_pytensors_warning():
    done = _fit_without_blas("""
        import numpy as np
        import bayeslm as blm
        train = blm.Corpus.from_texts(["a b a c", "b a b", "c a b a"] * 5)
        blm.DirichletLM(order=2).fit(train, draws=20, tune=20, chains=1, progressbar=False, random_seed=1)
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(60, 3)), rng.integers(0, 3, size=60)
        blm.BayesianLastLayer(method="advi", draws=10, advi_steps=50, random_seed=0).fit(X, y)
    """)
    assert done.returncode == 0, done.stderr
    assert "ldflags ''" in done.stdout  # the simulated install really had no BLAS
    assert "could not link to a BLAS" not in done.stderr


def test_the_simulation_does_show_the_warning_outside_a_fit():
    done = _fit_without_blas("pytensor.config.blas__ldflags")
    assert done.returncode == 0 and "could not link to a BLAS" in done.stderr
