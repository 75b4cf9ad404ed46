"""Counting on Dask: a 2-worker local cluster vs single-process counting, and a 50M-token run.

What it measures
----------------
A synthetic corpus is generated first (seeded; not timed): tokens drawn i.i.d. from a
Zipf distribution (exponent ``--exponent`` = 1.1) over ``--vocab`` = 1,000,000 types,
each type a distinct lowercase letter string (so the default ``word`` tokenizer keeps it
whole), sentences of 5..35 tokens, written as text files of ``--file-tokens`` tokens to
a temporary directory (``--work``).

1. ``--small`` = 10M tokens, trigrams, side by side, from the text files:
   - single process: ``Corpus.from_paths(files)`` then ``bayeslm.count(corpus, 3)``
     (reading, tokenising, vocabulary, counting: what ``bayeslm fit`` does);
   - cluster: ``bayeslm.distributed.count_files(files, 3, client)`` on a LocalCluster of
     ``--workers`` = 2 worker processes of 1 thread, ``--memory-limit`` = 1.5 GB each,
     returning the merged ``NgramCounts`` to the main process.
   The two results are checked equal (vocabulary, and every array of every order);
   target: cluster at least 1.5x faster (wall clock). For reference, counting alone on
   the already-encoded corpus (``count(corpus, 3)`` vs ``count(corpus, 3, client=...)``)
   is printed too (no target).
2. ``--large`` = 50M tokens, trigrams, cluster only, counts streamed to an ``.npz``
   (``count_files(..., out=...)``): target: it finishes, no worker died (same worker
   pids before and after) and the main process's peak RSS stays under 2 GB.

Peak memory is the largest resident set size seen by a psutil polling thread (every
20 ms) for the main process and for each worker process; CPU time is the main
process's ``time.process_time`` plus the workers' user+sys CPU (psutil). Throughput is
text tokens (without ``</s>``) per wall-clock second. The 1-minute load average is
printed before and after.

Run
---
    .venv/bin/python bench/dask_count.py --out bench/out/dask_count.json   # both parts, part [2] in a fresh process
    .venv/bin/python bench/dask_count.py --skip-large --out bench/out/dask_count.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _common import git_state  # bench/ is on sys.path when a script runs

TARGET_SPEEDUP = 1.5
TARGET_MAIN_PEAK_MB = 2000.0


# -- corpus -------------------------------------------------------------------------------
def type_names(n: int) -> np.ndarray:
    """n distinct lowercase strings (bijective base 26: a..z, aa..zz, ...), as an object array."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out = np.empty(n, dtype=object)
    r = np.arange(1, n + 1)
    digits = []
    while np.any(r > 0):
        d = (r - 1) % 26
        digits.append(np.where(r > 0, d, -1))
        r = np.where(r > 0, (r - 1) // 26, 0)
    cols = np.stack(digits[::-1], axis=1)
    for i, row in enumerate(cols):
        out[i] = "".join(letters[row[row >= 0]])
    return out


def write_corpus(directory: Path, n_tokens: int, vocab: int, exponent: float, file_tokens: int, seed: int) -> list[Path]:
    """Zipf(exponent) tokens over ``vocab`` types in sentences of 5..35 tokens, one text file per ``file_tokens``."""
    directory.mkdir(parents=True, exist_ok=True)
    cdf = np.cumsum(np.arange(1, vocab + 1, dtype=np.float64) ** -exponent)
    cdf /= cdf[-1]
    names = np.append(type_names(vocab), "\n")  # the last "type" ends a sentence
    files = []
    for i, start in enumerate(range(0, n_tokens, file_tokens)):
        rng = np.random.default_rng([seed, i])
        m = min(file_tokens, n_tokens - start)
        ids = np.minimum(np.searchsorted(cdf, rng.random(m)), vocab - 1)
        lengths = rng.integers(5, 36, size=m // 5 + 1)
        ends = np.cumsum(lengths)
        ends = ends[ends < m]
        stream = np.insert(ids, np.append(ends, m), vocab)  # sentence breaks
        path = directory / f"part-{i:04d}.txt"
        path.write_text(" ".join(names[stream].tolist()), encoding="utf-8")
        files.append(path)
    return files


# -- measuring ----------------------------------------------------------------------------
class PeakRSS:
    """Largest RSS of the main process and of every descendant process, polled with psutil."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.main_peak = 0
        self.child_peak: dict[int, int] = {}
        self._stop = threading.Event()

    def _poll(self):
        import psutil

        while not self._stop.is_set():
            try:
                self.main_peak = max(self.main_peak, self.proc.memory_info().rss)
                for child in self.proc.children(recursive=True):
                    try:
                        self.child_peak[child.pid] = max(self.child_peak.get(child.pid, 0), child.memory_info().rss)
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self.main_peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def children_cpu() -> float:
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def warm_up(client) -> None:
    """Import the package on every worker first (a running cluster has it loaded; not timed)."""
    import importlib

    client.run(importlib.import_module, "bayeslm.counting.distributed")


def worker_pids(client) -> dict[str, int]:
    return {addr: info.get("pid") for addr, info in client.scheduler_info()["workers"].items()}


def timed(fn):
    """(result, wall s, main CPU s, workers' CPU s, main peak MB, largest worker peak MB)."""
    gc.collect()
    child0 = children_cpu()
    with PeakRSS() as peak:
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    workers_cpu = children_cpu() - child0
    worker_peak = max(peak.child_peak.values(), default=0)
    return result, wall, cpu, workers_cpu, peak.main_peak / 1e6, worker_peak / 1e6


def same_counts(a, b) -> bool:
    A, B = a.to_arrays(), b.to_arrays()
    return A.keys() == B.keys() and all(A[k].dtype == B[k].dtype and np.array_equal(A[k], B[k]) for k in A)


def npz_sizes(path: Path, order: int) -> dict[int, int]:
    """Distinct n-grams per order, read from the .npy headers of an uncompressed .npz."""
    import zipfile

    out = {}
    with zipfile.ZipFile(path) as zf:
        for k in range(1, order + 1):
            with zf.open(f"o{k}_ngram_key.npy") as fp:
                version = np.lib.format.read_magic(fp)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, _ = read(fp)
                out[k] = int(shape[0])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000_000, help="tokens of the side-by-side run")
    parser.add_argument("--large", type=int, default=50_000_000, help="tokens of the memory run")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--vocab", type=int, default=1_000_000)
    parser.add_argument("--exponent", type=float, default=1.1)
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1.5GB", help="per worker (spills to disk past 60%%)")
    parser.add_argument("--file-tokens", type=int, default=2_500_000, help="tokens per generated text file")
    parser.add_argument("--blocksize", type=int, default=None, help="bytes per partition (default: the package's)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--work", type=Path, default=None, help="directory for the corpus (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--quiet-header", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import dask
    import distributed

    import bayeslm
    from bayeslm.counting.distributed import DEFAULT_BLOCKSIZE, count_files, dask_client

    blocksize = args.blocksize or DEFAULT_BLOCKSIZE
    work = args.work or Path(tempfile.mkdtemp(prefix="bayeslm-dask-bench-"))
    load_before = os.getloadavg()[0]
    figures: dict = {"benchmark": "dask_count", "git": git_state(),
                     "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "vocab_types": args.vocab, "exponent": args.exponent, "order": args.order,
                     "workers": args.workers, "memory_limit": args.memory_limit, "blocksize": blocksize,
                     "seed": args.seed}
    verdicts = []
    if not args.quiet_header:
        print(f"Zipf({args.exponent}) tokens over {args.vocab:,} types, order {args.order}; LocalCluster of "
              f"{args.workers} worker processes x 1 thread, memory limit {args.memory_limit} each; "
              f"partitions of {blocksize / 2**20:.0f} MiB of text; corpus in {work}")
    cluster = dict(n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory_limit)
    try:
        if not args.skip_small:
            with dask_client(**cluster) as client:
                warm_up(client)
                t = time.perf_counter()
                files = write_corpus(work / "small", args.small, args.vocab, args.exponent, args.file_tokens, args.seed)
                size_mb = sum(f.stat().st_size for f in files) / 1e6
                print(f"\n[1] {args.small:,} tokens: {len(files)} files, {size_mb:.0f} MB of text "
                      f"(generated in {time.perf_counter() - t:.1f} s, not timed)")

                def single():
                    corpus = bayeslm.Corpus.from_paths(files)
                    return corpus, bayeslm.count(corpus, args.order)

                (corpus, ref), *single_fig = timed(single)
                dask_res, *dask_fig = timed(lambda: count_files(files, args.order, client, blocksize=blocksize,
                                                                sample=False))
                agree = dask_res.vocab == corpus.vocab and same_counts(ref, dask_res.counts)
                n = corpus.n_tokens
                # counting alone, on the encoded corpus (reference only)
                _, *single_count = timed(lambda: bayeslm.count(corpus, args.order))
                dres, *dask_count = timed(lambda: bayeslm.count(corpus, args.order, client=client))
                agree_ids = same_counts(ref, dres)
                del dres, dask_res
                speedup = single_fig[0] / dask_fig[0]
                ok = agree and agree_ids and speedup >= TARGET_SPEEDUP
                verdicts.append(ok)
                print(f"    distinct n-grams per order: " + ", ".join(f"{k}: {ref[k].n_ngrams:,}" for k in range(1, args.order + 1))
                      + f"; vocabulary {len(corpus.vocab):,}; partitions {dask_res_parts(files, blocksize)}")
                print(f"    same vocabulary and every array of every order: {'yes' if agree else 'NO'} "
                      f"(counting encoded ids: {'yes' if agree_ids else 'NO'})")
                hdr = f"    {'':<44} {'wall s':>8} {'tokens/s':>12} {'main CPU s':>10} {'workers CPU s':>13} {'main peak MB':>12} {'worker peak MB':>14}"
                print(hdr)
                rows = [("single process: from_paths + count", single_fig),
                        (f"{args.workers}-worker cluster: count_files", dask_fig),
                        ("single process: count(encoded corpus)", single_count),
                        (f"{args.workers}-worker cluster: count(corpus, client=)", dask_count)]
                for name, (wall, cpu, wcpu, mpeak, wpeak) in rows:
                    print(f"    {name:<44} {wall:>8.2f} {n / wall:>12,.0f} {cpu:>10.2f} {wcpu:>13.2f} {mpeak:>12,.0f} {wpeak:>14,.0f}")
                print(f"    speed-up, from text files: {speedup:.2f}x   target >= {TARGET_SPEEDUP}x: {'PASS' if ok else 'FAIL'}")
                print(f"    speed-up, counting encoded ids only (no target): {single_count[0] / dask_count[0]:.2f}x")
                figures["small"] = {
                    "tokens": n, "sentences": corpus.n_sentences, "files": len(files), "text_mb": size_mb,
                    "vocabulary": len(corpus.vocab), "distinct": {str(k): ref[k].n_ngrams for k in range(1, args.order + 1)},
                    "agree": agree, "agree_encoded": agree_ids, "speedup": speedup, "pass": ok,
                    **{f"{key}_{field}": value for key, fig in
                       (("single", single_fig), ("dask", dask_fig), ("single_count", single_count), ("dask_count", dask_count))
                       for field, value in zip(("wall_s", "main_cpu_s", "workers_cpu_s", "main_peak_mb", "worker_peak_mb"), fig)},
                    "speedup_encoded": single_count[0] / dask_count[0],
                }
                del corpus, ref
                shutil.rmtree(work / "small", ignore_errors=True)
                gc.collect()

        if not args.skip_large and not args.skip_small:
            # a fresh process, so the main-process peak is not inflated by what part 1 left behind
            import subprocess

            part = Path(tempfile.mkdtemp(prefix="bayeslm-dask-bench-json-")) / "large.json"
            argv_large = [a for a in (argv if argv is not None else sys.argv[1:])]
            if "--out" in argv_large:
                i = argv_large.index("--out")
                del argv_large[i : i + 2]
            sys.stdout.flush()
            proc = subprocess.run([sys.executable, __file__, *argv_large, "--skip-small", "--quiet-header",
                                   "--out", str(part)], check=False)
            if proc.returncode == 0 and part.exists():
                large = json.loads(part.read_text())
                figures["large"] = large.get("large")
                verdicts.append(bool(figures["large"] and figures["large"]["pass"]))
            else:
                verdicts.append(False)
                figures["large"] = {"error": f"exit status {proc.returncode}"}
            shutil.rmtree(part.parent, ignore_errors=True)
        elif not args.skip_large:
            with dask_client(**cluster) as client:
                warm_up(client)
                t = time.perf_counter()
                files = write_corpus(work / "large", args.large, args.vocab, args.exponent, args.file_tokens, args.seed + 1)
                size_mb = sum(f.stat().st_size for f in files) / 1e6
                print(f"\n[2] {args.large:,} tokens: {len(files)} files, {size_mb:.0f} MB of text "
                      f"(generated in {time.perf_counter() - t:.1f} s, not timed); counts streamed to an .npz")
                client.run(gc.collect)
                pids_before = worker_pids(client)
                out = work / "large-counts.npz"
                error = None
                try:
                    res, wall, cpu, wcpu, mpeak, wpeak = timed(
                        lambda: count_files(files, args.order, client, blocksize=blocksize, out=out, sample=False))
                except Exception as err:  # a worker killed for memory surfaces here
                    error = f"{type(err).__name__}: {err}"
                    res, wall, cpu, wcpu, mpeak, wpeak = None, float("nan"), float("nan"), float("nan"), float("nan"), float("nan")
                pids_after = worker_pids(client)
                survived = error is None and pids_before == pids_after
                ok = survived and mpeak < TARGET_MAIN_PEAK_MB
                verdicts.append(ok)
                if res is not None:
                    sizes = npz_sizes(out, args.order)
                    print(f"    {res.n_tokens:,} tokens, {res.n_sentences:,} sentences, vocabulary {len(res.vocab):,}, "
                          f"{res.n_partitions} partitions, {res.n_ranges} merge ranges; distinct n-grams: "
                          + ", ".join(f"{k}: {v:,}" for k, v in sizes.items())
                          + f"; {out.stat().st_size / 1e6:,.0f} MB .npz")
                    print(f"    wall {wall:.1f} s, {res.n_tokens / wall:,.0f} tokens/s; main CPU {cpu:.1f} s, workers' CPU {wcpu:.1f} s")
                else:
                    print(f"    FAILED: {error}")
                print(f"    workers alive throughout (same pids): {'yes' if survived else 'NO'}; "
                      f"largest worker peak RSS {wpeak:,.0f} MB (limit {args.memory_limit})")
                print(f"    main process peak RSS {mpeak:,.0f} MB   target < {TARGET_MAIN_PEAK_MB:,.0f} MB: {'PASS' if ok else 'FAIL'}")
                figures["large"] = {
                    "tokens": res.n_tokens if res else args.large, "files": len(files), "text_mb": size_mb,
                    "error": error, "workers_survived": survived, "wall_s": wall,
                    "tokens_per_s": (res.n_tokens / wall) if res else None, "main_cpu_s": cpu, "workers_cpu_s": wcpu,
                    "main_peak_mb": mpeak, "worker_peak_mb": wpeak, "pass": ok,
                    "distinct": {str(k): v for k, v in npz_sizes(out, args.order).items()} if res else None,
                    "partitions": res.n_partitions if res else None, "ranges": res.n_ranges if res else None,
                }
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()[0]
    what = "of part [2]" if args.quiet_header else ""
    print(f"\nload average (1 min) {what} before / after: {load_before:.2f} / {load_after:.2f} on {os.cpu_count()} CPUs")
    figures.update(load_average_1min={"before": load_before, "after": load_after, "cpus": os.cpu_count()},
                   pass_all=all(verdicts),
                   versions={"bayeslm": bayeslm.__version__, "dask": dask.__version__,
                             "distributed": distributed.__version__, "numpy": np.__version__})
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2))
        if not args.quiet_header:
            print(f"wrote {out}")
    return 0


def dask_res_parts(files, blocksize) -> int:
    from bayeslm.counting.distributed import _blocks

    return len(_blocks(files, blocksize))


if __name__ == "__main__":
    sys.exit(main())
