"""Tests of the Pitman-Yor LM's fast mode (``inference="fast"``) against independent computations.

The likelihood of (d, theta) given a seating against the Gibbs sampler's own sums
(``SeatingState.hyper_logp``); the grid draws against the posterior integrated numerically
on a fine grid in (d, theta); the seating under a per-token base (an open vocabulary's)
against a hand computation; the fitted model's layout; and, on data simulated from the
model, what its hyperparameters do and do not recover. The protocol's answers of a fast
model (predictive rule, intervals, entropies, ARPA, save/load) are checked beside the other
modes' in tests/ngram/test_pitman_yor.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpora import markov_sentences
from sampling import QUICK, RECOVERY
from scipy import stats
from test_pitman_yor import TRAIN, simulate_hpy_bigram

from bayeslm import Corpus, PitmanYorLM
from bayeslm.core.priors import Prior
from bayeslm.counting.counts import count
from bayeslm.ngram.pitman_yor.fast import HyperPosterior, order_log_likelihood, prior_log_density, seating_statistics
from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy
from bayeslm.ngram.pitman_yor.seating_state import SeatingState

BETA, GAMMA = Prior("Beta", alpha=1.0, beta=1.0), Prior("Gamma", alpha=1.0, beta=0.01)


def seated(corpus: Corpus, order: int, d, theta, seed: int = 1) -> SeatingState:
    """The customers of ``corpus``'s order-``order`` counts seated once at (d, theta)."""
    lm = PitmanYorLM(order=order)
    counts = count(lm._prepare_training(corpus), order, progress=False)
    state = SeatingState(Hierarchy(counts), 1.0 / (counts.vocab_size - 1), gibbs=True)
    state.initialise(np.asarray(d, float), np.asarray(theta, float), seed)
    return state


@pytest.fixture(scope="module")
def trigram_state() -> SeatingState:
    return seated(Corpus.from_texts(markov_sentences(5, 400)), 3, [0.5, 0.6, 0.7], [1.0, 1.0, 1.0])


def test_likelihood_is_the_seating_likelihood_of_the_gibbs_sampler(trigram_state):
    """Summed over orders, the fast mode's log likelihood (distinct values, lgamma ratios)
    equals ``SeatingState.hyper_logp`` (count-of-count sums over i and j), value and
    gradient, at points spread over (d, theta); outside the support it is -inf."""
    state = trigram_state
    per_order = seating_statistics(state)
    rng = np.random.default_rng(0)
    for _ in range(10):
        d = rng.uniform(0.05, 0.95, 3)
        theta = np.maximum(rng.uniform(-1.0, 30.0, 3), -0.9 * d)  # theta > -d, negative ones too
        value, g_d, g_t = state.hyper_logp(d, theta)
        ours = [order_log_likelihood(s, d[k], theta[k], gradient=True) for k, s in enumerate(per_order)]
        assert sum(float(v) for v, _, _ in ours) == pytest.approx(value, rel=1e-10)
        np.testing.assert_allclose([float(gd) for _, gd, _ in ours], g_d, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose([float(gt) for _, _, gt in ours], g_t, rtol=1e-8, atol=1e-8)
    batch = order_log_likelihood(per_order[1], np.array([0.3, 0.6, 1.0, 0.5]), np.array([1.0, 2.0, 1.0, -0.6]))
    assert np.isfinite(batch[:2]).all() and np.isneginf(batch[2:]).all()
    assert batch[1] == pytest.approx(float(order_log_likelihood(per_order[1], 0.6, 2.0)), rel=1e-12)


def numerical_posterior(stats_k, n: int = 600):
    """Mean and sd of d and theta under Beta(1, 1) x Gamma(1, 0.01) on theta + d and the
    likelihood of one order, by quadrature on an n x n grid in (d, s = theta + d) around the
    region that holds the mass (found from a coarse grid)."""
    def moments(d_axis, s_axis):
        dd, ss = np.meshgrid(d_axis, s_axis, indexing="ij")
        logp = (order_log_likelihood(stats_k, dd, ss - dd) + stats.beta.logpdf(dd, 1, 1)
                + stats.gamma.logpdf(ss, 1, scale=100.0))
        w = np.exp(logp - logp.max())
        w /= w.sum()
        th = ss - dd
        return [(float((w * x).sum()), float(np.sqrt((w * x**2).sum() - (w * x).sum() ** 2))) for x in (dd, th)], w, dd, ss

    _, w, dd, ss = moments(np.linspace(0.01, 0.99, 120), np.exp(np.linspace(np.log(0.02), np.log(500), 120)))
    keep = w > w.max() * 1e-12
    lo_d, hi_d = dd[keep].min() - 0.01, dd[keep].max() + 0.01
    lo_s, hi_s = ss[keep].min() * 0.8, ss[keep].max() * 1.25
    (d_mom, th_mom), _, _, _ = moments(np.linspace(max(lo_d, 1e-4), min(hi_d, 1 - 1e-4), n), np.linspace(lo_s, hi_s, n))
    return d_mom, th_mom


def test_grid_draws_follow_the_posterior_given_the_seating(trigram_state):
    """Each order's draws: mean and sd of d and theta against numerical integration of
    prior x likelihood in (d, theta + d) (within 4 Monte Carlo standard errors; the sd within
    5%); the draws are independent (lag-1 autocorrelation near 0)."""
    per_order = seating_statistics(trigram_state)
    log_d, log_s = prior_log_density(BETA), prior_log_density(GAMMA)
    rng = np.random.default_rng(1)
    n = 4000
    for k, stats_k in enumerate(per_order):
        d, theta = HyperPosterior(stats_k, log_d, log_s).draw(n, rng, 0.6, 1.0)
        (d_mean, d_sd), (t_mean, t_sd) = numerical_posterior(stats_k)
        for x, mean, sd in ((d, d_mean, d_sd), (theta, t_mean, t_sd)):
            assert abs(x.mean() - mean) < 4 * sd / np.sqrt(n), (k, x.mean(), mean, sd)
            assert x.std() == pytest.approx(sd, rel=0.05), (k, x.std(), sd)
            assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 0.05


def test_grid_draws_with_a_fixed_discount_or_strength(trigram_state):
    """One free coordinate: the fixed one is returned as given, the other against a 1-D
    numerical integration; both fixed: the values themselves."""
    stats_k = seating_statistics(trigram_state)[2]
    log_d, log_s = prior_log_density(BETA), prior_log_density(GAMMA)
    rng = np.random.default_rng(2)
    d, theta = HyperPosterior(stats_k, log_d, None, fixed_theta=0.5).draw(4000, rng, 0.6, 0.5)
    assert np.all(theta == 0.5)
    grid = np.linspace(1e-4, 1 - 1e-4, 20001)
    logp = order_log_likelihood(stats_k, grid, 0.5)
    w = np.exp(logp - logp.max())
    mean = (w * grid).sum() / w.sum()
    sd = np.sqrt((w * grid**2).sum() / w.sum() - mean**2)
    assert abs(d.mean() - mean) < 4 * sd / np.sqrt(d.size) and d.std() == pytest.approx(sd, rel=0.05)
    d, theta = HyperPosterior(stats_k, None, log_s, fixed_d=0.7).draw(10, rng, 0.7, 1.0)
    assert np.all(d == 0.7) and np.all(theta > -0.7)
    d, theta = HyperPosterior(stats_k, None, None, fixed_d=0.7, fixed_theta=1.5).draw(5, rng, 0.7, 1.5)
    assert np.all(d == 0.7) and np.all(theta == 1.5)


def test_fast_fit_holds_one_seating_and_independent_draws(fast_lm):
    """The posterior group: chains x draws of discount, strength, strength_plus_discount; the
    table_counts group: the one seating (1 <= tables <= customers at every order; top-order
    customers the counts) that every retained sample names; the same seed gives the same fit."""
    lm = fast_lm
    post, tc = lm.idata["posterior"], lm.idata["table_counts"]
    assert lm.idata["posterior"].attrs["inference"] == "fast"
    assert post["discount"].dims == ("chain", "draw", "order") and post.sizes["chain"] == QUICK["chains"]
    np.testing.assert_allclose(post["strength_plus_discount"], post["strength"] + post["discount"], rtol=1e-12)
    assert tc.sizes["seating"] == 1 and tc.sizes["sample"] == 8 and np.all(tc["sample_seating"].values == 0)
    hier = Hierarchy(lm.counts_)
    flat = np.concatenate([tc[f"tables_o{k}"].values[0] for k in range(1, 4)]).astype(np.int64)
    assert np.all(flat >= 1) and np.all(flat <= hier.customers(flat))
    again = PitmanYorLM(order=3, inference="fast", retain=4, sampler_config={**QUICK, "random_seed": 5})
    again.fit(Corpus.from_texts(TRAIN))  # as the shared fast_lm was
    for name in ("discount", "strength"):
        np.testing.assert_array_equal(again.idata["posterior"][name].values, post[name].values)
    np.testing.assert_array_equal(again.idata["table_counts"]["tables_o3"].values, tc["tables_o3"].values)


def test_seating_uses_each_tokens_base():
    """An open vocabulary's base is one number per token in the seating kernels: one restaurant
    (order 1) with customers a, a and </s>, seated in random order, gives the second a a table
    of its own with probability 1/3 f(1) + 2/3 f(2), f(T) = (theta + d T) P_0(a) / (1 - d +
    (theta + d T) P_0(a)) (T tables before it: </s> came first in two of the three orders),
    for a base that favours a and for one that does not; a uniform base given as one number
    and as an array seat identically."""
    lm = PitmanYorLM(order=1)
    counts = count(lm._prepare_training(Corpus.from_texts(["a a"])), 1, progress=False)
    a = lm.vocab_.id("a")
    d, theta, n = 0.3, 0.5, 4000
    for p_a in (0.9, 0.05):
        base = np.full(len(lm.vocab_), (1.0 - p_a) / (len(lm.vocab_) - 2))
        base[lm.vocab_.bos_id], base[a] = 0.0, p_a
        state = SeatingState(Hierarchy(counts), base, gibbs=True)
        own = Hierarchy(counts).counts[1].lookup(np.zeros(1, np.int64), np.array([a]))[0]
        two = 0
        for seed in range(n):
            state.initialise(np.array([d]), np.array([theta]), seed)
            two += int(state.tabs[own] == 2)
        f = lambda T: (theta + d * T) * p_a / (1.0 - d + (theta + d * T) * p_a)
        exact = f(1) / 3 + 2 * f(2) / 3
        assert abs(two / n - exact) < 4 * np.sqrt(exact * (1 - exact) / n), (p_a, two / n, exact)
    corpus = Corpus.from_texts(markov_sentences(5, 200))
    counts = count(lm._prepare_training(corpus), 1, progress=False)
    uniform = np.full(len(lm.vocab_), 1.0 / (len(lm.vocab_) - 1))
    one, array = (SeatingState(Hierarchy(counts), b, gibbs=True) for b in (uniform[0], uniform))
    for state in (one, array):
        state.initialise(np.array([0.4]), np.array([1.0]), 11)
    np.testing.assert_array_equal(one.tabs, array.tabs)


TRUTH_D, TRUTH_THETA = (0.5, 0.7), (5.0, 1.0)


@pytest.fixture(scope="module")
def simulated() -> Corpus:
    """15,000 tokens from an order-2 hierarchical Pitman-Yor LM (50 words, all seen)."""
    return simulate_hpy_bigram(np.random.default_rng(7), TRUTH_D, TRUTH_THETA, n_words=50, min_tokens=15_000)


def test_posterior_given_a_seating_drawn_at_the_truth_centres_on_it(simulated):
    """Simulated data seated once at the true (d, theta): each level's draws of d and theta
    centre on the truth within 3 of their sd (the likelihood and the grid are right where the
    seating is)."""
    state = seated(simulated, 2, TRUTH_D, TRUTH_THETA, seed=3)
    log_d, log_s = prior_log_density(BETA), prior_log_density(GAMMA)
    rng = np.random.default_rng(4)
    draws = RECOVERY["chains"] * RECOVERY["draws"]
    for k, stats_k in enumerate(seating_statistics(state)):
        d, theta = HyperPosterior(stats_k, log_d, log_s).draw(draws, rng, TRUTH_D[k], TRUTH_THETA[k])
        assert abs(d.mean() - TRUTH_D[k]) < 3 * d.std(), (k, d.mean(), d.std())
        assert abs(theta.mean() - TRUTH_THETA[k]) < 3 * theta.std(), (k, theta.mean(), theta.std())


@pytest.mark.xfail(strict=True, reason="the fast mode seats at the Kneser-Ney starting discounts, and the seating "
                                       "pins d there (docs/pitman_yor.md, 'The fast mode'): d_2 0.54 +- 0.01, truth 0.7")
def test_fast_mode_recovers_the_discount_from_simulated_data(simulated):
    """What the fast mode does not do: its top-level discount on the simulated data is not
    within 3 of its sd of the truth (the Gibbs mode's is: test_pitman_yor.py)."""
    lm = PitmanYorLM(order=2, inference="fast", sampler_config={**RECOVERY, "random_seed": 2})
    lm.fit(simulated)
    d = lm.idata["posterior"]["discount"].sel(order=2).values.ravel()
    assert abs(d.mean() - TRUTH_D[1]) < 3 * d.std()


def test_fast_model_samples_sentences_generates_and_reports(fast_lm):
    """The abilities a report needs: sentences drawn under a retained sample start with the
    token distribution of that sample's ``P(. | <s> <s>)`` (total variation within sampling
    error), ``generate`` continues a prompt, and the report runs its posterior predictive
    checks and lists every free hyperparameter's diagnostics."""
    from bayeslm.report.build import report

    lm, n = fast_lm, 20_000
    bos, eos = lm.vocab_.bos_id, lm.vocab_.eos_id
    corpus = lm.sample_sentences(n, random_seed=3, draw=1, max_tokens=1)
    first = np.where(corpus.sentence_lengths > 0, corpus.ids[np.minimum(corpus.offsets[:-1], corpus.ids.size - 1)], eos)
    p_first = lm.next_token_probs(np.array([[bos, bos]]), draws=[1])[0, 0]
    counts = np.bincount(first, minlength=len(lm.vocab_))
    assert 0.5 * np.abs(counts / n - p_first).sum() < 2 * np.sqrt(len(lm.vocab_) / n)
    (continuation,) = lm.generate("the cat", n=1, max_tokens=4, random_seed=1)
    assert continuation.text
    data = report(lm, TRAIN[:20], replicates=3, random_seed=1).to_dict()
    assert data["ppc"]["available"] and data["ppc"]["replicates"] == 3
    rows = {row["name"] for row in data["diagnostics"]["parameters"]}
    assert {f"discount[{k}]" for k in (1, 2, 3)} <= rows and {f"strength[{k}]" for k in (1, 2, 3)} <= rows


def test_on_shakespeare_the_fast_mode_predicts_better_than_ikn(shakespeare_dir, request):
    """Real data (../shared/data): the pitman-yor-trigram-fast configuration and the ikn mode of
    pitman-yor-trigram, fitted on the training plays (seed 1, as bench/compare_kenlm_py.py), score
    the test plays; the fast mode's seating, not one table per type, gives the better predictive
    (docs/pitman_yor.md reports both perplexities), and each perplexity is 2 to the mean negative
    log2 predictive probability of the positions."""
    from bayeslm.core.base import BayesianLM
    from bayeslm.core.config import apply_overrides, load_config

    assert request.node.get_closest_marker("shared_data")  # tests/conftest.py marks what reads ../shared/data
    perplexity = {}
    for name, config in (("fast", load_config("pitman-yor-trigram-fast")),
                         ("ikn", apply_overrides(load_config("pitman-yor-trigram"), ['model.inference="ikn"']))):
        model = BayesianLM.from_config(config)
        model.fit(Corpus.from_paths(shakespeare_dir / "train", tokenizer=model.tokenizer), random_seed=1,
                  progressbar=False)
        test = model.read(shakespeare_dir / "test")
        perplexity[name] = model.evaluate(test).predictive_perplexity
        assert perplexity[name] == pytest.approx(np.exp(-model.predictive_log_prob(test).mean()), rel=1e-9)
    assert perplexity["fast"] < perplexity["ikn"]
