"""Tests of bayeslm.stats.entropy against closed forms and independent computations."""

import math

import numpy as np
import pytest
import xarray as xr

from bayeslm.exceptions import BayesLMError
from bayeslm.stats.entropy import (
    cross_entropy,
    dirichlet_expected_entropy,
    entropy,
    entropy_decomposition,
    perplexity,
    predictive_log_prob,
    to_bits,
    to_nats,
)


def _h(p):
    """Entropy in nats of one probability vector, by a plain loop."""
    return -sum(x * math.log(x) for x in p if x > 0)


def _random_probs(rng, shape):
    g = rng.gamma(0.7, size=shape)
    return g / g.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------- entropy
def test_entropy_half_quarter_quarter_is_one_and_a_half_bits():
    assert entropy(np.array([0.5, 0.25, 0.25]), units="bits") == pytest.approx(1.5, abs=1e-12)
    assert entropy([0.5, 0.25, 0.25]) == pytest.approx(1.5 * math.log(2), abs=1e-12)


@pytest.mark.parametrize("v", [1, 2, 7, 1000])
def test_entropy_uniform(v):
    p = np.full(v, 1.0 / v)
    assert entropy(p, units="bits") == pytest.approx(math.log2(v), abs=1e-9)
    assert entropy(p, units="nats") == pytest.approx(math.log(v), abs=1e-9)


def test_entropy_point_mass_is_zero():
    out = entropy(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, [0.0, 0.0])


def test_entropy_numpy_axis():
    p = _random_probs(np.random.default_rng(0), (4, 6))
    expected = [_h(row) for row in p]
    np.testing.assert_allclose(entropy(p), expected, rtol=1e-12)
    np.testing.assert_allclose(entropy(p.T, axis=0), expected, rtol=1e-12)


def test_entropy_dataarray_keeps_sample_dims():
    p = _random_probs(np.random.default_rng(1), (2, 3, 5))
    # put the token dim first to check reduction is by name, not position
    da = xr.DataArray(p, dims=("chain", "draw", "token")).transpose("token", "draw", "chain")
    out = entropy(da, units="bits")
    assert isinstance(out, xr.DataArray)
    assert set(out.dims) == {"chain", "draw"}
    assert out.attrs["units"] == "bits"
    for c in range(2):
        for d in range(3):
            assert float(out.sel(chain=c, draw=d)) == pytest.approx(_h(p[c, d]) / math.log(2), rel=1e-12)


@pytest.mark.parametrize(
    "p, match",
    [
        ([0.5, np.nan, 0.5], "NaN"),
        ([1.2, -0.2], "negative"),
        ([0.5, 0.4], "sum to 1"),
        ([0.5, 0.5 + 1e-5], "sum to 1"),
    ],
)
def test_entropy_invalid(p, match):
    with pytest.raises(BayesLMError, match=match):
        entropy(np.array(p))
    with pytest.raises(ValueError, match=match):  # BayesLMError is a ValueError
        entropy(xr.DataArray(np.array(p), dims="token"))


def test_entropy_tolerates_tiny_sum_error():
    assert entropy(np.array([0.5, 0.5 + 1e-8])) == pytest.approx(math.log(2), abs=1e-7)


def test_entropy_bad_units_and_missing_dim():
    with pytest.raises(BayesLMError, match="units"):
        entropy(np.array([1.0]), units="bans")
    with pytest.raises(BayesLMError, match="token"):
        entropy(xr.DataArray(np.array([0.5, 0.5]), dims="vocab"))


# ------------------------------------------------- cross-entropy and perplexity
def test_cross_entropy_and_perplexity_hand_example():
    lp = np.log([0.5, 0.25, 0.125])  # 1, 2 and 3 bits of surprise
    assert cross_entropy(lp, units="bits") == pytest.approx(2.0, abs=1e-12)
    assert cross_entropy(lp) == pytest.approx(2.0 * math.log(2), abs=1e-12)
    assert perplexity(lp) == pytest.approx(4.0, abs=1e-12)


def test_cross_entropy_minus_inf_gives_inf():
    lp = np.array([np.log(0.5), -np.inf])
    assert cross_entropy(lp) == np.inf
    assert perplexity(lp) == np.inf


def test_cross_entropy_dataarray_keeps_sample_dims():
    rng = np.random.default_rng(2)
    lp = np.log(rng.uniform(0.01, 1.0, size=(2, 3, 4)))
    da = xr.DataArray(lp, dims=("chain", "draw", "position"))
    ce = cross_entropy(da)
    ppl = perplexity(da)
    assert ce.dims == ("chain", "draw") and ppl.dims == ("chain", "draw")
    for c in range(2):
        for d in range(3):
            expected = -sum(lp[c, d]) / 4
            assert float(ce[c, d]) == pytest.approx(expected, rel=1e-12)
            assert float(ppl[c, d]) == pytest.approx(math.exp(expected), rel=1e-12)
    np.testing.assert_allclose(cross_entropy(lp, units="bits"), ce.values / math.log(2), rtol=1e-12)


def test_cross_entropy_rejects_probabilities_and_nan():
    with pytest.raises(BayesLMError, match="<= 0"):
        cross_entropy(np.array([0.5, 0.25]))
    with pytest.raises(BayesLMError, match="NaN"):
        cross_entropy(np.array([-1.0, np.nan]))


def test_unit_conversion():
    assert to_bits(math.log(8)) == pytest.approx(3.0, abs=1e-12)
    assert to_nats(1.0) == pytest.approx(math.log(2), abs=1e-15)
    x = np.array([0.3, 2.0])
    np.testing.assert_allclose(to_nats(to_bits(x)), x, rtol=1e-15)
    da = xr.DataArray(x, dims="draw", attrs={"units": "nats"})
    assert to_bits(da).attrs["units"] == "bits"
    np.testing.assert_allclose(to_bits(da).values, x / math.log(2), rtol=1e-15)
    assert to_nats(to_bits(da)).attrs["units"] == "nats"


def test_units_labels_on_dataarrays():
    da = xr.DataArray(np.log([[0.5, 0.25]]), dims=("draw", "position"))
    assert cross_entropy(da).attrs["units"] == "nats"
    assert cross_entropy(da, units="bits").attrs["units"] == "bits"
    assert "units" not in perplexity(da).attrs  # perplexity is unitless


# -------------------------------------------------------- predictive log prob
def test_predictive_log_prob_matches_direct_mean():
    rng = np.random.default_rng(3)
    lp = np.log(rng.uniform(0.01, 1.0, size=(2, 5, 4)))
    expected = np.log(np.mean(np.exp(lp), axis=(0, 1)))
    np.testing.assert_allclose(predictive_log_prob(lp), expected, rtol=1e-12)
    da = xr.DataArray(lp, dims=("chain", "draw", "position")).transpose("position", "draw", "chain")
    out = predictive_log_prob(da)
    assert out.dims == ("position",)
    np.testing.assert_allclose(out.values, expected, rtol=1e-12)
    # other sample axes
    np.testing.assert_allclose(
        predictive_log_prob(np.moveaxis(lp, 2, 0), sample_axes=(1, 2)), expected, rtol=1e-12
    )


def test_predictive_log_prob_is_stable_for_tiny_probabilities():
    # two draws per position: log p = -1000 and -1000 - log 3 -> log((1 + 1/3) / 2) - 1000
    lp = np.array([[[-1000.0, -2000.0]], [[-1000.0 - math.log(3), -2000.0]]])  # (chain=2, draw=1, pos=2)
    out = predictive_log_prob(lp)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [-1000.0 + math.log(2 / 3), -2000.0], rtol=0, atol=1e-9)
    # a single -inf draw does not dominate the mixture
    one_inf = np.array([[-np.inf, -1.0]])
    assert predictive_log_prob(one_inf)[()] == pytest.approx(-1.0 - math.log(2), abs=1e-12)


def test_predictive_log_prob_missing_sample_dim():
    with pytest.raises(BayesLMError, match="chain"):
        predictive_log_prob(xr.DataArray(np.zeros((3, 2)), dims=("draw", "position")))


# ------------------------------------------------ Dirichlet expected entropy
def test_dirichlet_expected_entropy_closed_forms():
    # alpha = (1, 1): p ~ U(0, 1), E[-p ln p - (1-p) ln(1-p)] = 2 * 1/4
    assert dirichlet_expected_entropy(np.array([1.0, 1.0])) == pytest.approx(0.5, abs=1e-12)
    # alpha = 1^V (uniform on the simplex): E[H] = H_V - 1 (harmonic number)
    v = 10
    harmonic = sum(1.0 / k for k in range(1, v + 1))
    assert dirichlet_expected_entropy(np.ones(v)) == pytest.approx(harmonic - 1, abs=1e-12)
    assert dirichlet_expected_entropy(np.ones(v), units="bits") == pytest.approx(
        (harmonic - 1) / math.log(2), abs=1e-12
    )


@pytest.mark.parametrize(
    "alpha", [[0.05] * 5, [0.05, 1.0, 3.0], [0.5, 2.0, 10.0], [0.2] * 50, [30.0, 30.0]]
)
def test_dirichlet_expected_entropy_monte_carlo(alpha):
    rng = np.random.default_rng(12345)
    p = rng.dirichlet(alpha, size=200_000)
    h = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1)
    se = h.std(ddof=1) / math.sqrt(h.size)
    assert abs(dirichlet_expected_entropy(np.array(alpha)) - h.mean()) < 5 * se + 1e-12


def test_dirichlet_expected_entropy_dataarray():
    alpha = np.random.default_rng(4).uniform(0.1, 3.0, size=(2, 3, 6))
    da = xr.DataArray(alpha, dims=("chain", "draw", "token"))
    out = dirichlet_expected_entropy(da)
    assert out.dims == ("chain", "draw")
    np.testing.assert_allclose(out.values, dirichlet_expected_entropy(alpha), rtol=1e-14)
    np.testing.assert_allclose(
        dirichlet_expected_entropy(np.moveaxis(alpha, 2, 0), axis=0), out.values, rtol=1e-14
    )


@pytest.mark.parametrize("alpha", [[1.0, 0.0], [1.0, -2.0], [1.0, np.inf], [np.nan, 1.0]])
def test_dirichlet_expected_entropy_invalid(alpha):
    with pytest.raises(BayesLMError, match="finite and > 0"):
        dirichlet_expected_entropy(np.array(alpha))


# ------------------------------------------------------ entropy decomposition
@pytest.mark.parametrize(
    "p",
    [
        [0.7, 0.2, 0.1],
        # for this vector the raw total - aleatoric is about -2e-16 in float64
        [0.08685719626845369, 0.09410960950489865, 0.38887885423359275,
         0.3622384655566766, 0.06791587443637816],
    ],
)
@pytest.mark.parametrize("shape", [(1, 3), (2, 4)])
def test_decomposition_identical_draws_has_no_epistemic_part(p, shape):
    p = np.array(p) / np.sum(p)
    parts = entropy_decomposition(np.broadcast_to(p, shape + p.shape))
    assert 0.0 <= parts["epistemic"] <= 1e-12  # never negative, even by round-off
    assert parts["total"] == pytest.approx(_h(p), rel=1e-12)
    assert parts["aleatoric"] == pytest.approx(_h(p), rel=1e-12)


def test_decomposition_two_draw_example():
    probs = np.array([[[0.9, 0.1], [0.1, 0.9]]])  # (chain=1, draw=2, token=2)
    h09 = -(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1))
    parts = entropy_decomposition(probs, units="bits")
    assert parts["total"] == pytest.approx(1.0, abs=1e-12)
    assert parts["aleatoric"] == pytest.approx(h09, abs=1e-12)
    assert parts["epistemic"] == pytest.approx(1.0 - h09, abs=1e-12)
    ds = entropy_decomposition(xr.DataArray(probs, dims=("chain", "draw", "token")), units="bits")
    assert isinstance(ds, xr.Dataset) and ds.attrs["units"] == "bits"
    assert float(ds["total"]) == pytest.approx(1.0, abs=1e-12)
    assert float(ds["epistemic"]) == pytest.approx(1.0 - h09, abs=1e-12)


def test_decomposition_epistemic_is_mean_kl_to_the_mixture():
    rng = np.random.default_rng(5)
    probs = _random_probs(rng, (3, 4, 5, 6))  # (chain, draw, context, token)
    mix = probs.mean(axis=(0, 1))
    kl = np.mean(np.sum(probs * np.log(probs / mix), axis=-1), axis=(0, 1))  # mutual information
    da = xr.DataArray(probs, dims=("chain", "draw", "context", "token"))
    ds = entropy_decomposition(da.transpose("token", "context", "draw", "chain"))
    assert ds["epistemic"].dims == ("context",)
    np.testing.assert_allclose(ds["epistemic"].values, kl, rtol=1e-9)
    np.testing.assert_allclose(ds["total"].values, [_h(m) for m in mix], rtol=1e-12)
    # numpy with the token axis first and the samples last gives the same
    parts = entropy_decomposition(np.transpose(probs, (3, 2, 0, 1)), sample_axes=(2, 3), axis=0)
    for k in ("total", "aleatoric", "epistemic"):
        np.testing.assert_allclose(parts[k], ds[k].values, rtol=1e-12)


def test_decomposition_invalid():
    with pytest.raises(BayesLMError, match="sum to 1"):
        entropy_decomposition(np.full((1, 2, 3), 0.5))
    with pytest.raises(BayesLMError, match="distinct"):
        entropy_decomposition(np.full((2, 2), 0.5), sample_axes=(0, 1), axis=1)
    with pytest.raises(BayesLMError, match="chain"):
        entropy_decomposition(xr.DataArray(np.full((2, 2), 0.5), dims=("draw", "token")))
