"""Helpers shared by the bench scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def git_state() -> dict:
    """Commit of the repository and whether the package has uncommitted changes (for the JSON)."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "bayeslm", "models"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return {"commit": commit or None, "package_dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "package_dirty": None}


def word_counts(data: Path, order: int):
    """N-gram counts of ``data/train`` as the Pitman-Yor configurations read it (word tokens,
    min count 2), or exit 2 saying the shared data are missing."""
    if not (Path(data) / "train").is_dir():
        print(f"needs {data}/train (the shared data beside the repository)", file=sys.stderr)
        raise SystemExit(2)
    import bayeslm as blm
    from bayeslm.counting.counts import count

    train = blm.Corpus.from_paths(Path(data) / "train", tokenizer=blm.WordTokenizer())
    train = train.with_vocabulary(blm.Vocabulary.build(train.type_counts(), min_count=2))
    return count(train, order)


class TreeMonitor(threading.Thread):
    """Peak PSS and peak RSS of a process and its descendants, each summed at one instant, at 10 Hz."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        import psutil

        self.psutil, self.root, self.interval = psutil, psutil.Process(pid), interval
        self.stop_event = threading.Event()
        self.peak = 0
        self.peak_pss = 0
        self.polls = 0

    def run(self) -> None:
        ps = self.psutil
        while not self.stop_event.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except (ps.NoSuchProcess, ps.ZombieProcess):
                procs = []
            self.polls += 1
            total = total_pss = 0
            for p in procs:
                try:
                    full = p.memory_full_info()  # smaps_rollup: RSS and PSS of one instant
                    total += full.rss
                    total_pss += full.pss
                except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
                    continue
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, total_pss)
            self.stop_event.wait(self.interval)


def run(cmd: list[str], stdout=subprocess.PIPE) -> dict:
    """Run ``cmd`` to its exit: wall seconds from start to exit, peak tree PSS / RSS (polled)
    and the kernel's high-water mark of its resident memory (``wait4``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    mon = TreeMonitor(proc.pid)
    mon.start()
    streams = {}
    readers = [threading.Thread(target=lambda name=name, fh=fh: streams.__setitem__(name, fh.read()))
               for name, fh in (("stdout", proc.stdout), ("stderr", proc.stderr)) if fh is not None]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    _, status, usage = os.wait4(proc.pid, 0)  # reaps it: Popen.wait would lose the rusage
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    mon.stop_event.set()
    mon.join()
    out, err = streams.get("stdout", ""), streams.get("stderr", "")
    if proc.returncode != 0:
        sys.exit(f"{Path(sys.argv[0]).stem}: failed (exit {proc.returncode}): {' '.join(cmd)}\n{(err or '')[-3000:]}")
    return {"seconds": seconds, "stdout": out or "", "stderr": err or "", "peak_mb": mon.peak / MB,
            "peak_pss_mb": mon.peak_pss / MB, "maxrss_mb": usage.ru_maxrss / 1024, "polls": mon.polls}
