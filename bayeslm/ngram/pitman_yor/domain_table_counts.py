"""The table-count move of the adapted Pitman-Yor LM's domain seating (numba).

Each domain pair draws its table count t and how many of those tables took their dish from
the general restaurant (g; the other t - g are customers of the domain parent) from their
exact full conditional given every other count, its own table sizes and its parent pair's
integrated out through generalised Stirling numbers (the pieces of
:mod:`~bayeslm.ngram.pitman_yor.table_counts`); the sizes that changed are then redrawn
exactly (:func:`~bayeslm.ngram.pitman_yor.seating.draw_partition`). The conditional and why the
customer sweep needs it: docs/domain.md ("Pitman-Yor adaptation", "Inference").
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from bayeslm.ngram.pitman_yor.seating import draw_partition
from bayeslm.ngram.pitman_yor.table_counts import draw_log_weights, parent_stirling, rising_step, stirling_n_max

__all__ = ["log_side_terms", "draw_table_count", "sweep_domain_level", "draw_sizes"]


@njit(cache=True)
def log_side_terms(side, c, log_parent_side, has_parent, c_par_other, t_par, th_par, C_par_other, ls_par):
    """``side[s]``, s = 0..c: log weight of s tables sent to the domain parent, ``s log_parent_side``
    (log(1 - lam_k), plus log P_0(w) below the unigrams) and, with a parent pair, its Stirling
    number at ``c_par_other + s`` customers and ``t_par`` tables over its restaurant's
    ``prod_{j=C_par_other}^{C_par_other+s-1} (theta_par + j)`` (j >= 1)."""
    rest = 0.0
    for s in range(c + 1):
        v = s * log_parent_side if s > 0 else 0.0
        if has_parent:
            if s > 0:
                rest = rising_step(rest, th_par, 1.0, C_par_other + s - 1)
            v = v + parent_stirling(ls_par, c_par_other + s, t_par) - rest
        side[s] = v


@njit(cache=True)
def _row_terms(row, own_t, t, log_fact, log_general, side):
    """``row[g]``, g = 0..t: log p(t, g | .) up to a constant (own and new-table terms ``own_t``,
    binom(t, g), the g general tables' ``g log(lam_k G_k)`` and the t - g parent tables'
    ``side[t - g]``). Returns their maximum."""
    top = -np.inf
    for g in range(t + 1):
        v = own_t + log_fact[t] - log_fact[g] - log_fact[t - g] + side[t - g]
        row[g] = v + g * log_general if g > 0 else v
        top = max(top, row[g])
    return top


@njit(cache=True)
def draw_table_count(c, T_other, d, th, ls, log_general, side, log_fact, own, marg, row):
    """Draw (t, g) of a pair with c customers from

        p(t, g | .) ~ S_d(c, t) prod_{j=T_other}^{T_other+t-1} (theta + d j) binom(t, g)
                      (lam G)^g exp(side[t - g]),

    1 <= t <= c, 0 <= g <= t (``side``: :func:`log_side_terms`; ``own``, ``marg``, ``row``: buffers
    of c + 1): t from its marginal, then g given t. Returns (t, g)."""
    off = c * (c + 1) // 2
    new_tables = 0.0
    peak = -np.inf
    for t in range(1, c + 1):
        new_tables = rising_step(new_tables, th, d, T_other + t - 1)
        own[t] = ls[off + t] + new_tables
        top = _row_terms(row, own[t], t, log_fact, log_general, side)
        total = 0.0
        if top > -np.inf:
            for g in range(t + 1):
                total += math.exp(row[g] - top)
        marg[t] = top + math.log(total) if total > 0.0 else -np.inf
        peak = max(peak, marg[t])
    t1 = draw_log_weights(marg, 1, c, peak)
    top = _row_terms(row, own[t1], t1, log_fact, log_general, side)
    return t1, draw_log_weights(row, 0, t1, top)


@njit(cache=True)
def sweep_domain_level(pairs, cust, tabs, gen, C, T, pair_ctx, parent, log_general, log_parent_side, d, th, th_par,
                       ls, ls_par, log_fact, moved, fed):
    """One pass of the table-count move over ``pairs`` (one order's, local ids), in this order.

    ``gen``: per pair its tables from the general restaurant; ``parent``: the domain parent
    pair (-1 below the unigrams); ``log_general``: log(lam_k G_k(w | u)) per pair;
    ``log_parent_side``: log(1 - lam_k) per pair (plus log P_0(w) at the unigrams); ``ls``,
    ``ls_par``: :func:`~bayeslm.ngram.pitman_yor.table_counts.stirling_table` at d and at the
    parent's discount (a pair they do not cover is left alone); ``log_fact``: log n! for n up
    to the largest count. Sets ``moved`` (its (t, g) changed) and ``fed`` (a parent whose
    customers changed); returns how many pairs moved."""
    own_max, par_max = stirling_n_max(ls), stirling_n_max(ls_par)
    longest = 1
    for i in pairs:
        longest = max(longest, cust[i])
    own, side, marg, row = np.empty(longest + 1), np.empty(longest + 1), np.empty(longest + 1), np.empty(longest + 1)
    n_moved = 0
    for i in pairs:
        c, t0, g0, p = cust[i], tabs[i], gen[i], parent[i]
        if c == 0 or c > own_max:
            continue
        s0 = t0 - g0
        c_par_other, t_par, C_par_other = 0, 0, 0
        if p >= 0:
            c_par_other, t_par, C_par_other = cust[p] - s0, tabs[p], C[pair_ctx[p]] - s0
            if c_par_other + c > par_max:
                continue
        log_side_terms(side, c, log_parent_side[i], p >= 0, c_par_other, t_par, th_par, C_par_other, ls_par)
        t1, g1 = draw_table_count(c, T[pair_ctx[i]] - t0, d, th, ls, log_general[i], side, log_fact, own, marg,
                                  row)
        if t1 == t0 and g1 == g0:
            continue
        tabs[i], gen[i] = t1, g1
        T[pair_ctx[i]] += t1 - t0
        moved[i] = True
        n_moved += 1
        if p >= 0 and t1 - g1 != s0:
            cust[p] += t1 - g1 - s0
            C[pair_ctx[p]] += t1 - g1 - s0
            fed[p] = True
    return n_moved


@njit(cache=True)
def draw_sizes(cust, tabs, discount):
    """Table sizes of pairs with ``cust`` customers at ``tabs`` tables each, drawn from their exact
    conditional ``prod_tables (1 - d)_(size - 1)`` (``discount`` per pair); flat, each pair's
    sizes in a run of ``tabs`` (in no particular order)."""
    need, widest = 1, 1
    for k in range(cust.size):
        need = max(need, (cust[k] + 1) * (tabs[k] + 1))
        widest = max(widest, tabs[k])
    buf = np.empty(need)
    nent, slot = np.zeros(1, np.int64), np.zeros(1, np.int64)
    hsize, hcount = np.zeros(widest, np.int64), np.zeros(widest, np.int64)
    out = np.empty(tabs.sum(), np.int64)
    at = 0
    for k in range(cust.size):
        draw_partition(0, cust[k], tabs[k], discount[k], buf, nent, hsize, hcount, slot)
        for e in range(nent[0]):
            for _ in range(hcount[e]):
                out[at] = hsize[e]
                at += 1
    return out
