"""bayeslm's Dirichlet n-gram model vs KenLM on Shakespeare, side by side in one run.

What it measures
----------------
On ``../shared/data/shakespeare`` (train / test splits by play; valid is passed to
``bayeslm fit`` as its validation text):

(a) Fit. ``bayeslm fit dirichlet-trigram --train train --valid valid --out DIR --seed 1
    --quiet --json`` (``dirichlet-bigram`` for ``--order 2``) runs as a subprocess.
    Timed by wall clock (the whole command: start-up, reading, counting, NUTS, saving);
    the CPU time (user + sys) of the whole process tree is printed too, as it depends
    less on other load on the machine.
    Memory: a thread polls the process tree with psutil every ``--poll`` seconds and keeps
    the peak RSS (and PSS) of the main fit process, the peak of the largest sampler worker
    (PyMC forks one process per chain), and the peak of the whole tree summed at one
    instant (RSS of forked workers double-counts copy-on-write pages, so the RSS sum is an
    upper bound; PSS splits shared pages). ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``
    after the fit (the largest single process of the tree, exact, no polling) is printed
    as a cross-check. The memory target is checked on the tree's peak summed RSS.
    R-hat, bulk ESS and divergences come from the command's ``--json`` output (the worst
    value over all parameters).
(b) ``bayeslm evaluate DIR --test test --json``: posterior-predictive perplexity and
    the 94% HDI of the per-draw perplexity.
(c) KenLM on exactly the tokens bayeslm sees: ``bayeslm tokenize DIR train --unk '<oov>'``
    and the same for test (``lmplz`` rejects a literal ``<unk>``), then
    ``lmplz -o N -S 1G --text train.tok --arpa train.arpa`` (timed by wall clock, memory
    polled the same way). KenLM's perplexity of test.tok, with the kenlm module, is
    ``10 ** (-sum(score(line, bos=True, eos=True)) / (words + sentences))``: one ``</s>``
    per sentence, ``<s>`` never scored, which is bayeslm's convention too.
(d) Scoring throughput, in this process: scored positions (tokens + one ``</s>`` per
    sentence) per second of ``lm.predictive_log_prob(corpus)`` after ``bayeslm.load``
    on the already-read and encoded test corpus (load, reading, tokenising and encoding
    excluded), and again from the raw test lines (tokenising and vocabulary encoding
    included; only file reading excluded), vs ``kenlm.Model.score(line, bos=True,
    eos=True)`` over the same sentences of test.tok (a Python loop; ARPA loading
    excluded). Each is the best of ``--score-repeat`` runs.

It also compares the n-gram counts of the ARPA file with bayeslm's and explains the
difference (bayeslm pads with ``order - 1`` ``<s>``, KenLM with one).

Targets (printed as PASS/FAIL beside the figures): predictive perplexity <= 127, fit
wall clock < 60 s, peak memory < 1536 MB, scoring throughput >= 0.5x KenLM's,
R-hat <= 1.01, bulk ESS >= 400, 0 divergences. Timings depend on the machine and on
whatever else runs on it: the 1-minute load average is printed before and after.

KenLM's ``lmplz`` is not built here (the script downloads nothing): it is looked up via
``--kenlm-bin``, ``$KENLM_BIN``, ``${XDG_CACHE_HOME:-~/.cache}/kenlm/build/bin`` (where
``../shared/tools/kenlm/build.sh`` puts it) and ``$PATH``.

Run
---
    /work/venv/bin/python bench/compare_kenlm.py
    /work/venv/bin/python bench/compare_kenlm.py --order 2 --work /tmp/kenlm-cmp --out bench/out/compare_kenlm.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _common import git_state  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/shakespeare"
CONFIGS = {2: "dirichlet-bigram", 3: "dirichlet-trigram"}
MB = 1024 * 1024

TARGETS = {
    "perplexity_max": 127.0,
    "fit_seconds_max": 60.0,
    "peak_memory_mb_max": 1536.0,
    "scoring_ratio_min": 0.5,
    "rhat_max": 1.01,
    "ess_bulk_min": 400.0,
    "divergences_max": 0,
}


# -- running and measuring subprocesses ------------------------------------------------
class TreeMonitor(threading.Thread):
    """Polls a process and its descendants; keeps peak RSS / PSS per role."""

    def __init__(self, pid: int, interval: float):
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.stop_event = threading.Event()
        self.main_rss = self.main_pss = 0
        self.worker_rss = self.worker_pss = 0  # the largest forked worker (same command line)
        self.other_rss = 0  # the largest other descendant (e.g. the C compiler PyTensor runs)
        self.tree_rss = self.tree_pss = 0  # summed over the tree at one instant
        self.workers_seen: set[int] = set()
        self.others_seen: dict[int, str] = {}
        self.kind: dict[int, bool] = {}  # pid -> is a forked worker
        self.samples = 0

    def _mem(self, proc) -> tuple[int, int]:
        try:
            full = proc.memory_full_info()
            return int(full.rss), int(getattr(full, "pss", full.rss))
        except (self.psutil.NoSuchProcess, self.psutil.AccessDenied, self.psutil.ZombieProcess):
            return 0, 0

    def poll(self) -> None:
        psutil = self.psutil
        try:
            children = self.root.children(recursive=True)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            children = []
        rss, pss = self._mem(self.root)
        self.main_rss, self.main_pss = max(self.main_rss, rss), max(self.main_pss, pss)
        tree_rss, tree_pss = rss, pss
        for child in children:
            c_rss, c_pss = self._mem(child)
            if not c_rss:
                continue
            if child.pid not in self.kind:
                try:  # read both now: right after Popen the root may not have exec'd yet
                    cmdline, root_cmdline = child.cmdline(), self.root.cmdline()
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    cmdline, root_cmdline = [], None
                self.kind[child.pid] = cmdline == root_cmdline
                if not self.kind[child.pid]:
                    self.others_seen[child.pid] = " ".join(cmdline[:1]) or "?"
            if self.kind[child.pid]:
                self.workers_seen.add(child.pid)
                self.worker_rss, self.worker_pss = max(self.worker_rss, c_rss), max(self.worker_pss, c_pss)
            else:
                self.other_rss = max(self.other_rss, c_rss)
            tree_rss += c_rss
            tree_pss += c_pss
        self.tree_rss, self.tree_pss = max(self.tree_rss, tree_rss), max(self.tree_pss, tree_pss)
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.poll()
            self.stop_event.wait(self.interval)

    def result(self) -> dict:
        return {
            "main_rss_mb": self.main_rss / MB, "main_pss_mb": self.main_pss / MB,
            "worker_rss_mb": self.worker_rss / MB, "worker_pss_mb": self.worker_pss / MB,
            "tree_rss_mb": self.tree_rss / MB, "tree_pss_mb": self.tree_pss / MB,
            "other_rss_mb": self.other_rss / MB, "other_processes": sorted(set(self.others_seen.values())),
            "worker_processes": len(self.workers_seen), "polls": self.samples,
        }


def run_measured(cmd: list[str], poll: float, stdout=subprocess.PIPE) -> dict:
    """Run ``cmd``; wall clock, exit status, output and polled peak memory of its tree."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    monitor = TreeMonitor(proc.pid, poll)
    monitor.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    monitor.stop_event.set()
    monitor.join()
    # CPU time of the whole tree (children that were waited for), less sensitive than wall clock
    # to other load on the machine
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"cmd": cmd, "seconds": wall, "cpu_seconds": cpu, "returncode": proc.returncode, "stdout": out or "",
            "stderr": err or "", "memory": monitor.result()}


def check(result: dict, what: str) -> None:
    if result["returncode"] != 0:
        sys.exit(f"compare_kenlm: {what} failed (exit {result['returncode']}):\n  {' '.join(result['cmd'])}\n"
                 f"{result['stderr'].strip()[-3000:]}")


def parse_json(text: str, what: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")  # tolerate stray lines before the JSON object
        try:
            return json.loads(text[start:]) if start >= 0 else {}
        except json.JSONDecodeError:
            sys.exit(f"compare_kenlm: {what} printed no JSON:\n{text[:2000]}")


def find_kenlm_bin(explicit: str | None) -> Path:
    if explicit:  # an explicit directory must hold lmplz: no silent fallback
        path = Path(explicit)
        if (path / "lmplz").is_file() and os.access(path / "lmplz", os.X_OK):
            return path
        sys.exit(f"compare_kenlm: no executable lmplz in --kenlm-bin {path}")
    candidates = []
    if os.environ.get("KENLM_BIN"):
        candidates.append(Path(os.environ["KENLM_BIN"]))
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    candidates.append(cache / "kenlm/build/bin")
    which = shutil.which("lmplz")
    if which:
        candidates.append(Path(which).parent)
    for c in candidates:
        if (c / "lmplz").is_file() and os.access(c / "lmplz", os.X_OK):
            return c
    sys.exit("compare_kenlm: KenLM's lmplz was not found (looked in: "
             + ", ".join(str(c) for c in candidates)
             + "). Build it once with ../shared/tools/kenlm/build.sh, or pass --kenlm-bin DIR.")


def best_of(fn, repeat: int) -> tuple[float, list[float], object]:
    times, value = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), times, value


def quiet_stderr(fn):
    """Call ``fn`` with file descriptor 2 sent to /dev/null (for C++ progress output)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            return fn()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def arpa_counts(path: Path) -> dict[int, int]:
    counts = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("ngram "):
                k, v = line[6:].split("=")
                counts[int(k)] = int(v)
            elif line.startswith("\\1-grams"):
                break
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--order", type=int, default=3, choices=sorted(CONFIGS),
                        help="n-gram order: 3 (dirichlet-trigram, default) or 2 (dirichlet-bigram)")
    parser.add_argument("--work", help="directory for the model, token files and ARPA (default: a temporary one, removed)")
    parser.add_argument("--data", type=Path, default=DATA, help=f"Shakespeare data (default {DATA})")
    parser.add_argument("--seed", type=int, default=1, help="sampler seed of bayeslm fit (default 1)")
    parser.add_argument("--kenlm-bin", help="directory holding lmplz")
    parser.add_argument("--bayeslm", help="the bayeslm command (default: next to this Python, else on PATH)")
    parser.add_argument("--memory", default="1G", help="lmplz -S memory budget (default 1G)")
    parser.add_argument("--poll", type=float, default=0.05, help="memory polling interval, seconds (default 0.05)")
    parser.add_argument("--score-repeat", type=int, default=5, help="scoring runs; best is reported (default 5)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    train, valid, test = (args.data / s for s in ("train", "valid", "test"))
    missing = [str(p) for p in (train, valid, test) if not p.is_dir()]
    if missing:
        sys.exit(f"compare_kenlm: the Shakespeare data is not at {args.data} (missing {', '.join(missing)}); "
                 "it is expected at ../shared/data/shakespeare next to the repository, or pass --data DIR")
    kenlm_bin = find_kenlm_bin(args.kenlm_bin)
    bayeslm_cmd = args.bayeslm or (str(Path(sys.executable).parent / "bayeslm")
                                   if (Path(sys.executable).parent / "bayeslm").exists() else shutil.which("bayeslm"))
    if not bayeslm_cmd:
        sys.exit("compare_kenlm: the bayeslm command was not found; pass --bayeslm PATH")
    try:
        import kenlm  # noqa: F401
        import psutil  # noqa: F401
    except ImportError as err:
        sys.exit(f"compare_kenlm: {err.name} is not installed (pip install -e '.[bench]')")
    import kenlm

    config = CONFIGS[args.order]
    tmp = None
    if args.work:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bayeslm-kenlm-")
        work = Path(tmp.name)
    model_dir = work / f"{config}.model"
    notes: list[str] = []
    load_before = os.getloadavg()[0]
    print(f"bayeslm vs KenLM, order {args.order} ({config}), data {args.data}, work dir {work}", flush=True)
    print(f"load average (1 min) before: {load_before:.2f} on {os.cpu_count()} CPUs", flush=True)

    # (a) fit ---------------------------------------------------------------------------
    rusage_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    fit_cmd = [bayeslm_cmd, "fit", config, "--train", str(train), "--valid", str(valid), "--out", str(model_dir),
               "--seed", str(args.seed), "--quiet", "--json", "--force"]
    print("fitting bayeslm ...", flush=True)
    fit = run_measured(fit_cmd, args.poll)
    if fit["returncode"] != 0 and "not fitted" in fit["stderr"]:
        # the CLI once read --valid with the unfitted model's vocabulary (a bug); the
        # Dirichlet family does not use the validation text, so the fit is the same without it
        notes.append("bayeslm fit --valid failed with 'not fitted' (CLI bug); refitted without --valid: "
                     + fit["stderr"].strip().splitlines()[-1])
        print("  " + notes[-1], flush=True)
        fit_cmd = [c for c in fit_cmd if c not in ("--valid", str(valid))]
        rusage_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        fit = run_measured(fit_cmd, args.poll)
    check(fit, "bayeslm fit")
    rusage_after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    fit_json = parse_json(fit["stdout"], "bayeslm fit --json")
    diags = fit_json.get("diagnostics", {})
    rhat_max = max(float(d["r_hat"]) for d in diags.values())
    ess_min = min(float(d["ess_bulk"]) for d in diags.values())
    ess_tail_min = min(float(d["ess_tail"]) for d in diags.values())
    divergences = int(fit_json.get("divergences", 0))
    stderr_lines = [l for l in fit["stderr"].splitlines() if l.strip()]

    # (b) evaluate ------------------------------------------------------------------------
    print("evaluating bayeslm ...", flush=True)
    ev = run_measured([bayeslm_cmd, "evaluate", str(model_dir), "--test", str(test), "--json"], args.poll)
    check(ev, "bayeslm evaluate")
    ev_json = parse_json(ev["stdout"], "bayeslm evaluate --json")
    pp = ev_json["perplexity"]

    # (c) KenLM -----------------------------------------------------------------------------
    print("tokenising for KenLM ...", flush=True)
    toks = {}
    for name, path in (("train", train), ("test", test)):
        target = work / f"{name}.tok"
        with open(target, "w", encoding="utf-8") as fh:
            r = run_measured([bayeslm_cmd, "tokenize", str(model_dir), str(path), "--unk", "<oov>"], args.poll, stdout=fh)
        check(r, f"bayeslm tokenize {name}")
        toks[name] = (target, r["seconds"])
    arpa = work / f"train.{args.order}.arpa"
    print("running lmplz ...", flush=True)
    lmplz = run_measured([str(kenlm_bin / "lmplz"), "-o", str(args.order), "-S", args.memory,
                          "--text", str(toks["train"][0]), "--arpa", str(arpa)], args.poll)
    check(lmplz, "lmplz")
    kmodel = quiet_stderr(lambda: kenlm.Model(str(arpa)))  # KenLM prints a loading progress bar
    test_lines = toks["test"][0].read_text(encoding="utf-8").splitlines()
    test_lines = [l for l in test_lines if l.strip()]
    k_words = sum(len(l.split()) for l in test_lines)
    k_oov = sum(1 for l in test_lines for w in l.split() if w not in kmodel)
    k_oov_marked = sum(l.split().count("<oov>") for l in test_lines)
    k_positions = k_words + len(test_lines)

    def kenlm_total():
        score = kmodel.score
        return sum(score(l, bos=True, eos=True) for l in test_lines)

    k_total = kenlm_total()
    k_ppl = 10.0 ** (-k_total / k_positions)

    # (d) scoring throughput ------------------------------------------------------------------
    print("timing scoring ...", flush=True)
    import bayeslm
    from bayeslm.text.corpus import read_lines, resolve_paths

    lm = bayeslm.load(model_dir)
    corpus = lm.read(test)
    raw_lines = read_lines(resolve_paths(test))
    positions = corpus.n_tokens + corpus.n_sentences
    lm.predictive_log_prob(corpus)  # warm-up (first-call allocations)
    b_s, b_runs, lp = best_of(lambda: lm.predictive_log_prob(corpus), args.score_repeat)
    b_enc_s, b_enc_runs, lp_enc = best_of(lambda: lm.predictive_log_prob(raw_lines), args.score_repeat)
    k_s, k_runs, _ = best_of(kenlm_total, args.score_repeat)
    in_process_ppl = float(np.exp(-lp.sum() / positions))
    if not np.allclose(lp, lp_enc):
        notes.append("predictive_log_prob of the raw lines differs from that of the read corpus")
    b_tps, b_enc_tps, k_tps = positions / b_s, positions / b_enc_s, k_positions / k_s
    score_ratio, score_enc_ratio = b_tps / k_tps, b_enc_tps / k_tps

    # n-gram counts: bayeslm vs the ARPA file ----------------------------------------------------
    counts = lm.counts_
    arpa_n = arpa_counts(arpa)
    bos = lm.vocab_.bos_id
    bos_only = 0
    if args.order >= 3:
        grams = counts.ngram_tokens(args.order)
        bos_only = int(np.all(grams[:, : args.order - 1] == bos, axis=1).sum())
    count_rows = []
    for k in range(1, args.order + 1):
        ours = counts[k].n_ngrams
        count_rows.append((k, ours, arpa_n.get(k)))

    load_after = os.getloadavg()[0]
    if tmp is not None:
        tmp.cleanup()

    # -- report ------------------------------------------------------------------------------
    mem = fit["memory"]
    fit_wall = fit["seconds"]
    figures = {
        "bayeslm": {
            "predictive_perplexity": ev_json["predictive_perplexity"],
            "perplexity_per_draw_mean": pp["mean"], "perplexity_hdi_low": pp["hdi_low"],
            "perplexity_hdi_high": pp["hdi_high"], "hdi_prob": pp["hdi_prob"],
            "in_process_predictive_perplexity": in_process_ppl,
            "test_positions": ev_json["positions"], "test_words": ev_json["tokens"], "test_sentences": ev_json["sentences"],
            "test_oov": ev_json["oov"], "oov_rate": ev_json["oov_rate"],
            "training_tokens": fit_json.get("training_tokens"), "vocabulary": fit_json.get("vocabulary"),
            "fit_wall_seconds": fit_wall, "fit_seconds_reported": fit_json.get("fit_seconds"),
            "fit_cpu_seconds": fit["cpu_seconds"],
            "peak_main_rss_mb": mem["main_rss_mb"], "peak_main_pss_mb": mem["main_pss_mb"],
            "peak_worker_rss_mb": mem["worker_rss_mb"], "peak_worker_pss_mb": mem["worker_pss_mb"],
            "sampler_worker_processes": mem["worker_processes"],
            "peak_other_child_rss_mb": mem["other_rss_mb"], "other_child_processes": mem["other_processes"],
            "peak_tree_rss_mb": mem["tree_rss_mb"], "peak_tree_pss_mb": mem["tree_pss_mb"],
            "ru_maxrss_children_mb": rusage_after / 1024, "ru_maxrss_before_mb": rusage_before / 1024,
            "rhat_max": rhat_max, "ess_bulk_min": ess_min, "ess_tail_min": ess_tail_min, "divergences": divergences,
            "evaluate_wall_seconds": ev["seconds"], "evaluate_peak_rss_mb": ev["memory"]["tree_rss_mb"],
            "tokenize_wall_seconds": {k: v[1] for k, v in toks.items()},
            "fit_stderr": stderr_lines[-10:],
        },
        "kenlm": {
            "perplexity": k_ppl, "test_positions": k_positions, "test_words": k_words, "test_sentences": len(test_lines),
            "test_oov_outside_arpa_vocab": k_oov, "test_oov_marked": k_oov_marked,
            "lmplz_wall_seconds": lmplz["seconds"], "lmplz_cpu_seconds": lmplz["cpu_seconds"], "lmplz_peak_rss_mb": lmplz["memory"]["tree_rss_mb"],
            "lmplz_memory_flag": args.memory, "arpa_ngrams": arpa_n,
        },
        "scoring": {
            "positions": positions, "repeat": args.score_repeat,
            "bayeslm_seconds": b_s, "bayeslm_runs": b_runs, "bayeslm_tokens_per_s": b_tps,
            "bayeslm_with_encoding_seconds": b_enc_s, "bayeslm_with_encoding_runs": b_enc_runs,
            "bayeslm_with_encoding_tokens_per_s": b_enc_tps,
            "kenlm_seconds": k_s, "kenlm_runs": k_runs, "kenlm_tokens_per_s": k_tps,
            "ratio_bayeslm_over_kenlm": score_ratio, "ratio_with_encoding_over_kenlm": score_enc_ratio,
        },
        "ratios": {"fit_time_bayeslm_over_lmplz": fit_wall / lmplz["seconds"],
                   "fit_cpu_time_bayeslm_over_lmplz": fit["cpu_seconds"] / max(lmplz["cpu_seconds"], 1e-9),
                   "scoring_throughput_bayeslm_over_kenlm": score_ratio},
        "ngram_counts": {"bayeslm": {str(k): o for k, o, _ in count_rows}, "kenlm_arpa": {str(k): a for k, _, a in count_rows},
                         "bayeslm_bos_bos_trigrams": bos_only},
        "load_average_1min": {"before": load_before, "after": load_after, "cpus": os.cpu_count()},
        "notes": notes,
    }
    checks = {
        "perplexity": ev_json["predictive_perplexity"] <= TARGETS["perplexity_max"],
        "fit_seconds": fit_wall < TARGETS["fit_seconds_max"],
        "peak_memory": mem["tree_rss_mb"] < TARGETS["peak_memory_mb_max"],
        "scoring_ratio": score_ratio >= TARGETS["scoring_ratio_min"],
        "rhat": rhat_max <= TARGETS["rhat_max"],
        "ess_bulk": ess_min >= TARGETS["ess_bulk_min"],
        "divergences": divergences <= TARGETS["divergences_max"],
    }

    def pf(key):
        return "PASS" if checks[key] else "FAIL"

    rows = [
        ("bayeslm", None, None, None),
        ("predictive perplexity (test)", f"{ev_json['predictive_perplexity']:.2f}", "<= 127", pf("perplexity")),
        (f"perplexity per draw, mean [{100 * pp['hdi_prob']:.0f}% HDI]",
         f"{pp['mean']:.2f} [{pp['hdi_low']:.2f}, {pp['hdi_high']:.2f}]", "", ""),
        ("fit wall clock, whole command (s)", f"{fit_wall:.1f}", "< 60", pf("fit_seconds")),
        ("  of which model.fit (fit_seconds, s)", f"{fit_json.get('fit_seconds', float('nan')):.1f}", "", ""),
        ("  CPU time user+sys, whole tree (s)", f"{fit['cpu_seconds']:.1f}", "", ""),
        ("peak memory, process tree summed RSS (MB)", f"{mem['tree_rss_mb']:.0f}", "< 1536", pf("peak_memory")),
        ("  main fit process, peak RSS (MB)", f"{mem['main_rss_mb']:.0f}", "", ""),
        (f"  sampler workers ({mem['worker_processes']}), largest peak RSS (MB)", f"{mem['worker_rss_mb']:.0f}", "", ""),
        (f"  other child processes ({', '.join(Path(p).name for p in mem['other_processes']) or 'none'}), "
         "largest peak RSS (MB)", f"{mem['other_rss_mb']:.0f}", "", ""),
        ("  tree summed PSS (MB)", f"{mem['tree_pss_mb']:.0f}", "", ""),
        ("  ru_maxrss RUSAGE_CHILDREN, largest process (MB)", f"{rusage_after / 1024:.0f}", "", ""),
        ("R-hat, max over parameters", f"{rhat_max:.3f}", "<= 1.01", pf("rhat")),
        ("bulk ESS, min over parameters", f"{ess_min:.0f}", ">= 400", pf("ess_bulk")),
        ("divergences", f"{divergences}", "0", pf("divergences")),
        ("test positions (words + </s>) / OOV words", f"{ev_json['positions']} / {ev_json['oov']}", "", ""),
        ("KenLM", None, None, None),
        ("perplexity (test)", f"{k_ppl:.2f}", "", ""),
        ("lmplz wall clock (s)", f"{lmplz['seconds']:.2f}", "", ""),
        ("  CPU time user+sys (s)", f"{lmplz['cpu_seconds']:.2f}", "", ""),
        ("lmplz peak RSS (MB)", f"{lmplz['memory']['tree_rss_mb']:.0f}", "", ""),
        ("test positions (words + </s>) / words outside ARPA vocab", f"{k_positions} / {k_oov}", "", ""),
        ("scoring throughput (positions/s, best of %d)" % args.score_repeat, None, None, None),
        ("bayeslm predictive_log_prob, encoded corpus", f"{b_tps:,.0f}", "", ""),
        ("bayeslm incl. tokenising + encoding raw lines", f"{b_enc_tps:,.0f}", "", ""),
        ("kenlm Model.score loop", f"{k_tps:,.0f}", "", ""),
        ("ratios", None, None, None),
        ("fit time bayeslm / lmplz (wall clock)", f"{fit_wall / lmplz['seconds']:.1f}x", "", ""),
        ("fit CPU time bayeslm / lmplz", f"{fit['cpu_seconds'] / max(lmplz['cpu_seconds'], 1e-9):.1f}x", "", ""),
        ("scoring throughput bayeslm / kenlm", f"{score_ratio:.2f}x", ">= 0.5x", pf("scoring_ratio")),
        ("  incl. tokenising + encoding", f"{score_enc_ratio:.2f}x", "", ""),
        ("perplexity bayeslm / KenLM", f"{ev_json['predictive_perplexity'] / k_ppl:.3f}", "", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, target, verdict in rows:
        if value is None:
            print(f"{name}")
            continue
        print(f"  {name:<{width}}  {value:>26}  {target:>8}  {verdict}")
    print()
    print("n-gram types: bayeslm counts vs KenLM ARPA")
    for k, ours, theirs in count_rows:
        print(f"  order {k}: bayeslm {ours:>9,}   ARPA {theirs if theirs is not None else 'n/a':>9,}"
              f"   difference {ours - (theirs or 0):+,}")
    print("  (ARPA unigrams also list <s> and KenLM's own <unk> beside bayeslm's <unk> renamed <oov>; "
          + (f"bayeslm pads with {args.order - 1} <s>, so it has {bos_only:,} trigrams '<s> <s> w' that KenLM, "
             "padding with one <s>, does not have)" if args.order >= 3 else "one <s> pad, as in KenLM)"))
    passed = sum(checks.values())
    print(f"\ntargets: {passed}/{len(checks)} PASS; load average (1 min) after: {load_after:.2f}")
    if load_before > 0.5 or load_after > 1.5:
        print("warning: the machine was busy (load average above); timings may be inflated")
    for note in notes:
        print(f"note: {note}")

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        figures.update({
            "benchmark": "compare_kenlm", "git": git_state(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "order": args.order, "config": config, "data": str(args.data), "seed": args.seed,
            "targets": TARGETS, "checks": {k: bool(v) for k, v in checks.items()},
            "versions": {"bayeslm": bayeslm.__version__, "kenlm_module": getattr(kenlm, "__version__", "unknown")},
            "commands": {"fit": fit_cmd, "lmplz": lmplz["cmd"]},
        })
        out.write_text(json.dumps(figures, indent=2, default=float))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
