"""The bayeslm command line, run in-process (bayeslm.cli.main) and, for exit codes, as a program."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayeslm
from bayeslm.cli import main
from cli_support import CONFIG, TEST, TRAIN, fails, program
from sampling import SMALL as SMALL_SAMPLER
from sampling import cli_sets

EXE = Path(sys.executable).with_name("bayeslm")
SMALL = [*cli_sets(SMALL_SAMPLER), "--seed", "3", "--quiet"]  # as tiny_fit (tests/cli/conftest.py)


def words_of(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


TRAIN_COUNTS = Counter(w for s in words_of(TRAIN) for w in s)
KNOWN = {w for w, c in TRAIN_COUNTS.items() if c >= 2}  # min_count = 2


@pytest.fixture(scope="module")
def files(cli_files) -> dict[str, Path]:
    """The tiny configuration, training and test text (tests/cli/conftest.py)."""
    return cli_files


@pytest.fixture(scope="module")
def fitted(tiny_fit) -> tuple[Path, str]:
    """A model directory written by ``bayeslm fit`` and what the command printed (tests/cli/conftest.py)."""
    return tiny_fit


# ---------------------------------------------------------------------------- fit
def test_fit_writes_model_directory(fitted):
    out, printed = fitted
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "manifest.json", "model.nc", "tokenizer.json", "vocab.json"]
    model = bayeslm.load(out)
    assert model.order == 2 and model.tokenizer.kind == "word" and model.min_count == 2
    assert model.idata["posterior"].sizes["draw"] == 100
    assert model.idata["posterior"].sizes["chain"] == 2
    assert model.sampler_config["draws"] == 100 and model.sampler_config["tune"] == 100
    assert model.sampler_config["random_seed"] == 3
    assert set(model.vocab_.tokens[3:]) == KNOWN
    n_tokens = sum(len(s) for s in words_of(TRAIN))
    assert f"fitted dirichlet order 2 on {n_tokens} tokens" in printed
    assert f"vocabulary {len(KNOWN) + 3}" in printed
    assert str(out) in printed


def test_set_overrides_take_effect(files, capsys):
    train = files["root"] / "cased.txt"
    train.write_text("The cat, sat.\nThe dog ran!\nA Cat sat.\n", encoding="utf-8")
    out = files["root"] / "cased-model"
    capsys.readouterr()
    code = main(["fit", str(files["config"]), "--train", str(train), "--out", str(out), *SMALL,
                 "--set", "tokenizer.kind=whitespace", "--set", "tokenizer.min_count=1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == "bayeslm.fit/1"
    assert report["training_tokens"] == 9 and report["vocabulary"] == 7 + 3
    model = bayeslm.load(out)
    assert model.tokenizer.kind == "whitespace" and model.min_count == 1
    # case and punctuation stay attached; words seen once are kept
    assert {"The", "cat,", "sat.", "Cat", "ran!", "A", "dog"} <= set(model.vocab_.tokens)
    assert "the" not in model.vocab_


# ----------------------------------------------------------------------- failures
def test_fit_config_errors(files, capsys):
    base = ["--train", files["train"], "--out", files["root"] / "never"]
    fails(capsys, ["fit", "no-such-config", *base], "unknown configuration 'no-such-config'", "dirichlet-trigram")
    fails(capsys, ["fit", files["root"] / "missing.toml", *base], "missing.toml")
    fails(capsys, ["fit", files["config"], *base, "--set", "bogus.key=1"], "unknown section 'bogus'")
    fails(capsys, ["fit", files["config"], *base, "--set", "model.colour=red"], "colour")
    fails(capsys, ["fit", files["config"], *base, "--set", "sampler.speed=3"], "sampler setting", "speed")
    fails(capsys, ["fit", files["config"], *base, "--set", "tokenizer.colour=red"], "colour")
    fails(capsys, ["fit", files["config"], *base, "--set", "prior.smoothing.dist=Gamma"], "smoothing")
    fails(capsys, ["fit", files["config"], *base, "--set", "draws=100"], "section.key=value")
    fails(capsys, ["fit", files["config"], *base, "--set", "model.order=0"], "order")
    bad_section = files["root"] / "bad-section.toml"
    bad_section.write_text(CONFIG + "\n[training]\nepochs = 3\n", encoding="utf-8")
    fails(capsys, ["fit", bad_section, *base], "unknown section", "training")
    bad_toml = files["root"] / "bad.toml"
    bad_toml.write_text("[model\norder = 2\n", encoding="utf-8")
    fails(capsys, ["fit", bad_toml, *base], "invalid TOML")
    assert not (files["root"] / "never").exists()


def test_fit_input_errors(files, capsys):
    out = files["root"] / "never"
    cfg = files["config"]
    fails(capsys, ["fit", cfg, "--train", files["root"] / "absent.txt", "--out", out], "absent.txt", "no such file")
    empty = files["root"] / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    fails(capsys, ["fit", cfg, "--train", empty, "--out", out], "empty.txt", "empty")
    bad = files["root"] / "latin1.txt"
    data = "the cat sat\nthe caf".encode() + b"\xe9" + b" was open\n"
    bad.write_bytes(data)
    offset = data.index(b"\xe9")
    fails(capsys, ["fit", cfg, "--train", bad, "--out", out], "latin1.txt", f"byte offset {offset}")
    assert not out.exists()


def test_fit_refuses_existing_out(files, fitted, capsys):
    out, _ = fitted
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    fails(capsys, ["fit", files["config"], "--train", files["train"], "--out", out, *SMALL], "exists", "--force")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_corrupt_model_directory(files, fitted, tmp_path, capsys):
    out, _ = fitted
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    data = (broken / "model.nc").read_bytes()
    (broken / "model.nc").write_bytes(data[: len(data) // 3])
    fails(capsys, ["evaluate", broken, "--test", files["test"]], "model.nc")
    fails(capsys, ["score", tmp_path / "nowhere"], "not a model directory")
    fails(capsys, ["evaluate", out, "--test", tmp_path / "absent.txt"], "absent.txt")
    fails(capsys, ["evaluate", out, "--test", files["test"], "--per-token", tmp_path / "no" / "dir" / "x.csv"],
          "does not exist")


def run_program(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_quiet_prints_nothing_but_results(files, fitted, tmp_path):
    """fit, report, generate and demo with --quiet: results on standard output, nothing on standard error."""
    out, _ = fitted
    runs = {
        "fit": program("fit", files["config"], "--train", files["train"], "--out", tmp_path / "m", *SMALL),
        "report": program("report", out, "--test", files["test"], "--out", tmp_path / "r.html", "--replicates", "2",
                          "--prompt", "the", "--quiet"),
        "generate": program("generate", out, "--prompt", "the", "--n", "2", "--seed", "1", "--quiet"),
        "demo": program("demo", "--draws", "20", "--quiet"),
        "demo, not quiet": program("demo", "--draws", "20"),
    }
    done = {name: (*p.communicate(timeout=300), p.returncode) for name, p in runs.items()}
    first_line = {"fit": "fitted dirichlet order 2", "report": "dirichlet order 2 on", "generate": "[1] draw",
                  "demo": "bayeslm demo: "}
    for name, start in first_line.items():
        stdout, stderr, code = done[name]
        assert (code, stderr) == (0, ""), f"{name} --quiet wrote to standard error: {stderr!r}"
        assert stdout.startswith(start), f"{name}: {stdout[:200]!r}"
    assert done["report"][0].splitlines()[-1].startswith(f"wrote {tmp_path / 'r.html'} and")
    assert "bits/token per draw" in done["demo"][0]
    assert done["demo"][0].splitlines()[-1].startswith("bits/character per draw")
    stdout, stderr, code = done["demo, not quiet"]
    assert code == 0 and "NUTS" in stderr and stdout.splitlines()[0] == done["demo"][0].splitlines()[0]  # the control


def test_program_exit_status_and_single_error_line(files, fitted, tmp_path):
    assert EXE.exists()
    result = run_program("fit", "no-such-config", "--train", files["train"], "--out", tmp_path / "m")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("bayeslm: error: unknown configuration")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr

    out, _ = fitted
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "arrays.npz").write_bytes(b"PK\x03\x04 truncated")
    result = run_program("evaluate", broken, "--test", files["test"])
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("bayeslm: error: ") and "arrays.npz" in result.stderr


# ----------------------------------------------------------------------- evaluate
def test_evaluate_json(files, fitted, capsys):
    out, _ = fitted
    capsys.readouterr()
    assert main(["evaluate", str(out), "--test", str(files["test"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert report["schema"] == "bayeslm.evaluate/2"
    sentences = words_of(TEST)
    words = sum(len(s) for s in sentences)
    oov = sum(w not in KNOWN for s in sentences for w in s)
    assert report["sentences"] == len(sentences) == 3
    assert report["tokens"] == words and report["positions"] == words + len(sentences)
    assert report["oov_rate"] == pytest.approx(oov / words)
    for key in ("cross_entropy_bits", "perplexity"):
        summary = report[key]
        assert set(summary) == {"mean", "hdi_low", "hdi_high", "hdi_prob"}
        assert summary["hdi_low"] <= summary["mean"] <= summary["hdi_high"]
        assert summary["hdi_prob"] == 0.94
    model = bayeslm.load(out)
    lp = model.predictive_log_prob(model.read(files["test"]))
    assert lp.size == report["positions"]
    bits = -lp.mean() / math.log(2)
    assert report["predictive_cross_entropy_bits"] == pytest.approx(bits, rel=1e-12)
    assert report["predictive_perplexity"] == pytest.approx(2**bits, rel=1e-12)
    per_draw = -model.token_log_prob(model.read(files["test"])).mean("position") / math.log(2)
    assert report["cross_entropy_bits"]["mean"] == pytest.approx(float(per_draw.mean()), rel=1e-12)
    assert report["perplexity"]["mean"] == pytest.approx(float((2.0**per_draw).mean()), rel=1e-12)

    assert main(["evaluate", str(out), "--test", str(files["test"]), "--hdi-prob", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cross_entropy_bits"]["hdi_prob"] == 0.5
    assert main(["evaluate", str(out), "--test", str(files["test"])]) == 0
    assert "predictive perplexity" in capsys.readouterr().out


def test_evaluate_per_token_csv(files, fitted, tmp_path, capsys):
    out, _ = fitted
    csv = tmp_path / "tokens.csv"
    assert main(["evaluate", str(out), "--test", str(files["test"]), "--per-token", str(csv)]) == 0
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns) == ["sentence", "index", "token", "oov", "log_prob_bits", "entropy_bits",
                                   "aleatoric_bits", "epistemic_bits", "characters",
                                   "bytes"]  # bits only; log10 on request
    sentences = words_of(TEST)
    assert len(table) == sum(len(s) + 1 for s in sentences)
    assert table["token"].tolist() == [t for s in sentences for t in
                                       [w if w in KNOWN else "<unk>" for w in s] + ["</s>"]]
    assert table["oov"].tolist() == [t == "<unk>" for s in sentences for t in
                                     [w if w in KNOWN else "<unk>" for w in s] + ["</s>"]]
    model = bayeslm.load(out)
    test = model.read(files["test"])
    lp = model.predictive_log_prob(test)
    np.testing.assert_allclose(table["log_prob_bits"], lp / math.log(2), rtol=1e-12)
    split = model.entropy_split(test)
    np.testing.assert_allclose(table["entropy_bits"], split["total"] / math.log(2), rtol=1e-12)
    np.testing.assert_allclose(table["aleatoric_bits"], split["aleatoric"] / math.log(2), rtol=1e-12)
    np.testing.assert_allclose(table["epistemic_bits"], table["entropy_bits"] - table["aleatoric_bits"], atol=1e-9)
    assert (table["epistemic_bits"] >= 0).all()
    assert main(["evaluate", str(out), "--test", str(files["test"]), "--per-token", str(csv), "--log10"]) == 0
    with_log10 = pd.read_csv(csv, keep_default_na=False)
    np.testing.assert_allclose(with_log10["log10_prob"], lp / math.log(10), rtol=1e-12)
    assert with_log10.drop(columns="log10_prob").equals(table)


# -------------------------------------------------------------------------- score
SCORE_INPUT = "the cat sat on the mat\n\na zebra sat\nthe big dog ran\n"
SCORE_LINES = [line for line in SCORE_INPUT.splitlines() if line.strip()]
SENTENCE_COLUMNS = ["sentence", "log_prob_bits", "log_prob_per_draw_mean_bits", "log_prob_hdi_low_bits",
                    "log_prob_hdi_high_bits", "mean_entropy_bits", "mean_aleatoric_bits", "mean_epistemic_bits",
                    "tokens", "positions", "oov", "characters", "bytes", "bits_per_character", "bits_per_byte",
                    "text"]
TOKEN_COLUMNS = ["sentence", "index", "token", "oov", "log_prob_bits", "entropy_bits", "aleatoric_bits",
                 "epistemic_bits", "characters", "bytes"]


def run_score(monkeypatch, capsys, out, *flags) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(SCORE_INPUT))
    capsys.readouterr()
    assert main(["score", str(out), *flags]) == 0
    return capsys.readouterr().out


def brute_force_scores(model, hdi_prob: float) -> list[dict]:
    """Per sentence, from the full (draw, position) array of token_log_prob: bits and HDI by arviz."""
    import arviz as az

    draws = model.token_log_prob(SCORE_LINES).values.reshape(model.n_samples, -1) / math.log(2)
    predictive = model.predictive_log_prob(SCORE_LINES) / math.log(2)
    split = model.entropy_split(SCORE_LINES) / math.log(2)
    rows, start = [], 0
    for words in words_of(SCORE_INPUT):
        stop = start + len(words) + 1
        per_draw = draws[:, start:stop].sum(axis=1)
        low, high = az.hdi(per_draw, hdi_prob=hdi_prob)
        rows.append({"log_prob_bits": predictive[start:stop].sum(), "log_prob_per_draw_mean_bits": per_draw.mean(),
                     "log_prob_hdi_low_bits": low, "log_prob_hdi_high_bits": high,
                     "mean_entropy_bits": split["total"][start:stop].mean(),
                     "mean_aleatoric_bits": split["aleatoric"][start:stop].mean(),
                     "mean_epistemic_bits": split["epistemic"][start:stop].mean()})
        start = stop
    return rows


def test_score_text(fitted, monkeypatch, capsys):
    out, _ = fitted
    lines = run_score(monkeypatch, capsys, out).splitlines()
    assert lines[0].split("\t") == SENTENCE_COLUMNS
    rows = [dict(zip(SENTENCE_COLUMNS, line.split("\t"))) for line in lines[1:]]
    sentences = words_of(SCORE_INPUT)
    assert len(rows) == len(sentences) == 3
    expected = brute_force_scores(bayeslm.load(out), 0.94)
    for row, words, want in zip(rows, sentences, expected):
        assert (int(row["tokens"]), int(row["positions"])) == (len(words), len(words) + 1)
        assert int(row["oov"]) == sum(w not in KNOWN for w in words)
        assert row["text"] == " ".join(w if w in KNOWN else "<unk>" for w in words)
        for column, value in want.items():
            assert float(row[column]) == pytest.approx(value, abs=1e-6), column
        assert float(row["log_prob_hdi_low_bits"]) < float(row["log_prob_hdi_high_bits"])
    # per token: one row per scored token; they add up to the sentence's score
    lines = run_score(monkeypatch, capsys, out, "--per-token").splitlines()
    assert lines[0].split("\t") == TOKEN_COLUMNS
    per_token = [dict(zip(TOKEN_COLUMNS, line.split("\t"))) for line in lines[1:]]
    assert len(per_token) == sum(len(s) + 1 for s in sentences)
    assert [r["token"] for r in per_token if r["sentence"] == "0"] == sentences[0] + ["</s>"]
    assert {r["oov"] for r in per_token if r["token"] == "<unk>"} == {"1"}
    for i, row in enumerate(rows):
        mine = [r for r in per_token if int(r["sentence"]) == i]
        assert sum(float(r["log_prob_bits"]) for r in mine) == pytest.approx(float(row["log_prob_bits"]),
                                                                             abs=1e-6 * (len(mine) + 1))
        assert np.mean([float(r["epistemic_bits"]) for r in mine]) == pytest.approx(
            float(row["mean_epistemic_bits"]), abs=1e-6)


def test_score_hdi_prob_and_log10(fitted, monkeypatch, capsys):
    out, _ = fitted
    narrow = json.loads(run_score(monkeypatch, capsys, out, "--json", "--hdi-prob", "0.5"))
    assert narrow["hdi_prob"] == 0.5
    for row, want in zip(narrow["rows"], brute_force_scores(bayeslm.load(out), 0.5)):
        assert row["log_prob_hdi_low_bits"] == pytest.approx(want["log_prob_hdi_low_bits"], abs=1e-9)
        assert row["log_prob_hdi_high_bits"] == pytest.approx(want["log_prob_hdi_high_bits"], abs=1e-9)
    lines = run_score(monkeypatch, capsys, out, "--log10").splitlines()
    header = lines[0].split("\t")
    assert header == SENTENCE_COLUMNS[:8] + ["log10_prob"] + SENTENCE_COLUMNS[8:]
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t")))
        assert float(row["log10_prob"]) == pytest.approx(float(row["log_prob_bits"]) * math.log10(2), abs=2e-6)
    lines = run_score(monkeypatch, capsys, out, "--per-token", "--log10").splitlines()
    assert lines[0].split("\t") == TOKEN_COLUMNS[:5] + ["log10_prob"] + TOKEN_COLUMNS[5:]


def test_score_json(fitted, monkeypatch, capsys):
    out, _ = fitted
    report = json.loads(run_score(monkeypatch, capsys, out, "--json"))
    assert report["schema"] == "bayeslm.score/2" and report["per_token"] is False
    assert report["units"] == "bits" and report["hdi_prob"] == 0.94
    sentences = report["rows"]
    assert list(sentences[0]) == SENTENCE_COLUMNS[:1] + ["text"] + SENTENCE_COLUMNS[1:-1]
    tokens_report = json.loads(run_score(monkeypatch, capsys, out, "--json", "--per-token"))
    tokens = tokens_report["rows"]
    assert tokens_report["per_token"] is True and list(tokens[0]) == TOKEN_COLUMNS
    assert len(tokens) == sum(r["positions"] for r in sentences)
    for i, row in enumerate(sentences):
        mine = [t for t in tokens if t["sentence"] == i]
        assert len(mine) == row["positions"]
        assert sum(t["log_prob_bits"] for t in mine) == pytest.approx(row["log_prob_bits"], abs=1e-12 * len(mine))
        assert sum(t["characters"] for t in mine) == row["characters"]
        assert row["bits_per_character"] == pytest.approx(-row["log_prob_bits"] / row["characters"], rel=1e-12)
    # the same numbers as the Python API's predictive log probabilities, and the brute force over draws
    model = bayeslm.load(out)
    lp = model.predictive_log_prob(SCORE_LINES) / math.log(2)
    np.testing.assert_allclose([t["log_prob_bits"] for t in tokens], lp, rtol=1e-13)
    for row, want in zip(sentences, brute_force_scores(model, 0.94)):
        for column, value in want.items():
            assert row[column] == pytest.approx(value, rel=1e-12, abs=1e-12), column
    assert "log10_prob" not in sentences[0]


def test_score_empty_input(fitted, monkeypatch, capsys):
    out, _ = fitted
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n   \n"))
    fails(capsys, ["score", out], "no sentences")


# ----------------------------------------------------------------- tokenize, models
def test_tokenize(files, fitted, capsys):
    out, _ = fitted
    capsys.readouterr()
    assert main(["tokenize", str(out), str(files["test"]), "--unk", "<oov>"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = [" ".join(w if w in KNOWN else "<oov>" for w in s) for s in words_of(TEST)]
    assert lines == expected
    assert "<oov>" in lines[1] and "<unk>" not in "".join(lines)
    assert main(["tokenize", str(out), str(files["test"])]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] == "<unk>"


def test_models(capsys):
    capsys.readouterr()
    assert main(["models"]) == 0
    listing = capsys.readouterr().out.splitlines()
    names = {line.split()[0]: line for line in listing}
    assert "dirichlet-trigram" in names and "dirichlet-bigram" in names
    assert "trigram" in names["dirichlet-trigram"].split(None, 1)[1].lower()
