"""Tests of PitmanYorLM against independent computations.

Reference values come from plain Python counts over the padded sentences (collections.
Counter) and the model's stored table counts; the seating sampler is checked against the
exact posterior of the table counts, enumerated on a tiny hierarchy.
"""

from __future__ import annotations

import collections
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from corpora import NGRAM_TRAIN, markov_sentences
from ngram_samples import expected_entropy, log_restaurant, log_stirling, shortest_interval
from sampling import QUICK, RECOVERY
from scipy.special import entr

from bayeslm import Corpus, DirichletLM, PitmanYorLM, load
from bayeslm.exceptions import (
    BayesLMError,
    ConfigError,
    CorpusError,
    DifferentModelError,
    ModelFileError,
)
from bayeslm.text.vocab import Vocabulary
from model_dirs import writable_copy

BOS = 1

# the shared models (tests/conftest.py: pitman_yor_lm by Gibbs sweeps, ikn_lm, fast_lm) are fitted on TRAIN
TRAIN = NGRAM_TRAIN
TEST = markov_sentences(1, 10) + ["the zebra sat on the mat", "red red red"]


def events(lm, sentences) -> list[tuple[tuple, int]]:
    """(context of order - 1 ids, token id) for every scored position, padded with <s>."""
    corpus = lm.encode(sentences)
    out = []
    for i in range(corpus.n_sentences):
        ids = [BOS] * (lm.order - 1) + [int(t) for t in corpus[i]] + [lm.vocab_.eos_id]
        for j in range(lm.order - 1, len(ids)):
            out.append((tuple(ids[j - lm.order + 1: j]), ids[j]))
    return out


def suffix(u: tuple, length: int) -> tuple:
    return u[len(u) - length:] if length > 0 else ()


def reference_seating(lm, sample: int) -> tuple[collections.Counter, dict]:
    """(customers, tables) of every (context, token) pair in one retained sample: the top
    order's customers are Counter counts of the padded training sentences, a lower order's
    the tables of its children; the tables are the stored table counts (one per pair in ikn;
    in the fast mode the one seating's, which ``sample_seating`` names for every sample)."""
    tc = lm.idata["table_counts"]
    tables = {}
    for k in range(1, lm.order + 1):
        rows = lm.counts_.ngram_tokens(k)
        if lm.options["inference"] == "gibbs":
            t_k = tc[f"tables_o{k}"].values[sample]
        elif lm.options["inference"] == "fast":
            t_k = tc[f"tables_o{k}"].values[int(tc["sample_seating"].values[sample])]
        else:
            t_k = np.ones(rows.shape[0], dtype=int)
        for row, t in zip(rows, t_k):
            tables[(tuple(int(x) for x in row[:-1]), int(row[-1]))] = int(t)
    cust = collections.Counter()
    for ctx, tok in events(lm, TRAIN):
        cust[(ctx, tok)] += 1
    for k in range(lm.order - 1, 0, -1):  # customers of (u', w) below: tables of the children
        for (ctx, tok), t in tables.items():
            if len(ctx) == k:
                cust[(ctx[1:], tok)] += t
    return cust, tables


def reference_distribution(lm, sample: int, u: tuple, seating=None) -> tuple[np.ndarray, float]:
    """P_n(. | u) of one retained sample over the vocabulary, by the hierarchical Pitman-Yor
    predictive rule from ``reference_seating``; and the mass A of u's Dirichlet (docs/pitman_yor.md):
    c_u. + theta_n for a context seen at the top order, (theta_n + d_n) / (1 - d_n) otherwise."""
    n, V = lm.order, len(lm.vocab_)
    cust, tables = seating or reference_seating(lm, sample)
    tc, post = lm.idata["table_counts"], lm.idata["posterior"]
    ch, dr = int(tc["sample_chain"][sample]), int(tc["sample_draw"][sample])
    d = post["discount"].values[ch, dr]
    theta = post["strength"].values[ch, dr]
    p = np.full(V, 1.0 / (V - 1))
    p[BOS] = 0.0
    C = 0
    for k in range(1, n + 1):
        ctx = suffix(u, k - 1)
        C = sum(c for (cc, _), c in cust.items() if cc == ctx)
        T = sum(t for (cc, _), t in tables.items() if cc == ctx)
        if C == 0:
            continue
        c_w = np.array([cust.get((ctx, w), 0) for w in range(V)], dtype=float)
        t_w = np.array([tables.get((ctx, w), 0) for w in range(V)], dtype=float)
        p = (c_w - d[k - 1] * t_w + (theta[k - 1] + d[k - 1] * T) * p) / (theta[k - 1] + C)
    mass = C + theta[n - 1] if C > 0 else (theta[n - 1] + d[n - 1]) / (1 - d[n - 1])
    return p, float(mass)


def reference_predictive(lm, sample: int, u: tuple, w: int) -> float:
    """P_n(w | u) of one retained sample (``reference_distribution``)."""
    return float(reference_distribution(lm, sample, u)[0][w])


# ------------------------------------------------------------------------------- predictive
@pytest.mark.parametrize("fixture", ["pitman_yor_lm", "ikn_lm", "fast_lm"])
def test_predictive_matches_rule_and_sums_to_one(fixture, request):
    lm = request.getfixturevalue(fixture)
    ids = lm.vocab_.encode(["the", "cat"])
    contexts = np.array([[BOS, BOS], [BOS, ids[0]], list(ids), [ids[1], ids[1]], [lm.vocab_.unk_id, ids[0]]])
    probs = lm.next_token_probs(contexts)
    assert probs.shape == (lm.n_samples, contexts.shape[0], len(lm.vocab_))
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, rtol=1e-12)
    assert np.all(probs[:, :, BOS] == 0)
    for s in range(lm.n_samples):
        seating = reference_seating(lm, s)
        for row, u in enumerate(contexts):
            expected, _ = reference_distribution(lm, s, tuple(int(x) for x in u), seating)
            np.testing.assert_allclose(probs[s, row], expected, rtol=1e-10, atol=1e-15)


def test_scoring_paths_agree(pitman_yor_lm):
    lm = pitman_yor_lm
    corpus = lm.encode(TEST)
    ev = events(lm, TEST)
    lp = lm.predictive_log_prob(corpus)
    per_draw = lm.token_log_prob(corpus).values.reshape(lm.n_samples, -1)
    expected = [np.mean([reference_predictive(lm, s, u, w) for s in range(lm.n_samples)]) for u, w in ev]
    np.testing.assert_allclose(lp, np.log(expected), rtol=1e-10)
    np.testing.assert_allclose(np.log(np.exp(per_draw).mean(axis=0)), lp, rtol=1e-10)
    dense = lm.predictive_probs(np.array([u for u, _ in ev]))
    np.testing.assert_allclose(np.log(dense[np.arange(len(ev)), [w for _, w in ev]]), lp, rtol=1e-10)
    result = lm.evaluate(corpus)
    assert result.predictive_perplexity == pytest.approx(math.exp(-lp.mean()), rel=1e-10)
    assert result.cross_entropy_bits.sizes["chain"] == 2
    scores = lm.score(TEST)
    assert scores["log_prob_nats"].sum() == pytest.approx(lp.sum(), rel=1e-10)


def test_dirichlet_limit_one_level():
    """Order 1, d = 0, fixed strength: (c_w + theta / V') / (N + theta), any seating."""
    theta = 2.5
    for inference in ("fast", "gibbs", "ikn"):
        lm = PitmanYorLM(order=1, inference=inference, discount=0.0, strength=theta, retain=2, sampler_config=QUICK)
        lm.fit(Corpus.from_texts(TRAIN), random_seed=0)
        counts = collections.Counter(w for _, w in events(lm, TRAIN))
        N, V1 = sum(counts.values()), len(lm.vocab_) - 1
        expected = np.array([0.0 if w == BOS else (counts.get(w, 0) + theta / V1) / (N + theta)
                             for w in range(len(lm.vocab_))])
        probs = lm.next_token_probs(np.zeros((1, 0), dtype=int))
        for s in range(probs.shape[0]):
            np.testing.assert_allclose(probs[s, 0], expected, rtol=1e-12)


def interpolated_kneser_ney(lm, discounts, u: tuple, w: int) -> float:
    """Interpolated Kneser-Ney with one discount per order, from padded event counts."""
    n, V = lm.order, len(lm.vocab_)
    top = collections.Counter(events(lm, TRAIN))
    counts = {n: top}
    for k in range(n - 1, 0, -1):  # continuation counts N1+(. u w) from the order above
        cont = collections.Counter()
        for (ctx, tok) in counts[k + 1]:
            cont[(ctx[1:], tok)] += 1
        counts[k] = cont
    p = 0.0 if w == BOS else 1.0 / (V - 1)
    for k in range(1, n + 1):
        ctx, D = suffix(u, k - 1), discounts[k - 1]
        here = {tok: c for (cc, tok), c in counts[k].items() if cc == ctx}
        total = sum(here.values())
        if total == 0:
            continue
        p = max(here.get(w, 0) - D, 0.0) / total + D * len(here) / total * p
    return p


def test_ikn_equals_interpolated_kneser_ney():
    D = [0.5, 0.7, 0.8]
    lm = PitmanYorLM(order=3, inference="ikn", discount=D, strength=0.0, sampler_config=QUICK)
    lm.fit(Corpus.from_texts(TRAIN), random_seed=0)
    ev = events(lm, TEST)
    expected = np.array([interpolated_kneser_ney(lm, D, u, w) for u, w in ev])
    np.testing.assert_allclose(np.exp(lm.predictive_log_prob(TEST)), expected, rtol=1e-12)


# ------------------------------------------------------------------------------- the sampler
@pytest.mark.parametrize("mode", ["sweep", "refresh", "tables"], ids=["sweep", "sweep+refresh", "table-counts"])
def test_seating_sweep_leaves_the_table_count_posterior_invariant(mode):
    """Bigram hierarchy, two contexts x, y over dishes a, b, c: sampler vs enumeration.
    ``sweep``: the customer-level sweep; ``refresh``: each sweep followed by redrawing
    every pair's table sizes; ``tables``: the table-count update alone (each order's
    counts from their full conditional, sizes redrawn), top order then the unigrams."""
    from bayeslm.ngram.pitman_yor import seating as S
    from bayeslm.ngram.pitman_yor import table_counts as TC

    top = [("x", "a", 3), ("x", "b", 2), ("y", "a", 2), ("y", "c", 1)]
    d, theta, V1 = np.array([0.3, 0.5]), np.array([0.7, 1.5]), 4
    base = np.full(3, 1.0 / V1)  # P_0 of the root pairs' tokens a, b, c
    exact = collections.Counter()
    for ts in itertools.product(*[range(1, c + 1) for _, _, c in top]):
        lp = sum(log_stirling(d[1], c, t) for (_, _, c), t in zip(top, ts))
        for u in "xy":
            lp += log_restaurant(d[1], theta[1], sum(t for (uu, _, _), t in zip(top, ts) if uu == u),
                                  sum(c for uu, _, c in top if uu == u))
        root = collections.Counter()
        for (_, w, _), t in zip(top, ts):
            root[w] += t
        dishes = sorted(root)
        for rts in itertools.product(*[range(1, root[w] + 1) for w in dishes]):
            lr = sum(log_stirling(d[0], root[w], r) for w, r in zip(dishes, rts))
            lr += log_restaurant(d[0], theta[0], sum(rts), sum(root.values())) - sum(rts) * math.log(V1)
            exact[(ts, rts)] = lp + lr
    Z = np.logaddexp.reduce(list(exact.values()))
    exact = {k: math.exp(v - Z) for k, v in exact.items()}

    # pairs: root a, b, c (0..2), then (x,a) (x,b) (y,a) (y,c)
    pair_ctx = np.array([0, 0, 0, 1, 1, 2, 2])
    pair_level = np.array([0, 0, 0, 1, 1, 1, 1])
    pair_parent = np.array([-1, -1, -1, 0, 1, 0, 2])
    raw = np.array([5, 2, 1, 3, 2, 2, 1])
    cust = np.array([2, 1, 1, 3, 2, 2, 1])
    cap = S.slots_for(raw)
    slot = np.concatenate([[0], np.cumsum(cap)[:-1]]).astype(np.int64)
    hsize, hcount = np.zeros(cap.sum(), np.int64), np.zeros(cap.sum(), np.int64)
    nent, tabs = np.zeros(7, np.int64), np.zeros(7, np.int64)
    ctx_cust, ctx_tabs = np.zeros(3, np.int64), np.zeros(3, np.int64)
    S.init_one_table(cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx)
    S.seed(12345)
    order = np.arange(7)[::-1].copy()
    sweeps = 60000
    seen = collections.Counter()
    po, co = np.array([0, 3, 7]), np.array([0, 1, 3])
    ls = [TC.stirling_table(10, d[0]), TC.stirling_table(10, d[1])]
    for _ in range(sweeps):
        if mode == "tables":
            for L in (1, 0):
                which = np.ones(po[L + 1] - po[L], np.bool_)
                TC.sweep_level(L, po, co, which, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx,
                               pair_parent, d[L], theta[L], d[L - 1], theta[L - 1], base, ls[L], ls[L - 1])
        else:
            S.sweep(order, cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx, pair_parent,
                    pair_level, d, theta, base)
        if mode == "refresh":
            S.refresh_partitions(order, cust, tabs, nent, hsize, hcount, slot, pair_level, d, 10**6)
        seen[(tuple(tabs[3:]), tuple(int(tabs[j]) for j in range(3)))] += 1
    tv = 0.5 * sum(abs(seen[k] / sweeps - exact.get(k, 0.0)) for k in set(seen) | set(exact))
    assert set(seen) <= set(exact)
    assert tv < 0.02, f"total variation {tv:.4f} between sampled and exact table counts"


def _enumerate_table_counts(pair_ctx, pair_level, pair_parent, top_customers, d, theta, base):
    """Exact posterior of every pair's table count on a tiny hierarchy, by enumeration:
    level by level from the top (customers of a pair below = its children's tables),
    log S_d(c, t) per pair plus each restaurant's term, G0(w) = ``base[i]`` per table of root pair i."""
    n_levels = int(pair_level.max()) + 1
    out = {}

    def walk(L, tabs, cust):
        pairs = [i for i in range(len(pair_ctx)) if pair_level[i] == L]
        for ts in itertools.product(*[range(1, cust[i] + 1) for i in pairs]):
            tabs2 = {**tabs, **dict(zip(pairs, ts))}
            if L == 0:
                lp = 0.0
                for i in range(len(pair_ctx)):
                    lp += log_stirling(d[pair_level[i]], cust[i], tabs2[i])
                for u in set(pair_ctx.tolist()):
                    members = [i for i in range(len(pair_ctx)) if pair_ctx[i] == u]
                    k = pair_level[members[0]]
                    lp += log_restaurant(d[k], theta[k], sum(tabs2[i] for i in members), sum(cust[i] for i in members))
                lp += sum(tabs2[i] * math.log(base[i]) for i in pairs)
                out[tuple(tabs2[i] for i in range(len(pair_ctx)))] = lp
            else:
                below = dict(cust)
                for i in range(len(pair_ctx)):
                    if pair_level[i] == L - 1:
                        below[i] = sum(tabs2[j] for j in range(len(pair_ctx)) if pair_parent[j] == i)
                walk(L - 1, tabs2, below)

    walk(n_levels - 1, {}, {i: c for i, c in top_customers.items()})
    Z = np.logaddexp.reduce(list(out.values()))
    return {k: math.exp(v - Z) for k, v in out.items()}


def test_table_count_update_leaves_a_three_level_posterior_invariant():
    """Trigram hierarchy (unigrams a, b; bigram contexts p, q; trigram contexts r, s, s2;
    the trigrams' parents have one or two children), each sweep the table-count update
    order by order from the top (at the trigrams the parent pair's Stirling term and its
    restaurant, at the bigrams the base, one number per token as an open vocabulary's): the
    sampled table counts against the enumerated posterior, and the bookkeeping of customers,
    totals and table sizes."""
    from bayeslm.ngram.pitman_yor import seating as S
    from bayeslm.ngram.pitman_yor import table_counts as TC

    # pairs: 0 a, 1 b | 2 (p,a), 3 (p,b), 4 (q,a) | 5 (r,a), 6 (r,b), 7 (s,a), 8 (s2,a)
    pair_ctx = np.array([0, 0, 1, 1, 2, 3, 3, 4, 5])
    pair_level = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    pair_parent = np.array([-1, -1, 0, 1, 0, 2, 3, 2, 4])
    top = {5: 3, 6: 2, 7: 1, 8: 2}
    d, theta, base = np.array([0.4, 0.6, 0.9]), np.array([1.0, 0.5, -0.3]), np.array([0.6, 0.15])
    exact = _enumerate_table_counts(pair_ctx, pair_level, pair_parent, top, d, theta, base)

    raw = np.array([6, 2, 4, 2, 2, 3, 2, 1, 2])
    cap = S.slots_for(raw)
    slot = np.concatenate([[0], np.cumsum(cap)[:-1]]).astype(np.int64)
    hsize, hcount = np.zeros(cap.sum(), np.int64), np.zeros(cap.sum(), np.int64)
    nent, tabs = np.zeros(9, np.int64), np.zeros(9, np.int64)
    ctx_cust, ctx_tabs = np.zeros(6, np.int64), np.zeros(6, np.int64)
    cust = np.array([2, 1, 2, 1, 1, 3, 2, 1, 2])  # one table per pair
    S.init_one_table(cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx)
    S.seed(2024)
    po = np.array([0, 2, 5, 9])
    co = np.array([0, 1, 3, 6])
    ls = [TC.stirling_table(8, dk) for dk in d]
    flags = [np.ones(po[L + 1] - po[L], np.bool_) for L in range(3)]
    sweeps = 100_000
    seen = collections.Counter()
    for _ in range(sweeps):
        for L in (2, 1, 0):
            TC.sweep_level(L, po, co, flags[L], cust, tabs, nent, hsize, hcount, slot, ctx_cust, ctx_tabs, pair_ctx,
                           pair_parent, d[L], theta[L], d[L - 1], theta[L - 1], base, ls[L], ls[L - 1])
        seen[tuple(int(t) for t in tabs)] += 1
    assert set(seen) <= set(exact)
    tv = 0.5 * sum(abs(seen[k] / sweeps - exact.get(k, 0.0)) for k in set(seen) | set(exact))
    assert tv < 0.04, f"total variation {tv:.4f} between sampled and exact table counts ({len(exact)} states)"
    # the bookkeeping: customers below are the children's tables, histograms match (c, t)
    np.testing.assert_array_equal(cust[:5], [tabs[2] + tabs[4], tabs[3], tabs[5] + tabs[7], tabs[6], tabs[8]])
    np.testing.assert_array_equal(ctx_tabs, np.bincount(pair_ctx, weights=tabs).astype(int))
    np.testing.assert_array_equal(ctx_cust, np.bincount(pair_ctx, weights=cust).astype(int))
    for i in range(9):
        sizes = [(hsize[slot[i] + e], hcount[slot[i] + e]) for e in range(nent[i])]
        assert sum(n * m for n, m in sizes) == cust[i] and sum(m for _, m in sizes) == tabs[i]


def test_refreshed_table_sizes_follow_their_exact_conditional():
    """One dish with c = 7 customers at t = 3 tables: the sizes drawn by refresh_partitions
    against p(sizes) ~ (number of set partitions with those sizes) x prod (1 - d)_(n - 1)."""
    from bayeslm.ngram.pitman_yor import seating as S

    c, t, d = 7, 3, 0.6
    exact = {}
    for sizes in itertools.combinations_with_replacement(range(1, c + 1), t):
        if sum(sizes) != c:
            continue
        ways = math.factorial(c) / math.prod(math.factorial(n) for n in sizes)
        ways /= math.prod(math.factorial(m) for m in collections.Counter(sizes).values())
        exact[tuple(sorted(sizes, reverse=True))] = ways * math.prod(math.prod(j - d for j in range(1, n)) for n in sizes)
    Z = sum(exact.values())
    exact = {k: v / Z for k, v in exact.items()}
    cap = S.slots_for(np.array([c]))
    cust, tabs, nent = np.array([c]), np.array([t]), np.zeros(1, np.int64)
    hsize, hcount = np.zeros(cap.sum(), np.int64), np.zeros(cap.sum(), np.int64)
    slot, level, pairs = np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)
    S.seed(7)
    draws = 40000
    seen = collections.Counter()
    for _ in range(draws):
        assert S.refresh_partitions(pairs, cust, tabs, nent, hsize, hcount, slot, level, np.array([d]), 10**6) == 1
        sizes = tuple(S.pair_tables_of(0, nent, hsize, hcount, slot))
        assert sum(sizes) == c and len(sizes) == t
        seen[sizes] += 1
    tv = 0.5 * sum(abs(seen[k] / draws - exact.get(k, 0.0)) for k in set(seen) | set(exact))
    assert set(seen) <= set(exact) and tv < 0.01, f"total variation {tv:.4f}"
    # too big for the cell budget, or fixed by t: left as they are
    assert S.refresh_partitions(pairs, cust, tabs, nent, hsize, hcount, slot, level, np.array([d]), 10) == 0
    tabs[0] = 1
    assert S.refresh_partitions(pairs, cust, tabs, nent, hsize, hcount, slot, level, np.array([d]), 10**6) == 0


@pytest.mark.parametrize("c, t, d", [(300, 40, 0.9), (1357, 1042, 0.92)], ids=["few-tables", "many-tables"])
def test_refreshed_table_sizes_of_a_big_pair_have_the_exact_number_of_lone_customers(c, t, d):
    """E[tables of one customer] = c S_d(c - 1, t - 1) / S_d(c, t) (the last customer alone),
    generalised Stirling numbers by their recursion in log space, against the mean of the
    draws; every draw seats c customers at exactly t tables of at least one. The second
    case is a pair of the Shakespeare trigram's seating on which the untilted recursion
    underflowed and drew partitions with empty tables (329 lone customers instead of 963)."""
    from bayeslm.ngram.pitman_yor import seating as S

    k = np.arange(t + 1)
    row = np.full(t + 1, -np.inf)
    row[0] = 0.0
    for m in range(c):
        with np.errstate(divide="ignore", invalid="ignore"):
            grow = np.where(m - k * d > 0, row + np.log(np.maximum(m - k * d, 1e-300)), -np.inf)
        new = np.full(t + 1, -np.inf)
        new[1:] = np.logaddexp(row[:-1], grow[1:])
        previous, row = row, new
    exact = c * math.exp(previous[t - 1] - row[t])
    cap = S.slots_for(np.array([c]))
    cust, tabs, nent = np.array([c]), np.array([t]), np.zeros(1, np.int64)
    hsize, hcount = np.zeros(cap.sum(), np.int64), np.zeros(cap.sum(), np.int64)
    zero = np.zeros(1, np.int64)
    S.seed(3)
    lone = []
    for _ in range(1000):
        S.refresh_partitions(zero, cust, tabs, nent, hsize, hcount, zero, zero, np.array([d]), 10**7)
        sizes = S.pair_tables_of(0, nent, hsize, hcount, zero)
        assert sizes.size == t and sizes.sum() == c and sizes.min() >= 1
        lone.append(int((sizes == 1).sum()))
    lone = np.array(lone)
    assert abs(lone.mean() - exact) < 4 * lone.std() / np.sqrt(lone.size), (lone.mean(), exact)


def test_gibbs_fit_records_tables_and_diagnostics(pitman_yor_lm):
    idata = pitman_yor_lm.idata
    assert set(idata["posterior"].data_vars) >= {"discount", "strength", "strength_plus_discount"}
    assert idata["posterior"]["discount"].dims == ("chain", "draw", "order")
    tc = idata["table_counts"]
    assert tc.sizes["sample"] == 6
    for k in range(1, 4):
        t = tc[f"tables_o{k}"].values
        assert t.shape == (6, pitman_yor_lm.counts_[k].n_ngrams)
        assert np.all(t >= 1)
    top = tc["tables_o3"].values
    assert np.all(top <= pitman_yor_lm.counts_[3].ngram_count)
    _assert_tables_within_customers(pitman_yor_lm)
    assert "tables" in idata["sample_stats"] and "table_counts" not in idata["sample_stats"]
    post = idata["posterior"]
    assert np.all((post["discount"] > 0) & (post["discount"] < 1))
    assert np.all(post["strength"] > -post["discount"])


def _assert_tables_within_customers(lm):
    """Every retained seating: 1 <= tables <= customers for every pair of every order (the
    customers below the top are the tables of the children)."""
    from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy

    hier = Hierarchy(lm.counts_)
    tc = lm.idata["table_counts"]
    for s in range(tc.sizes["sample"]):
        flat = np.concatenate([tc[f"tables_o{k}"].values[s] for k in range(1, lm.order + 1)]).astype(np.int64)
        assert np.all(flat >= 1) and np.all(flat <= hier.customers(flat))


def test_customer_sweep_only_fit_keeps_a_valid_seating():
    """The default fit (pitman_yor_lm) runs the table-count step; without it (a fit of its
    own), the customer sweep and the size refresh alone leave a valid seating whose
    predictive is the rule's."""
    lm = PitmanYorLM(order=3, inference="gibbs", retain=2, table_step=False, sampler_config=QUICK)
    lm.fit(Corpus.from_texts(TRAIN), random_seed=5)
    _assert_tables_within_customers(lm)
    contexts = [u for u, _ in events(lm, TEST)[:20]]
    dense = lm.predictive_probs(np.array(contexts))
    seatings = [reference_seating(lm, s) for s in range(lm.n_samples)]
    expected = [np.mean([reference_distribution(lm, s, u, seatings[s])[0] for s in range(lm.n_samples)], axis=0)
                for u in contexts]
    np.testing.assert_allclose(dense, expected, rtol=1e-10, atol=1e-15)
    assert np.all(np.delete(dense, BOS, axis=1) > 0)


@pytest.mark.parametrize("fixture", ["pitman_yor_lm", "fast_lm"])
def test_prob_interval_and_entropy(fixture, request):
    """``prob``: the mean is the rule's predictive averaged over the retained samples, the
    interval the HDI of the mixture of Beta(A p_w, A (1 - p_w)) (u's Dirichlet in each sample),
    here the shortest interval of Monte Carlo draws of that mixture. The entropy split: the
    entropy of the mean predictive, and the mean closed-form expected entropy of the Dirichlets."""
    lm = request.getfixturevalue(fixture)
    S = lm.n_samples
    assert S <= lm.options["entropy_draws"]  # every retained sample enters the interval and the entropies
    seatings = [reference_seating(lm, s) for s in range(S)]
    u, w = (BOS, lm.vocab_.id("the")), lm.vocab_.id("cat")  # the text context "the": a sentence's first word
    dists = [reference_distribution(lm, s, u, seatings[s]) for s in range(S)]
    est = lm.prob("cat", "the")
    assert est["mean"] == pytest.approx(np.mean([p[w] for p, _ in dists]), rel=1e-10)
    rng = np.random.default_rng(1)
    draws = np.concatenate([rng.beta(A * p[w], A * (1 - p[w]), size=20_000) for p, A in dists])
    low, high = shortest_interval(draws, 0.94)
    width = est["high"] - est["low"]
    assert abs(low - est["low"]) < 0.02 * width and abs(high - est["high"]) < 0.02 * width

    ev = events(lm, TEST)
    split = lm.entropy_split(TEST)
    assert len(split) == len(ev)
    expected = {}
    for ctx in {ctx for ctx, _ in ev}:
        dists = [reference_distribution(lm, s, ctx, seatings[s]) for s in range(S)]
        p_bar = np.mean([p for p, _ in dists], axis=0)
        expected[ctx] = (entr(p_bar).sum(), np.mean([expected_entropy(A * p) for p, A in dists]))
    np.testing.assert_allclose(split["total"], [expected[ctx][0] for ctx, _ in ev], rtol=1e-9)
    np.testing.assert_allclose(split["aleatoric"], [expected[ctx][1] for ctx, _ in ev], rtol=1e-9)
    np.testing.assert_allclose(split["epistemic"], np.maximum(split["total"] - split["aleatoric"], 0), atol=1e-12)
    table = lm.per_token(TEST, units="bits")
    assert {"entropy_bits", "epistemic_bits"} <= set(table.columns)
    draw = lm.sample_distribution(np.array([[BOS, BOS]]), 0, np.random.default_rng(0))
    assert draw.shape == (1, len(lm.vocab_)) and draw.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["pitman_yor", "ikn", "fast"])
def test_save_load_round_trip(name, tmp_path, request):
    lm, saved = request.getfixturevalue(f"{name}_lm"), request.getfixturevalue(f"{name}_dir")
    back = load(saved)
    assert isinstance(back, PitmanYorLM) and back.options == lm.options and back.id == lm.id
    np.testing.assert_array_equal(back.predictive_log_prob(TEST), lm.predictive_log_prob(TEST))
    with pytest.raises(DifferentModelError, match="holds a 'pitman-yor' model, not a 'dirichlet' model"):
        DirichletLM.load(saved)
    path = writable_copy(saved, tmp_path)
    (path / "arrays.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match=r"arrays.npz: corrupt or truncated \(9 bytes; manifest.json: "):
        load(path)


# ------------------------------------------------------------------------------- bad input
def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ConfigError, match=r"model.discount must be a number in \[0, 1\)"):
        PitmanYorLM(order=2, discount=1.0)
    with pytest.raises(ConfigError, match=r"model.discount must be a number in \[0, 1\)"):
        PitmanYorLM(order=2, discount=[-0.1, 0.5])
    with pytest.raises(ConfigError, match="model.strength must be a number > -discount.*discount is 0.5"):
        PitmanYorLM(order=2, discount=0.5, strength=-0.5)
    with pytest.raises(ConfigError, match="model.strength must be a number > -discount.*free discount"):
        PitmanYorLM(order=2, strength=-0.1)
    with pytest.raises(ConfigError, match="model.inference must be one of 'fast', 'gibbs', 'ikn'"):
        PitmanYorLM(order=2, inference="em")
    with pytest.raises(ConfigError, match="model.refresh_min must be a whole number >= 0"):
        PitmanYorLM(order=2, refresh_min=-1)
    with pytest.raises(ConfigError, match="model.table_step must be true or false"):
        PitmanYorLM(order=2, table_step="yes")


def test_bad_corpora_are_rejected():
    with pytest.raises(ConfigError, match="order 6 is larger than any sentence"):
        PitmanYorLM(order=6, sampler_config=QUICK).fit(Corpus.from_texts(["a b", "b a c"]))
    with pytest.raises(CorpusError, match="single token type"):
        PitmanYorLM(order=2, sampler_config=QUICK).fit(Corpus.from_texts(["a a a", "a"]))


def test_cli_fit_error_writes_nothing(tmp_path, capsys):
    from bayeslm.cli import main

    text = tmp_path / "one.txt"
    text.write_text("a a a\na\n", encoding="utf-8")
    out = tmp_path / "model"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "pitman-yor-trigram", "--train", str(text), "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bayeslm: error:") and "single token type" in err[0]
    assert not out.exists() and not any(p.name.startswith(".model") for p in tmp_path.iterdir())


# ------------------------------------------------------------------------------- ARPA export
def _kenlm_log_prob(arpa: Path, lines: list[str]) -> float:
    kenlm = pytest.importorskip("kenlm")
    model = kenlm.Model(str(arpa))
    return sum(model.score(line, bos=True, eos=True) for line in lines) * math.log(10)


@pytest.mark.parametrize("fixture", ["pitman_yor_lm", "fast_lm"])
def test_arpa_export_reproduces_perplexity(fixture, tmp_path, request):
    from bayeslm.ngram.arpa import write_arpa

    lm = request.getfixturevalue(fixture)
    corpus = lm.encode(TEST)
    lines = corpus.decode_lines()
    index, tokens = lm._position_index(corpus)
    for sample in (0, lm.n_samples - 1):
        write_arpa(lm, tmp_path / "s.arpa", sample=sample)
        ours = float(np.log(lm._probs(sample, index, tokens)).sum())
        assert _kenlm_log_prob(tmp_path / "s.arpa", lines) == pytest.approx(ours, rel=1e-4)
    # the mean model: close to the mixture (not exactly a back-off model)
    write_arpa(lm, tmp_path / "m.arpa")
    assert _kenlm_log_prob(tmp_path / "m.arpa", lines) == pytest.approx(lm.predictive_log_prob(corpus).sum(), rel=1e-2)


def test_arpa_export_dirichlet_and_cli(dirichlet_lm, dirichlet_dir, tmp_path, capsys):
    from bayeslm.cli import main

    lm, path = dirichlet_lm, dirichlet_dir
    assert main(["export", str(path), "--arpa", str(tmp_path / "d.arpa")]) == 0
    assert "wrote" in capsys.readouterr().out
    corpus = lm.encode(TEST)
    expected = float(lm.predictive_log_prob(corpus).sum())
    assert _kenlm_log_prob(tmp_path / "d.arpa", corpus.decode_lines()) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(path), "--arpa", str(tmp_path / "x.arpa"), "--sample", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == ("bayeslm: error: --sample applies to Pitman-Yor models "
                                       "(a Dirichlet LM's mixture is exported exactly)\n")
    assert not (tmp_path / "x.arpa").exists()


# ------------------------------------------------------------------------------- recovery
def simulate_hpy_bigram(rng, d, theta, n_words: int, min_tokens: int) -> Corpus:
    """A corpus from an order-2 hierarchical Pitman-Yor LM, by the Chinese restaurant process:
    sentences (empty ones too) until the first ``</s>`` after ``min_tokens`` tokens (a
    stopping rule on the observed data leaves the likelihood alone; no sentence is cut).

    Contexts are the previous token (``<s>`` first); the root's base is uniform over the
    words, ``</s>`` and ``<unk>`` (the model's vocabulary without ``<s>``).
    """
    vocab = Vocabulary([f"w{i}" for i in range(n_words)])
    dishes = np.array([t for t in range(len(vocab)) if t != vocab.bos_id])
    root: list[list] = []
    restaurants: dict = {}

    def seat(tables, dd, th, parent):
        T, C = len(tables), sum(s for _, s in tables)
        weights = np.array([s - dd for _, s in tables] + [th + dd * T])
        k = int(rng.choice(T + 1, p=weights / (C + th)))
        if k == T:
            tables.append([parent(), 1])
        else:
            tables[k][1] += 1
        return tables[k][0]

    from_base = lambda: int(rng.choice(dishes))
    from_root = lambda: seat(root, d[0], theta[0], from_base)
    ids, lengths, prev = [], [0], vocab.bos_id
    while not (prev == vocab.bos_id and len(ids) >= min_tokens):
        w = seat(restaurants.setdefault(prev, []), d[1], theta[1], from_root)
        if w == vocab.eos_id:
            lengths.append(0)
            prev = vocab.bos_id
        else:
            ids.append(w)
            lengths[-1] += 1
            prev = w
        assert len(ids) < 20 * min_tokens, "a runaway sentence: choose another seed"
    return Corpus(np.array(ids), np.cumsum([0] + lengths[:-1]), vocab)


def recovery_z_scores(d, theta, n_words: int, min_tokens: int, sampler: dict, levels=(1, 2)) -> dict:
    """Data simulated from an order-2 hierarchical Pitman-Yor LM with discounts ``d`` and
    strengths ``theta``, fitted by Gibbs sweeps: (posterior mean - truth) / posterior sd of
    each parameter at each level, and that sd, by name (``discount1``, ``strength2``, ...)."""
    corpus = simulate_hpy_bigram(np.random.default_rng(7), d, theta, n_words=n_words, min_tokens=min_tokens)
    lm = PitmanYorLM(order=2, inference="gibbs", sampler_config={**sampler, "random_seed": 2})
    lm.fit(corpus)
    if 1 in levels:  # the unigram level matches the simulation only when every word was seen
        assert len(lm.vocab_) == n_words + 3
    post = lm.idata["posterior"]
    z = {}
    for name, truth in (("discount", d), ("strength", theta)):
        for k in levels:
            x = post[name].sel(order=k).values.ravel()
            z[f"{name}{k}"] = ((x.mean() - truth[k - 1]) / x.std(), x.std())
    return z


def test_recovers_discount_and_strength_from_simulated_data():
    """Data simulated from the model (50 words, all of them seen): the posterior of both
    levels centres on the truth (within 3 posterior sd), and is narrow enough that a discount
    0.08 off at the bigram level would fail the check."""
    z = recovery_z_scores((0.5, 0.7), (5.0, 1.0), n_words=50, min_tokens=15_000, sampler=RECOVERY)
    for name, (score, _) in z.items():
        assert abs(score) < 3, (name, score)
    score, sd = z["discount2"]
    assert abs(score) + 3 < 0.08 / sd, (score, sd)  # |score +- 0.08 / sd| > 3 either way


@pytest.mark.slow
def test_recovers_discount_and_strength_from_simulated_data_at_scale():
    """2,000 words, 60,000 tokens (a few minutes): the bigram level centres on the truth. (Most
    words are never seen, so the unigram level's base differs from the simulation's.)"""
    z = recovery_z_scores((0.5, 0.7), (5.0, 1.0), n_words=2000, min_tokens=60_000,
                          sampler={**RECOVERY, "draws": 300, "tune": 200}, levels=(2,))
    for name, (score, _) in z.items():
        assert abs(score) < 3, (name, score)


# ------------------------------------------------------------------------------- ikn tables
def test_ikn_tables_reproduce_the_exact_likelihood_and_start_nuts_at_the_mode():
    """With the seating fixed (ikn), each order's log likelihood is read from a checked 2-D
    Chebyshev table: inside it, value and gradient equal the exact sums; outside, the exact
    sums answer; the table's centre is a maximum of the exact likelihood."""
    from bayeslm.counting.counts import count
    from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy
    from bayeslm.ngram.pitman_yor.seating_state import SeatingState

    lm = PitmanYorLM(order=3, inference="ikn")
    counts = count(lm._prepare_training(Corpus.from_texts(markov_sentences(5, 400))), 3)
    state = SeatingState(Hierarchy(counts), 1.0 / (counts.vocab_size - 1), gibbs=False)
    assert all(state.tabulate(np.full(3, 0.6)))
    rng = np.random.default_rng(0)
    for k, table in enumerate(state.tables):
        for x, y in rng.uniform(table.lo, table.hi, size=(20, 2)):
            d = 1 / (1 + np.exp(-x))
            theta = np.exp(y) - d
            state._cache = {}
            got, exact = state._order_logp(k, d, theta), state._exact_order_logp(k, d, theta)
            assert got[0] == pytest.approx(exact[0], abs=1e-6)
            # gradients in the sampler's coordinates (logit d, log(theta + d)), the table's own
            in_xy = lambda g: np.array([(g[1] - g[2]) * d * (1 - d), g[2] * (theta + d)])
            np.testing.assert_allclose(in_xy(got), in_xy(exact), rtol=1e-7, atol=1e-6)
        d_mode, theta_mode = state.modes[:, k]
        best = state._exact_order_logp(k, d_mode, theta_mode)[0]
        for dd, dt in [(0.02, 0), (-0.02, 0), (0, 0.05 * (theta_mode + d_mode)), (0, -0.05 * (theta_mode + d_mode))]:
            assert state._exact_order_logp(k, d_mode + dd, theta_mode + dt)[0] < best
        far = (0.999, 1e6)
        assert not table.covers(np.log(far[0] / (1 - far[0])), np.log(far[1] + far[0]))
        state._cache = {}
        assert state._order_logp(k, *far) == state._exact_order_logp(k, *far)
    with pytest.raises(BayesLMError, match="only a fixed seating"):
        SeatingState(Hierarchy(counts), 1.0 / (counts.vocab_size - 1), gibbs=True).tabulate(np.full(3, 0.6))


def test_ikn_fit_is_reproducible(ikn_lm):
    again = PitmanYorLM(order=3, inference="ikn", retain=4, sampler_config={**QUICK, "random_seed": 4})
    again.fit(Corpus.from_texts(TRAIN))  # as the shared ikn_lm was
    for name in ("discount", "strength"):
        np.testing.assert_array_equal(again.idata["posterior"][name].values, ikn_lm.idata["posterior"][name].values)
