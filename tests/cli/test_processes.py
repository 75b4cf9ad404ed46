"""Issue 18 with real processes: Ctrl-C, SIGTERM and kill -9 during sampling, two writers of
one --out, a real limit on file size, a really read-only folder, --quiet (after kill -9).

Each test runs ``python -m bayeslm fit`` on the tiny corpus with many draws (sampling would
take minutes) and acts once the two chain workers are running.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

import bayeslm
from cli_support import error_line, program
from sampling import ENDLESS, QUICK, cli_sets

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux")
LONG = [*cli_sets(ENDLESS), "--quiet"]


def fit(cli_files, out, *extra, prefix=()):
    return program("fit", cli_files["config"], "--train", cli_files["train"], "--out", out, *extra, prefix=prefix)


def _state(pid: int) -> str | None:
    """The state letter of a process (None if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def running(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")


def workers(pid: int) -> list[int]:
    """Children of ``pid`` forked from it (same command line): the chain workers."""
    try:
        mine = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            same = Path(f"/proc/{entry}/cmdline").read_bytes() == mine
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and same and running(int(entry)):
            found.append(int(entry))
    return found


def wait_for_workers(process, n: int = 2, timeout: float = 120.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = workers(process.pid)
        if len(found) >= n:
            return found
        if process.poll() is not None:
            pytest.fail(f"the fit ended before sampling: {process.communicate()}")
        time.sleep(0.2)
    process.kill()
    pytest.fail("the chain workers never started")


def all_gone(pids, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(running(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def finish(process, timeout: float = 60.0) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:
        process.kill()
        raise
    return process.returncode, out, err


# ----------------------------------------------------------------------------- interrupts
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "ctrl-c-while-tuning", "keep-partial-while-tuning"])
def test_an_interrupted_fit_exits_130_saves_nothing_and_stops_its_workers(cli_files, tmp_path, how):
    out = tmp_path / "model"
    tuning = ["--set", "sampler.tune=200000", "--set", "sampler.draws=10"] if how.endswith("tuning") else []
    keep = ["--keep-partial"] if how.startswith("keep-partial") else []  # no draws yet: nothing to keep
    process = fit(cli_files, out, *LONG, *tuning, *keep)
    pids = wait_for_workers(process)
    time.sleep(0.5)
    if how != "sigterm":  # the terminal signals the whole foreground process group
        os.killpg(process.pid, signal.SIGINT)
    else:  # a scheduler signals the command only
        os.kill(process.pid, signal.SIGTERM)
    code, stdout, stderr = finish(process)
    name = "SIGTERM" if how == "sigterm" else "SIGINT"
    assert code == 130 and stdout == ""
    assert stderr == f"bayeslm: interrupted ({name}); nothing was written\n"
    assert all_gone(pids)
    assert list(tmp_path.iterdir()) == []  # no model, no temporaries, no lock file


def test_workers_die_with_a_killed_parent(cli_files, tmp_path):
    process = fit(cli_files, tmp_path / "model", *LONG)
    pids = wait_for_workers(process)
    process.kill()  # kill -9: no handler runs in the parent
    process.wait()
    assert all_gone(pids), "chain workers outlived their parent"
    assert list(tmp_path.iterdir()) == [tmp_path / ".model.lock"]  # the kernel released the lock
    done = fit(cli_files, tmp_path / "model", *cli_sets(QUICK), "--quiet")
    code, stdout, stderr = finish(done)
    assert code == 0 and stderr == ""  # --quiet: nothing but the result (no PyMC log lines, no bars)
    assert stdout.startswith("fitted dirichlet order 2 on 44 tokens")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_keep_partial_saves_the_draws_so_far_and_marks_the_model(cli_files, tmp_path):
    out = tmp_path / "model"
    process = fit(cli_files, out, *LONG, "--keep-partial")
    pids = wait_for_workers(process)
    time.sleep(2.0)  # tuning (10 steps) is long over
    os.killpg(process.pid, signal.SIGINT)
    code, stdout, stderr = finish(process)
    assert code == 130 and stderr == f"bayeslm: interrupted (SIGINT); wrote {out} (partial draws)\n"
    assert "warning: partial fit: sampling was interrupted (SIGINT)" in stdout
    assert all_gone(pids)
    model = bayeslm.load(out)
    draws = model.idata["posterior"].sizes["draw"]
    assert 0 < draws < 200_000
    assert bayeslm.core.storage.partial_fit(model) == {
        "signal": "SIGINT", "draws": draws, "chains": 2, "requested_draws": 200_000, "requested_chains": 2}


# --------------------------------------------------------------------------- two writers
def test_a_second_fit_to_the_same_out_is_told_at_once(cli_files, tmp_path):
    out = tmp_path / "model"
    first = fit(cli_files, out, *LONG)
    wait_for_workers(first)
    start = time.monotonic()
    others = [fit(cli_files, out, *LONG, *extra) for extra in ([], ["--force"])]
    for other in others:
        code, _, stderr = finish(other)
        assert code == 2 and time.monotonic() - start < 60
        assert error_line(stderr) == (f"bayeslm: error: {out}: another bayeslm process (pid {first.pid}) is writing "
                                      "it; wait for it to finish or choose another output")
    os.killpg(first.pid, signal.SIGINT)
    assert finish(first)[0] == 130
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- real disks
def test_a_file_size_limit_while_saving_is_one_line_and_leaves_nothing(cli_files, tmp_path):
    out = tmp_path / "model"
    process = fit(cli_files, out, "--set", "sampler.draws=3000", "--set", "sampler.tune=10", "--quiet")
    wait_for_workers(process)
    limit = 40_000  # model.nc of 2 x 3,000 draws is larger; Python ignores SIGXFSZ, so writes fail with EFBIG
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit, limit))
    code, stdout, stderr = finish(process)
    assert code == 2, stderr  # not 139: HDF5 never meets the failing disk
    assert error_line(stderr) == f"bayeslm: error: {out}: File too large" and stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="as root, needs setpriv to give up the override of file permissions")
def test_a_read_only_folder_is_refused_before_the_fit(cli_files, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    without_override = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                        "--bounding-set=-dac_override,-dac_read_search"]
    start = time.monotonic()
    code, _, stderr = finish(fit(cli_files, locked / "model", *LONG, prefix=without_override))
    assert code == 2 and error_line(stderr) == f"bayeslm: error: {locked / 'model'}: Permission denied"
    assert time.monotonic() - start < 60  # long before 200,000 draws
    assert list(locked.iterdir()) == []
