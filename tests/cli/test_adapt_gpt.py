"""``bayeslm adapt`` of a GPT model directory (docs/cli.md, docs/domain.md "GPT")."""

from __future__ import annotations

import json

import pytest
from cli_support import fails, succeeds

pytest.importorskip("torch")
from test_adapt_command import DOMAIN, domain_files  # noqa: F401  (the n-gram tests' domain files, a fixture)

DRAWS = ["--set", "sampler.draws=20"]


@pytest.fixture(scope="module")
def adapted_gpt(gpt_dir, domain_files):
    out = domain_files / "adapted"
    printed = succeeds(["adapt", gpt_dir, "--train", domain_files / "domain.txt", "--valid", domain_files / "valid.txt",
                        "--out", out, *DRAWS, "--seed", 2, "--quiet", "--json"])
    return out, json.loads(printed)


def test_adapt_writes_a_gpt_directory_every_command_reads(gpt_dir, adapted_gpt, domain_files):
    out, result = adapted_gpt
    assert json.loads((out / "manifest.json").read_text())["family"] == "gpt-bll-adapted"
    assert result["general_model"]["id"] == json.loads((gpt_dir / "manifest.json").read_text())["id"]
    [row] = result["departure"]
    assert row["order"] == 17 and 0 < row["hdi_low"] <= row["mean"] <= row["hdi_high"] and row["meaning"]
    assert result["domain_tokens"] == len(DOMAIN.replace("\n", "")) and result["inference"] == "laplace"
    test = domain_files / "valid.txt"
    adapted = json.loads(succeeds(["evaluate", out, "--test", test, "--json"]))
    general = json.loads(succeeds(["evaluate", gpt_dir, "--test", test, "--json"]))
    assert adapted["predictive_perplexity"] < general["predictive_perplexity"]
    assert succeeds(["generate", out, "--n", "2", "--seed", "1", "--prompt", "the", "--no-color"]).strip()
    report = domain_files / "report.html"
    succeeds(["report", out, "--test", test, "--out", report, "--replicates", "2", "--quiet"])
    data = json.loads(report.with_suffix(".json").read_text())
    assert [r["order"] for r in data["departure"]["orders"]] == [17]
    assert sum(g["positions"] for g in data["departure"]["sources"]) > 0


def test_plain_fine_tuning_of_the_head_is_one_setting_away(gpt_dir, domain_files):
    out = domain_files / "finetuned"
    printed = succeeds(["adapt", gpt_dir, "--train", domain_files / "domain.txt", "--out", out, "--set", "model.head=map",
                        "--seed", 2, "--quiet"])
    assert "plain fine-tuning of the head" in printed and f"saved to {out}" in printed
    assert json.loads((out / "manifest.json").read_text())["family"] == "gpt-bll-finetuned"


def test_bad_input_is_one_line_and_writes_nothing(gpt_dir, adapted_gpt, domain_files, capsys):
    out = domain_files / "never"
    common = ["--out", out, *DRAWS, "--quiet"]
    domain = ["--train", domain_files / "domain.txt"]
    fails(capsys, ["adapt", gpt_dir, "--train", domain_files / "empty.txt", *common], "empty.txt")
    fails(capsys, ["adapt", gpt_dir, *domain, "--set", "tokenizer.kind=word", *common], "tokenizer.kind=word",
          "reads text as the general model does")
    fails(capsys, ["adapt", gpt_dir, *domain, "--set", "model.n_layer=2", *common], "model.n_layer=2", "model.head")
    fails(capsys, ["adapt", gpt_dir, *domain, "--set", "model.head=sgd", *common], "'bayes' or 'map'")
    fails(capsys, ["adapt", adapted_gpt[0], *domain, *common], "holds a 'gpt-bll-adapted' model",
          "the general one it was adapted from")
    assert not out.exists()
