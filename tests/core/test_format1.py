"""Model directories of format 1, written by the code before the subpackage layout, load and
score exactly as that code scored them (``tests/data/format1/make.py`` wrote them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bayeslm as blm

HERE = Path(__file__).resolve().parents[1] / "data" / "format1"
EXPECTED = json.loads((HERE / "expected.json").read_text())
TEST = (HERE / "test.txt").read_text().splitlines()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_format1_directory_loads_and_scores_as_when_it_was_written(name):
    expected = EXPECTED[name]
    lm = blm.load(HERE / name)
    # the GPT's features are float32 torch sums: the loaded body reproduces the fitted one's to
    # ~1e-8 (the same code loading the same file twice agrees exactly); the n-gram families to round-off
    rtol = 1e-6 if name == "gpt-bll" else 1e-12
    np.testing.assert_allclose(lm.predictive_log_prob(TEST), expected["predictive_log_prob"], rtol=rtol)
    np.testing.assert_allclose(lm.evaluate(TEST).cross_entropy_bits.values.ravel(), expected["cross_entropy_bits"],
                               rtol=rtol)
    np.testing.assert_allclose(lm.score(TEST)["log10_prob"], expected["score_log10"], rtol=rtol)
    split = lm.entropy_split(TEST)
    np.testing.assert_allclose(split["total"], expected["entropy_total"], rtol=max(rtol, 1e-9), atol=1e-12)
    np.testing.assert_allclose(split["epistemic"], expected["entropy_epistemic"], rtol=max(rtol, 1e-9), atol=1e-9)


@pytest.mark.parametrize("name", ["dirichlet", "pitman-yor"])
def test_a_format1_model_saved_again_says_format_1_and_loads(name, tmp_path):
    """Re-saving keeps the format-1 ids, and the manifest names the format model.nc is in."""
    lm = blm.load(HERE / name)
    lm.save(tmp_path / "again")
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["id"] == lm.id
    back = blm.load(tmp_path / "again")
    np.testing.assert_array_equal(back.predictive_log_prob(TEST), lm.predictive_log_prob(TEST))


ADAPTED = Path(__file__).resolve().parents[1] / "data" / "adapted_9022a11"


def test_an_adapted_directory_written_through_arviz_loads_and_scores_to_the_last_digit():
    """``tests/data/adapted_9022a11/make.py`` wrote it with the code that read and wrote model directories
    through ArviZ; read with xarray alone (no ArviZ imported) it has the same id and scores."""
    expected = json.loads((ADAPTED / "expected.json").read_text())["dirichlet-adapted"]
    lm = blm.load(ADAPTED / "dirichlet-adapted")
    assert lm.id == expected["id"] and lm.idata._wrapped is None
    np.testing.assert_array_equal(lm.predictive_log_prob(TEST), expected["predictive_log_prob"])
    np.testing.assert_array_equal(lm.evaluate(TEST).cross_entropy_bits.values.ravel(), expected["cross_entropy_bits"])
    np.testing.assert_array_equal(lm.score(TEST)["log10_prob"], expected["score_log10"])
    split = lm.entropy_split(TEST)
    np.testing.assert_array_equal(split["total"], expected["entropy_total"])
    np.testing.assert_array_equal(split["epistemic"], expected["entropy_epistemic"])
    assert lm.idata._wrapped is None  # scoring built no InferenceData either
