"""Where the fast mode's top discount lands on data simulated from the model (issue #17, docs/pitman_yor.md).

Data: the order-2 simulation of tests/ngram/test_pitman_yor.py (50 words, 15,000 tokens,
d = (0.5, 0.7), theta = (5, 1); the Gibbs posterior of d_2 is 0.704 +- 0.018). For each
discount d_2 the customers are seated once, in sequence (``SeatingState.initialise``, the
fast mode's seating), with d_1 = 0.5 and theta at the truth; printed per seating:

- ``given tables``: the (d_k, theta_k) that maximise the likelihood of the seating's table
  counts alone (table sizes summed out by generalised Stirling numbers, so they cannot pin d);
- ``exact marginal``: the (d_2, theta_2) that maximise the exact probability of the top
  level's counts, its table counts summed out (a polynomial product per restaurant), given
  the unigram level's predictive from the seating (its (d_1, theta_1) from ``given tables``).

Run:  /work/main/.venv/bin/python bench/py_fast_discount.py [--discounts 0.5 0.6 0.7 0.8 0.9] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "ngram")]  # the simulator of the recovery tests

TRUTH_D, TRUTH_THETA = (0.5, 0.7), (5.0, 1.0)


def seated(corpus, d2: float, seed: int):
    from bayeslm import PitmanYorLM
    from bayeslm.counting.counts import count
    from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy
    from bayeslm.ngram.pitman_yor.seating_state import SeatingState

    lm = PitmanYorLM(order=2)
    counts = count(lm._prepare_training(corpus), 2, progress=False)
    state = SeatingState(Hierarchy(counts), 1.0 / (counts.vocab_size - 1), gibbs=True)
    state.initialise(np.array([TRUTH_D[0], d2]), np.array(TRUTH_THETA), seed)
    return state


def restaurant_term(T, C, d, theta):
    """log prod_{i=1}^{T-1} (theta + i d) - log prod_{i=1}^{C-1} (theta + i), elementwise in T."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (T - 1) * np.log(d) + gammaln(theta / d + T) - gammaln(theta / d + 1)
    return np.where(T >= 1, value, -np.inf) - (gammaln(theta + C) - gammaln(theta + 1))


def argmax_d_theta(log_likelihood, d0: float = 0.5, theta0: float = 1.0) -> tuple[float, float]:
    """The maximum of ``log_likelihood(d, theta)`` in (logit d, log(theta + d)), by Nelder-Mead."""
    def negative(z):
        d = 1.0 / (1.0 + np.exp(-z[0]))
        value = log_likelihood(d, np.exp(z[1]) - d)
        return -value if np.isfinite(value) else 1e300

    z = minimize(negative, [np.log(d0 / (1 - d0)), np.log(theta0 + d0)], method="Nelder-Mead",
                 options={"xatol": 1e-5, "fatol": 1e-6}).x
    d = 1.0 / (1.0 + np.exp(-z[0]))
    return d, float(np.exp(z[1]) - d)


def given_tables(state, k: int) -> tuple[float, float]:
    """Order k's (d, theta) maximising the likelihood of the table counts (sizes summed out)."""
    from bayeslm.ngram.pitman_yor.table_counts import stirling_table

    h = state.hier
    level = h.level(k)
    C, T = state.ctx_cust[h.co[k - 1]:h.co[k]], state.ctx_tabs[h.co[k - 1]:h.co[k]]
    C, T = C[C > 0].astype(float), T[C > 0].astype(float)
    c, t = state.cust[level], state.tabs[level]
    cells = c * (c + 1) // 2 + t
    return argmax_d_theta(lambda d, theta: restaurant_term(T, C, d, theta).sum()
                          + stirling_table(int(c.max()), d)[cells].sum())


def top_marginal(state, d1: float, theta1: float) -> tuple[float, float]:
    """(d_2, theta_2) maximising the exact probability of the top level's counts given the unigram predictive."""
    from bayeslm.ngram.pitman_yor.table_counts import stirling_table

    h = state.hier
    root = h.level(1)
    cr, tr = state.cust[root].astype(float), state.tabs[root].astype(float)
    g = np.zeros(h.V)
    g[h.counts[1].ngram_token] = (cr - d1 * tr + (theta1 + d1 * tr.sum()) * state.base) / (theta1 + cr.sum())
    top = h.level(2)
    ctx, c, log_g = h.pair_ctx[top], h.raw[top], np.log(g[h.counts[2].ngram_token])
    groups = [np.flatnonzero(ctx == u) for u in np.unique(ctx)]

    def log_likelihood(d, theta):
        ls, total = stirling_table(int(c.max()), d), 0.0
        for members in groups:
            poly, log_scale = np.array([1.0]), 0.0  # coefficients of x^T, scaled by exp(log_scale)
            for cw, lg in zip(c[members], log_g[members]):
                t = np.arange(1, cw + 1)
                coef = ls[cw * (cw + 1) // 2 + t] + t * lg
                poly = np.convolve(poly, np.concatenate([[0.0], np.exp(coef - coef.max())]))
                log_scale += coef.max() + np.log(poly.max())
                poly /= poly.max()
            with np.errstate(divide="ignore"):
                terms = np.log(poly) + restaurant_term(np.arange(poly.size), c[members].sum(), d, theta)
            total += np.logaddexp.reduce(terms) + log_scale
        return total

    return argmax_d_theta(log_likelihood)


def main(argv=None) -> int:
    from test_pitman_yor import simulate_hpy_bigram

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--discounts", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    corpus = simulate_hpy_bigram(np.random.default_rng(7), TRUTH_D, TRUTH_THETA, n_words=50, min_tokens=15_000)
    print(f"truth d = {TRUTH_D}, theta = {TRUTH_THETA}; {corpus.n_tokens} tokens")
    print(f"{'seated at d_2':>13} {'seed':>4} {'tables':>6}  given tables (d_1, theta_1) (d_2, theta_2)   exact marginal (d_2, theta_2)")
    for d2 in args.discounts:
        for seed in args.seeds:
            state = seated(corpus, d2, seed)
            (d1, t1), (dt, tt) = given_tables(state, 1), given_tables(state, 2)
            dm, tm = top_marginal(state, d1, t1)
            print(f"{d2:13.2f} {seed:4d} {state.total_tables():6d}  ({d1:.3f}, {t1:5.2f}) ({dt:.3f}, {tt:5.2f})"
                  f"          ({dm:.3f}, {tm:5.2f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
