"""Counting speed: ``bayeslm.count(corpus, order)`` vs ``nltk.lm.NgramCounter``, same events.

What it measures
----------------
Wall-clock seconds to count all n-grams of orders 1..``--order`` (default 3) of the
Shakespeare training plays (``../shared/data/shakespeare/train``, word tokens, types
seen fewer than ``--min-count`` = 2 times mapped to ``<unk>``), once with bayeslm's
vectorised numpy counter and once with NLTK's ``NgramCounter``, in the same process and
run, and the speed-up ratio (target >= 20x).

Both count the *same events*. bayeslm pads every sentence with ``order - 1`` ``<s>`` and
one ``</s>`` and counts, for every predicted position (each token and the ``</s>``,
never an ``<s>``), the n-grams of orders 1..n that end there. NLTK's
``padded_everygrams`` would pad both sides with ``n - 1`` markers and add events such as
``(</s>, </s>)``, so instead NLTK is fed, per sentence, exactly these n-grams (tuples of
token strings built from the same padded sentence). Before timing anything, the script
checks that both give the same number of events and distinct n-grams for every order
and prints the check (total trigram count included).

What is timed
-------------
- bayeslm: ``bayeslm.count(corpus, order)`` on the already-encoded corpus (padding,
  n-gram extraction, sorting, continuation counts); best of ``--repeat`` (default 3).
- NLTK: ``NgramCounter(generator of per-sentence n-gram lists)``, i.e. building the
  n-gram tuples from pre-split, pre-padded token lists *and* counting them (NLTK has no
  separate step; the tuples are made lazily while it counts); best of ``--nltk-repeat``
  (default 1, it is slow).
Reading, tokenising and encoding the text are excluded for both. Wall clock is the
headline (target checked on it); CPU time (``time.process_time``, all threads) is
printed too, as it depends less on other load on the machine. bayeslm may count orders
in parallel threads, so its CPU time can exceed its wall clock.

Run
---
    /work/venv/bin/python bench/count_speed.py
    /work/venv/bin/python bench/count_speed.py --order 3 --repeat 3 --out bench/out/count_speed.json
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _common import git_state  # bench/ is on sys.path when a script runs

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/shakespeare"
TARGET_SPEEDUP = 20.0


def padded_sentences(corpus, order: int) -> list[list[str]]:
    """Each sentence as token strings: ``order - 1`` <s>, the tokens (<unk> for rare ones), </s>."""
    tokens = np.asarray(corpus.vocab.tokens, dtype=object)
    pad = ["<s>"] * (order - 1)
    return [pad + tokens[corpus.ids[a:b]].tolist() + ["</s>"]
            for a, b in zip(corpus.offsets[:-1], corpus.offsets[1:])]


def nltk_events(sentences: list[list[str]], order: int):
    """Per sentence, the n-grams of orders 1..order ending at each predicted position."""
    start = order - 1
    for s in sentences:
        yield [tuple(s[i - k + 1 : i + 1]) for i in range(start, len(s)) for k in range(1, order + 1)]


def nltk_stats(counter, order: int) -> dict[int, tuple[int, int]]:
    """(events, distinct n-grams) per order of an NLTK NgramCounter."""
    out = {1: (int(counter.unigrams.N()), int(len(counter.unigrams)))}
    for k in range(2, order + 1):
        cfd = counter[k]
        out[k] = (int(sum(fd.N() for fd in cfd.values())), int(sum(len(fd) for fd in cfd.values())))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help=f"Shakespeare data directory (default {DATA})")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="bayeslm runs; the best is reported (default 3)")
    parser.add_argument("--nltk-repeat", type=int, default=1, help="NLTK runs; the best is reported (default 1)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    train = args.data / "train"
    if not train.is_dir():
        sys.exit(f"count_speed: the Shakespeare data is not at {args.data} (expected {train}); "
                 "pass --data DIR or provide ../shared/data/shakespeare next to the repository")

    import os

    import nltk
    from nltk.lm import NgramCounter

    import bayeslm

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    corpus = bayeslm.Corpus.from_paths(train)
    vocab = bayeslm.Vocabulary.build(corpus.type_counts(), min_count=args.min_count)
    corpus = corpus.with_vocabulary(vocab)
    read_s = time.perf_counter() - t0
    sentences = padded_sentences(corpus, args.order)
    n = args.order

    # -- agreement check (not timed) -------------------------------------------------
    counts = bayeslm.count(corpus, n)
    counter = NgramCounter(nltk_events(sentences, n))
    ours = {k: (int(counts[k].ngram_count.sum()), counts[k].n_ngrams) for k in range(1, n + 1)}
    theirs = nltk_stats(counter, n)
    agree = ours == theirs
    del counter
    gc.collect()

    # -- timing ------------------------------------------------------------------------
    def timed(fn):
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - t, time.process_time() - c

    bayes_runs = [timed(lambda: bayeslm.count(corpus, n)) for _ in range(args.repeat)]
    nltk_runs = [timed(lambda: NgramCounter(nltk_events(sentences, n))) for _ in range(args.nltk_repeat)]
    bayes_times, nltk_times = [w for w, _ in bayes_runs], [w for w, _ in nltk_runs]
    bayes_s, nltk_s = min(bayes_times), min(nltk_times)
    bayes_cpu, nltk_cpu = min(c for _, c in bayes_runs), min(c for _, c in nltk_runs)
    speedup = nltk_s / bayes_s
    speedup_cpu = nltk_cpu / bayes_cpu
    events = ours[1][0]

    print(f"Counting n-grams of orders 1..{n}: Shakespeare train ({corpus.n_sentences} sentences, "
          f"{corpus.n_tokens} word tokens, vocabulary {len(vocab)} with min count {args.min_count}; "
          f"read+tokenise {read_s:.1f} s, not timed)")
    print()
    print("Same events? (events, distinct n-grams) per order")
    print(f"  {'order':>5}  {'bayeslm events':>15} {'nltk events':>12}  {'bayeslm distinct':>16} {'nltk distinct':>13}")
    for k in range(1, n + 1):
        print(f"  {k:>5}  {ours[k][0]:>15,} {theirs[k][0]:>12,}  {ours[k][1]:>16,} {theirs[k][1]:>13,}")
    print(f"  total order-{n} count agrees: {'yes' if ours[n][0] == theirs[n][0] else 'NO'}; "
          f"all orders agree: {'yes' if agree else 'NO'}")
    print()
    rows = [
        (f"bayeslm.count (best of {args.repeat})", f"{bayes_s:.3f} s", f"{events / bayes_s / 1e6:.2f} M events/s",
         ", ".join(f"{x:.3f}" for x in bayes_times)),
        (f"nltk.lm.NgramCounter (best of {args.nltk_repeat})", f"{nltk_s:.3f} s", f"{events / nltk_s / 1e6:.2f} M events/s",
         ", ".join(f"{x:.3f}" for x in nltk_times)),
    ]
    print(f"  {'counter':<36} {'seconds':>10} {'throughput':>20}  runs (wall clock)")
    for name, sec, thr, runs in rows:
        print(f"  {name:<36} {sec:>10} {thr:>20}  {runs}")
    print(f"  CPU seconds (process time, all threads): bayeslm {bayes_cpu:.3f}, nltk {nltk_cpu:.3f}")
    verdict = "PASS" if speedup >= TARGET_SPEEDUP and agree else "FAIL"
    print(f"  speed-up nltk/bayeslm, wall clock: {speedup:.1f}x   target >= {TARGET_SPEEDUP:.0f}x: {verdict}")
    print(f"  speed-up nltk/bayeslm, CPU time:   {speedup_cpu:.1f}x   (less sensitive to other load on the machine)")
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before / after: {load_before:.2f} / {load_after:.2f} on {os.cpu_count()} CPUs")

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "benchmark": "count_speed", "git": git_state(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data": str(train), "order": n, "min_count": args.min_count,
            "sentences": corpus.n_sentences, "tokens": corpus.n_tokens, "vocabulary": len(vocab),
            "events_per_order": {str(k): ours[k][0] for k in ours},
            "distinct_per_order": {str(k): ours[k][1] for k in ours},
            "nltk_events_per_order": {str(k): theirs[k][0] for k in theirs},
            "nltk_distinct_per_order": {str(k): theirs[k][1] for k in theirs},
            "counts_agree": agree,
            "bayeslm_seconds": bayes_s, "bayeslm_runs": bayes_times,
            "nltk_seconds": nltk_s, "nltk_runs": nltk_times,
            "speedup": speedup, "bayeslm_cpu_seconds": bayes_cpu, "nltk_cpu_seconds": nltk_cpu, "speedup_cpu": speedup_cpu, "load_average_1min": {"before": load_before, "after": load_after, "cpus": os.cpu_count()}, "target_speedup": TARGET_SPEEDUP, "pass": verdict == "PASS",
            "versions": {"bayeslm": bayeslm.__version__, "nltk": nltk.__version__, "numpy": np.__version__},
        }, indent=2))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
