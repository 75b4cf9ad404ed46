"""Tests of bayeslm.stats.intervals against closed forms and a brute-force shortest interval."""

import math

import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm

from bayeslm.exceptions import BayesLMError
from bayeslm.stats.intervals import HDI_PROB, hdi, interval_summary


# ----------------------------------------------------------------------- HDI
def test_hdi_normal_and_exponential_closed_forms():
    rng = np.random.default_rng(6)
    assert HDI_PROB == 0.94
    low, high = hdi(rng.normal(size=400_000))
    z = norm.ppf(0.97)  # symmetric: the HDI is the central interval
    assert low == pytest.approx(-z, abs=0.02) and high == pytest.approx(z, abs=0.02)
    low, high = hdi(rng.exponential(size=400_000), hdi_prob=0.9)
    assert low == pytest.approx(0.0, abs=0.005)  # density is decreasing: HDI starts at 0
    assert high == pytest.approx(-math.log(0.1), abs=0.03)


def test_hdi_dataarray_with_sample_dims():
    rng = np.random.default_rng(7)
    x = rng.gamma(2.0, size=(4, 500))
    da = xr.DataArray(x, dims=("chain", "draw"))
    low, high = hdi(da, hdi_prob=0.8)
    assert isinstance(low, float) and isinstance(high, float)
    assert (low, high) == hdi(x.ravel(), hdi_prob=0.8)
    inside = np.mean((x >= low) & (x <= high))
    assert inside >= 0.8 - 1e-9
    # the shortest interval holding that many sorted draws, by brute force
    s = np.sort(x.ravel())
    k = int(np.floor(0.8 * s.size))
    widths = s[k:] - s[: s.size - k]
    assert high - low == pytest.approx(widths.min(), rel=1e-12)


def test_hdi_invalid():
    with pytest.raises(BayesLMError, match="position"):
        hdi(xr.DataArray(np.zeros((2, 3, 4)), dims=("chain", "draw", "position")))
    with pytest.raises(BayesLMError, match="hdi_prob"):
        hdi(np.arange(10.0), hdi_prob=1.5)
    with pytest.raises(BayesLMError, match="NaN"):
        hdi(np.array([1.0, np.nan, 2.0]))


def test_interval_summary():
    x = np.random.default_rng(8).normal(3.0, 1.0, size=(2, 1000))
    out = interval_summary(xr.DataArray(x, dims=("chain", "draw")), hdi_prob=0.5)
    assert set(out) == {"mean", "hdi_low", "hdi_high", "hdi_prob"}
    assert all(type(v) is float for v in out.values())
    assert out["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert out["hdi_prob"] == 0.5
    assert (out["hdi_low"], out["hdi_high"]) == hdi(x, hdi_prob=0.5)
    assert out["hdi_low"] < 3.0 < out["hdi_high"]


@pytest.mark.parametrize("seed, size, hdi_prob", [(0, 2000, 0.94), (1, 37, 0.5), (2, 5, 0.8), (3, 1000, 0.99)])
def test_hdi_is_arviz_hdi_to_the_last_digit(seed, size, hdi_prob):
    """The numpy HDI (scoring imports no ArviZ) is ArviZ's, ties and skewed draws included."""
    import arviz as az

    rng = np.random.default_rng(seed)
    for draws in (rng.gamma(0.5, size=size), np.round(rng.normal(size=size), 1), rng.normal(size=(2, size // 2 + 1))):
        assert hdi(draws, hdi_prob=hdi_prob) == tuple(float(v) for v in az.hdi(draws.ravel(), hdi_prob=hdi_prob))
