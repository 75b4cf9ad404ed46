"""bayeslm's hierarchical Pitman-Yor LM vs KenLM's modified Kneser-Ney, side by side in one run.

For each order N (3 and 5 by default), on a directory with train/ valid/ test/ (default
``../shared/data/shakespeare``; any corpus with that layout works), in the fast mode
(``--mode fast``, default: ``pitman-yor-{trigram,5gram}-fast``) or the full posterior
(``--mode gibbs``: ``pitman-yor-{trigram,5gram}``):

1. ``bayeslm fit CONFIG --train train --valid valid --seed S --quiet --json`` as a
   subprocess, timed from its start to its exit: imports, reading, counting, inference,
   the passes after it (the generation threshold) and saving, all that a user waits for
   (``fit_seconds``, counting plus inference as the model reports it, is printed beside
   it). Peak memory: the process tree's PSS and RSS, each summed over the tree at one
   instant, polled at 10 Hz (psutil; PSS splits shared pages among the processes sharing
   them: the physical memory the tree holds, the target is checked on it), and the
   kernel's high-water mark of resident memory (``ru_maxrss`` from ``wait4``: the largest
   process of the tree, exact, no polling). R-hat, bulk and tail ESS and divergences of
   every hyperparameter come from its JSON.
2. ``bayeslm evaluate`` on valid and test: predictive perplexity and the 94% HDI of the
   per-sample perplexity.
3. KenLM on exactly the tokens bayeslm sees: ``bayeslm tokenize DIR PATH --unk '<oov>'``
   for train and test, ``lmplz -o N -S 1G`` timed and measured as in 1 (the same run),
   perplexity of test.tok with the ``kenlm`` module (one ``</s>`` per sentence, ``<s>``
   never scored).
4. Scoring throughput like for like, in this process: text in, log probabilities out.
   bayeslm: ``predictive_log_prob`` of the raw test lines (tokenising and encoding
   included; loading the model and reading the files not); KenLM: ``full_scores`` of the
   tokenised test lines (per-token log10 probabilities; loading the ARPA file not).
   Scored positions per second, best of 5, the two sides run in turn; bayeslm's text -> ids
   (``encode``) is timed beside it.
5. ``bayeslm export DIR --arpa`` of retained sample 0 and of the mean model: KenLM's
   perplexity of each file vs bayeslm's (sample 0: must agree to 1e-4 relative).
6. The ``ikn`` mode (the full-posterior configuration with ``--set model.inference="ikn"``;
   ``--no-ikn`` skips it): whole-process fit time and test perplexity.

Targets printed as PASS/FAIL (issue #17): fast mode: test perplexity <= KenLM's, whole
fit <= 20x lmplz, peak tree PSS < 1.5 GB; full posterior: perplexity <= 0.985x KenLM's,
whole fit <= 300x (N = 3) / 600x (N = 5), PSS < 3 GB; both: R-hat <= 1.01, bulk and tail
ESS >= 400 for every hyperparameter, no divergences, scoring >= 0.5x KenLM's, ARPA
agreement 1e-4. Timings depend on the load of the machine: the 1-minute load average is
printed.

Run:  /work/main/.venv/bin/python bench/compare_kenlm_py.py [--orders 3 5] [--mode fast|gibbs] [--out FILE]
      /work/main/.venv/bin/python bench/compare_kenlm_py.py --ikn-only    # steps 3 and 6 only
      /work/main/.venv/bin/python bench/compare_kenlm_py.py --scoring-only    # steps 1, 3 and 4 only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import MB, run  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/shakespeare"
CONFIGS = {"fast": {3: "pitman-yor-trigram-fast", 5: "pitman-yor-5gram-fast"},
           "gibbs": {3: "pitman-yor-trigram", 5: "pitman-yor-5gram"}}
#: whole-process fit time / lmplz, perplexity / KenLM's and peak tree PSS (MiB; decimal GB) per mode
TIME_RATIO = {"fast": {3: 20.0, 5: 20.0}, "gibbs": {3: 300.0, 5: 600.0}}
PERPLEXITY_RATIO = {"fast": 1.0, "gibbs": 0.985}
MEMORY_MB = {"fast": 1.5e9 / 2**20, "gibbs": 3e9 / 2**20}
IKN_RATIO = 20.0
SCORING_RATIO = 0.5


def parse_json(text: str) -> dict:
    return json.loads(text[text.find("{"):])


def find_lmplz(explicit: str | None) -> Path:
    cands = [Path(explicit)] if explicit else []
    if os.environ.get("KENLM_BIN"):
        cands.append(Path(os.environ["KENLM_BIN"]))
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
    """The ikn mode of the full-posterior configuration (its sampler settings: NUTS tunes):
    whole-process fit (timed) and test perplexity."""
    print("ikn mode ...", flush=True)
    ikn_dir = work / f"py{n}.ikn.model"
    ikn_fit = run([bayeslm_cmd, "fit", CONFIGS["gibbs"][n], "--train", str(args.data / "train"), "--out", str(ikn_dir),
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
    """lmplz on the token stream of ``model_dir`` (whole process, timed and measured) and its test perplexity."""
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
    return {"perplexity": 10 ** (-kenlm_log10(arpa, lines) / positions), "positions": positions, "arpa": arpa,
            "seconds": lm["seconds"], "peak_mb": lm["peak_mb"], "peak_pss_mb": lm["peak_pss_mb"],
            "maxrss_mb": lm["maxrss_mb"], "lines": lines}


def best_of_alternating(fns: list, repeat: int = 5) -> list[float]:
    """The shortest of ``repeat`` wall-clock times of each ``fn()``, the functions run in turn
    (a change of the machine's load falls on all of them alike)."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, seen in zip(fns, times):
            start = time.perf_counter()
            fn()
            seen.append(time.perf_counter() - start)
    return [min(seen) for seen in times]


def scoring_throughput(model, test: Path, arpa: Path, lines: list[str], positions: int) -> dict:
    """Scored positions per second, text in and log probabilities out, on both sides (step 4);
    and how much of bayeslm's time is text -> ids (tokenising and encoding)."""
    import kenlm

    from bayeslm.text.corpus import read_lines, resolve_paths

    raw = read_lines(resolve_paths(test))
    scored = model.predictive_log_prob(raw)  # also the warm-up
    if scored.size != positions:
        sys.exit(f"compare_kenlm_py: bayeslm scored {scored.size} positions of the raw text, KenLM {positions}")
    ken = kenlm.Model(str(arpa))
    b, k, e = best_of_alternating([lambda: model.predictive_log_prob(raw),
                                   lambda: [list(ken.full_scores(line, bos=True, eos=True)) for line in lines],
                                   lambda: model.encode(raw)])
    return {"bayeslm_positions_per_second": positions / b, "kenlm_positions_per_second": positions / k,
            "ratio": k / b, "bayeslm_seconds": b, "kenlm_seconds": k, "bayeslm_encode_seconds": e}


def scoring_only(n: int, args, bayeslm_cmd: str, lmplz: Path, work: Path) -> dict:
    """Steps 1 (the fit, not measured), 3 (KenLM on the same tokens) and 4 (scoring) alone."""
    import bayeslm

    config = CONFIGS[args.mode][n]
    print(f"\n== order {n}: scoring of {config} (seed {args.seed}) ...", flush=True)
    model_dir = work / f"py{n}.model"
    run([bayeslm_cmd, "fit", config, "--train", str(args.data / "train"), "--out", str(model_dir),
         "--seed", str(args.seed), "--quiet", "--force", *sum((["--set", s] for s in args.set), [])])
    ken = kenlm_side(n, args, bayeslm_cmd, lmplz, work, model_dir)
    load_before = os.getloadavg()[0]
    sc = scoring_throughput(bayeslm.load(model_dir), args.data / "test", ken["arpa"], ken["lines"], ken["positions"])
    ok = sc["ratio"] >= SCORING_RATIO
    print(f"\norder {n} ({config}), {ken['positions']} test positions; load average {load_before:.2f} -> "
          f"{os.getloadavg()[0]:.2f}\n  command: {' '.join(sys.argv)}")
    print(f"  scoring, text in, log probs out: {scoring_line(sc)}\n  [{'PASS' if ok else 'FAIL'}] scoring throughput >= {SCORING_RATIO:g}x KenLM's")
    return {"order": n, "config": config, "load_before": load_before, "scoring": sc,
            "checks": {f"scoring throughput >= {SCORING_RATIO:g}x KenLM's": ok}}


def scoring_line(sc: dict) -> str:
    """The scoring figures in one line: positions per second on both sides, their ratio, bayeslm's split."""
    return (f"{sc['bayeslm_positions_per_second']:,.0f} vs KenLM "
            f"{sc['kenlm_positions_per_second']:,.0f} positions/s = {sc['ratio']:.2f}x "
            f"(bayeslm {sc['bayeslm_seconds']:.3f} s, of which text -> ids {sc['bayeslm_encode_seconds']:.3f} s; "
            f"KenLM {sc['kenlm_seconds']:.3f} s)")


def ikn_only(n: int, args, bayeslm_cmd: str, lmplz: Path, work: Path) -> dict:
    """Steps 3 and 6 alone: the ikn fit beside lmplz on the same tokens."""
    print(f"\n== order {n}: {CONFIGS['gibbs'][n]} in ikn mode (seed {args.seed}) ...", flush=True)
    load_before = os.getloadavg()[0]
    ik = fit_ikn(n, args, bayeslm_cmd, work)
    ken = kenlm_side(n, args, bayeslm_cmd, lmplz, work, Path(ik["dir"]))
    ratio = ik["wall_seconds"] / ken["seconds"]
    checks = {f"ikn whole fit <= {IKN_RATIO:.0f}x lmplz": ratio <= IKN_RATIO,
              "ikn R-hat <= 1.01": ik["rhat_max"] <= 1.01, "ikn bulk ESS >= 400": ik["ess_bulk_min"] >= 400,
              "ikn no divergences": ik["divergences"] == 0}
    print(f"\norder {n}, ikn mode; load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
    for a, b in [("ikn test perplexity / KenLM", f"{ik['perplexity']:.2f} / {ken['perplexity']:.2f}"),
                 ("ikn whole fit process / fit_seconds", f"{ik['wall_seconds']:.1f} s / {ik['fit_seconds']:.1f} s"),
                 ("lmplz whole process", f"{ken['seconds']:.2f} s"),
                 ("ikn whole fit / lmplz", f"{ratio:.1f}x"),
                 ("R-hat max / bulk ESS min / divergences", f"{ik['rhat_max']:.4f} / {ik['ess_bulk_min']:.0f} / {ik['divergences']}")]:
        print(f"  {a:<55}  {b}")
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    return {"order": n, "ikn": ik, "kenlm_perplexity": ken["perplexity"], "lmplz_seconds": ken["seconds"],
            "load_before": load_before, "checks": checks}


def arpa_agreement(n: int, model_dir: Path, test: Path, bayeslm_cmd: str, work: Path, lines: list[str],
                   positions: int, model) -> dict:
    """Step 5: the ARPA files of sample 0 and of the mean model read back by KenLM."""
    import numpy as np

    print("ARPA export ...", flush=True)
    corpus = model.read(test)
    index, tokens = model._position_index(corpus)
    sample_lp = float(np.log(model._probs(0, index, tokens)).sum())
    mean_lp = float(model.predictive_log_prob(corpus).sum())
    exp0, expm = work / f"py{n}.sample0.arpa", work / f"py{n}.mean.arpa"
    export = run([bayeslm_cmd, "export", str(model_dir), "--arpa", str(exp0), "--sample", "0"])
    run([bayeslm_cmd, "export", str(model_dir), "--arpa", str(expm)])
    k0 = kenlm_log10(exp0, lines) * math.log(10)
    km = kenlm_log10(expm, lines) * math.log(10)
    return {"arpa_sample0_kenlm_perplexity": math.exp(-k0 / positions), "sample0_perplexity": math.exp(-sample_lp / positions),
            "arpa_sample0_relative_difference": abs(k0 - sample_lp) / abs(sample_lp),
            "arpa_mean_kenlm_perplexity": math.exp(-km / positions),
            "predictive_perplexity_in_process": math.exp(-mean_lp / positions), "export_seconds": export["seconds"]}


def one_order(n: int, args, bayeslm_cmd: str, lmplz: Path, work: Path) -> dict:
    import bayeslm

    train, valid, test = (args.data / s for s in ("train", "valid", "test"))
    model_dir = work / f"py{n}.model"
    config = CONFIGS[args.mode][n]
    print(f"\n== order {n}: fitting {config} (seed {args.seed}) ...", flush=True)
    load_before = os.getloadavg()[0]
    fit = run([bayeslm_cmd, "fit", config, "--train", str(train), "--valid", str(valid), "--out", str(model_dir),
               "--seed", str(args.seed), "--quiet", "--json", "--force", *sum((["--set", s] for s in args.set), [])])
    fit_json = parse_json(fit["stdout"])
    diags = fit_json["diagnostics"]
    print("evaluating ...", flush=True)
    ev_test = parse_json(run([bayeslm_cmd, "evaluate", str(model_dir), "--test", str(test), "--json"])["stdout"])
    ev_valid = parse_json(run([bayeslm_cmd, "evaluate", str(model_dir), "--test", str(valid), "--json"])["stdout"])
    ken = kenlm_side(n, args, bayeslm_cmd, lmplz, work, model_dir)
    model = bayeslm.load(model_dir)
    print("scoring throughput ...", flush=True)
    scoring = scoring_throughput(model, test, ken["arpa"], ken["lines"], ken["positions"])
    arpa = arpa_agreement(n, model_dir, test, bayeslm_cmd, work, ken["lines"], ken["positions"], model)
    del model
    ikn = None if args.no_ikn else fit_ikn(n, args, bayeslm_cmd, work)
    return {
        "order": n, "mode": args.mode, "config": config, "load_before": load_before, "load_after": os.getloadavg()[0],
        "fit_wall_seconds": fit["seconds"], "fit_seconds": fit_json["fit_seconds"], "fit_peak_mb": fit["peak_mb"],
        "fit_peak_pss_mb": fit["peak_pss_mb"], "fit_maxrss_mb": fit["maxrss_mb"], "fit_polls": fit["polls"],
        "vocabulary": fit_json["vocabulary"], "training_tokens": fit_json["training_tokens"],
        "rhat_max": max(float(d["r_hat"]) for d in diags.values()),
        "ess_bulk_min": min(float(d["ess_bulk"]) for d in diags.values()),
        "ess_tail_min": min(float(d["ess_tail"]) for d in diags.values()),
        "divergences": int(fit_json.get("divergences", 0)), "diagnostics": diags,
        "valid_perplexity": ev_valid["predictive_perplexity"], "test_perplexity": ev_test["predictive_perplexity"],
        "test_perplexity_per_sample": ev_test["perplexity"], "test_positions": ev_test["positions"],
        "kenlm_perplexity": ken["perplexity"], "kenlm_positions": ken["positions"], "lmplz_seconds": ken["seconds"],
        "lmplz_peak_pss_mb": ken["peak_pss_mb"], "lmplz_maxrss_mb": ken["maxrss_mb"],
        "scoring": scoring, **arpa, "ikn": ikn, "command": " ".join(sys.argv),
    }


def checks_of(r: dict) -> dict:
    """The targets of issue #17 for the run's mode, PASS (True) or FAIL."""
    n, mode = r["order"], r["mode"]
    ratio = r["fit_wall_seconds"] / r["lmplz_seconds"]
    bound = PERPLEXITY_RATIO[mode]
    checks = {
        f"test perplexity <= {bound:g}x KenLM's": r["test_perplexity"] <= bound * r["kenlm_perplexity"],
        f"whole fit <= {TIME_RATIO[mode][n]:.0f}x lmplz": ratio <= TIME_RATIO[mode][n],
        f"peak tree PSS < {MEMORY_MB[mode] * MB / 1e9:.1f} GB": r["fit_peak_pss_mb"] < MEMORY_MB[mode],
        "R-hat <= 1.01": r["rhat_max"] <= 1.01,
        "bulk and tail ESS >= 400": min(r["ess_bulk_min"], r["ess_tail_min"]) >= 400,
        "no divergences": r["divergences"] == 0,
        f"scoring throughput >= {SCORING_RATIO:g}x KenLM's": r["scoring"]["ratio"] >= SCORING_RATIO,
        "ARPA (sample 0) within 1e-4": r["arpa_sample0_relative_difference"] <= 1e-4,
    }
    if r["ikn"]:
        checks[f"ikn whole fit <= {IKN_RATIO:.0f}x lmplz"] = r["ikn"]["wall_seconds"] / r["lmplz_seconds"] <= IKN_RATIO
    return checks


def report(r: dict) -> dict:
    checks = checks_of(r)
    pp, sc = r["test_perplexity_per_sample"], r["scoring"]
    rows = [
        ("bayeslm pitman-yor predictive perplexity, test", f"{r['test_perplexity']:.2f}"),
        ("  per retained sample, mean [94% HDI]", f"{pp['mean']:.2f} [{pp['hdi_low']:.2f}, {pp['hdi_high']:.2f}]"),
        ("  valid (settings are chosen here)", f"{r['valid_perplexity']:.2f}"),
        ("KenLM lmplz modified Kneser-Ney, test", f"{r['kenlm_perplexity']:.2f}"),
        ("ratio bayeslm / KenLM", f"{r['test_perplexity'] / r['kenlm_perplexity']:.4f}"),
        ("whole 'bayeslm fit' process / lmplz process", f"{r['fit_wall_seconds']:.1f} s / {r['lmplz_seconds']:.2f} s "
                                                        f"= {r['fit_wall_seconds'] / r['lmplz_seconds']:.1f}x"),
        ("  fit_seconds (counting + inference)", f"{r['fit_seconds']:.1f} s"),
        ("peak memory of the fit: tree PSS / tree RSS / ru_maxrss", f"{r['fit_peak_pss_mb']:.0f} / {r['fit_peak_mb']:.0f} / "
                                                                    f"{r['fit_maxrss_mb']:.0f} MiB ({r['fit_polls']} polls)"),
        ("  lmplz: PSS / ru_maxrss", f"{r['lmplz_peak_pss_mb']:.0f} / {r['lmplz_maxrss_mb']:.0f} MiB"),
        ("R-hat max / bulk ESS min / tail ESS min", f"{r['rhat_max']:.4f} / {r['ess_bulk_min']:.0f} / {r['ess_tail_min']:.0f}"),
        ("divergences", f"{r['divergences']}"),
        ("scoring, text in, log probs out", scoring_line(sc)),
        ("ARPA sample 0: KenLM vs bayeslm perplexity", f"{r['arpa_sample0_kenlm_perplexity']:.4f} vs {r['sample0_perplexity']:.4f} "
                                                       f"(rel. diff. of log prob {r['arpa_sample0_relative_difference']:.1e})"),
        ("ARPA mean model: KenLM perplexity", f"{r['arpa_mean_kenlm_perplexity']:.4f} (predictive {r['predictive_perplexity_in_process']:.4f})"),
    ]
    if r["ikn"]:
        ik = r["ikn"]
        rows += [("ikn mode: test perplexity", f"{ik['perplexity']:.2f}"),
                 ("ikn mode: whole fit / lmplz", f"{ik['wall_seconds']:.1f} s, {ik['wall_seconds'] / r['lmplz_seconds']:.1f}x"),
                 ("ikn mode: R-hat max / bulk ESS min / divergences",
                  f"{ik['rhat_max']:.4f} / {ik['ess_bulk_min']:.0f} / {ik['divergences']}")]
    print(f"\norder {r['order']} ({r['config']}), vocabulary {r['vocabulary']}, {r['training_tokens']} training tokens, "
          f"{r['test_positions']} test positions; load average {r['load_before']:.2f} -> {r['load_after']:.2f}")
    print(f"  command: {r['command']}")
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"  {a:<{width}}  {b}")
    print("  per hyperparameter: " + "; ".join(f"{name} r_hat {d['r_hat']:.3f} ess_bulk {d['ess_bulk']:.0f} "
                                                 f"ess_tail {d['ess_tail']:.0f}" for name, d in r["diagnostics"].items()))
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    return checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[3, 5], choices=[3, 5])
    parser.add_argument("--mode", choices=sorted(CONFIGS), default="fast",
                        help="fast: pitman-yor-*-fast; gibbs: the full-posterior configurations")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, help="keep models, token files and ARPA files here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--memory", default="1G", help="lmplz -S (default 1G)")
    parser.add_argument("--kenlm-bin", help="directory holding lmplz")
    parser.add_argument("--set", action="append", default=[], help="config override passed to bayeslm fit")
    parser.add_argument("--no-ikn", action="store_true", help="skip the ikn-mode fit")
    parser.add_argument("--ikn-only", action="store_true", help="only the ikn-mode fit beside lmplz")
    parser.add_argument("--scoring-only", action="store_true",
                        help="only the scoring throughput (steps 1, 3 and 4; the fit is not measured)")
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
        if args.ikn_only or args.scoring_only:
            r = (ikn_only if args.ikn_only else scoring_only)(n, args, bayeslm_cmd, lmplz, work)
            verdicts[n] = r["checks"]
        else:
            r = one_order(n, args, bayeslm_cmd, lmplz, work)
            verdicts[n] = report(r)
        results.append(r)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"data": str(args.data), "seed": args.seed, "mode": args.mode, "results": results,
                                        "checks": {str(k): v for k, v in verdicts.items()}}, indent=2, default=str))
        print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
