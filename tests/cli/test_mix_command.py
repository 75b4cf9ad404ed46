"""``bayeslm mix``: model directories of one tokenizer combined into a mixture directory (docs/cli.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_support import fails, succeeds
from sampling import QUICK, cli_sets

import bayeslm


@pytest.fixture(scope="module")
def unigram_dir(cli_files, tmp_path_factory):
    """The session's tiny configuration at order 1, on the same text (so the same vocabulary)."""
    out = tmp_path_factory.mktemp("mix") / "unigram"
    succeeds(["fit", cli_files["config"], "--train", cli_files["train"], "--out", out, "--set", "model.order=1",
          *cli_sets(QUICK), "--seed", 4, "--quiet"])
    return out


@pytest.fixture(scope="module")
def mixed(tiny_model, unigram_dir, cli_files):
    out = unigram_dir.parent / "mixture"
    printed = succeeds(["mix", tiny_model, unigram_dir, "--valid", cli_files["test"], "--out", out,
                    *cli_sets(QUICK), "--seed", 5, "--quiet", "--json"])
    return out, json.loads(printed)


def test_mix_writes_a_model_directory_every_command_reads(mixed, tiny_model, unigram_dir, cli_files):
    out, result = mixed
    assert result["schema"] == "bayeslm.mix/1" and json.loads((out / "manifest.json").read_text())["family"] == "mixture"
    model = bayeslm.load(out)
    weights = model.weights
    assert [row["model"] for row in result["weights"]] == [str(tiny_model), str(unigram_dir)]
    assert [row["id"] for row in result["weights"]] == [bayeslm.load(tiny_model).id, bayeslm.load(unigram_dir).id]
    np.testing.assert_allclose([row["mean"] for row in result["weights"]], weights.mean(axis=0), rtol=1e-12)
    assert all(row["hdi_low"] <= row["mean"] <= row["hdi_high"] for row in result["weights"])
    np.testing.assert_allclose(sum(row["stacking"] for row in result["weights"]), 1.0, rtol=1e-9)
    evaluated = json.loads(succeeds(["evaluate", out, "--test", cli_files["test"], "--json"]))
    assert evaluated["model"]["family"] == "mixture"
    assert np.isclose(evaluated["predictive_cross_entropy_bits"],
                      model.evaluate(model.read([cli_files["test"]])).predictive_cross_entropy_bits)


def test_mix_refuses_what_cannot_be_mixed_and_writes_nothing(tiny_model, cli_files, tmp_path, capsys):
    chars = tmp_path / "chars"
    succeeds(["fit", cli_files["config"], "--train", cli_files["train"], "--out", chars, "--set", "tokenizer.kind=char",
          *cli_sets(QUICK), "--seed", 4, "--quiet"])
    out = tmp_path / "m"
    fails(capsys, ["mix", tiny_model, chars, "--valid", cli_files["test"], "--out", out],
          "component 1 uses CharTokenizer", "a mixture needs one tokenizer")
    fails(capsys, ["mix", tiny_model, "--valid", cli_files["test"], "--out", out],
          "a mixture needs at least two components, got 1")
    fails(capsys, ["mix", tiny_model, tiny_model, "--valid", cli_files["test"], "--out", out, "--set", "model.order=3"],
          "mix changes only sampler.KEY")
    fails(capsys, ["mix", tiny_model, tmp_path / "nowhere", "--valid", cli_files["test"], "--out", out],
          "not a model directory")
    assert not out.exists()
