"""Issue 18, in-process: nothing lost, nothing destroyed, nothing cryptic.

Every case of the issue that needs no real signal or second process: --force on folders
that are not models, unwritable outputs found before the work, full disks, corrupt or
altered model directories, limits, standard input, control characters, file modes,
partial models. (tests/cli/test_processes.py: interrupts, kill -9, races, real disks.)
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

import bayeslm
from bayeslm.cli import main
from bayeslm.core import files
from bayeslm.core.base import BayesianLM
from cli_support import fails
from model_dirs import reseal, rewrite_attrs
from sampling import QUICK, cli_sets

RAW_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def fit_args(cli_files, out, *extra):
    return ["fit", cli_files["config"], "--train", cli_files["train"], "--out", out, "--quiet",
            *cli_sets(QUICK), *extra]


@pytest.fixture
def no_fit(monkeypatch):
    """Fitting fails the test: the error must come before it."""
    def fit(self, *args, **kwargs):
        raise AssertionError("the fit started before the output was checked")
    monkeypatch.setattr(BayesianLM, "fit", fit)


@pytest.fixture
def no_load(monkeypatch):
    """Loading a model fails the test: the error must come before it."""
    def load(path):
        raise AssertionError("the model was loaded before the output was checked")
    monkeypatch.setattr("bayeslm.core.base.load", load)


@pytest.fixture
def read_only(monkeypatch):
    """Make folders refuse new entries (EACCES), as a read-only folder does for a user; call it with the folder."""
    folders: list[Path] = []
    real_open, real_mkdir = os.open, os.mkdir

    def refused(path) -> bool:
        return isinstance(path, (str, Path)) and Path(os.path.abspath(path)).parent in folders

    def open_(path, flags, mode=0o777, *, dir_fd=None):
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR) and refused(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def mkdir(path, mode=0o777, *, dir_fd=None):
        if refused(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)
    return lambda folder: folders.append(Path(os.path.abspath(folder)))


def disk_full_after(monkeypatch, n_files: int, code: int = errno.ENOSPC) -> None:
    """The disk fills up while the (n_files + 1)-th file is written (its fsync fails)."""
    calls = []
    real = os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) > n_files:
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------- --force
def test_force_refuses_an_ordinary_folder_and_a_file(cli_files, tmp_path, capsys, no_fit):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\chapter{One}")
    fails(capsys, fit_args(cli_files, thesis, "--force"), "not a bayeslm model directory", "thesis.tex")
    assert (thesis / "thesis.tex").read_text() == "\\chapter{One}"
    regular = tmp_path / "results.csv"
    regular.write_text("a,b\n")
    fails(capsys, fit_args(cli_files, regular, "--force"), "results.csv is not a directory")
    assert regular.read_text() == "a,b\n"
    assert hidden(tmp_path) == []  # no .NAME.old, no lock, no temporaries


def test_force_replaces_a_model_directory(cli_files, tiny_model, tmp_path, capsys):
    out = tmp_path / "model"
    shutil.copytree(tiny_model, out)
    before = (out / "model.nc").read_bytes()
    assert main([str(a) for a in fit_args(cli_files, out, "--force", "--seed", "9")]) == 0
    assert (out / "model.nc").read_bytes() != before
    assert bayeslm.load(out).idata["posterior"].sizes["draw"] == QUICK["draws"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


# ------------------------------------------------------------- outputs checked before the work
def test_an_unwritable_out_fails_before_the_fit(cli_files, tmp_path, capsys, read_only, no_fit):
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    fails(capsys, fit_args(cli_files, locked / "model"), str(locked / "model"), "Permission denied")
    (tmp_path / "afile").write_text("")
    fails(capsys, fit_args(cli_files, tmp_path / "afile" / "model"), "afile: Not a directory")
    fails(capsys, fit_args(cli_files, tmp_path / "afile" / "deeper" / "model"), "afile: Not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "locked"] and list(locked.iterdir()) == []


def test_report_csv_and_arpa_outputs_are_checked_before_loading(cli_files, tiny_model, tmp_path, capsys, read_only,
                                                                no_load):
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    test = cli_files["test"]
    fails(capsys, ["evaluate", tiny_model, "--test", test, "--per-token", locked / "t.csv"], "Permission denied")
    fails(capsys, ["report", tiny_model, "--test", test, "--out", locked / "r.html"], "Permission denied")
    fails(capsys, ["export", tiny_model, "--arpa", locked / "m.arpa"], "Permission denied")
    (tmp_path / "afile").write_text("")
    fails(capsys, ["export", tiny_model, "--arpa", tmp_path / "afile" / "m.arpa"], "afile is not a directory")
    fails(capsys, ["evaluate", tiny_model, "--test", test, "--per-token", tmp_path], "Is a directory")
    assert list(locked.iterdir()) == []


# --------------------------------------------------------------------------------- full disk
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_a_full_disk_while_saving_the_fit_leaves_nothing(cli_files, tmp_path, capsys, monkeypatch, code):
    disk_full_after(monkeypatch, 2, code)
    out = tmp_path / "model"
    fails(capsys, fit_args(cli_files, out), f"{out}: {os.strerror(code)}")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_writing_csv_report_or_arpa_leaves_nothing(cli_files, tiny_model, tmp_path, capsys,
                                                                       monkeypatch):
    test = cli_files["test"]
    disk_full_after(monkeypatch, 0)
    fails(capsys, ["evaluate", tiny_model, "--test", test, "--per-token", tmp_path / "t.csv"], "t.csv: No space left")
    fails(capsys, ["export", tiny_model, "--arpa", tmp_path / "m.arpa"], "m.arpa: No space left")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "r.json").write_text("old")
    monkeypatch.undo()
    disk_full_after(monkeypatch, 1)  # the JSON fits, the page does not
    fails(capsys, ["report", tiny_model, "--test", test, "--out", tmp_path / "r.html"], "r.html: No space left")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"] and (tmp_path / "r.json").read_text() == "old"


def test_outputs_get_the_usual_file_mode(cli_files, tiny_model, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert main(["evaluate", str(tiny_model), "--test", str(cli_files["test"]),
                     "--per-token", str(tmp_path / "t.csv")]) == 0
        assert main(["export", str(tiny_model), "--arpa", str(tmp_path / "m.arpa")]) == 0
    finally:
        os.umask(old)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in tmp_path.iterdir()} == {
        "t.csv": "0o644", "m.arpa": "0o644"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in tiny_model.iterdir()} == {"0o644"}


# ---------------------------------------------------------------- model directories altered
def altered(tiny_model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "altered"
    shutil.copytree(tiny_model, target)
    return target


@pytest.mark.parametrize("change, fragment", [
    ({"format_version": "abc"}, "attribute 'format_version' must be a whole number"),
    ({"config": "[1, 2, 3]"}, "attribute 'config' must be a JSON object"),
    ({"fit_seconds": "slow"}, "attribute 'fit_seconds' must be a number"),
])
def test_attrs_of_the_wrong_type_are_one_line(cli_files, tiny_model, tmp_path, capsys, change, fragment):
    target = altered(tiny_model, tmp_path)
    rewrite_attrs(target, **change)
    fails(capsys, ["evaluate", target, "--test", cli_files["test"]], "model.nc: ", "manifest.json")
    reseal(target)
    fails(capsys, ["evaluate", target, "--test", cli_files["test"]], fragment)


def test_a_switched_tokenizer_and_keys_outside_the_vocabulary_are_refused(cli_files, tiny_model, tmp_path, capsys):
    target = altered(tiny_model, tmp_path)
    (target / "tokenizer.json").write_text('{"kind": "char"}')
    fails(capsys, ["evaluate", target, "--test", cli_files["test"]], "tokenizer.json: changed")
    reseal(target)
    fails(capsys, ["evaluate", target, "--test", cli_files["test"]], "tokenizer.json: a 'char' tokenizer")
    shutil.rmtree(target)
    target = altered(tiny_model, tmp_path)
    with np.load(target / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["o2_ngram_key"] = arrays["o2_ngram_key"] + 10**7
    np.savez_compressed(target / "arrays.npz", **arrays)
    reseal(target)
    fails(capsys, ["score", target], "arrays.npz", "outside the vocabulary")


# ------------------------------------------------------------------------------- limits
@pytest.mark.parametrize("argv, fragment", [
    (["generate", "M", "--n", "1e12"], "argument --n: must be a whole number in 1..100, got '1e12'"),
    (["generate", "M", "--n", "1000000000000"], "in 1..100"),
    (["generate", "M", "--n", "0"], "in 1..100"),
    (["generate", "M", "--max-tokens", "20000"], "argument --max-tokens: must be a whole number in 1..2000"),
    (["generate", "M", "--temperature", "nan"], "argument --temperature: must be a number in (0, 1e+06]"),
    (["generate", "M", "--top-p", "0"], "argument --top-p"),
    (["evaluate", "M", "--test", "t", "--hdi-prob", "1.5"], "argument --hdi-prob: must be a number in (0, 1)"),
    (["fit", "c", "--train", "t", "--out", "o", "--seed", "-1"], "argument --seed"),
    (["demo", "--order", "11"], "argument --order: must be a whole number in 1..10"),
    (["report", "M", "--test", "t", "--out", "o.html", "--replicates", "100000"], "--replicates"),
    (["evaluate"], "the following arguments are required"),
    (["frobnicate"], "invalid choice"),
])
def test_out_of_range_arguments_are_one_line(capsys, argv, fragment):
    fails(capsys, argv, fragment)


def test_the_order_of_an_ngram_model_is_limited(cli_files, tmp_path, capsys, no_fit):
    fails(capsys, fit_args(cli_files, tmp_path / "m", "--set", "model.order=11"),
          "model.order must be a whole number in 1..10 (got 11)")


# ------------------------------------------------------------------------ standard input
def test_invalid_utf8_on_standard_input_is_refused(tiny_model, capsys, monkeypatch):
    data = "the cat sat\nthe caf".encode() + b"\xe9 was open\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape"))
    offset = data.index(b"\xe9")
    fails(capsys, ["score", tiny_model], f"standard input: invalid UTF-8 at byte offset {offset}")
    monkeypatch.setattr(sys, "stdin", io.StringIO("the caf\udce9\n"))  # already decoded with surrogateescape
    fails(capsys, ["score", tiny_model], "standard input: invalid UTF-8")


# -------------------------------------------------------------------- control characters
ESCAPES = ["the \x1b]0;pwned\x07 cat sat", "a \x1b[2J dog ran", "the \u202eevil\u202c cat ran", "a ca\x08t sat"]


@pytest.fixture(scope="module")
def escape_model(tmp_path_factory) -> Path:
    """Its own fit: a vocabulary of tokens holding terminal control sequences."""
    root = tmp_path_factory.mktemp("escapes")
    (root / "train.txt").write_text("\n".join(ESCAPES * 3) + "\n")
    out = root / "model"
    assert main(["fit", "dirichlet-bigram", "--train", str(root / "train.txt"), "--out", str(out), "--quiet",
                 "--set", "tokenizer.kind=whitespace", "--set", "tokenizer.min_count=1",
                 *cli_sets(QUICK)]) == 0
    return out


def test_terminal_output_escapes_control_characters(escape_model, capsys, monkeypatch):
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(ESCAPES) + "\n"))
    assert main(["score", str(escape_model), "--per-token"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(ESCAPES) + "\n"))
    assert main(["score", str(escape_model)]) == 0
    assert main(["tokenize", str(escape_model), str(escape_model.parent / "train.txt")]) == 0
    assert main(["generate", str(escape_model), "--n", "30", "--seed", "1", "--no-color"]) == 0
    printed = capsys.readouterr().out
    assert RAW_CONTROL.sub("", printed.replace("\n", "")) == printed.replace("\n", "")  # nothing a terminal obeys
    for shown in ("\\x1b]0;pwned\\x07", "\\x1b[2J", "\\u202eevil\\u202c", "ca\\x08t"):
        assert shown in printed
    assert "\t\\x1b]0;pwned\\x07\t" in printed  # score --per-token: one escaped token per row


def test_colored_generation_escapes_the_tokens_but_keeps_its_colors(escape_model):
    from bayeslm.core.generation import format_terminal

    model = bayeslm.load(escape_model)
    shown = format_terminal(model.generate("the", n=30, max_tokens=8, random_seed=2), color=True)
    assert "\x1b[48;5;" in shown  # the shading is the formatter's own
    assert RAW_CONTROL.search(re.sub(r"\x1b\[[0-9;]*m", "", shown).replace("\n", "")) is None


def test_json_output_needs_no_escaping(escape_model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(ESCAPES) + "\n"))
    capsys.readouterr()
    assert main(["score", str(escape_model), "--per-token", "--json"]) == 0
    printed = capsys.readouterr().out
    assert RAW_CONTROL.search(printed.replace("\n", "")) is None
    assert "\x1b]0;pwned\x07" in [row["token"] for row in json.loads(printed)["rows"]]


# ------------------------------------------------------------------------- partial models
def test_evaluate_flags_a_model_saved_from_an_interrupted_fit(cli_files, tiny_model, tmp_path, capsys):
    from bayeslm.core.storage import mark_partial_fit

    model = bayeslm.load(tiny_model)
    mark_partial_fit(model.idata, signal="SIGINT", draws=100, chains=2, requested_draws=1000, requested_chains=2)
    model.save(tmp_path / "partial")
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "partial"), "--test", str(cli_files["test"])]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "warning: partial fit: sampling was interrupted (SIGINT) after 100 of 1000 draws per chain; "
        "results are unreliable")
    assert main(["evaluate", str(tmp_path / "partial"), "--test", str(cli_files["test"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["partial_fit"] == {
        "signal": "SIGINT", "draws": 100, "chains": 2, "requested_draws": 1000, "requested_chains": 2}
    assert main(["evaluate", str(tiny_model), "--test", str(cli_files["test"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["partial_fit"] is None
    assert main(["report", str(tmp_path / "partial"), "--test", str(cli_files["test"]),
                 "--out", str(tmp_path / "r.html"), "--replicates", "2"]) == 0
    assert capsys.readouterr().out.startswith("warning: partial fit")


# ------------------------------------------------------------------------- unforeseen errors
def test_an_unforeseen_error_is_one_line_too(tiny_model, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(BayesianLM, "evaluate", broken)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(tiny_model), "--test", str(tiny_model / "vocab.json")])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayeslm: error: internal error (TypeError: unsupported operand)")
    monkeypatch.setenv("BAYESLM_TRACEBACK", "1")
    with pytest.raises(TypeError, match="unsupported operand"):
        main(["evaluate", str(tiny_model), "--test", str(tiny_model / "vocab.json")])
