"""Chebyshev tables of 1-D log densities (bayeslm.core.tabulate) and their use by the Dirichlet LM."""

import numpy as np
import pytest

from bayeslm.core.tabulate import tabulate


def _gamma_log_density(shape, rate):
    """log of a Gamma(shape, rate) density in t = log x, with its t-derivative (closed form)."""
    return lambda t: (shape * t - rate * np.exp(t), shape - rate * np.exp(t))


def test_table_reproduces_a_log_density_and_its_derivative():
    fn = _gamma_log_density(5000.0, 10.0)  # mode at t = log(500), sd ~ 1 / sqrt(5000)
    table = tabulate(fn, np.log(500.0))
    assert table is not None
    assert table.lo < np.log(500.0) - 0.5 and table.hi > np.log(500.0) + 0.5  # +-40 sd
    for t in np.random.default_rng(0).uniform(table.lo, table.hi, 200):
        value, deriv = fn(t)
        got_value, got_deriv = table(t)
        assert got_value == pytest.approx(value, abs=1e-6)
        assert got_deriv == pytest.approx(deriv, abs=1e-6)
    assert not table.covers(table.hi + 1e-9) and not table.covers(table.lo - 1e-9)


def test_no_table_where_the_function_is_not_concave_or_not_smooth():
    assert tabulate(lambda t: (t**2, 2 * t), 0.0) is None  # convex: no mode to tabulate around
    kink = lambda t: (-abs(t) - t**2 * 1e4, -np.sign(t) - 2e4 * t)  # |t| is not a polynomial
    assert tabulate(kink, 0.0) is None


def test_dirichlet_evidence_from_the_table_equals_the_exact_sums():
    """The sampler's evidence (tabulated near the mode) agrees with the exact one; far from
    the mode it is the exact one."""
    import bayeslm as blm

    rng = np.random.default_rng(3)
    lines = [" ".join(f"w{int(x)}" for x in rng.zipf(1.5, rng.integers(2, 12)) % 40) for _ in range(400)]
    lm = blm.DirichletLM(order=2, tokenizer="whitespace", min_count=1)
    lm.counts_ = blm.count(lm._prepare_training(blm.Corpus.from_texts(lines, tokenizer=blm.WhitespaceTokenizer())), 2)
    evidences = lm._fit_bases()
    for (k, b), ev in evidences.items():
        mode = float(lm._plugin_matrix()[k - 1, b])
        assert ev.tabulate(mode)
        for a in mode * np.exp(np.linspace(-0.2, 0.2, 9)):
            value, grad = ev.logp_and_grad(float(a))
            exact_value, exact_grad = ev.exact_logp_and_grad(float(a))
            assert value == pytest.approx(exact_value, abs=1e-6)
            assert grad == pytest.approx(exact_grad, rel=1e-7, abs=1e-8)
        far = mode * 1e3
        assert not ev._table.covers(np.log(far))
        assert ev.logp_and_grad(far) == ev.exact_logp_and_grad(far)
