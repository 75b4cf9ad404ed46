"""A joint move of one order's discount with every pair's table count: does it widen d's step?

What it measures
----------------
The Gibbs mode mixes slowly because, given a seating, an order's discount d_k is pinned
(docs/pitman_yor_mixing.md). This diagnostic asks whether a move
that changes d_k *together with* the table count of every (context, token) pair of that
order would travel further. On ``../shared/data/shakespeare/train`` (word tokens, min
count 2, the trigram of ``models/pitman-yor-trigram.toml``) it seats the customers at fixed
fixed d and theta, sweeps ``--sweeps`` times (with the size refresh and the table-count
update of ``bayeslm.ngram.pitman_yor.table_counts``), and then
prints, per order and for steps of d_k of +-0.001 and +-0.003 (theta_k + d_k fixed), the
log acceptance ratio of

- ``fixed tables``: the move of d_k alone (the seating, sizes included, unchanged): what
  the slice step sees;
- ``coupled``: the same move with each pair's table count moved by the quantile coupling
  of its exact full conditional at the old and at the new (d, theta) (its own sizes and its
  parent pair's sizes integrated out through generalised Stirling numbers, the reverse
  move computed from the proposed state, both proposal probabilities exact);

and the standard deviation of d_k each implies (a quadratic through the +-step ratios).
If coupling the tables freed d_k, the implied standard deviation would approach d_k's
posterior standard deviation (about 0.001 for d_3 of the trigram). No peer: a
diagnostic of bayeslm's own sampler design.

Run
---
    /work/venv/bin/python bench/py_discount_move.py
    /work/venv/bin/python bench/py_discount_move.py --sweeps 20 --out bench/out/discount_move.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from _common import word_counts  # bench/ is on sys.path when a script runs
from numba import njit

from bayeslm.ngram.pitman_yor.table_counts import (
    log_conditional,
    stirling_table,
    weights_length,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/shakespeare"
DISCOUNT = (0.756, 0.764, 0.901)  # fixed experiment values: the posterior means of the trigram fit
STRENGTH = (45.8, 2.44, 0.168)


@njit(cache=True)
def _cdf(cdf, c, ls, dd, th, T_other, L, log_base, ls_par, c_par_other, t_par, th_par, C_par_other):
    """The table-count step's full conditional of one pair (``bayeslm.ngram.pitman_yor.table_counts``) as a
    CDF over t = 0..c: ``cdf[t] = P(t_i <= t)``."""
    peak = log_conditional(cdf, c, ls, dd, th, T_other, L, log_base, ls_par, c_par_other, t_par, th_par, C_par_other)
    cdf[0] = 0.0
    total = 0.0
    for t in range(1, c + 1):
        total += math.exp(cdf[t] - peak) if cdf[t] > -np.inf else 0.0
        cdf[t] = total
    for t in range(1, c + 1):
        cdf[t] /= total
    cdf[c] = 1.0


@njit(cache=True)
def _overlap(a0, a1, b0, b1):
    return max(0.0, min(a1, b1) - max(a0, b0))


@njit(cache=True)
def _log_new_tables(T, d, th):
    """sum_{i=1}^{T-1} log(theta + d i), the restaurant's table term of the Pitman-Yor EPPF."""
    if T <= 1:
        return 0.0
    return (T - 1) * math.log(d) + math.lgamma(th / d + T) - math.lgamma(th / d + 1.0)


@njit(cache=True)
def _log_sizes(i, d, nent, hsize, hcount, slot):
    """sum over pair i's tables of log (1 - d)_(n - 1)."""
    s0 = slot[i]
    total = 0.0
    for e in range(nent[i]):
        n = hsize[s0 + e]
        if n > 1:
            total += hcount[s0 + e] * (math.lgamma(n - d) - math.lgamma(1.0 - d))
    return total


@njit(cache=True)
def coupled_pairs(L, po, cust, pair_parent, raw, n_max):
    """Which pairs of level L the move couples (local index): c >= 2 customers, c <= n_max
    and, below the top... one level down, a parent with at most n_max raw counts (so the
    Stirling tables cover every count the move can reach). Only what the move leaves
    unchanged is read, so forward and reverse moves couple the same pairs."""
    lo, hi = po[L], po[L + 1]
    out = np.zeros(hi - lo, np.bool_)
    for i in range(lo, hi):
        c = cust[i]
        out[i - lo] = 2 <= c <= n_max and (L == 0 or raw[pair_parent[i]] <= n_max)
    return out


@njit(cache=True)
def propose(L, po, co, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent,
            d, th, d2, th2, th_par, base, ls_old, ls_new, ls_par, coupled, new_t):
    """Propose new table counts for level L's coupled pairs under (d, th) -> (d2, th2).

    Each coupled pair's t' is the quantile coupling of its full conditional at (d, th) and
    at (d2, th2), both computed at the current state: U uniform on t's step of the first
    CDF, t' where the second CDF crosses it. The reverse move does the same from the
    proposed state, so its probability is the overlap of the two steps there; both are
    computed exactly. Fills ``new_t`` (local index); returns
    log [p(x' | d2, th2) q(x' -> x)] - log [p(x | d, th) q(x -> x')] with the regenerated
    sizes integrated out (module docstring), or -inf if impossible. ``ls_*``: Stirling
    tables (:func:`stirling_table`) at d, d2 and the parent order's discount.
    """
    lo, hi = po[L], po[L + 1]
    clo = co[L]
    plo = po[L - 1] if L > 0 else 0
    pclo = co[L - 1] if L > 0 else 0
    longest = weights_length(lo, hi, coupled, cust)
    F = np.empty(longest)
    G = np.empty(longest)
    log_base = math.log(base)
    dT = np.zeros(co[L + 1] - clo, np.int64)
    dC = np.zeros(po[L] - plo if L > 0 else 0, np.int64)
    dCu = np.zeros(co[L] - pclo if L > 0 else 0, np.int64)
    log_r = 0.0
    for i in range(lo, hi):  # forward: quantile coupling at the current state
        c, t = cust[i], tabs[i]
        new_t[i - lo] = t
        if c < 2:
            continue
        if not coupled[i - lo]:
            log_r += _log_sizes(i, d2, nent, hsize, hcount, slot) - _log_sizes(i, d, nent, hsize, hcount, slot)
            continue
        u = pair_ctx[i]
        if L > 0:
            p = pair_parent[i]
            args = (cust[p] - t, tabs[p], ctx_cust[pair_ctx[p]] - t)
        else:
            args = (0, 0, 0)
        _cdf(F, c, ls_old, d, th, ctx_tabs[u] - t, L, log_base, ls_par, args[0], args[1], th_par, args[2])
        _cdf(G, c, ls_new, d2, th2, ctx_tabs[u] - t, L, log_base, ls_par, args[0], args[1], th_par, args[2])
        a0, a1 = F[t - 1], F[t]
        if a1 <= a0:
            return -np.inf
        x = a0 + (a1 - a0) * np.random.random()
        t2 = 1
        while t2 < c and G[t2] < x:
            t2 += 1
        ahead = _overlap(a0, a1, G[t2 - 1], G[t2])
        if ahead <= 0.0:
            return -np.inf
        log_r -= math.log(ahead / (a1 - a0))
        new_t[i - lo] = t2
        dT[u - clo] += t2 - t
        if L > 0:
            dC[pair_parent[i] - plo] += t2 - t
            dCu[pair_ctx[pair_parent[i]] - pclo] += t2 - t
    for i in range(lo, hi):  # reverse: the same coupling from the proposed state
        if not coupled[i - lo]:
            continue
        c, t, t2 = cust[i], tabs[i], new_t[i - lo]
        u = pair_ctx[i]
        T_other = ctx_tabs[u] + dT[u - clo] - t2
        if L > 0:
            p = pair_parent[i]
            args = (cust[p] + dC[p - plo] - t2, tabs[p], ctx_cust[pair_ctx[p]] + dCu[pair_ctx[p] - pclo] - t2)
        else:
            args = (0, 0, 0)
        _cdf(G, c, ls_new, d2, th2, T_other, L, log_base, ls_par, args[0], args[1], th_par, args[2])
        _cdf(F, c, ls_old, d, th, T_other, L, log_base, ls_par, args[0], args[1], th_par, args[2])
        b0, b1 = G[t2 - 1], G[t2]
        back = _overlap(b0, b1, F[t - 1], F[t])
        if back <= 0.0:
            return -np.inf
        log_r += math.log(back / (b1 - b0))
        log_r += ls_new[c * (c + 1) // 2 + t2] - ls_old[c * (c + 1) // 2 + t]
    for u in range(clo, co[L + 1]):
        C = ctx_cust[u]
        if C == 0:
            continue
        T = ctx_tabs[u]
        log_r += _log_new_tables(T + dT[u - clo], d2, th2) - _log_new_tables(T, d, th)
        log_r += math.lgamma(th + C) - math.lgamma(th + 1.0) - math.lgamma(th2 + C) + math.lgamma(th2 + 1.0)
    if L == 0:
        return log_r + dT.sum() * log_base
    for j in range(dC.size):
        if dC[j] == 0:
            continue
        p = plo + j
        c, c2, t = cust[p], cust[p] + dC[j], tabs[p]
        if t > c2:
            return -np.inf
        log_r += ls_par[c2 * (c2 + 1) // 2 + t] - ls_par[c * (c + 1) // 2 + t]
    for j in range(dCu.size):
        if dCu[j] != 0:
            C = ctx_cust[pclo + j]
            log_r -= math.lgamma(th_par + C + dCu[j]) - math.lgamma(th_par + C)
    return log_r


def measure(state, hier, k, d, th, step, repeats, rng_seed):
    """Log ratios (fixed tables, coupled: median over ``repeats``) for d_k +- step."""
    L = k - 1
    lo, hi = int(hier.po[L]), int(hier.po[L + 1])
    coupled = coupled_pairs(L, hier.po, state.cust, hier.pair_parent, hier.raw, state.STIRLING_MAX)
    own = int(state.cust[lo:hi][coupled].max())
    ls_old = stirling_table(own, d[L])
    ls_par = stirling_table(int(hier.raw[hier.pair_parent[lo:hi][coupled]].max()), d[L - 1]) if L else ls_old
    th_par = float(th[L - 1]) if L else 0.0
    out = {}
    for sign in (+1, -1):
        d2, th2 = d.copy(), th.copy()
        d2[L] += sign * step
        th2[L] -= sign * step
        fixed = state.hyper_logp(d2, th2)[0] - state.hyper_logp(d, th)[0]
        ls_new = stirling_table(own, d2[L])
        new_t = np.empty(hi - lo, np.int64)
        values, moved = [], []
        seed_numba(rng_seed)
        for _ in range(repeats):
            values.append(propose(L, hier.po, hier.co, state.cust, state.tabs, state.nent, state.hsize, state.hcount,
                                  state.slot, state.ctx_cust, state.ctx_tabs, hier.pair_ctx, hier.pair_parent,
                                  float(d[L]), float(th[L]), float(d2[L]), float(th2[L]), th_par, state.base,
                                  ls_old, ls_new, ls_par, coupled, new_t))
            moved.append(int(np.abs(new_t - state.tabs[lo:hi]).sum()))
        out[sign] = {"fixed_tables": float(fixed), "coupled": float(np.median(values)),
                     "tables_moved": int(np.median(moved))}

    def implied_sd(a, b):
        curvature = -(a + b) / (2 * step * step)
        return float(1 / math.sqrt(2 * curvature)) if curvature > 0 else float("inf")

    return {"order": k, "step": step, "coupled_pairs": int(coupled.sum()),
            "pairs_with_2_or_more": int((state.cust[lo:hi] >= 2).sum()),
            "up": out[1], "down": out[-1],
            "sd_fixed_tables": implied_sd(out[1]["fixed_tables"], out[-1]["fixed_tables"]),
            "sd_coupled": implied_sd(out[1]["coupled"], out[-1]["coupled"])}


@njit(cache=True)
def seed_numba(value):
    np.random.seed(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--sweeps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy
    from bayeslm.ngram.pitman_yor.seating_state import SeatingState

    counts = word_counts(Path(args.data), 3)
    hier = Hierarchy(counts)
    state = SeatingState(hier, 1.0 / (counts.vocab_size - 1), True, refresh_min=10, table_step=True)
    d, th = np.array(DISCOUNT), np.array(STRENGTH)
    state.initialise(d, th, args.seed)
    for s in range(args.sweeps):
        state.sweep(d, th, 1000 * args.seed + s)
    print(f"trigram seating after {args.sweeps} sweeps (refresh, table counts) at d {list(DISCOUNT)}, theta {list(STRENGTH)}: "
          f"tables per order {[int(state.tabs[hier.level(k)].sum()) for k in (1, 2, 3)]}")
    rows = []
    for k in (3, 2, 1):
        for step in (0.001, 0.003):
            r = measure(state, hier, k, d, th, step, args.repeats, args.seed)
            rows.append(r)
            print(f"order {k}, d_k +-{step}: log ratio fixed tables {r['up']['fixed_tables']:+.1f} / "
                  f"{r['down']['fixed_tables']:+.1f}, coupled {r['up']['coupled']:+.1f} / {r['down']['coupled']:+.1f} "
                  f"({r['up']['tables_moved']} / {r['down']['tables_moved']} tables moved, {r['coupled_pairs']} of "
                  f"{r['pairs_with_2_or_more']} pairs coupled); implied sd of d_k: fixed {r['sd_fixed_tables']:.5f}, "
                  f"coupled {r['sd_coupled']:.5f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"discount": list(DISCOUNT), "strength": list(STRENGTH),
                                              "sweeps": args.sweeps, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
