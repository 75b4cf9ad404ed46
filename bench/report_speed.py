"""Wall time and peak memory of `bayeslm report` on the Shakespeare trigram.

Fits `dirichlet-trigram` once on ../shared/data/shakespeare/train into a work directory
(reused on later runs), then times, in a fresh process,

    bayeslm report WORK/trigram --test ../shared/data/shakespeare/test --out WORK/report.html

and reads that process' peak resident memory from the kernel (wait4). Targets: under 60 s
and under 2 GB. With --train the report is also timed with `--train` (posterior predictive
checks against the training text, 20 replicates of its 120k sentences).

    python bench/report_speed.py [--work DIR] [--refit] [--train] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "shakespeare"
BAYESLM = [sys.executable, "-m", "bayeslm"]
MAX_SECONDS = 60.0
MAX_BYTES = 2 * 1024**3


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stdout + stderr) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    output = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{output}")
    return seconds, usage.ru_maxrss * 1024, output  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(REPO / "bench" / "out" / "report_speed"), help="work directory")
    parser.add_argument("--refit", action="store_true", help="fit again even if WORK/trigram exists")
    parser.add_argument("--train", action="store_true", help="also time a report checked against the training text")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (the shared data beside the repository); absent here")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "trigram"
    if args.refit or not (model / "model.nc").is_file():
        fit_s, _, _ = timed([*BAYESLM, "fit", "dirichlet-trigram", "--train", str(DATA / "train"), "--out", str(model),
                             "--quiet", "--seed", "1", "--force"])
        print(f"fitted {model} in {fit_s:.1f} s")
    runs = [("report", [])]
    if args.train:
        runs.append(("report --train", ["--train", str(DATA / "train")]))
    results, ok = {}, True
    for name, extra in runs:
        out = work / ("report.html" if not extra else "report_train.html")
        seconds, peak, output = timed([*BAYESLM, "report", str(model), "--test", str(DATA / "test"),
                                       "--out", str(out), *extra])
        data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
        passed = seconds < MAX_SECONDS and peak < MAX_BYTES
        ok &= passed
        results[name] = {"seconds": seconds, "peak_rss_bytes": peak, "scored_positions": data["test"]["positions"],
                         "vocabulary": data["model"]["vocabulary_size"], "html_bytes": out.stat().st_size,
                         "timing_seconds": data["timing_seconds"], "pass": passed}
        print(f"{name}: {seconds:.1f} s, peak RSS {peak / 1024**3:.2f} GB, {data['test']['positions']} scored positions, "
              f"vocabulary {data['model']['vocabulary_size']}, page {out.stat().st_size / 1e6:.1f} MB  "
              f"[{'PASS' if passed else 'FAIL'}: < {MAX_SECONDS:.0f} s and < {MAX_BYTES / 1024**3:.0f} GB]")
        inside = ", ".join(f"{k} {v:.1f} s" for k, v in data["timing_seconds"].items())
        print(f"  inside report(): {inside}")
        print("  " + output.strip().replace("\n", "\n  "))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
