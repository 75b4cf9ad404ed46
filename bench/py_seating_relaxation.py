"""How fast the Pitman-Yor seating relaxes at fixed hyperparameters: the Gibbs mode's bottleneck.

What it measures
----------------
On ``../shared/data/shakespeare/train`` (word tokens, min count 2, as
``models/pitman-yor-trigram.toml``), two seatings of the hierarchical Pitman-Yor LM of
order ``--order`` are swept with bayeslm's customer-level Gibbs sweep
(``bayeslm.ngram.pitman_yor.seating.sweep``, the ``SeatingStep`` of ``inference = "gibbs"``) at the *same
fixed* discounts and strengths (``--discount``, ``--strength``, one per order):

- ``sequential``: seated customer by customer in random order (how every chain starts);
  it starts with too many tables;
- ``one-table``: one table per (context, token) type (the ``ikn`` seating); too few.

Both chains target the same distribution, so where their table counts still differ after
S sweeps the sampler has not relaxed in S sweeps. Printed: tables per order of both after
1, 2, 5, ..., ``--sweeps`` sweeps, seconds per sweep, and at the end the top order's gap
split by the number of customers c of a (context, token) pair. No peer: this is a
diagnostic of bayeslm's own sampler (docs/pitman_yor.md; its ``--refresh`` figures from
before the refresh fix of 2026-12-01 are void, see there).

Run
---
    /work/venv/bin/python bench/py_seating_relaxation.py --order 3 --sweeps 200
    /work/venv/bin/python bench/py_seating_relaxation.py --order 5 --sweeps 100 --out bench/out/relax5.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import word_counts  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/shakespeare"
# fixed values for the experiment (both seatings are swept at the same ones); any in range do
DISCOUNT = (0.62, 0.80, 0.88, 0.92, 0.94)
STRENGTH = (1.0, 1.5, 2.0, 2.0, 2.0)
CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 500)


def per_order(text: str | None, default, n: int) -> np.ndarray:
    values = [float(v) for v in text.split(",")] if text else list(default[:n])
    if len(values) != n:
        raise SystemExit(f"give {n} comma-separated values, got {text!r}")
    return np.array(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--discount", help="comma-separated, one per order")
    parser.add_argument("--strength", help="comma-separated, one per order")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--refresh", action="store_true",
                        help="after every sweep, redraw the table sizes of every pair (refresh_partitions)")
    parser.add_argument("--max-cells", type=int, default=20_000_000)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy
    from bayeslm.ngram.pitman_yor.seating_state import SeatingState

    n = args.order
    d, theta = per_order(args.discount, DISCOUNT, n), per_order(args.strength, STRENGTH, n)
    counts = word_counts(Path(args.data), n)
    hier = Hierarchy(counts)
    base = 1.0 / (counts.vocab_size - 1)
    print(f"order {n}: pairs per order {np.diff(hier.po).tolist()}; d {d.tolist()}, theta {theta.tolist()}")
    seq, one = SeatingState(hier, base, True), SeatingState(hier, base, True)
    seq.initialise(d, theta, args.seed)

    def tables(state) -> list[int]:
        return [int(state.tabs[hier.level(k)].sum()) for k in range(1, n + 1)]

    rows = [{"sweeps": 0, "sequential": tables(seq), "one_table": tables(one)}]
    print("sweeps 0: sequential", rows[0]["sequential"], "one-table", rows[0]["one_table"], flush=True)
    from bayeslm.ngram.pitman_yor import seating as S

    candidates = np.flatnonzero(hier.raw >= 3).astype(np.int64)
    spent = 0.0
    for s in range(1, args.sweeps + 1):
        t0 = time.perf_counter()
        for state, offset in ((seq, 0), (one, 500)):
            state.sweep(d, theta, 1000 * args.seed + offset + s)
            if args.refresh:
                S.refresh_partitions(candidates, state.cust, state.tabs, state.nent, state.hsize, state.hcount,
                                     state.slot, hier.pair_level, d, args.max_cells)
        spent += time.perf_counter() - t0
        if s in CHECKPOINTS or s == args.sweeps:
            rows.append({"sweeps": s, "sequential": tables(seq), "one_table": tables(one)})
            print(f"sweeps {s}: sequential {rows[-1]['sequential']} one-table {rows[-1]['one_table']} "
                  f"({spent / (2 * s):.3f} s per sweep)", flush=True)
    top = hier.level(n)
    c = hier.raw[top]
    by_c = []
    for lo, hi in [(2, 2), (3, 4), (5, 9), (10, 49), (50, None)]:
        m = (c >= lo) & ((c <= hi) if hi else True)
        by_c.append({"customers": f"{lo}-{hi}" if hi else f">={lo}", "pairs": int(m.sum()),
                     "sequential": int(seq.tabs[top][m].sum()), "one_table": int(one.tabs[top][m].sum())})
        print(f"top order, pairs with c {by_c[-1]['customers']}: {by_c[-1]['pairs']} pairs, tables "
              f"sequential {by_c[-1]['sequential']} one-table {by_c[-1]['one_table']}")
    if args.out:
        Path(args.out).write_text(json.dumps({"order": n, "discount": d.tolist(), "strength": theta.tolist(),
                                              "seconds_per_sweep": spent / (2 * args.sweeps), "rows": rows,
                                              "top_order_by_customers": by_c}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
