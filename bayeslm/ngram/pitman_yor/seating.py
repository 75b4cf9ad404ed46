"""Seating arrangements of the hierarchical Pitman-Yor LM and their Gibbs sweep (numba).

The state is every restaurant's tables, kept per (context u, token w) pair in flat arrays
over all orders: ``pair_parent``, ``pair_ctx``, ``pair_level`` (the hierarchy),
``cust``/``tabs`` (customers and tables of the pair), ``ctx_cust``/``ctx_tabs`` (restaurant
totals) and each pair's table sizes as a histogram (``nent`` entries of ``hsize``/``hcount``
from ``slot``, O(sqrt(customers)) slots). The sweep reseats customers one at a time by the
Chinese restaurant rule; docs/pitman_yor.md ("Inference") describes every move.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "seed", "slots_for", "init_one_table", "add_sequence", "sweep", "tilt", "draw_partition", "refresh_partitions",
    "table_size_counts", "pair_tables_of",
]


@njit(cache=True)
def seed(value):
    """Seed numba's generator (one per process)."""
    np.random.seed(value)


def slots_for(max_customers: np.ndarray) -> np.ndarray:
    """Histogram slots a pair needs: the most distinct table sizes ``n`` customers allow."""
    n = np.asarray(max_customers, dtype=np.float64)
    return np.maximum(np.floor((np.sqrt(8.0 * n + 1.0) - 1.0) / 2.0), 1).astype(np.int64)


@njit(cache=True)
def _put(s0, nent, i, size, hsize, hcount):
    """One more table of ``size`` in pair i's histogram."""
    for e in range(nent[i]):
        if hsize[s0 + e] == size:
            hcount[s0 + e] += 1
            return
    e = nent[i]
    hsize[s0 + e] = size
    hcount[s0 + e] = 1
    nent[i] = e + 1


@njit(cache=True)
def _take(s0, nent, i, e, hsize, hcount):
    """One table fewer in entry e of pair i's histogram."""
    hcount[s0 + e] -= 1
    if hcount[s0 + e] == 0:
        last = nent[i] - 1
        hsize[s0 + e] = hsize[s0 + last]
        hcount[s0 + e] = hcount[s0 + last]
        nent[i] = last


@njit(cache=True)
def init_one_table(cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx):
    """One table per dish holding all its customers (the interpolated Kneser-Ney seating)."""
    ctx_cust[:] = 0
    ctx_tabs[:] = 0
    for i in range(cust.size):
        nent[i] = 0
        if cust[i] > 0:
            tabs[i] = 1
            hsize[slot[i]] = cust[i]
            hcount[slot[i]] = 1
            nent[i] = 1
            ctx_cust[pair_ctx[i]] += cust[i]
            ctx_tabs[pair_ctx[i]] += 1
        else:
            tabs[i] = 0


@njit(cache=True)
def _remove(i, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent):
    """Remove one uniformly chosen customer of pair i (cascading to the parent if its table empties)."""
    j = i
    while j >= 0:
        s0 = slot[j]
        r = np.random.randint(0, cust[j])
        e = 0
        acc = hsize[s0] * hcount[s0]
        while acc <= r:
            e += 1
            acc += hsize[s0 + e] * hcount[s0 + e]
        size = hsize[s0 + e]
        _take(s0, nent, j, e, hsize, hcount)
        cust[j] -= 1
        u = pair_ctx[j]
        ctx_cust[u] -= 1
        if size > 1:
            _put(s0, nent, j, size - 1, hsize, hcount)
            return
        tabs[j] -= 1
        ctx_tabs[u] -= 1
        j = pair_parent[j]


@njit(cache=True)
def _add(i, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent, pair_level,
         discount, strength, base, anc, pb):
    """Seat one new customer of pair i by the Chinese restaurant rule (cascading on a new table).

    ``base``: P_0 of each unigram pair's token (level-0 pair index)."""
    level = pair_level[i]
    j = i
    for L in range(level, -1, -1):
        anc[L] = j
        j = pair_parent[j]
    pb[0] = base[anc[0]]
    for L in range(level):
        j = anc[L]
        u = pair_ctx[j]
        C = ctx_cust[u]
        if C == 0:
            pb[L + 1] = pb[L]
        else:
            d = discount[L]
            th = strength[L]
            pb[L + 1] = (cust[j] - d * tabs[j] + (th + d * ctx_tabs[u]) * pb[L]) / (th + C)
    for L in range(level, -1, -1):
        j = anc[L]
        u = pair_ctx[j]
        d = discount[L]
        th = strength[L]
        s0 = slot[j]
        old = cust[j] - d * tabs[j]
        new = (th + d * ctx_tabs[u]) * pb[L]
        r = np.random.random() * (old + new)
        cust[j] += 1
        ctx_cust[u] += 1
        if r < old and nent[j] > 0:
            e = 0
            acc = (hsize[s0] - d) * hcount[s0]
            while acc <= r and e < nent[j] - 1:
                e += 1
                acc += (hsize[s0 + e] - d) * hcount[s0 + e]
            size = hsize[s0 + e]
            _take(s0, nent, j, e, hsize, hcount)
            _put(s0, nent, j, size + 1, hsize, hcount)
            return
        _put(s0, nent, j, 1, hsize, hcount)
        tabs[j] += 1
        ctx_tabs[u] += 1


@njit(cache=True)
def add_sequence(pairs, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent,
                 pair_level, discount, strength, base):
    """Seat one new customer of each pair in ``pairs``, in that order (sequential initialisation)."""
    anc = np.empty(pair_level.max() + 1, dtype=np.int64)
    pb = np.empty(pair_level.max() + 1)
    for idx in range(pairs.size):
        _add(pairs[idx], cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent,
             pair_level, discount, strength, base, anc, pb)


@njit(cache=True)
def sweep(order_pairs, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent,
          pair_level, discount, strength, base):
    """One Gibbs sweep over the customers of the pairs listed in ``order_pairs``.

    Returns the number of customer moves made.
    """
    anc = np.empty(pair_level.max() + 1, dtype=np.int64)
    pb = np.empty(pair_level.max() + 1)
    moves = 0
    for idx in range(order_pairs.size):
        i = order_pairs[idx]
        n = cust[i]
        if n < 2:
            continue
        for _ in range(n):
            _remove(i, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent)
            _add(i, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent, pair_level,
                 discount, strength, base, anc, pb)
        moves += n
    return moves


@njit(cache=True)
def tilt(c, t, d):
    """A weight alpha for opening a table under which t tables are typical for c customers.

    Under "open with weight alpha, join with weight i - k d" the table count follows
    dk/di = alpha / (alpha + i - d k); alpha is found by bisection on log alpha so that
    k(c) = t. :func:`refresh_partitions` weights every opening by alpha instead of 1: that
    multiplies every path to (c, t) by the same alpha^(t - 1) (it cancels), but keeps the
    entries on the way to (c, t) near the maximum of their row of W. Untilted, the rows
    at few customers are dominated by states with many tables (or, for t near c, few),
    the states that matter underflow after the rows are rescaled, and the draw can end
    with fewer than t tables.
    """
    if c <= 30 or t <= 1 or t >= c:
        return 1.0
    lo, hi = -30.0, 30.0
    for _ in range(24):  # log alpha to 4e-6: any alpha near the typical one will do
        mid = 0.5 * (lo + hi)
        a = np.exp(mid)
        k = 1.0
        for i in range(1, c):
            k += a / (a + i - d * k)
        if k < t:
            lo = mid
        else:
            hi = mid
    return np.exp(0.5 * (lo + hi))


@njit(cache=True)
def draw_partition(i, c, t, d, buf, nent, hsize, hcount, slot):
    """Write into pair i's histogram a partition of its c customers into t tables drawn from
    ``p(sizes | c, t) ~ prod_tables (1 - d)_(size - 1)`` (see :func:`refresh_partitions`).

    t = 1 and t = c fix the partition; otherwise ``buf`` holds at least (c + 1)(t + 1) floats.
    """
    if t == 1 or t == c:
        s0 = slot[i]
        hsize[s0] = c if t == 1 else 1
        hcount[s0] = t if t == c else 1
        nent[i] = 1
        return
    a = tilt(c, t, d)
    W = buf[:(c + 1) * (t + 1)].reshape((c + 1, t + 1))
    W[c, :] = 0.0  # every other entry read is written first (k <= min(row, t))
    W[c, t] = 1.0
    for row in range(c - 1, 0, -1):  # row 0 is never read: the first customer opens a table
        top = min(row, t)
        peak = 0.0
        W[row, 0] = 0.0  # customers at no table: impossible
        for k in range(1, top + 1):
            v = (row - k * d) * W[row + 1, k]
            if k < t:
                v += a * W[row + 1, k + 1]
            W[row, k] = v
            if v > peak:
                peak = v
        if peak > 0.0:
            for k in range(1, top + 1):
                W[row, k] /= peak
    sizes = np.zeros(t, dtype=np.int64)
    k = 0
    for row in range(c):
        w_new = a * W[row + 1, k + 1] if k < t else 0.0
        w_old = (row - k * d) * W[row + 1, k] if k > 0 else 0.0
        r = np.random.random() * (w_new + w_old)
        if r < w_new or k == 0:
            sizes[k] = 1
            k += 1
        else:  # an existing table, with weight size - d (they sum to row - k d)
            r = np.random.random() * (row - k * d)
            j = 0
            acc = sizes[0] - d
            while acc <= r and j < k - 1:
                j += 1
                acc += sizes[j] - d
            sizes[j] += 1
    if k != t:
        raise FloatingPointError("draw_partition: a drawn partition missed its number of tables")
    nent[i] = 0
    s0 = slot[i]
    for j in range(t):
        _put(s0, nent, i, sizes[j], hsize, hcount)


@njit(cache=True)
def refresh_partitions(pairs, cust, tabs, nent, hsize, hcount, slot, pair_level, discount, max_cells):
    """Draw the table sizes of each pair in ``pairs`` afresh from their exact conditional.

    Given everything else, the sizes of pair i's tables enter the joint only through
    ``prod_tables (1 - d)_(size - 1)`` (d its order's discount): the number of tables
    t_i is what the parent and the restaurant see. So the partition of its c customers
    into exactly t tables can be drawn alone, from
    ``p(sizes | c, t) ~ prod (1 - d)_(n_j - 1)`` over set partitions, an exact Gibbs update
    that leaves c, t and every other pair unchanged. Customers are seated one at a time,
    the next one opening a table with probability ``W(i+1, k+1) / W(i, k)``, where
    ``W(i, k) = (i - k d) W(i+1, k) + W(i+1, k+1)`` (``W(c, t) = 1``) is the total weight
    of the ways to seat the remaining customers from i seated at k tables; rows of W are
    scaled to a maximum of 1 (only ratios within a row are used), and every opening is
    weighted by :func:`tilt` (a common factor of all paths, which keeps the entries that
    matter from underflowing). Cost O(c t) time and memory per pair; pairs with
    ``(c + 1)(t + 1) > max_cells`` are skipped, and so are pairs whose partition t fixes
    (t = 1 or t = c).

    The customer-level sweep changes a big pair's table sizes only slowly (a table of size
    n grows with weight n - d, a lone customer's table with 1 - d, small for d near 1);
    this draws them at once. Returns the number of pairs refreshed.
    """
    need = 0
    for idx in range(pairs.size):
        c, t = cust[pairs[idx]], tabs[pairs[idx]]
        if 1 < t < c and need < (c + 1) * (t + 1) <= max_cells:
            need = (c + 1) * (t + 1)
    buf = np.empty(need)  # one buffer for every pair of the call
    done = 0
    for idx in range(pairs.size):
        i = pairs[idx]
        c = cust[i]
        t = tabs[i]
        if t <= 1 or t >= c or (c + 1) * (t + 1) > max_cells:
            continue
        draw_partition(i, c, t, discount[pair_level[i]], buf, nent, hsize, hcount, slot)
        done += 1
    return done


@njit(cache=True)
def table_size_counts(lo, hi, nent, hsize, hcount, slot, max_size):
    """``out[s]`` = number of tables of size ``s`` among pairs ``lo..hi-1``."""
    out = np.zeros(max_size + 1, dtype=np.int64)
    for i in range(lo, hi):
        s0 = slot[i]
        for e in range(nent[i]):
            out[hsize[s0 + e]] += hcount[s0 + e]
    return out


@njit(cache=True)
def pair_tables_of(i, nent, hsize, hcount, slot):
    """The table sizes of pair i, largest first (for tests)."""
    s0 = slot[i]
    total = 0
    for e in range(nent[i]):
        total += hcount[s0 + e]
    out = np.empty(total, dtype=np.int64)
    k = 0
    for e in range(nent[i]):
        for _ in range(hcount[s0 + e]):
            out[k] = hsize[s0 + e]
            k += 1
    return np.sort(out)[::-1]
