"""Gibbs update of every pair's table count from its exact full conditional (numba).

Each flagged pair of one order draws its table count given every other table count, its
own and its parent's table sizes integrated out through generalised Stirling numbers
(:func:`stirling_table`, log space); the sizes that changed are then redrawn exactly. The
conditional and why the customer sweep needs this step: docs/pitman_yor.md ("Inference").
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from bayeslm.ngram.pitman_yor.seating import draw_partition

__all__ = ["stirling_table", "stirling_n_max", "rising_step", "parent_stirling", "draw_log_weights",
           "log_conditional", "weights_length", "sweep_level"]


@njit(cache=True)
def stirling_table(n_max, d):
    """log S_d(c, t) for 0 <= t <= c <= n_max, flat: entry (c, t) at ``c (c + 1) / 2 + t``.

    The recursion ``S(c+1, t) = S(c, t-1) + (c - t d) S(c, t)`` in log space,
    O(n_max^2 / 2) time.
    """
    out = np.full((n_max + 1) * (n_max + 2) // 2, -np.inf)
    out[0] = 0.0
    for c in range(n_max):
        src, dst = c * (c + 1) // 2, (c + 1) * (c + 2) // 2
        for t in range(1, c + 2):
            a = out[src + t - 1]
            b = out[src + t] + math.log(c - t * d) if t <= c else -np.inf
            if a == -np.inf:
                out[dst + t] = b
            elif b == -np.inf:
                out[dst + t] = a
            elif a > b:
                out[dst + t] = a + math.log1p(math.exp(b - a))
            else:
                out[dst + t] = b + math.log1p(math.exp(a - b))
    return out


@njit(cache=True)
def stirling_n_max(ls):
    """The n_max of a :func:`stirling_table`, from its length."""
    return int(round((math.sqrt(8.0 * ls.size + 1.0) - 1.0) / 2.0)) - 1


@njit(cache=True)
def rising_step(acc, th, step, j):
    """``acc + log(th + step j)`` for j >= 1, else ``acc``: one more factor of a restaurant's seating term
    (``step`` = d: its tables' numerator, 1: its customers' denominator)."""
    if j >= 1:
        return acc + math.log(th + step * j)
    return acc


@njit(cache=True)
def parent_stirling(ls_par, n, t_par):
    """log S(n, t_par) of a parent pair holding n customers at its t_par tables (-inf when n < t_par)."""
    if n >= t_par:
        return ls_par[n * (n + 1) // 2 + t_par]
    return -np.inf


@njit(cache=True)
def draw_log_weights(w, lo, hi, peak):
    """An index in lo..hi drawn in proportion to exp(w[i] - peak) (-inf: weight 0); ``w[lo..hi]``
    become those weights (in place)."""
    total = 0.0
    for i in range(lo, hi + 1):
        w[i] = math.exp(w[i] - peak) if w[i] > -np.inf else 0.0
        total += w[i]
    r = np.random.random() * total
    acc = 0.0
    for i in range(lo, hi):
        acc += w[i]
        if acc > r:
            return i
    return hi


@njit(cache=True)
def log_conditional(w, c, ls, d, th, T_other, L, log_base, ls_par, c_par_other, t_par, th_par, C_par_other):
    """``w[t]``, t = 1..c: log p(t_i = t | .) up to a constant (module docstring) for a pair of
    level L with c customers, given the other tables of its restaurant (T_other) and, for
    L > 0, its parent pair's other customers and tables and the parent restaurant's other
    customers. ``ls``, ``ls_par``: :func:`stirling_table` at d and at the parent's discount.
    Returns max_t w[t]."""
    off = c * (c + 1) // 2
    new_tables = 0.0
    par_rest = 0.0
    peak = -np.inf
    for t in range(1, c + 1):
        new_tables = rising_step(new_tables, th, d, T_other + t - 1)
        v = ls[off + t] + new_tables
        if L == 0:
            v += t * log_base
        else:
            par_rest = rising_step(par_rest, th_par, 1.0, C_par_other + t - 1)
            v = v + parent_stirling(ls_par, c_par_other + t, t_par) - par_rest
        w[t] = v
        if v > peak:
            peak = v
    return peak


@njit(cache=True)
def weights_length(lo, hi, flags, cust):
    """Length of a buffer over t = 0..c for every flagged pair of lo..hi (``flags`` local)."""
    longest = 2
    for i in range(lo, hi):
        if flags[i - lo] and cust[i] + 1 > longest:
            longest = cust[i] + 1
    return longest


@njit(cache=True)
def sweep_level(L, po, co, which, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent,
                d, th, d_par, th_par, base, ls, ls_par):
    """One pass of the table-count update over level L's pairs flagged in ``which``.

    ``base``: P_0 of each unigram pair's token (read at level 0).

    ``ls``: :func:`stirling_table` at d (covering every flagged pair's c); ``ls_par`` at
    d_par covering the parents' raw counts (ignored at level 0). Returns the number of
    table counts that changed.
    """
    lo, hi = po[L], po[L + 1]
    plo = po[L - 1] if L > 0 else 0
    w = np.empty(weights_length(lo, hi, which, cust))
    own_max, par_max = stirling_n_max(ls), stirling_n_max(ls_par)
    changed = np.zeros(hi - lo, np.bool_)
    par_before = cust[plo:po[L]].copy() if L > 0 else np.zeros(0, np.int64)
    n_changed = 0
    for i in range(lo, hi):
        if not which[i - lo] or cust[i] < 2:
            continue
        c, t0 = cust[i], tabs[i]
        u = pair_ctx[i]
        T_other = ctx_tabs[u] - t0
        p, pu, c_par_other, t_par, C_par_other = -1, -1, 0, 0, 0
        if L > 0:
            p = pair_parent[i]
            pu = pair_ctx[p]
            c_par_other, t_par, C_par_other = cust[p] - t0, tabs[p], ctx_cust[pu] - t0
        if c > own_max or (L > 0 and c_par_other + c > par_max):
            raise ValueError("sweep_level: a Stirling table does not cover a pair's customer count")
        log_base = math.log(base[i]) if L == 0 else 0.0
        peak = log_conditional(w, c, ls, d, th, T_other, L, log_base, ls_par, c_par_other, t_par, th_par, C_par_other)
        t1 = draw_log_weights(w, 1, c, peak)
        if t1 == t0:
            continue
        delta = t1 - t0
        tabs[i] = t1
        ctx_tabs[u] += delta
        if L > 0:
            cust[p] += delta
            ctx_cust[pu] += delta
        changed[i - lo] = True
        n_changed += 1
    need = 1
    for i in range(lo, hi):
        if changed[i - lo] and (cust[i] + 1) * (tabs[i] + 1) > need:
            need = (cust[i] + 1) * (tabs[i] + 1)
    for j in range(par_before.size):
        if cust[plo + j] != par_before[j] and (cust[plo + j] + 1) * (tabs[plo + j] + 1) > need:
            need = (cust[plo + j] + 1) * (tabs[plo + j] + 1)
    buf = np.empty(need)
    for i in range(lo, hi):
        if changed[i - lo]:
            draw_partition(i, cust[i], tabs[i], d, buf, nent, hsize, hcount, slot)
    for j in range(par_before.size):
        if cust[plo + j] != par_before[j]:
            draw_partition(plo + j, cust[plo + j], tabs[plo + j], d_par, buf, nent, hsize, hcount, slot)
    return n_changed
