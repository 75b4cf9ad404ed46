"""Model directories and file writes: manifest, type-checked attrs, all-or-nothing writes,
--force rules, one writer per target, leftovers of killed writers (issue 18)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bayeslm
from bayeslm import DirichletLM
from bayeslm.core import files, storage
from bayeslm.core.files import TargetBusyError, atomic_write_texts, check_writable_file, target_lock
from bayeslm.exceptions import BayesLMError, ConfigError, ModelFileError
from model_dirs import reseal, rewrite_attrs, writable_copy

MODEL_FILES = ["arrays.npz", "manifest.json", "model.nc", "tokenizer.json", "vocab.json"]


@pytest.fixture(scope="module")
def lm(dirichlet_lm):
    """The shared Dirichlet trigram (tests/conftest.py): any fitted model will do here."""
    return dirichlet_lm


@pytest.fixture(scope="module")
def saved(dirichlet_dir) -> Path:
    """Its model directory; never modify it (``copy`` is a writable copy)."""
    return dirichlet_dir


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    return writable_copy(saved, tmp_path)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- what is written -------------------------------------------------------------------
def test_every_file_has_the_usual_mode(lm, tmp_path):
    old = os.umask(0o022)
    try:
        out = lm.save(tmp_path / "model")
    finally:
        os.umask(old)
    assert sorted(p.name for p in out.iterdir()) == MODEL_FILES
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in out.iterdir()} == {n: "0o644" for n in MODEL_FILES}
    assert leftovers(tmp_path) == []


def test_the_manifest_lists_size_and_sha256_of_every_other_file(lm, saved):
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["family"] == "dirichlet" and manifest["format_version"] == storage.FORMAT_VERSION
    assert manifest["id"] == lm.id
    assert sorted(manifest["files"]) == [n for n in MODEL_FILES if n != "manifest.json"]
    for name, entry in manifest["files"].items():
        data = (saved / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_model_nc_holds_what_arviz_would_write(lm, saved):
    import arviz as az

    loaded = az.from_netcdf(saved / "model.nc")
    assert loaded.groups() == lm.idata.groups()
    for group in lm.idata.groups():
        mine = loaded[group].load()
        assert mine.equals(lm.idata[group])
        expected_attrs = {**lm.idata[group].attrs, **({"manifest_file": "manifest.json"} if group == "posterior" else {})}
        assert mine.attrs == expected_attrs
    assert "manifest_file" not in lm.idata["posterior"].attrs  # the model in memory is not changed by saving


# -- what load checks ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.nc", "vocab.json", "tokenizer.json", "arrays.npz"])
def test_a_changed_file_is_refused_and_named(copy, name):
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"{name}: changed since the model was saved"):
        bayeslm.load(copy)
    (copy / name).write_bytes(bytes(data[:-1]))  # and truncated
    with pytest.raises(ModelFileError, match=f"{name}: corrupt or truncated \\({len(data) - 1} bytes; "
                                             f"manifest.json: {len(data)}\\)"):
        bayeslm.load(copy)


@pytest.mark.parametrize("name", ["model.nc", "vocab.json", "tokenizer.json", "arrays.npz", "manifest.json"])
def test_a_deleted_file_is_refused_and_named(copy, name):
    (copy / name).unlink()
    with pytest.raises(ModelFileError, match=f"{name}: missing"):
        bayeslm.load(copy)


def test_a_file_added_beside_the_manifest_is_refused(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]["arrays.npz"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="arrays.npz: not listed in manifest.json"):
        bayeslm.load(copy)
    (copy / "manifest.json").write_text('{"format": "bayeslm-model-directory", "files": {"../etc/passwd": {}}}')
    with pytest.raises(ModelFileError, match="manifest.json"):
        bayeslm.load(copy)
    (copy / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match="manifest.json: not a bayeslm manifest"):
        bayeslm.load(copy)


@pytest.mark.parametrize("attr, value, what", [
    ("format_version", "abc", "a whole number"),
    ("format_version", 0, "a whole number >= 1"),
    ("config", "[1, 2]", "a JSON object"),
    ("config", "{not json", "a JSON object"),
    ("config", '{"model": 3}', "a JSON object of configuration sections"),
    ("model_type", 3, "a string"),
    ("id", 7, "a string"),
    ("vocab_fingerprint", 1.5, "a string"),
    ("fit_seconds", "fast", "a number"),
    ("training_tokens", -1, "a whole number >= 0"),
    ("mi_threshold_nats", float("nan"), "a number"),
    ("partial_fit", "[]", "a JSON object"),
])
def test_attrs_of_the_wrong_type_are_refused(copy, attr, value, what):
    rewrite_attrs(copy, **{attr: value})
    reseal(copy)  # consistent files: the attrs themselves are checked
    with pytest.raises(ModelFileError, match=f"model.nc: attribute '{attr}' must be {what}"):
        bayeslm.load(copy)


def test_a_tokenizer_switched_from_word_to_char_is_refused(copy):
    (copy / "tokenizer.json").write_text('{"kind": "char"}')
    reseal(copy)
    with pytest.raises(ModelFileError, match="tokenizer.json: a 'char' tokenizer, but the model was configured with "
                                             r"\{'kind': 'word'\}"):
        bayeslm.load(copy)


@pytest.mark.parametrize("key, shift", [("o2_ngram_key", 10**6), ("o2_context_key", 10**6), ("o1_ngram_key", -10**6)])
def test_arrays_with_ids_outside_the_vocabulary_are_refused(copy, key, shift):
    with np.load(copy / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays[key] = arrays[key].copy()
    arrays[key][-1 if shift > 0 else 0] += shift
    np.savez_compressed(copy / "arrays.npz", **arrays)
    reseal(copy)
    with pytest.raises(ModelFileError, match="arrays.npz: .*outside the vocabulary"):
        bayeslm.load(copy)


def test_a_changed_family_is_refused(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["family"] = "pitman-yor"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="names family 'pitman-yor', model.nc 'dirichlet'"):
        bayeslm.load(copy)


# -- --force -----------------------------------------------------------------------------
def test_force_never_replaces_an_ordinary_folder_or_a_file(lm, tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("chapter one")
    with pytest.raises(ConfigError, match="not a bayeslm model directory \\(it holds thesis.tex\\)"):
        lm.save(thesis, force=True)
    assert (thesis / "thesis.tex").read_text() == "chapter one"
    looks_like = tmp_path / "almost"  # model files and one of the user's
    shutil.copytree(lm.save(tmp_path / "m"), looks_like)
    (looks_like / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="it holds notes.txt"):
        lm.save(looks_like, force=True)
    a_file = tmp_path / "results.txt"
    a_file.write_text("numbers")
    with pytest.raises(ConfigError, match="results.txt is not a directory"):
        lm.save(a_file, force=True)
    assert a_file.read_text() == "numbers"
    assert leftovers(tmp_path) == []  # no .NAME.old, no temporaries, no lock files


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_force_replaces_a_model_directory_without_leftovers(lm, pitman_yor_dir, tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    out = writable_copy(pitman_yor_dir, tmp_path, "model")  # another model's directory
    lm.save(out, force=True)
    assert type(bayeslm.load(out)) is DirichletLM
    empty = tmp_path / "empty"
    empty.mkdir()
    lm.save(empty, force=True)
    assert type(bayeslm.load(empty)) is DirichletLM
    assert leftovers(tmp_path) == []


# -- failures while writing --------------------------------------------------------------
def test_a_full_disk_midway_leaves_nothing_and_names_the_directory(lm, saved, tmp_path, monkeypatch):
    written = []
    real = storage.atomic_write_bytes

    def fills_up(path, data):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        real(path, data)

    monkeypatch.setattr(storage, "atomic_write_bytes", fills_up)
    with pytest.raises(OSError, match="No space left on device") as caught:
        lm.save(tmp_path / "model")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "existing"
    shutil.copytree(saved, existing)
    before = {p.name: p.read_bytes() for p in existing.iterdir()}
    written.clear()
    with pytest.raises(OSError, match="No space left on device"):
        lm.save(existing, force=True)
    assert {p.name: p.read_bytes() for p in existing.iterdir()} == before
    assert leftovers(tmp_path) == []


def test_several_files_are_written_all_or_none(tmp_path, monkeypatch):
    page, data = tmp_path / "r.html", tmp_path / "r.json"
    page.write_text("old page")
    atomic_write_texts({data: "{}", page: "<p>new</p>"})
    assert page.read_text() == "<p>new</p>" and data.read_text() == "{}"
    calls = []
    real_fsync = os.fsync

    def full_disk(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", full_disk)  # the second file does not fit
    with pytest.raises(OSError, match="No space left") as caught:
        atomic_write_texts({data: '{"a": 1}', page: "<p>newer</p>"})
    assert caught.value.filename == str(page)
    monkeypatch.undo()
    assert page.read_text() == "<p>new</p>" and data.read_text() == "{}"
    real_replace = os.replace

    def second_rename_fails(src, dst):
        if Path(dst) == page:
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", second_rename_fails)
    with pytest.raises(OSError, match="Input/output error"):
        atomic_write_texts({data: '{"a": 2}', page: "<p>newest</p>"})
    monkeypatch.undo()
    assert page.read_text() == "<p>new</p>" and data.read_text() == "{}"  # the first one put back
    assert leftovers(tmp_path) == []


def test_check_writable_file_fails_early_with_the_reason(tmp_path):
    with pytest.raises(BayesLMError, match="directory .*missing does not exist"):
        check_writable_file(tmp_path / "missing" / "x.csv")
    (tmp_path / "plain").write_text("")
    with pytest.raises(BayesLMError, match="plain is not a directory"):
        check_writable_file(tmp_path / "plain" / "x.csv")
    with pytest.raises(IsADirectoryError, match="Is a directory"):
        check_writable_file(tmp_path)
    assert check_writable_file(tmp_path / "x.csv") == tmp_path / "x.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


# -- one writer at a time, leftovers of killed writers -----------------------------------------
HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_a_target_another_process_writes_is_refused_at_once(lm, tmp_path):
    out = tmp_path / "model"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / ".model.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TargetBusyError, match=f"another bayeslm process \\(pid {holder.pid}\\) is writing it"):
            lm.save(out)
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()
    lm.save(out)  # the lock died with its holder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_the_lock_is_reentrant_and_its_created_folders_go_when_nothing_was_written(lm, tmp_path):
    out = tmp_path / "a" / "b" / "model"
    with target_lock(out):
        assert (tmp_path / "a" / "b" / ".model.lock").exists()
        with target_lock(out):
            pass
        assert (tmp_path / "a" / "b" / ".model.lock").exists()
    assert list(tmp_path.iterdir()) == []  # the folders made for the lock are gone again
    with target_lock(out):
        lm.save(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["model"]
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="Not a directory: .*file"):
        with target_lock(tmp_path / "file" / "model"):
            pass


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write(lm, tmp_path):
    dead = dead_pid()
    stale_dir = tmp_path / f".model.{dead}.abcd1234.tmp"
    stale_dir.mkdir()
    (stale_dir / "model.nc").write_bytes(b"half")
    stale_file = tmp_path / f".model.{dead}.efgh5678.tmp"
    stale_file.write_bytes(b"half")
    live = tmp_path / f".model.{os.getppid()}.abcd1234.tmp"  # a running process: not ours to remove
    live.mkdir()
    other = tmp_path / ".model.notes.tmp"  # not a bayeslm name
    other.write_text("mine")
    lm.save(tmp_path / "model")
    assert not stale_dir.exists() and not stale_file.exists()
    assert live.exists() and other.exists()


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(lm, tmp_path):
    script = (f"import os, bayeslm, bayeslm.core.files as f\n"
              f"lm = bayeslm.load({str(Path(__file__).parent)!r} + '/../data/format1/dirichlet')\n"
              f"f.atomic_write_bytes = lambda path, data: os.kill(os.getpid(), 9)\n"
              f"import bayeslm.core.storage as s; s.atomic_write_bytes = f.atomic_write_bytes\n"
              f"lm.save({str(tmp_path / 'model')!r})\n")
    subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(Path(bayeslm.__file__).parents[1])},
                   timeout=120)
    assert [p.name.split(".")[1] for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == ["model"]
    time.sleep(0.1)
    lm.save(tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
