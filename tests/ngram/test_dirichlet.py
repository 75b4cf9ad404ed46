"""Tests of DirichletLM against closed forms and independent dense computations.

Every reference value is computed here from plain Python counts (collections.Counter
over the padded sentences) and the model's posterior draws; nothing is copied from the
implementation's output.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from corpora import NGRAM_TRAIN, WORDS, markov_sentences
from ngram_samples import expected_entropy, shortest_interval
from sampling import CALIBRATION, QUICK, RECOVERY
from scipy.special import entr, gammaln

from bayeslm import Corpus, DirichletLM, Prior, WhitespaceTokenizer, count
from bayeslm.exceptions import BayesLMError, ConfigError, NotFittedError
from bayeslm.ngram.dirichlet import dirichlet_multinomial_evidence
from bayeslm.ngram.evidence import OrderEvidence
from bayeslm.text.vocab import Vocabulary

UNK, BOS, EOS = 0, 1, 2


# ----------------------------------------------------------------- data and references
TRAIN = NGRAM_TRAIN  # the shared Dirichlet trigram's (tests/conftest.py)
TEST = markov_sentences(1, 8) + ["the zebra sat on the mat", "red red red", "qux"]


def suffix(ctx: tuple, length: int) -> tuple:
    return ctx[len(ctx) - length :] if length > 0 else ()


class Ref:
    """Counts of every order from the padded sentences, and the dense predictive recursion."""

    def __init__(self, vocab: Vocabulary, sentences: list[str], n: int):
        self.vocab, self.n, self.V = vocab, n, len(vocab)
        self.events = events(vocab, sentences, n)
        self.ngram = {k: Counter() for k in range(1, n + 1)}
        self.ctx = {k: Counter() for k in range(1, n + 1)}
        for full, w in self.events:
            for k in range(1, n + 1):
                u = suffix(full, k - 1)
                self.ngram[k][(u, w)] += 1
                self.ctx[k][u] += 1

    def vector(self, k: int, u: tuple) -> np.ndarray:
        c = np.zeros(self.V)
        for w in range(self.V):
            c[w] = self.ngram[k][(u, w)]
        return c

    def uniform(self) -> np.ndarray:
        p = np.full(self.V, 1.0 / (self.V - 1))
        p[BOS] = 0.0
        return p

    def level(self, full: tuple, upto: int, conc) -> np.ndarray:
        """P_upto(. | context) with the fixed concentrations conc[0..upto-1]."""
        p = self.uniform()
        for k in range(1, upto + 1):
            c = self.vector(k, suffix(full, k - 1))
            p = (c + conc[k - 1] * p) / (c.sum() + conc[k - 1])
        return p

    def base(self, full: tuple, plugin) -> np.ndarray:
        """m_u of the top order: the order n - 1 plug-in predictive (uniform for n = 1)."""
        return self.level(full, self.n - 1, plugin)

    def dirichlet(self, full: tuple, plugin, a) -> np.ndarray:
        """A_w = c_uw + a m_uw per draw of the top concentration: (draw, token)."""
        c = self.vector(self.n, suffix(full, self.n - 1))
        return c[None, :] + np.asarray(a, float)[:, None] * self.base(full, plugin)[None, :]

    def top(self, full: tuple, plugin, a) -> np.ndarray:
        """p(. | u, a_s) per draw: (draw, token)."""
        A = self.dirichlet(full, plugin, a)
        return A / A.sum(axis=1, keepdims=True)


def encode(vocab: Vocabulary, sentence: str) -> list[int]:
    return [vocab.index.get(w, UNK) for w in sentence.split()]


def events(vocab: Vocabulary, sentences: list[str], n: int) -> list[tuple[tuple, int]]:
    """(context of n - 1 ids, token) of every scored position: tokens and one </s>, never <s>."""
    out = []
    for s in sentences:
        ids = [BOS] * (n - 1) + encode(vocab, s) + [EOS]
        for t in range(n - 1, len(ids)):
            out.append((tuple(ids[t - n + 1 : t]), ids[t]))
    return out


def top_draws(lm) -> np.ndarray:
    """Highest-order concentration draws, chain-major, read from the InferenceData."""
    post = lm.idata["posterior"]["concentration"].sel(order=lm.order)
    return np.asarray(post.transpose("chain", "draw").values, float).ravel()


def entropy_draw_index(S: int, k: int) -> np.ndarray:
    return np.linspace(0, S - 1, min(k, S)).round().astype(int)


# -------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def train_corpus():
    return Corpus.from_texts(TRAIN)


@pytest.fixture(scope="module")
def lm1(train_corpus):
    """A unigram model (its own fit: the order whose predictive has the plainest closed form)."""
    lm = DirichletLM(order=1, sampler_config={**QUICK, "random_seed": 11})
    lm.fit(train_corpus)
    return lm


@pytest.fixture(scope="module")
def lm3(dirichlet_lm):
    """The shared Dirichlet trigram of TRAIN (tests/conftest.py)."""
    return dirichlet_lm


@pytest.fixture(scope="module")
def ref1(lm1):
    return Ref(lm1.vocab_, TRAIN, 1)


@pytest.fixture(scope="module")
def ref3(lm3):
    return Ref(lm3.vocab_, TRAIN, 3)


def contexts_to_check(ref: Ref) -> list[tuple]:
    """Every seen top-order context plus unseen ones (partly and wholly unseen)."""
    seen = sorted(ref.ctx[ref.n])
    w = ref.vocab.index
    extra = [(w["red"], w["red"]), (UNK, UNK), (BOS, UNK), (w["mat"], BOS), (UNK, w["the"])]
    unseen = [u for u in extra if u not in ref.ctx[ref.n]]
    assert unseen, "the test needs unseen contexts"
    return seen + unseen


# ------------------------------------------------------------------- 1. unigram model
def test_unigram_posterior_predictive_closed_form(lm1, ref1):
    V = len(lm1.vocab_)
    assert V == len(set(" ".join(TRAIN).split())) + 3
    V1 = V - 1
    c = np.zeros(V)
    for s in TRAIN:  # token counts plus one </s> per sentence
        for w in s.split():
            c[lm1.vocab_.index[w]] += 1
        c[EOS] += 1
    N = c.sum()
    assert N == sum(len(s.split()) + 1 for s in TRAIN)
    a = top_draws(lm1)
    assert a.size == QUICK["chains"] * QUICK["draws"]
    expected = ((c[None, :] + a[:, None] / V1) / (N + a[:, None])).mean(axis=0)
    expected[BOS] = 0.0

    probs = lm1.next_token_probs(np.zeros((1, 0), dtype=int))
    assert probs.shape == (a.size, 1, V)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(probs[:, :, BOS] == 0.0)
    np.testing.assert_allclose(probs.mean(axis=0)[0], expected, rtol=1e-12)

    # the predictive log probability of held-out tokens is the log of the same mixture
    test_ev = events(lm1.vocab_, TEST, 1)
    lp = lm1.predictive_log_prob(TEST)
    np.testing.assert_allclose(lp, np.log([expected[w] for _, w in test_ev]), rtol=1e-12)


# -------------------------------------------------------------- 2. higher orders
@pytest.mark.parametrize("which", ["lm1", "lm3"])
def test_next_token_probs_equal_dense_recursion(which, request):
    lm = request.getfixturevalue(which)
    ref = request.getfixturevalue("ref1" if which == "lm1" else "ref3")
    a = top_draws(lm)
    contexts = contexts_to_check(ref) if lm.order > 1 else [()]
    matrix = np.array(contexts, dtype=np.int64).reshape(len(contexts), lm.order - 1)
    got = lm.next_token_probs(matrix)
    assert got.shape == (a.size, len(contexts), len(lm.vocab_))
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(got[..., BOS] == 0.0)
    for i, u in enumerate(contexts):
        np.testing.assert_allclose(got[:, i, :], ref.top(u, lm.plugin_, a), rtol=1e-10, atol=1e-15)


def test_order2_model_matches_recursion(train_corpus):
    lm = DirichletLM(order=2, sampler_config={**QUICK, "random_seed": 5})
    lm.fit(train_corpus)
    ref = Ref(lm.vocab_, TRAIN, 2)
    a = top_draws(lm)
    contexts = [(BOS,), (UNK,)] + [(lm.vocab_.index[w],) for w in WORDS]
    got = lm.next_token_probs(np.array(contexts))
    for i, u in enumerate(contexts):
        np.testing.assert_allclose(got[:, i, :], ref.top(u, lm.plugin_, a), rtol=1e-10, atol=1e-15)
    # a subset of draws: an int takes evenly spaced ones, an array those samples
    idx = entropy_draw_index(a.size, 7)
    np.testing.assert_allclose(lm.next_token_probs(np.array(contexts), draws=7), got[idx], rtol=1e-14)
    np.testing.assert_allclose(lm.next_token_probs(np.array(contexts), draws=[3, 0]), got[[3, 0]], rtol=1e-14)


def test_token_log_prob_per_draw_equals_recursion(lm3, ref3):
    a = top_draws(lm3)
    tlp = lm3.token_log_prob(TEST)
    assert tlp.dims == ("chain", "draw", "position")
    flat = tlp.values.reshape(a.size, -1)
    test_ev = events(lm3.vocab_, TEST, 3)
    assert flat.shape[1] == len(test_ev)
    expected = np.stack([np.log(ref3.top(u, lm3.plugin_, a)[:, w]) for u, w in test_ev], axis=1)
    np.testing.assert_allclose(flat, expected, rtol=1e-10)


def test_plugin_concentrations_are_modes(lm3):
    """Each lower order's plug-in concentration maximises prior x evidence in log a."""
    from scipy.stats import lognorm

    assert lm3.plugin_.shape == (3,)
    for k in (1, 2):
        a_hat = lm3.plugin_[k - 1]
        grid = a_hat * np.exp(np.array([-0.2, 0.0, 0.2]))
        # posterior density of t = log a: evidence + log prior(a) + log a
        dens = lm3.log_evidence(k, grid) + lognorm(s=3.0, scale=np.exp(2.0)).logpdf(grid) + np.log(grid)
        assert dens[1] >= dens[0] and dens[1] >= dens[2]


# ---------------------------------------------------------------------- 4. estimates
def test_estimate_add_k_map_and_mle(lm3, ref3):
    V1 = len(lm3.vocab_) - 1
    vocab = lm3.vocab_
    # the most frequent trigram whose context was not followed by every token
    (u, w), c_uw = next(((u, w), c) for (u, w), c in ref3.ngram[3].most_common()
                        if any(ref3.ngram[3][(u, t)] == 0 for t in range(3, len(vocab))))
    assert c_uw >= 2
    ctx_tokens = [vocab.tokens[i] for i in u]
    token = vocab.tokens[w]
    c_u = ref3.ctx[3][u]
    for k in (1, 2, 3.5):
        got = lm3.estimate(token, ctx_tokens, kind="map", add_k=k)
        assert got == pytest.approx((c_uw + k - 1) / (c_u + V1 * (k - 1)), rel=1e-12)
    assert lm3.estimate(token, ctx_tokens, kind="mle") == pytest.approx(c_uw / c_u, rel=1e-12)
    # a token never seen after the context: MLE 0, add-one 1 / (c_u + V')
    unseen_w = next(t for t in range(3, len(vocab)) if ref3.ngram[3][(u, t)] == 0)
    assert lm3.estimate(vocab.tokens[unseen_w], ctx_tokens, kind="mle") == 0.0
    assert lm3.estimate(vocab.tokens[unseen_w], ctx_tokens, kind="map", add_k=2) == pytest.approx(1 / (c_u + V1))
    # a context given as text is tokenised and left-padded with <s>
    first = TRAIN[0].split()[0]
    c_first = ref3.ngram[3][((BOS, BOS), vocab.index[first])]
    n_sent = ref3.ctx[3][(BOS, BOS)]
    assert n_sent == len(TRAIN)
    assert lm3.estimate(first, "", kind="mle") == pytest.approx(c_first / n_sent)
    # mean: the posterior predictive
    a = top_draws(lm3)
    assert lm3.estimate(token, ctx_tokens, kind="mean") == pytest.approx(ref3.top(u, lm3.plugin_, a)[:, w].mean(), rel=1e-10)


def test_estimate_errors(lm3, ref3):
    vocab = lm3.vocab_
    unseen = ["red", "red"] if (vocab.index["red"],) * 2 not in ref3.ctx[3] else ["zebra", "qux"]
    assert tuple(vocab.id(t) for t in unseen) not in ref3.ctx[3]
    with pytest.raises(BayesLMError, match="never seen"):
        lm3.estimate("the", unseen, kind="mle")
    # add-k smoothing still defines it: 1 / V' for add-one
    assert lm3.estimate("the", unseen, kind="map", add_k=2) == pytest.approx(1 / (len(vocab) - 1))
    with pytest.raises(BayesLMError, match="add_k"):
        lm3.estimate("the", ["the", "cat"], kind="map", add_k=0.5)
    with pytest.raises(ConfigError, match="kind must be 'mle', 'map' or 'mean', got 'median'"):
        lm3.estimate("the", ["the", "cat"], kind="median")


def test_estimate_map_of_fitted_dirichlet(lm3, ref3):
    """Without add_k: the mode (A_w - 1) / (A - V') of Dirichlet(A), a at the draw nearest its mean."""
    draws = top_draws(lm3)
    a0 = draws[np.argmin(np.abs(draws - draws.mean()))][None]
    V1 = len(lm3.vocab_) - 1
    checked = 0
    for u in contexts_to_check(ref3)[:12]:
        A = ref3.dirichlet(u, lm3.plugin_, a0)[0]
        A_ = np.delete(A, BOS)
        ctx_tokens = [lm3.vocab_.tokens[i] for i in u]
        if np.all(A_ > 1):
            got = lm3.estimate("the", ctx_tokens, kind="map")
            assert got == pytest.approx((A[lm3.vocab_.index["the"]] - 1) / (A_.sum() - V1), rel=1e-10)
            checked += 1
        else:
            with pytest.raises(BayesLMError, match="no interior mode"):
                lm3.estimate("the", ctx_tokens, kind="map")
    assert checked  # this data set's top concentration makes some modes exist


def test_estimate_map_without_interior_mode():
    """Deterministic text: a small top concentration, so a m_w < 1 for unseen tokens."""
    text = ["a b c d e"] * 12 + ["e d c b a"] * 12
    lm = DirichletLM(order=2, sampler_config={**QUICK, "random_seed": 8})
    lm.fit(Corpus.from_texts(text))
    ref = Ref(lm.vocab_, text, 2)
    a0 = top_draws(lm)[:1]
    A = np.delete(ref.dirichlet((lm.vocab_.index["b"],), lm.plugin_, a0)[0], BOS)
    assert np.any(A <= 1)
    with pytest.raises(BayesLMError, match="no interior mode"):
        lm.estimate("c", ["b"], kind="map")
    # add-k still works, and the mean is the deterministic transition's posterior mean
    assert lm.estimate("c", ["b"], kind="map", add_k=1) == pytest.approx(12 / 24)
    assert lm.estimate("c", ["b"], kind="mean") == pytest.approx(
        ref.top((lm.vocab_.index["b"],), lm.plugin_, top_draws(lm))[:, lm.vocab_.index["c"]].mean(), rel=1e-10)


# ------------------------------------------------------------------- 5. log evidence
def polya_log_evidence(ref: Ref, k: int, a: float, plugin) -> float:
    """log p(order-k events | a) as sequential Polya-urn predictives, in corpus order."""
    seen_uw, seen_u, bases = Counter(), Counter(), {}
    total = 0.0
    for full, w in ref.events:
        u = suffix(full, k - 1)
        if u not in bases:
            bases[u] = ref.level(u, k - 1, plugin) if k > 1 else ref.uniform()
        total += math.log((seen_uw[(u, w)] + a * bases[u][w]) / (seen_u[u] + a))
        seen_uw[(u, w)] += 1
        seen_u[u] += 1
    return total


def dm_log_evidence(ref: Ref, k: int, a: float, plugin) -> float:
    """The same through bayeslm.dirichlet.dirichlet_multinomial_evidence over dense counts."""
    contexts = sorted(ref.ctx[k])
    keep = np.arange(ref.V) != BOS  # <s> has base 0 and count 0: not a category
    counts = np.stack([ref.vector(k, u)[keep] for u in contexts])
    alpha = np.stack([(ref.level(u, k - 1, plugin) if k > 1 else ref.uniform())[keep] for u in contexts]) * a
    return dirichlet_multinomial_evidence(counts, alpha)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_log_evidence_equals_brute_force(lm3, ref3, k):
    moderate = [0.05, 1.0, 7.3, 250.0, 1e4]
    got = lm3.log_evidence(k, moderate)
    for a, value in zip(moderate, got):
        polya = polya_log_evidence(ref3, k, a, lm3.plugin_)
        assert value == pytest.approx(polya, rel=1e-9)
        assert dm_log_evidence(ref3, k, a, lm3.plugin_) == pytest.approx(polya, rel=1e-9)
    # huge concentrations: lgamma differences would cancel; the urn stays exact
    huge = [1e8, 1e15, 1e40]
    got = lm3.log_evidence(k, huge)
    for a, value in zip(huge, got):
        assert value == pytest.approx(polya_log_evidence(ref3, k, a, lm3.plugin_), rel=1e-9)
    # as a grows the evidence tends to the likelihood of the fixed base, never above it
    limit = sum(math.log((ref3.level(suffix(u, k - 1), k - 1, lm3.plugin_) if k > 1 else ref3.uniform())[w])
                for u, w in ref3.events)
    assert got[-1] == pytest.approx(limit, rel=1e-9)


@pytest.mark.parametrize("log_a", [np.log([0.5, 3.0, 30.0]), np.log([1e3, 2e5, 1e7]), np.log([1e14, 1e9, 1e20])])
def test_model_gradient_matches_finite_differences(lm3, log_a):
    """The PyMC model's log density (prior + evidence, in log a) and its gradient agree."""
    model = lm3.model
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    name = model.rvs_to_values[model["concentration"]].name
    assert name == "concentration_log__"
    point = {name: log_a}
    value = logp(point)
    # the evidence part equals log_evidence; the rest is the LogNormal(2, 3) prior in log a
    from scipy.stats import norm

    evidence = sum(lm3.log_evidence(k, np.exp(log_a[k - 1]))[0] for k in (1, 2, 3))
    assert value == pytest.approx(evidence + norm(2.0, 3.0).logpdf(log_a).sum(), rel=1e-9)
    grad = dlogp(point)
    h = 1e-5
    for i in range(3):
        up, down = log_a.copy(), log_a.copy()
        up[i] += h
        down[i] -= h
        numeric = (logp({name: up}) - logp({name: down})) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("base", [(1 / 3, 1 / 3, 1 / 3), (0.5, 0.3, 0.2)])
@pytest.mark.parametrize("a", [0.3, 2.0, 150.0, 1e6])
def test_evidence_sums_to_one_over_all_sequences(base, a):
    m = np.array(base)
    L = 6
    dm_total = polya_total = kernel_total = 0.0
    for seq in itertools.product(range(3), repeat=L):
        counts = np.bincount(seq, minlength=3).astype(float)
        dm = dirichlet_multinomial_evidence(counts[None, :], a * m[None, :])
        polya, seen = 0.0, np.zeros(3)
        for n_so_far, w in enumerate(seq):
            polya += math.log((seen[w] + a * m[w]) / (n_so_far + a))
            seen[w] += 1
        assert dm == pytest.approx(polya, rel=1e-9, abs=1e-9)
        dm_total += math.exp(dm)
        polya_total += math.exp(polya)
    # the plain-lgamma reference formula loses ~1e-9 at a = 1e6; the urn does not
    assert dm_total == pytest.approx(1.0, rel=1e-10 if a < 1e4 else 1e-8)
    assert polya_total == pytest.approx(1.0, rel=1e-10)

    # the model's evidence kernel, also past its small-count shortcut (counts > 8):
    # sum over count vectors of (multinomial coefficient) x p(one sequence)
    for L in (6, 12):
        kernel_total = 0.0
        for c0 in range(L + 1):
            for c1 in range(L + 1 - c0):
                c = np.array([c0, c1, L - c0 - c1])
                nz = c > 0
                stats = SimpleNamespace(context_total=np.array([L]), ngram_count=c[nz])
                logp = OrderEvidence(stats, m[nz]).logp(a)[0]
                assert logp == pytest.approx(dirichlet_multinomial_evidence(c[None], a * m[None]), rel=1e-9, abs=1e-9)
                log_coef = gammaln(L + 1) - gammaln(c + 1).sum()
                kernel_total += math.exp(log_coef + logp)
        assert kernel_total == pytest.approx(1.0, rel=1e-10)


# --------------------------------------------------------------- 6. entropy split
def test_entropy_split_equals_dense_computation(lm3, ref3, monkeypatch):
    a = top_draws(lm3)
    idx = entropy_draw_index(a.size, lm3.options["entropy_draws"])
    assert idx.size == 16
    test_ev = events(lm3.vocab_, TEST, 3)
    split = lm3.entropy_split(TEST)
    assert list(split.columns) == ["total", "aleatoric", "epistemic"]
    assert len(split) == len(test_ev)
    total, aleatoric = [], []
    for u, _ in test_ev:
        p_bar = ref3.top(u, lm3.plugin_, a).mean(axis=0)
        total.append(entr(p_bar).sum())
        aleatoric.append(expected_entropy(ref3.dirichlet(u, lm3.plugin_, a[idx])).mean())
    np.testing.assert_allclose(split["total"], total, rtol=1e-6)
    np.testing.assert_allclose(split["aleatoric"], aleatoric, rtol=1e-6)
    np.testing.assert_allclose(split["epistemic"], np.maximum(np.array(total) - aleatoric, 0), rtol=1e-5, atol=1e-9)
    assert np.all(split["epistemic"] >= 0)
    assert np.all(split["aleatoric"] <= split["total"] + 1e-9)

    # the vocabulary sums in passes of a few seen tokens each (as on large models) give the same split
    from bayeslm.ngram.backoff import Backoff

    monkeypatch.setattr(Backoff, "vocab_sum_rows", 3)
    np.testing.assert_allclose(lm3.entropy_split(TEST).to_numpy(), split.to_numpy(), rtol=1e-12, atol=1e-15)

    # the Dirichlet parameters the model reports are the same A_w
    contexts = np.array(sorted({u for u, _ in test_ev}))
    A = lm3.dirichlet_parameters(contexts, draws=idx)
    for i, u in enumerate(contexts):
        np.testing.assert_allclose(A[:, i, :], ref3.dirichlet(tuple(u), lm3.plugin_, a[idx]), rtol=1e-10, atol=1e-14)


def test_unigram_entropy_split_equals_dense_computation(lm1, ref1):
    a = top_draws(lm1)
    idx = entropy_draw_index(a.size, lm1.options["entropy_draws"])
    split = lm1.entropy_split(TEST)
    p_bar = ref1.top((), lm1.plugin_, a).mean(axis=0)
    np.testing.assert_allclose(split["total"], entr(p_bar).sum(), rtol=1e-9)
    np.testing.assert_allclose(split["aleatoric"], expected_entropy(ref1.dirichlet((), lm1.plugin_, a[idx])).mean(), rtol=1e-9)


def test_expected_entropy_monte_carlo(lm3, ref3):
    """The closed form agrees with entropies of numpy Dirichlet draws (one seen context)."""
    rng = np.random.default_rng(7)
    u = ref3.ctx[3].most_common(1)[0][0]
    a = top_draws(lm3)
    idx = entropy_draw_index(a.size, lm3.options["entropy_draws"])
    A = ref3.dirichlet(u, lm3.plugin_, a[idx])
    A = A[:, A[0] > 0]  # <s> is not a category
    samples = np.concatenate([entr(rng.dirichlet(row, size=4000)).sum(axis=1) for row in A])
    closed = expected_entropy(A).mean()
    se = samples.std() / math.sqrt(samples.size)
    assert abs(samples.mean() - closed) < 4 * se
    assert se < 0.01  # the check has power


# -------------------------------------------------------------------------- 7. prob
def test_prob_mean_and_interval(lm3, ref3):
    rng = np.random.default_rng(3)
    vocab = lm3.vocab_
    (u, w), _ = ref3.ngram[3].most_common(1)[0]
    ctx_tokens = [vocab.tokens[i] for i in u]
    token = vocab.tokens[w]
    out = lm3.prob(token, ctx_tokens)
    assert out["token"] == token and out["interval_prob"] == 0.94
    a = top_draws(lm3)
    assert out["mean"] == pytest.approx(lm3.estimate(token, ctx_tokens, kind="mean"), rel=1e-12)
    assert out["mean"] == pytest.approx(ref3.top(u, lm3.plugin_, a)[:, w].mean(), rel=1e-10)
    assert out["low"] < out["mean"] < out["high"]

    # Monte Carlo of the Beta mixture over the evenly spaced draws: the interval holds 94% of
    # it, and it is the shortest that does (the HDI of this unimodal mixture)
    idx = entropy_draw_index(a.size, lm3.options["entropy_draws"])
    A = ref3.dirichlet(u, lm3.plugin_, a[idx])
    n = 20000
    samples = np.concatenate([rng.beta(row[w], row.sum() - row[w], size=n) for row in A])
    tol = 4 * math.sqrt(0.94 * 0.06 / samples.size)
    assert abs(np.mean((samples >= out["low"]) & (samples <= out["high"])) - 0.94) < tol
    low, high = shortest_interval(samples, 0.94)
    width = out["high"] - out["low"]
    assert abs(low - out["low"]) < 0.02 * width and abs(high - out["high"]) < 0.02 * width
    equal_tailed = np.quantile(samples, [0.03, 0.97])
    assert width < equal_tailed[1] - equal_tailed[0]  # skewed: the HDI is not the central interval

    wide = lm3.prob(token, ctx_tokens, hdi_prob=0.5)
    assert out["low"] < wide["low"] < wide["high"] < out["high"]


# --------------------------------------------------------------------- 8. recovery
def simulate_unigram(rng, a: float, n_words: int = 30, min_events: int = 3000):
    """Order-1 data from the model: p ~ Dirichlet(a / V'), events iid until the first </s>
    after ``min_events`` (a stopping rule on observed data leaves the likelihood alone).

    Returns (corpus, all_seen): the model's vocabulary is the observed types, so the
    simulation matches the model only when every category was observed.
    """
    vocab = Vocabulary([f"w{i:02d}" for i in range(n_words)])
    predictable = np.array([i for i in range(len(vocab)) if i != BOS])
    p = rng.dirichlet(np.full(predictable.size, a / predictable.size))
    ev = rng.choice(predictable, size=min_events, p=p)
    while ev[-1] != EOS:
        more = rng.choice(predictable, size=1000, p=p)
        stop = np.flatnonzero(more == EOS)
        ev = np.concatenate([ev, more[: stop[0] + 1] if stop.size else more])
        if ev.size > 200_000:
            return None, False
    eos_at = np.flatnonzero(ev == EOS)
    offsets = np.concatenate([[0], eos_at - np.arange(eos_at.size)])
    corpus = Corpus(ev[ev != EOS], offsets, vocab)
    all_seen = bool(np.all(np.bincount(ev, minlength=len(vocab))[predictable] > 0))
    return corpus, all_seen


def test_recovers_unigram_concentration():
    import arviz as az

    a_true = 50.0
    corpus, all_seen = simulate_unigram(np.random.default_rng(20240601), a_true)
    assert all_seen and corpus.n_tokens >= 2900
    lm = DirichletLM(order=1, sampler_config={**RECOVERY, "random_seed": 2})
    lm.fit(corpus)
    assert len(lm.vocab_) == 33
    draws = top_draws(lm)
    low, high = az.hdi(draws, hdi_prob=0.94)
    assert low <= a_true <= high
    assert high / low < 4  # informative, not just wide

    # with every A_w > 1 the posterior Dirichlet has a mode: (A_w - 1) / (A - V')
    V1 = len(lm.vocab_) - 1
    c = np.bincount(lm.encode(corpus).ids, minlength=len(lm.vocab_)).astype(float)
    c[EOS] = corpus.n_sentences
    a_mid = draws[np.argmin(np.abs(draws - draws.mean()))]  # the draw estimate() uses
    A = np.delete(c + a_mid / V1, BOS)
    assert np.all(A > 1)
    w = lm.vocab_.index["w00"]
    expected = (c[w] + a_mid / V1 - 1) / (A.sum() - V1)
    assert lm.estimate("w00", kind="map") == pytest.approx(expected, rel=1e-10)


def calibration_replicates(replicates: int, seed: int, thin: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Simulation-based calibration of the unigram concentration: a drawn from its prior,
    data from the model given a, the posterior of a from that data; ``replicates`` times.

    Returns the true a of each replicate (replicate,) and its posterior draws, thinned to
    nearly independent ones (replicate, CALIBRATION draws / thin).
    """
    mu, sigma = math.log(100.0), 0.4
    prior = Prior("LogNormal", mu=mu, sigma=sigma)
    rng = np.random.default_rng(seed)
    truths, draws = [], []
    while len(truths) < replicates:
        a_true = float(rng.lognormal(mu, sigma))
        corpus, all_seen = simulate_unigram(rng, a_true)
        if not all_seen:
            continue  # rare at these concentrations; the model's vocabulary would differ
        lm = DirichletLM(order=1, model_config={"concentration": prior},
                         sampler_config={**CALIBRATION, "random_seed": len(truths)})
        lm.fit(corpus)
        truths.append(a_true)
        draws.append(top_draws(lm)[::thin])
    return np.array(truths), np.array(draws)


def normalised_ranks(truths: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """(rank + 1/2) / (L + 1) of each truth among its L draws: uniform on (0, 1) (on L + 1
    values) when the posterior is calibrated."""
    return ((draws < truths[:, None]).sum(axis=1) + 0.5) / (draws.shape[1] + 1)


def rank_z_scores(truths: np.ndarray, draws: np.ndarray) -> tuple[float, float]:
    """z-scores of the normalised ranks' mean (1/2; off for a shifted posterior) and of their
    mean distance from 1/2 (1/4; above for too narrow a posterior, below for too wide)."""
    u, n = normalised_ranks(truths, draws), truths.size
    return (u.mean() - 0.5) / math.sqrt(1 / 12 / n), (np.abs(u - 0.5).mean() - 0.25) / math.sqrt(1 / 48 / n)


def assert_calibrated(truths: np.ndarray, draws: np.ndarray) -> None:
    """Ranks uniform (both z-scores within 3), and central posterior intervals covering the
    truths at their rate (read from the ranks: the truth lies inside the central interval of
    mass ``level`` of the draws)."""
    from scipy.stats import binom

    z_shift, z_spread = rank_z_scores(truths, draws)
    assert abs(z_shift) < 3 and abs(z_spread) < 3, (z_shift, z_spread)
    u, n = normalised_ranks(truths, draws), truths.size
    grid = (np.arange(draws.shape[1] + 1) + 0.5) / (draws.shape[1] + 1)  # the values u takes, equally likely
    for level in (0.5, 0.9):
        inside = lambda v: np.abs(v - 0.5) <= level / 2
        rate, hits = inside(grid).mean(), int(inside(u).sum())
        assert binom.ppf(0.0005, n, rate) <= hits <= binom.ppf(0.9995, n, rate), (level, rate, hits)


def test_simulation_based_calibration():
    """100 replicates: the posterior of a is calibrated, and the check has power at this size:
    a concentration 15% off either way, or a posterior half as wide, fails it."""
    truths, draws = calibration_replicates(100, seed=99)
    assert_calibrated(truths, draws)
    for wrong in (draws * 1.15, draws / 1.15):
        assert abs(rank_z_scores(truths, wrong)[0]) > 3
    centre = draws.mean(axis=1, keepdims=True)
    assert rank_z_scores(truths, centre + 0.5 * (draws - centre))[1] > 3


@pytest.mark.slow
def test_simulation_based_calibration_at_scale():
    """400 replicates (a few minutes): a miscalibration of a few per cent shows."""
    assert_calibrated(*calibration_replicates(400, seed=7))


# ------------------------------------------------------------------------ 9. update
def test_update_counts_equal_concatenated_corpus():
    first = markov_sentences(4, 30)
    second = markov_sentences(5, 20) + ["zebra the cat", "qux qux"]
    lm = DirichletLM(order=2, sampler_config={**QUICK, "random_seed": 3})
    lm.fit(Corpus.from_texts(first))
    vocab_before = list(lm.vocab_.tokens)
    old_posterior = lm.idata["posterior"]["concentration"].values.copy()
    lm.update(Corpus.from_texts(second))
    assert lm.vocab_.tokens == vocab_before  # new words count as <unk>

    both = lm.encode(first + second)
    fresh = count(both, 2)
    for k in (1, 2):
        np.testing.assert_array_equal(lm.counts_[k].ngram_key, fresh[k].ngram_key)
        np.testing.assert_array_equal(lm.counts_[k].ngram_count, fresh[k].ngram_count)
        np.testing.assert_array_equal(lm.counts_[k].context_key, fresh[k].context_key)
    # and both equal plain counting of the padded sentences
    ref = Ref(lm.vocab_, first + second, 2)
    for k in (1, 2):
        got = {tuple(int(x) for x in row): int(c)
               for row, c in zip(lm.counts_.ngram_tokens(k), lm.counts_[k].ngram_count)}
        assert got == {(*u, w): c for (u, w), c in ref.ngram[k].items()}
    assert ref.ngram[1][((), UNK)] >= 3  # zebra, qux, qux

    attrs = lm.idata["posterior"].attrs
    assert attrs["training_tokens"] == sum(len(s.split()) for s in first + second)
    assert attrs["training_sentences"] == len(first) + len(second)
    assert lm.idata["posterior"]["concentration"].values.shape == old_posterior.shape
    assert not np.array_equal(lm.idata["posterior"]["concentration"].values, old_posterior)
    # the refitted model predicts from the merged counts
    a = top_draws(lm)
    got = lm.next_token_probs(np.array([[lm.vocab_.index["the"]]]))[:, 0, :]
    np.testing.assert_allclose(got, ref.top((lm.vocab_.index["the"],), lm.plugin_, a), rtol=1e-10)


# ---------------------------------------------------------------------- 11. errors
@pytest.mark.parametrize("order", [0, -1, 1.5])
def test_bad_order(order):
    with pytest.raises(ConfigError, match="order"):
        DirichletLM(order=order)


def test_bad_prior_and_settings(train_corpus):
    # priors are checked against PyMC by validate (fit calls it before any work)
    with pytest.raises(ConfigError, match=r"Gamma\(alpha=-1, beta=1\) is not a valid distribution: it needs alpha > 0"):
        Prior("Gamma", alpha=-1, beta=1).validate()
    with pytest.raises(ConfigError, match=r"prior.dist must be a PyMC distribution \(got 'NoSuchDistribution'\)"):
        Prior("NoSuchDistribution", mu=1).validate()
    with pytest.raises(ConfigError, match=r"Gamma\(alpha=-1, beta=1\) is not a valid distribution"):
        bad = {"concentration": {"dist": "Gamma", "kwargs": {"alpha": -1, "beta": 1}}}
        DirichletLM(model_config=bad).fit(train_corpus)
    with pytest.raises(ConfigError, match="unknown prior"):
        DirichletLM(model_config={"smoothing": {"dist": "Gamma", "kwargs": {"alpha": 1, "beta": 1}}})
    with pytest.raises(ConfigError, match="sampler setting"):
        DirichletLM(sampler_config={"draw": 100})
    with pytest.raises(ConfigError, match="option"):
        DirichletLM(smoothing="kneser-ney")
    with pytest.raises(ConfigError, match="entropy_draws"):
        DirichletLM(entropy_draws=0)
    with pytest.raises(ConfigError, match="min_count"):
        DirichletLM(min_count=0)
    assert issubclass(ConfigError, ValueError)
    # a valid non-default prior is kept
    lm = DirichletLM(model_config={"concentration": Prior("Gamma", alpha=2, beta=0.1)})
    assert lm.model_config["concentration"] == Prior("Gamma", alpha=2.0, beta=0.1)


def test_unknown_sampler_setting_at_fit(train_corpus):
    lm = DirichletLM(order=1)
    with pytest.raises(ConfigError, match="sampler setting"):
        lm.fit(train_corpus, n_draws=10)
    assert not lm.is_fitted_


def test_context_errors(lm3):
    with pytest.raises(BayesLMError, match="shape"):
        lm3.next_token_probs(np.zeros((1, 1), dtype=int))
    with pytest.raises(BayesLMError, match="outside"):
        lm3.next_token_probs(np.array([[0, len(lm3.vocab_)]]))


def test_string_context_reads_literal_sentence_start(lm3):
    """'<s>' in a text context is the sentence start, not the characters <, s, >."""
    as_text = lm3.prob(lm3.vocab_.tokens[3], "<s>")["mean"]
    as_tokens = lm3.prob(lm3.vocab_.tokens[3], ["<s>"])["mean"]
    assert as_text == pytest.approx(as_tokens, rel=1e-12)


def test_failed_fit_leaves_the_model_unfitted(monkeypatch):
    import pymc as pm

    def crashes(*args, **kwargs):
        raise RuntimeError("the sampler crashed")

    monkeypatch.setattr(pm, "sample", crashes)
    train = Corpus.from_texts(["a b c", "a b b", "c a b"], tokenizer=WhitespaceTokenizer())
    lm = DirichletLM(order=2, tokenizer="whitespace")
    with pytest.raises(RuntimeError, match="the sampler crashed"):
        lm.fit(train, valid=train, **QUICK)
    assert not lm.is_fitted_
    with pytest.raises(NotFittedError, match="DirichletLM instance is not fitted yet: call fit"):
        lm.evaluate(train)
