"""bayeslm's hierarchical Pitman-Yor LM vs KenLM's modified Kneser-Ney, side by side in one run.

For each order N (3 and 5 by default), on a directory with train/ valid/ test/ (default
``../shared/data/shakespeare``; any corpus with that layout works, e.g. a 10k-vocabulary
news corpus):

1. ``bayeslm fit pitman-yor-{trigram,5gram} --train train --valid valid --seed S --json``
   as a subprocess: wall clock of the whole command, ``fit_seconds`` (counting plus
   inference, as the model reports it) and the peak memory of the process tree summed at
   one instant (psutil polling; forked chain workers included), as PSS (each shared page
   split among the processes sharing it: the physical memory the tree holds; the memory
   target is checked on it) and as RSS (shared pages counted once per process: PyMC forks
   the chain workers from the fitting process, so the pages they share with it, about
   0.6 GB each for the 5-gram, are counted three times). R-hat, bulk ESS and
   divergences of every hyperparameter come from its JSON.
2. ``bayeslm evaluate`` on valid and test: predictive perplexity and the 94% HDI of the
   per-sample perplexity.
3. KenLM on exactly the tokens bayeslm sees: ``bayeslm tokenize DIR PATH --unk '<oov>'``
   for train and test, ``lmplz -o N -S 1G`` (timed, memory polled), perplexity of
   test.tok with the ``kenlm`` module (one ``</s>`` per sentence, ``<s>`` never scored).
4. ``bayeslm export DIR --arpa`` of retained sample 0 and of the mean model: KenLM's
   perplexity of each file vs bayeslm's (sample 0: must agree to 1e-4 relative).
5. The ``ikn`` mode (``--set model.inference="ikn"``): fit time and test perplexity.

Targets printed as PASS/FAIL: predictive perplexity <= KenLM's; fit time <= 150x lmplz
(N = 3) / 300x (N = 5), ikn <= 20x; peak memory < 3 GB for N = 5; R-hat <= 1.01, bulk
ESS >= 400 for every hyperparameter, no divergences; ARPA agreement 1e-4. Timings depend
on the load of the machine: the 1-minute load average is printed.

Run:  /work/venv/bin/python bench/compare_kenlm_py.py [--orders 3 5] [--out bench/out/py.json]
      /work/venv/bin/python bench/compare_kenlm_py.py --ikn-only    # steps 3 and 5 only (minutes, not half an hour)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/shakespeare"
CONFIGS = {3: "pitman-yor-trigram", 5: "pitman-yor-5gram"}
TIME_RATIO = {3: 150.0, 5: 300.0}
IKN_RATIO = 20.0
MEMORY_MB = 3e9 / 2**20  # 3 GB (decimal): 2,861 MiB
MB = 1024 * 1024


class TreeMonitor(threading.Thread):
    """Peak PSS and peak RSS of a process and its descendants, each summed at one instant."""

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
            # RSS is cheap to read; PSS (smaps) costs about a fifth of a core at this rate,
            # so it is read every 10th poll (the peak is a plateau of the sampling phase)
            with_pss = self.polls % 10 == 0
            self.polls += 1
            total = total_pss = 0
            for p in procs:
                try:
                    if with_pss:
                        full = p.memory_full_info()
                        total += full.rss
                        total_pss += full.pss
                    else:
                        total += p.memory_info().rss
                except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
                    continue
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, total_pss)
            self.stop_event.wait(self.interval)


def run(cmd: list[str], stdout=subprocess.PIPE) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    mon = TreeMonitor(proc.pid)
    mon.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    mon.stop_event.set()
    mon.join()
    if proc.returncode != 0:
        sys.exit(f"compare_kenlm_py: failed (exit {proc.returncode}): {' '.join(cmd)}\n{(err or '')[-3000:]}")
    return {"seconds": seconds, "stdout": out or "", "stderr": err or "", "peak_mb": mon.peak / MB,
            "peak_pss_mb": mon.peak_pss / MB}


def parse_json(text: str) -> dict:
    return json.loads(text[text.find("{"):])


def find_lmplz(explicit: str | None) -> Path:
    cands = [Path(explicit)] if explicit else []
    cands.append(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kenlm/build/bin")
    if shutil.which("lmplz"):
        cands.append(Path(shutil.which("lmplz")).parent)
    for c in cands:
        if (c / "lmplz").is_file():
            return c / "lmplz"
    sys.exit("compare_kenlm_py: lmplz not found; build it once with ../shared/tools/kenlm/build.sh or pass --kenlm-bin")


def kenlm_log10(arpa: Path, lines: list[str]) -> float:
    import kenlm

    model = kenlm.Model(str(arpa))
    return sum(model.score(line, bos=True, eos=True) for line in lines)


def fit_ikn(n: int, args, bayeslm_cmd: str, work: Path) -> dict:
    """The ikn mode of the same configuration: fit (timed) and test perplexity."""
    print("ikn mode ...", flush=True)
    ikn_dir = work / f"py{n}.ikn.model"
    ikn_fit = run([bayeslm_cmd, "fit", CONFIGS[n], "--train", str(args.data / "train"), "--out", str(ikn_dir),
                   "--seed", str(args.seed), "--quiet", "--json", "--force", "--set", 'model.inference="ikn"'])
    ikn_json = parse_json(ikn_fit["stdout"])
    ikn_ev = parse_json(run([bayeslm_cmd, "evaluate", str(ikn_dir), "--test", str(args.data / "test"), "--json"])["stdout"])
    idiags = ikn_json["diagnostics"]
    return {"dir": str(ikn_dir), "wall_seconds": ikn_fit["seconds"], "fit_seconds": ikn_json["fit_seconds"],
            "perplexity": ikn_ev["predictive_perplexity"],
            "rhat_max": max(float(d["r_hat"]) for d in idiags.values()),
            "ess_bulk_min": min(float(d["ess_bulk"]) for d in idiags.values()),
            "divergences": int(ikn_json.get("divergences", 0))}


def kenlm_side(n: int, args, bayeslm_cmd: str, lmplz: Path, work: Path, model_dir: Path) -> dict:
    """lmplz on the token stream of ``model_dir`` (timed) and its test perplexity."""
    print("KenLM ...", flush=True)
    toks = {}
    for name in ("train", "test"):
        target = work / f"{name}.{n}.tok"
        with open(target, "w", encoding="utf-8") as fh:
            run([bayeslm_cmd, "tokenize", str(model_dir), str(args.data / name), "--unk", "<oov>"], stdout=fh)
        toks[name] = target
    arpa = work / f"kenlm.{n}.arpa"
    lm = run([str(lmplz), "-o", str(n), "-S", args.memory, "--text", str(toks["train"]), "--arpa", str(arpa)])
    lines = [l for l in toks["test"].read_text(encoding="utf-8").splitlines() if l.strip()]
    positions = sum(len(l.split()) + 1 for l in lines)
    return {"perplexity": 10 ** (-kenlm_log10(arpa, lines) / positions), "positions": positions,
            "seconds": lm["seconds"], "peak_mb": lm["peak_mb"], "lines": lines}


def ikn_only(n: int, args, bayeslm_cmd: str, lmplz: Path, work: Path) -> dict:
    """Steps 3 and 5 alone: the ikn fit beside lmplz on the same tokens."""
    print(f"\n== order {n}: {CONFIGS[n]} in ikn mode (seed {args.seed}) ...", flush=True)
    load_before = os.getloadavg()[0]
    ik = fit_ikn(n, args, bayeslm_cmd, work)
    ken = kenlm_side(n, args, bayeslm_cmd, lmplz, work, Path(ik["dir"]))
    ratio = ik["fit_seconds"] / ken["seconds"]
    checks = {f"ikn fit time <= {IKN_RATIO:.0f}x lmplz": ratio <= IKN_RATIO,
              "ikn R-hat <= 1.01": ik["rhat_max"] <= 1.01, "ikn bulk ESS >= 400": ik["ess_bulk_min"] >= 400,
              "ikn no divergences": ik["divergences"] == 0}
    print(f"\norder {n}, ikn mode; load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
    for a, b in [("ikn test perplexity / KenLM", f"{ik['perplexity']:.2f} / {ken['perplexity']:.2f}"),
                 ("ikn fit_seconds (counting + inference) / whole command", f"{ik['fit_seconds']:.1f} s / {ik['wall_seconds']:.1f} s"),
                 ("lmplz wall seconds", f"{ken['seconds']:.2f}"),
                 ("ikn fit time / lmplz", f"{ratio:.1f}x"),
                 ("R-hat max / bulk ESS min / divergences", f"{ik['rhat_max']:.4f} / {ik['ess_bulk_min']:.0f} / {ik['divergences']}")]:
        print(f"  {a:<55}  {b}")
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    return {"order": n, "ikn": ik, "kenlm_perplexity": ken["perplexity"], "lmplz_seconds": ken["seconds"],
            "load_before": load_before, "checks": checks}


def one_order(n: int, args, bayeslm_cmd: str, lmplz: Path, work: Path) -> dict:
    train, valid, test = (args.data / s for s in ("train", "valid", "test"))
    model_dir = work / f"py{n}.model"
    print(f"\n== order {n}: fitting {CONFIGS[n]} (seed {args.seed}) ...", flush=True)
    load_before = os.getloadavg()[0]
    fit = run([bayeslm_cmd, "fit", CONFIGS[n], "--train", str(train), "--valid", str(valid), "--out", str(model_dir),
               "--seed", str(args.seed), "--quiet", "--json", "--force", *sum((["--set", s] for s in args.set), [])])
    fit_json = parse_json(fit["stdout"])
    diags = fit_json["diagnostics"]
    rhat = max(float(d["r_hat"]) for d in diags.values())
    ess = min(float(d["ess_bulk"]) for d in diags.values())
    ess_tail = min(float(d["ess_tail"]) for d in diags.values())
    divergences = int(fit_json.get("divergences", 0))
    print("evaluating ...", flush=True)
    ev_test = parse_json(run([bayeslm_cmd, "evaluate", str(model_dir), "--test", str(test), "--json"])["stdout"])
    ev_valid = parse_json(run([bayeslm_cmd, "evaluate", str(model_dir), "--test", str(valid), "--json"])["stdout"])

    ken = kenlm_side(n, args, bayeslm_cmd, lmplz, work, model_dir)
    lines, positions, k_ppl = ken["lines"], ken["positions"], ken["perplexity"]
    lm = {"seconds": ken["seconds"], "peak_mb": ken["peak_mb"]}

    print("ARPA export ...", flush=True)
    import numpy as np

    import bayeslm

    model = bayeslm.load(model_dir)
    corpus = model.read(test)
    index, tokens = model._position_index(corpus)
    sample_lp = float(np.log(model._probs(0, index, tokens)).sum())
    mean_lp = float(model.predictive_log_prob(corpus).sum())
    exp0 = work / f"py{n}.sample0.arpa"
    expm = work / f"py{n}.mean.arpa"
    t0 = time.perf_counter()
    run([bayeslm_cmd, "export", str(model_dir), "--arpa", str(exp0), "--sample", "0"])
    export_s = time.perf_counter() - t0
    run([bayeslm_cmd, "export", str(model_dir), "--arpa", str(expm)])
    k0 = kenlm_log10(exp0, lines) * math.log(10)
    km = kenlm_log10(expm, lines) * math.log(10)
    arpa_rel = abs(k0 - sample_lp) / abs(sample_lp)
    del model

    ikn = None if args.no_ikn else fit_ikn(n, args, bayeslm_cmd, work)
    return {
        "order": n, "config": CONFIGS[n], "load_before": load_before, "load_after": os.getloadavg()[0],
        "fit_wall_seconds": fit["seconds"], "fit_seconds": fit_json["fit_seconds"], "fit_peak_mb": fit["peak_mb"],
        "fit_peak_pss_mb": fit["peak_pss_mb"],
        "vocabulary": fit_json["vocabulary"], "training_tokens": fit_json["training_tokens"],
        "rhat_max": rhat, "ess_bulk_min": ess, "ess_tail_min": ess_tail, "divergences": divergences,
        "diagnostics": diags,
        "valid_perplexity": ev_valid["predictive_perplexity"], "test_perplexity": ev_test["predictive_perplexity"],
        "test_perplexity_per_sample": ev_test["perplexity"], "test_positions": ev_test["positions"],
        "kenlm_perplexity": k_ppl, "kenlm_positions": positions, "lmplz_seconds": lm["seconds"],
        "lmplz_peak_mb": lm["peak_mb"],
        "arpa_sample0_kenlm_perplexity": math.exp(-k0 / positions), "sample0_perplexity": math.exp(-sample_lp / positions),
        "arpa_sample0_relative_difference": arpa_rel, "arpa_mean_kenlm_perplexity": math.exp(-km / positions),
        "predictive_perplexity_in_process": math.exp(-mean_lp / positions), "export_seconds": export_s,
        "ikn": ikn,
    }


def report(r: dict) -> dict:
    n = r["order"]
    ratio = r["fit_seconds"] / r["lmplz_seconds"]
    wall_ratio = r["fit_wall_seconds"] / r["lmplz_seconds"]
    checks = {
        "perplexity <= KenLM": r["test_perplexity"] <= r["kenlm_perplexity"],
        f"fit time <= {TIME_RATIO[n]:.0f}x lmplz": ratio <= TIME_RATIO[n],
        "R-hat <= 1.01": r["rhat_max"] <= 1.01,
        "bulk ESS >= 400": r["ess_bulk_min"] >= 400,
        "no divergences": r["divergences"] == 0,
        "ARPA (sample 0) within 1e-4": r["arpa_sample0_relative_difference"] <= 1e-4,
    }
    if n == 5:
        checks["peak memory < 3 GB"] = r["fit_peak_pss_mb"] < MEMORY_MB
    if r["ikn"]:
        checks[f"ikn fit time <= {IKN_RATIO:.0f}x lmplz"] = r["ikn"]["fit_seconds"] / r["lmplz_seconds"] <= IKN_RATIO
    pp = r["test_perplexity_per_sample"]
    rows = [
        ("bayeslm pitman-yor predictive perplexity, test", f"{r['test_perplexity']:.2f}"),
        ("  per retained sample, mean [94% HDI]", f"{pp['mean']:.2f} [{pp['hdi_low']:.2f}, {pp['hdi_high']:.2f}]"),
        ("  valid (settings are chosen here)", f"{r['valid_perplexity']:.2f}"),
        ("KenLM lmplz modified Kneser-Ney, test", f"{r['kenlm_perplexity']:.2f}"),
        ("ratio bayeslm / KenLM", f"{r['test_perplexity'] / r['kenlm_perplexity']:.4f}"),
        ("fit_seconds (counting + inference)", f"{r['fit_seconds']:.1f}"),
        ("  whole 'bayeslm fit' command, wall", f"{r['fit_wall_seconds']:.1f}"),
        ("lmplz wall seconds", f"{r['lmplz_seconds']:.2f}"),
        ("fit time / lmplz (fit_seconds; whole command)", f"{ratio:.1f}x; {wall_ratio:.1f}x"),
        ("peak memory of the fit, tree PSS / tree RSS (MiB)", f"{r['fit_peak_pss_mb']:.0f} / {r['fit_peak_mb']:.0f}"),
        ("R-hat max / bulk ESS min / tail ESS min", f"{r['rhat_max']:.4f} / {r['ess_bulk_min']:.0f} / {r['ess_tail_min']:.0f}"),
        ("divergences (slice sampler on the hyperparameters)", f"{r['divergences']}"),
        ("ARPA sample 0: KenLM vs bayeslm perplexity", f"{r['arpa_sample0_kenlm_perplexity']:.4f} vs {r['sample0_perplexity']:.4f} "
                                                       f"(rel. diff. of log prob {r['arpa_sample0_relative_difference']:.1e})"),
        ("ARPA mean model: KenLM perplexity", f"{r['arpa_mean_kenlm_perplexity']:.4f} (predictive {r['predictive_perplexity_in_process']:.4f})"),
    ]
    if r["ikn"]:
        ik = r["ikn"]
        rows += [("ikn mode: test perplexity", f"{ik['perplexity']:.2f}"),
                 ("ikn mode: fit_seconds / lmplz", f"{ik['fit_seconds']:.1f} s, {ik['fit_seconds'] / r['lmplz_seconds']:.1f}x"),
                 ("ikn mode: R-hat max / bulk ESS min / divergences",
                  f"{ik['rhat_max']:.4f} / {ik['ess_bulk_min']:.0f} / {ik['divergences']}")]
    print(f"\norder {n} ({r['config']}), vocabulary {r['vocabulary']}, {r['training_tokens']} training tokens, "
          f"{r['test_positions']} test positions; load average {r['load_before']:.2f} -> {r['load_after']:.2f}")
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"  {a:<{width}}  {b}")
    print("  per hyperparameter: " + "; ".join(f"{name} r_hat {d['r_hat']:.3f} ess_bulk {d['ess_bulk']:.0f}"
                                                 for name, d in r["diagnostics"].items()))
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    return checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[3, 5], choices=sorted(CONFIGS))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, help="keep models, token files and ARPA files here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--memory", default="1G", help="lmplz -S (default 1G)")
    parser.add_argument("--kenlm-bin", help="directory holding lmplz")
    parser.add_argument("--set", action="append", default=[], help="config override passed to bayeslm fit")
    parser.add_argument("--no-ikn", action="store_true", help="skip the ikn-mode fit")
    parser.add_argument("--ikn-only", action="store_true", help="only the ikn-mode fit beside lmplz")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    for split in ("train", "valid", "test"):
        if not (args.data / split).exists():
            sys.exit(f"compare_kenlm_py: {args.data / split} is missing")
    lmplz = find_lmplz(args.kenlm_bin)
    exe = Path(sys.executable).parent / "bayeslm"
    bayeslm_cmd = str(exe) if exe.exists() else shutil.which("bayeslm")
    tmp = None
    if args.work:
        work = args.work
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bayeslm-py-")
        work = Path(tmp.name)
    print(f"bayeslm Pitman-Yor vs KenLM on {args.data}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    results, verdicts = [], {}
    for n in args.orders:
        if args.ikn_only:
            r = ikn_only(n, args, bayeslm_cmd, lmplz, work)
            verdicts[n] = r["checks"]
        else:
            r = one_order(n, args, bayeslm_cmd, lmplz, work)
            verdicts[n] = report(r)
        results.append(r)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"data": str(args.data), "seed": args.seed, "results": results,
                                        "checks": {str(k): v for k, v in verdicts.items()}}, indent=2, default=float))
        print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
