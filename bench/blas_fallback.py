"""Does bayeslm need a system BLAS? Whole-process fit times with and without one, side by side.

A pip-only install (no root for ``apt-get install libopenblas-dev``) leaves PyTensor without a
BLAS to link its C code against: it then computes matrix products in Python with numpy (which
carries its own OpenBLAS). This script times the same seeded fits in fresh processes with
PyTensor's BLAS as found on this machine and with ``blas__ldflags`` empty (what a pip-only
install gets), alternating the two, and prints the median of each and their ratio. It checks
that the two give the same posterior (same seed; the draws agree to round-off).

Run: ``.venv/bin/python bench/blas_fallback.py [--repeats 3] [--out bench/out/blas_fallback.json]``
(needs no shared data: the demo corpus and synthetic last-layer features).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

WORKLOADS = {
    "dirichlet-trigram (demo corpus, 2 x 1000 draws)": """
import bayeslm as blm
train, test = blm.demo_corpus().split(0.9, random_seed=0)
lm = blm.DirichletLM(order=3, min_count=2, sampler_config={"draws": 1000, "tune": 1000, "progressbar": False})
lm.fit(train, random_seed=1)
draws = lm.idata["posterior"]["concentration"].values
""",
    "pitman-yor-trigram ikn (demo corpus, 2 x 1000 draws)": """
import bayeslm as blm
train, test = blm.demo_corpus().split(0.9, random_seed=0)
lm = blm.PitmanYorLM(order=3, min_count=2, inference="ikn", sampler_config={"draws": 1000, "tune": 500, "progressbar": False})
lm.fit(train, random_seed=1)
draws = lm.idata["posterior"]["discount"].values
""",
    "last layer NUTS (2,000 x 32 features, 40 classes, 1 x 300 draws)": """
import numpy as np
import bayeslm as blm
rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 32)); W = rng.normal(size=(32, 40)) / 4
y = np.array([rng.choice(40, p=np.exp(r) / np.exp(r).sum()) for r in X @ W])
bll = blm.BayesianLastLayer(method="nuts", draws=300, random_seed=1, sampler_config={"tune": 300, "chains": 1, "cores": 1, "progressbar": False})
bll.fit(X, y)
draws = bll.theta_draws()
""",
}

PROBE = """
import time, warnings, json, sys
t0 = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
{body}
import numpy as np, pytensor
print(json.dumps({{"inner_seconds": time.perf_counter() - t0, "ldflags": pytensor.config.blas__ldflags,
                  "blas_warning": any("could not link to a BLAS" in str(w.message) for w in caught),
                  "checksum": float(np.asarray(draws, dtype=float).sum())}}))
"""


def run(body: str, ldflags: str | None) -> dict:
    env = dict(os.environ)
    if ldflags is not None:
        env["PYTENSOR_FLAGS"] = f"blas__ldflags={ldflags}"
    code = PROBE.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"workload failed:\n{done.stderr[-2000:]}")
    return {"wall_seconds": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results = {}
    for name, body in WORKLOADS.items():
        for ldflags in (None, ""):  # warm the compile caches of both variants
            run(body, ldflags)
        rows = {"system BLAS": [], "no BLAS (pip-only)": []}
        for _ in range(args.repeats):
            rows["system BLAS"].append(run(body, None))
            rows["no BLAS (pip-only)"].append(run(body, ""))
        med = {k: sorted(r["wall_seconds"] for r in v)[len(v) // 2] for k, v in rows.items()}
        same = abs(rows["system BLAS"][0]["checksum"] - rows["no BLAS (pip-only)"][0]["checksum"]) \
            <= 1e-6 * max(1.0, abs(rows["system BLAS"][0]["checksum"]))
        results[name] = {"median_wall_seconds": med, "ratio_no_blas_over_blas": med["no BLAS (pip-only)"] / med["system BLAS"],
                         "same_draws": same, "runs": rows}
        print(f"\n{name}")
        for k, v in rows.items():
            runs = ", ".join(f"{r['wall_seconds']:.2f}" for r in v)
            print(f"  {k:20s} whole process median {med[k]:6.2f} s  (runs: {runs}; "
                  f"ldflags {v[0]['ldflags']!r}; BLAS warning: {v[0]['blas_warning']})")
        print(f"  ratio no-BLAS / BLAS: {results[name]['ratio_no_blas_over_blas']:.2f}x; same draws: {same}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
