"""Sampler settings of the tests, in one place, each named for what it is for.

Sampling is real where inference is under test (recovery, calibration) and as short as the
test allows where it is not: most tests compare a model's answers with an independent
computation from the draws the model holds, whatever those draws are, so a few draws do.
"""

from __future__ import annotations

#: a fitted model whose draws are used as they are: shapes, files, the protocol's answers
#: against dense computations from the draws; two chains, so the chain dimension is there
QUICK = {"draws": 20, "tune": 10, "chains": 2, "cores": 1, "progressbar": False}

#: the draws are summarised: intervals over draws, diagnostics tables and their flags,
#: Monte Carlo checks whose error shrinks with the number of draws
SMALL = {"draws": 100, "tune": 100, "chains": 2, "cores": 1, "progressbar": False}

#: inference under test on one data set: the posterior must centre on the truth that
#: generated the data (tuned chains, enough draws for the posterior's mean and sd; the
#: chains run in parallel where there are cores)
RECOVERY = {"draws": 200, "tune": 100, "chains": 2, "progressbar": False}

#: inference under test over many simulated data sets (simulation-based calibration):
#: one short chain per replicate, thinned to nearly independent draws for the ranks
CALIBRATION = {"draws": 100, "tune": 100, "chains": 1, "cores": 1, "progressbar": False}

#: a NUTS posterior that approximations are compared with (tests/neural/test_last_layer.py):
#: long enough that its standard deviations are within about 5%
NUTS_REFERENCE = {"draws": 1000, "tune": 500, "chains": 2, "cores": 1}

#: exact posterior draws (a conjugate toy family, no Markov chain): the number of draws
#: sets the Monte Carlo error of the comparisons with the closed form
MONTE_CARLO = {"draws": 1000, "chains": 2, "progressbar": False}

#: sampling that outlasts the test, so that a real process can be interrupted during it
ENDLESS = {"draws": 200_000, "tune": 10, "chains": 2, "cores": 2}

#: a TinyGPT body that trains in seconds on a few hundred short lines (model options of
#: GPTLM), and its last layer's number of Laplace draws
TINY_GPT = {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 24, "train_steps": 150, "batch_size": 16,
            "learning_rate": 1e-2, "eval_interval": 50, "eval_batches": 2, "fit_positions": 2000,
            "valid_positions": 500}
GPT_DRAWS = {"draws": 30, "progressbar": False}


def overrides(settings: dict, section: str = "sampler") -> list[str]:
    """``section.KEY=VALUE`` overrides (``apply_overrides``, ``bayeslm fit --set``) for settings."""
    return [f"{section}.{key}={str(value).lower() if isinstance(value, bool) else value}"
            for key, value in settings.items()]


def cli_sets(settings: dict, section: str = "sampler") -> list[str]:
    """``--set section.KEY=VALUE`` arguments of ``bayeslm fit`` for settings."""
    return [arg for item in overrides(settings, section) for arg in ("--set", item)]
