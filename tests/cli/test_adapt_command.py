"""``bayeslm adapt``: a general Dirichlet model's directory adapted to domain text (docs/cli.md, docs/domain.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_support import fails, succeeds
from sampling import QUICK, cli_sets


DOMAIN = """the red fox ran to the log
a red fox sat on the mat
the fox ran on the log
a big red fox sat
"""


@pytest.fixture(scope="module")
def domain_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt")
    (root / "domain.txt").write_text(DOMAIN, encoding="utf-8")
    (root / "valid.txt").write_text("the red fox sat on the log\n", encoding="utf-8")
    (root / "empty.txt").write_text("\n \n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def adapted_dir(tiny_model, domain_files):
    """``bayeslm adapt`` of the session's tiny model (QUICK draws, seed 2) and its JSON output."""
    out = domain_files / "adapted"
    printed = succeeds(["adapt", tiny_model, "--train", domain_files / "domain.txt", "--valid", domain_files / "valid.txt",
                    "--out", out, *cli_sets(QUICK), "--seed", 2, "--quiet", "--json"])
    return out, json.loads(printed)


def test_adapt_writes_a_model_directory_every_command_reads(tiny_model, adapted_dir, domain_files, capsys):
    out, result = adapted_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["family"] == "dirichlet-adapted"
    general_id = json.loads((tiny_model / "manifest.json").read_text())["id"]
    assert result["schema"] == "bayeslm.adapt/2" and result["general_model"]["id"] == general_id
    departure = result["departure"]
    assert [c["order"] for c in departure] == [1, 2] and all(0 < c["hdi_low"] < c["mean"] < c["hdi_high"] for c in departure)
    assert all(isinstance(c["meaning"], str) and c["meaning"] for c in departure)
    assert result["domain_tokens"] == len(DOMAIN.split()) and result["valid"] == [str(domain_files / "valid.txt")]
    # independent exact draws: no divergences to count; their R-hat and ESS are the report's (adapt imports no ArviZ)
    assert result["diagnostics"] == {} and result["inference"] == "exact"

    test = domain_files / "valid.txt"
    adapted = json.loads(succeeds(["evaluate", out, "--test", test, "--json"]))
    general = json.loads(succeeds(["evaluate", tiny_model, "--test", test, "--json"]))
    assert adapted["model"]["family"] == "dirichlet-adapted"
    assert adapted["predictive_perplexity"] < general["predictive_perplexity"]  # the domain's words follow 'red'
    assert "the" in succeeds(["generate", out, "--n", "2", "--seed", "1", "--prompt", "the", "--no-color"])
    report = domain_files / "report.html"
    succeeds(["report", out, "--test", test, "--out", report, "--replicates", "2", "--quiet"])
    assert report.is_file() and report.with_suffix(".json").is_file()
    rows = json.loads(report.with_suffix(".json").read_text())["diagnostics"]["parameters"]
    assert {row["name"] for row in rows} == {"power[1]", "power[2]"} and all(np.isfinite([row["r_hat"], row["ess_bulk"]]).all() for row in rows)
    fails(capsys, ["export", out, "--arpa", domain_files / "adapted.arpa"], "ARPA export of an adapted model")


def test_adapt_prints_the_departure_per_order(tiny_model, domain_files):
    out = domain_files / "adapted-text"
    printed = succeeds(["adapt", tiny_model, "--train", domain_files / "domain.txt", "--out", out, *cli_sets(QUICK),
                    "--set", "prior.concentration.kwargs.sigma=2", "--quiet"])
    assert f"saved to {out}" in printed and "departure from the general model per order" in printed
    assert "order 2: " in printed and "HDI" in printed
    assert "independent exact draws" in printed and "bayeslm report" in printed and "r_hat" not in printed


@pytest.fixture(scope="module")
def pitman_yor_dir(pitman_yor_lm, tmp_path_factory):
    return pitman_yor_lm.save(tmp_path_factory.mktemp("py") / "py")


def test_bad_input_is_one_line_and_writes_nothing(tiny_model, adapted_dir, pitman_yor_dir, domain_files, capsys):
    out = domain_files / "never"
    common = ["--out", out, *cli_sets(QUICK), "--quiet"]
    fails(capsys, ["adapt", tiny_model, "--train", domain_files / "empty.txt", *common], "empty.txt")
    fails(capsys, ["adapt", tiny_model, "--train", domain_files / "domain.txt", "--set", "tokenizer.kind=char",
                   *common], "tokenizer.kind=char", "reads text as the general model does")
    fails(capsys, ["adapt", tiny_model, "--train", domain_files / "domain.txt", "--set", "model.order=3", *common],
          "model.order=3")
    fails(capsys, ["adapt", pitman_yor_dir, "--train", domain_files / "domain.txt", "--set", "prior.concentration.kwargs.sigma=2",
                   *common], "prior.concentration.kwargs.sigma=2", "prior.general_weight.KEY")
    fails(capsys, ["adapt", adapted_dir[0], "--train", domain_files / "domain.txt", *common],
          "holds a 'dirichlet-adapted' model", "the general one it was adapted from")
    fails(capsys, ["adapt", domain_files / "missing", "--train", domain_files / "domain.txt", *common],
          "not a model directory")
    assert not out.exists()
    fails(capsys, ["adapt", tiny_model, "--train", domain_files / "domain.txt", "--out", adapted_dir[0],
                   *cli_sets(QUICK)], "exists", "--force")


def test_adapt_and_score_do_not_import_pymc_or_arviz(tiny_model, domain_files, tmp_path):
    """The powers are drawn without PyMC, the model directories read and written without ArviZ, and scoring
    needs neither: no command of the two imports them (a fresh process)."""
    import subprocess
    import sys

    out = tmp_path / "adapted"
    script = ("import sys; from bayeslm.cli.main import main; "
              f"assert main(['adapt', {str(tiny_model)!r}, '--train', {str(domain_files / 'domain.txt')!r}, "
              f"'--valid', {str(domain_files / 'valid.txt')!r}, '--out', {str(out)!r}, '--quiet', '--json', "
              "'--set', 'sampler.draws=50']) == 0; "
              f"sys.stdin = open({str(domain_files / 'valid.txt')!r}); "
              f"assert main(['score', {str(out)!r}]) == 0; "
              "print(*[name in sys.modules for name in ('pymc', 'pytensor', 'arviz', 'numba')])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False False False False"


def test_a_pitman_yor_model_adapts_and_its_adapted_directory_is_refused_as_a_base(pitman_yor_dir, domain_files, capsys):
    out = domain_files / "py-adapted"
    result = json.loads(succeeds(["adapt", pitman_yor_dir, "--train", domain_files / "domain.txt", "--out", out,
                                  *cli_sets(QUICK), "--set", "model.rounds=2", "--set", "model.sweeps=2", "--seed", 2, "--quiet", "--json"]))
    assert json.loads((out / "manifest.json").read_text())["family"] == "pitman-yor-adapted"
    assert [row["order"] for row in result["departure"]] == [1, 2, 3]
    assert all(0 < row["hdi_low"] <= row["mean"] <= row["hdi_high"] < 1 and row["meaning"] for row in result["departure"])
    test = domain_files / "valid.txt"
    general = json.loads(succeeds(["evaluate", pitman_yor_dir, "--test", test, "--json"]))
    adapted = json.loads(succeeds(["evaluate", out, "--test", test, "--json"]))
    assert adapted["predictive_perplexity"] < general["predictive_perplexity"]
    fails(capsys, ["adapt", out, "--train", domain_files / "domain.txt", "--out", domain_files / "never2", "--quiet"],
          "holds a 'pitman-yor-adapted' model", "the general one it was adapted from")
    fails(capsys, ["export", out, "--arpa", domain_files / "py-adapted.arpa"], "ARPA export of an adapted Pitman-Yor")
