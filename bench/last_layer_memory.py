"""Peak memory and time of the Bayesian last layer's Laplace fit at the gpt-bpe-bll shape, on synthetic features.

What it measures
----------------
``bayeslm fit gpt-bpe-bll`` fits :class:`bayeslm.BayesianLastLayer` on 50,000 fitting positions
(features d = 128, plus the constant column: D = 129) for V = 2,000 BPE tokens, with 20,000
validation positions: ``method="laplace"``, ``hessian="auto"`` (EKFAC at this size),
``prior_scale="evidence"`` (``--prior-scale auto``: the selection rule), ``prior_mean="auto"``
(the head given as ``init`` calibrated on the validation positions) and 200 draws
(models/gpt-bpe-bll.toml, bayeslm/neural/gpt.py). After the
fit the model stores its generator's flag threshold from the ``entropy_split`` of its validation
text (bayeslm/core/base.py), then ``evaluate`` reads ``log_prob_draws``. This script builds
features of that shape (standard normal, as LayerNorm gives), a random softmax head with Zipf-like
biases, targets drawn from it, and a "trained" head (the true one 20% over-confident plus noise of
sd ``--head-noise``, so the data pull the mode away and Newton takes several steps) given as ``init``, and runs in a fresh process per code tree:

1. ``fit``: ``BayesianLastLayer(...).fit(X, y, valid=(Xv, yv), init=head)``;
2. ``entropy_split``: on the validation positions (``--entropy-positions``);
3. ``log_prob_draws``: every chunk of the same positions, summed.

Per stage: the peak resident memory of the process (the kernel's high-water mark, VmHWM, reset
at the stage's start through /proc/self/clear_refs), the resident memory before the stage, wall
time, and where the main thread was when a 2 ms sampler of the RSS saw its highest value (the
innermost frames of bayeslm). A few fitted figures (alpha, log evidence, the rule's factor, the
draws' and the entropy's sums) are printed so runs of two code trees can be compared.

Run
---
    /work/main/.venv/bin/python bench/last_layer_memory.py [--code /work/main --code .] [--positions 50000]
        [--valid-positions 20000] [--classes 2000] [--features 128] [--draws 200] [--entropy-positions 4096]
        [--head-noise 0.1] [--prior-scale evidence|auto]
        [--stages fit entropy_split log_prob_draws] [--out FILE.json]

``--code DIR`` (repeatable): run the stages with ``PYTHONPATH=DIR`` (default: this repository).
Needs no shared data. OMP_NUM_THREADS=1 is set for the children.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import git_state  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


# ------------------------------------------------------------------------- the child
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class _Sampler(threading.Thread):
    """RSS every ``interval`` s; at each new peak, the main thread's innermost bayeslm frames."""

    def __init__(self, interval: float = 0.002):
        super().__init__(daemon=True)
        self.interval, self.main = interval, threading.main_thread().ident
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.stop_event = threading.Event()
        self.reset()

    def reset(self):
        self.peak, self.where = 0, ""

    def run(self):
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        while not self.stop_event.is_set():
            rss = int(os.pread(fd, 100, 0).split()[1]) * self.page
            if rss > self.peak:
                self.peak = rss
                frame, names = sys._current_frames().get(self.main), []
                while frame is not None and len(names) < 4:
                    if "bayeslm" in frame.f_code.co_filename:
                        names.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
                    frame = frame.f_back
                self.where = " < ".join(names)
            time.sleep(self.interval)


def _data(args):
    import numpy as np

    rng = np.random.default_rng(args.seed)
    V, d = args.classes, args.features
    W = rng.normal(0.0, 0.25, (V, d))  # logits' sd about 2.8 across tokens
    b = -1.1 * np.log(np.arange(1, V + 1)) + rng.normal(0.0, 0.3, V)  # Zipf-like token frequencies

    def positions(n):
        X = rng.standard_normal((n, d)).astype(np.float32)
        y = np.empty(n, dtype=np.int64)
        for start in range(0, n, 2000):  # Gumbel-max: a draw of softmax(W x + b) per position
            Z = X[start:start + 2000] @ W.T.astype(np.float32) + b.astype(np.float32)
            y[start:start + 2000] = np.argmax(Z - np.log(-np.log(rng.random(Z.shape))), axis=1)
        return X, y

    X, y = positions(args.positions)
    Xv, yv = positions(args.valid_positions)
    head = (1.2 * W + rng.normal(0.0, args.head_noise, W.shape), 1.2 * b)  # over-confident, and off
    return X, y, Xv, yv, head


def child(args) -> None:
    import numpy as np

    sampler = _Sampler()
    sampler.start()
    X, y, Xv, yv, head = _data(args)
    from bayeslm import BayesianLastLayer
    import bayeslm

    out = {"bayeslm": str(Path(bayeslm.__file__).parents[1]), "stages": {}}
    bll = BayesianLastLayer(method="laplace", hessian="auto", prior_scale=args.prior_scale, prior_mean="auto",
                            draws=args.draws, random_seed=args.seed)
    Xe, ye = Xv[:args.entropy_positions], yv[:args.entropy_positions]

    def stage(name, fn):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        before = _status_kb("VmRSS") / 1024
        sampler.reset()
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        out["stages"][name] = {"seconds": seconds, "rss_before_mb": before, "peak_mb": _status_kb("VmHWM") / 1024,
                               "sampled_peak_mb": sampler.peak / MB, "peak_at": sampler.where}
        return result

    if "fit" in args.stages:
        stage("fit", lambda: bll.fit(X, y, n_classes=args.classes, valid=(Xv, yv), init=head))
        fit = bll.laplace_
        out["figures"] = {"alpha": fit.alpha, "log_evidence": fit.log_evidence, "sample_alpha": fit.sample_alpha,
                          "rule_factor": bll.rule_.covariance_factor if bll.rule_ else None,
                          "rule_nll_bits": {str(k): v for k, v in (bll.rule_.valid_nll_bits if bll.rule_ else {}).items()},
                          "mode_abs_sum": float(np.abs(fit.theta).sum()),
                          "draws_sum": float(bll.theta_draws().sum()),
                          "gradient_evaluations": bll.info_.get("gradient_evaluations"),
                          "ggn_products": bll.info_.get("ggn_products"), "fit_seconds": bll.fit_seconds_}
        del fit
    if "entropy_split" in args.stages:
        split = stage("entropy_split", lambda: bll.entropy_split(Xe))
        out["figures"]["entropy_sums"] = {k: float(split[k].sum()) for k in split.columns}
    if "log_prob_draws" in args.stages:
        total = stage("log_prob_draws", lambda: sum(float(lp.sum()) for _, lp in bll.log_prob_draws(Xe, ye)))
        out["figures"]["log_prob_draws_sum"] = total
    sampler.stop_event.set()
    out["peak_mb"] = max(s["peak_mb"] for s in out["stages"].values())
    print("RESULT " + json.dumps(out))


# ------------------------------------------------------------------------- the parent
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code", action="append", help="a source tree holding bayeslm (repeatable; default: this repository)")
    ap.add_argument("--positions", type=int, default=50000)
    ap.add_argument("--valid-positions", type=int, default=20000)
    ap.add_argument("--classes", type=int, default=2000)
    ap.add_argument("--features", type=int, default=128)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--entropy-positions", type=int, default=4096)
    ap.add_argument("--stages", nargs="+", default=["fit", "entropy_split", "log_prob_draws"],
                    choices=["fit", "entropy_split", "log_prob_draws"])
    ap.add_argument("--prior-scale", default="evidence", choices=["evidence", "auto"],
                    help="evidence: gpt-bpe-bll's; auto: the selection rule of bayeslm/neural/last_layer_rule.py")
    ap.add_argument("--head-noise", type=float, default=0.1,
                    help="sd of the noise added to the true weights (0.25 sd) in the trained head given as init")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if "fit" not in args.stages:
        args.stages = ["fit", *args.stages]
    N, V, D = args.positions, args.classes, args.features + 1
    print(f"N = {N:,} fitting positions, V = {V:,} classes, D = {D} (with the constant column), "
          f"{args.valid_positions:,} validation positions, {args.draws} draws; "
          f"one N x V array: {N * V * 4 / MB:,.0f} MB in float32, {N * V * 8 / MB:,.0f} MB in float64")
    results = {}
    for code in args.code or [str(REPO)]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *sys.argv[1:]]
        env = {**os.environ, "PYTHONPATH": str(Path(code).resolve()), "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            sys.exit(f"{code}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}")
        res = json.loads(lines[-1][7:])
        res["process_seconds"] = wall
        results[code] = res
        print(f"\n{code} (bayeslm from {res['bayeslm']}): whole process {wall:.1f} s, "
              f"peak RSS {res['peak_mb']:,.0f} MB")
        print(f"  {'stage':<16}{'seconds':>9}{'RSS before':>12}{'peak RSS':>10}{'peak - before':>15}  peak sampled at")
        for name, s in res["stages"].items():
            print(f"  {name:<16}{s['seconds']:>9.1f}{s['rss_before_mb']:>10,.0f} MB{s['peak_mb']:>7,.0f} MB"
                  f"{s['peak_mb'] - s['rss_before_mb']:>12,.0f} MB  {s['peak_at']}")
        print("  figures: " + json.dumps(res["figures"]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results, **git_state()}, indent=1))


if __name__ == "__main__":
    main()
