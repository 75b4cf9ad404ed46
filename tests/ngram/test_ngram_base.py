"""What the two n-gram families share (NgramLM): the same answers where their models coincide,
the HDI of ``prob``, sentences drawn from the model, and a configuration (``id``) that
fitting does not change.

Reference values come from plain Python counts over the padded sentences (Counter) and
from scipy's Beta distribution; nothing is copied from the implementation's output.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from corpora import markov_sentences
from ngram_samples import shortest_interval
from sampling import QUICK
from scipy import stats
from scipy.special import betainc, betaincinv

import bayeslm as blm
from bayeslm import BPETokenizer, Corpus, DirichletLM, PitmanYorLM, load
from bayeslm.core.protocol import ExportsArpa, SamplesSentences
from bayeslm.exceptions import BayesLMError
from bayeslm.ngram.beta_mixture import beta_mixture_hdi

A3 = 0.8  # the top concentration / strength both families share below


def unique_bigram_sentences(seed: int, n_sentences: int = 30, n_words: int = 40) -> list[str]:
    """Sentences in which every bigram type, ``<s> w`` and ``w </s>`` included, occurs once."""
    rng = np.random.default_rng(seed)
    words = ["".join(pair) for pair in itertools.product("abcdefgh", repeat=2)][:n_words]  # one word token each
    seen, lines = set(), []
    while len(lines) < n_sentences:
        sentence = [str(w) for w in rng.choice(words, size=int(rng.integers(1, 7)))]
        grams = list(zip(["<s>", *sentence], [*sentence, "</s>"]))
        if len(set(grams)) == len(grams) and not seen & set(grams):
            seen |= set(grams)
            lines.append(" ".join(sentence))
    return lines


LINES = unique_bigram_sentences(0)
TEST = unique_bigram_sentences(1, n_sentences=8) + ["ab ac ad", "zzz ae"]


class Reference:
    """The trigram predictive with fixed concentrations (a1, a2, a3), from Counter counts:

    P_1(w) = (c(w) + a1 / V') / (N + a1) (0 for <s>), P_k(w | u) = (c(u w) + a_k P_{k-1}(w | u'))
    / (c(u) + a_k), an unseen context passing the order below through; and the Dirichlet
    A_w = c(u w) + a3 P_2(w | u') of p(. | u) given a3."""

    def __init__(self, lines, vocab, a):
        self.vocab, self.a, self.V = vocab, a, len(vocab)
        self.c = {k: Counter() for k in (1, 2, 3)}
        self.C = {k: Counter() for k in (1, 2, 3)}
        for line in lines:
            ids = [vocab.bos_id] * 2 + [vocab.id(t) for t in line.split()] + [vocab.eos_id]
            for t in range(2, len(ids)):
                for k in (1, 2, 3):
                    u = tuple(ids[t - k + 1:t])
                    self.c[k][(u, ids[t])] += 1
                    self.C[k][u] += 1

    def level(self, k: int, u: tuple) -> np.ndarray:
        if k == 0:
            p = np.full(self.V, 1.0 / (self.V - 1))
            p[self.vocab.bos_id] = 0.0
            return p
        lower = self.level(k - 1, u[1:])
        ctx = u[len(u) - (k - 1):] if k > 1 else ()
        if self.C[k][ctx] == 0:
            return lower
        counts = np.array([self.c[k][(ctx, w)] for w in range(self.V)], dtype=float)
        return (counts + self.a[k - 1] * lower) / (self.C[k][ctx] + self.a[k - 1])

    def dirichlet(self, u: tuple) -> np.ndarray:
        counts = np.array([self.c[3][(u, w)] for w in range(self.V)], dtype=float)
        return counts + self.a[2] * self.level(2, u[1:])


def context_ids(vocab, text: str) -> tuple:
    """The two-token context of a context string, by hand: ``<s>`` is the sentence start (the
    words are single word tokens)."""
    ids = [vocab.bos_id] * 2 + [vocab.bos_id if t == "<s>" else vocab.id(t) for t in text.replace("<s>", " <s> ").split()]
    return tuple(ids[-2:])


@pytest.fixture(scope="module")
def dirichlet(tmp_path_factory):
    """A Dirichlet trigram whose top concentration draws are all A3 (its lower orders are points).

    Its own fit: a corpus in which every bigram type occurs once, and draws set by hand."""
    lm = DirichletLM(order=3, sampler_config={**QUICK, "random_seed": 1})
    lm.fit(Corpus.from_texts(LINES))
    assert lm.counts_[2].ngram_count.max() == 1  # the corpus is what the comparison needs
    lm.idata["posterior"]["concentration"].values[..., 2] = A3
    return load(lm.save(tmp_path_factory.mktemp("dirichlet") / "model"))


@pytest.fixture(scope="module", params=["ikn", "gibbs"])
def pitman_yor(request, dirichlet):
    """Pitman-Yor with d = 0 and strengths (a1, a2, A3) (its own fit, of dirichlet's corpus): every bigram type once, so every
    restaurant below the top seats one customer per dish at one table, the unigram's customers
    are the raw counts, and (d = 0) the table counts do not enter the predictive."""
    a1, a2 = dirichlet.plugin_[:2]
    lm = PitmanYorLM(order=3, inference=request.param, discount=0.0, strength=[float(a1), float(a2), A3],
                     retain=2, sampler_config={**QUICK, "random_seed": 2})
    lm.fit(Corpus.from_texts(LINES))
    return lm


CONTEXTS = ["", "<s>", "<s> <s>", "<s> ad", "<s>ad", "ab ac", "zzz", "ab <s> ac"]


def test_both_families_agree_where_their_models_coincide(dirichlet, pitman_yor):
    """d = 0 and theta = (a1, a2, a3) make the Pitman-Yor predictive the Dirichlet LM's
    (docs of both families). What cannot agree: how many posterior samples each keeps
    (every draw vs retained seatings), so per-draw arrays are compared draw by draw; and the
    Pitman-Yor Dirichlet of an unseen context, mass (theta + d) / (1 - d), equals the
    Dirichlet LM's a only because d = 0."""
    assert dirichlet.vocab_ == pitman_yor.vocab_
    vocab = dirichlet.vocab_
    ref = Reference(LINES, vocab, [*dirichlet.plugin_[:2], A3])
    contexts = sorted({context_ids(vocab, text) for text in CONTEXTS} | set(ref.C[3]))
    ids = np.array(contexts)
    for lm in (dirichlet, pitman_yor):
        probs = lm.next_token_probs(ids)
        expected = np.array([ref.level(3, u) for u in contexts])
        np.testing.assert_allclose(probs, np.broadcast_to(expected, probs.shape), rtol=1e-12, atol=1e-15)
        A = lm.dirichlet_parameters(ids, draws=1)[0]
        np.testing.assert_allclose(A, [ref.dirichlet(u) for u in contexts], rtol=1e-12, atol=1e-15)
    split = [lm.context_entropy_split(ids) for lm in (dirichlet, pitman_yor)]
    np.testing.assert_allclose(split[0].to_numpy(), split[1].to_numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(split[0]["total"], [stats.entropy(ref.level(3, u)) for u in contexts], rtol=1e-7)
    text_split = [lm.entropy_split(TEST) for lm in (dirichlet, pitman_yor)]
    np.testing.assert_allclose(text_split[0].to_numpy(), text_split[1].to_numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(dirichlet.predictive_log_prob(TEST), pitman_yor.predictive_log_prob(TEST), rtol=1e-12)


@pytest.mark.parametrize("text", CONTEXTS)
def test_prob_reads_a_context_string_alike_in_both_families(text, dirichlet, pitman_yor):
    """A literal <s> is the sentence start (the word tokenizer would read <, s, >) in both
    families; the mean is the predictive and the interval the HDI of the (single) Beta marginal."""
    vocab = dirichlet.vocab_
    ref = Reference(LINES, vocab, [*dirichlet.plugin_[:2], A3])
    u = context_ids(vocab, text)
    A = ref.dirichlet(u)
    seen = [w for w in range(len(vocab)) if ref.c[3][(u, w)] > 0]
    for w in sorted({vocab.eos_id, vocab.id("bb"), *seen[:2]}):
        a, b = A[w], A.sum() - A[w]
        got = [lm.prob(vocab.tokens[w], text) for lm in (dirichlet, pitman_yor)]
        for out in got:
            assert out["mean"] == pytest.approx(ref.level(3, u)[w], rel=1e-12)
            assert (out["low"], out["high"]) == pytest.approx(single_beta_hdi(a, b, 0.94), rel=1e-6, abs=1e-12)
        assert got[0]["low"] == pytest.approx(got[1]["low"], rel=1e-9, abs=1e-15)
        assert got[0]["high"] == pytest.approx(got[1]["high"], rel=1e-9, abs=1e-15)


def single_beta_hdi(a: float, b: float, mass: float) -> tuple[float, float]:
    """HDI of Beta(a, b) in closed form at the ends (J-shaped densities), else from the two
    conditions that define it for a unimodal density: equal density at both ends, and the mass."""
    from scipy.optimize import brentq

    if a <= 1 and b >= 1:
        return 0.0, float(betaincinv(a, b, mass))
    if b <= 1 and a >= 1:
        return float(betaincinv(a, b, 1 - mass)), 1.0
    dist = stats.beta(a, b)
    # t: the mass below the interval; the density at its ends rises from 0 (a > 1) and falls to 0 (b > 1)
    gap = lambda t: dist.logpdf(dist.ppf(t)) - dist.logpdf(dist.ppf(t + mass))
    if gap(1e-300) >= 0:  # a barely above 1: the interval starts at 0 to double precision
        return 0.0, float(dist.ppf(mass))
    t = math.exp(brentq(lambda log_t: gap(math.exp(log_t)), math.log(1e-300), math.log(1 - mass - 1e-15),
                        xtol=1e-13, maxiter=500))
    return float(dist.ppf(t)), float(dist.ppf(t + mass))


@pytest.mark.parametrize("a, b", [(3.0, 7.0), (40.0, 2000.0), (0.5, 20.0), (0.01, 1e4), (20.0, 0.5), (2.5, 2.5)])
def test_beta_hdi_of_one_component_is_the_closed_form(a, b):
    low, high = beta_mixture_hdi([a], [b], 0.94)
    expected = single_beta_hdi(a, b, 0.94)
    assert (low, high) == pytest.approx(expected, rel=1e-6, abs=1e-300)
    assert betainc(a, b, high) - betainc(a, b, low) == pytest.approx(0.94, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_beta_mixture_hdi_is_the_shortest_interval_of_monte_carlo_draws(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(1.5, 30, 16)
    b = a * rng.uniform(5, 50) * rng.uniform(0.8, 1.2, 16)
    low, high = beta_mixture_hdi(a, b, 0.9)
    samples = np.concatenate([rng.beta(ai, bi, size=40_000) for ai, bi in zip(a, b)])
    mc_low, mc_high = shortest_interval(samples, 0.9)
    width = high - low
    assert abs(mc_low - low) < 0.02 * width and abs(mc_high - high) < 0.02 * width
    assert betainc(a, b, high).mean() - betainc(a, b, low).mean() == pytest.approx(0.9, rel=1e-9)
    central = np.quantile(samples, [0.05, 0.95])
    assert width < central[1] - central[0]  # right-skewed: the HDI is shorter than the central interval


def test_beta_mixture_hdi_refuses_bad_input():
    with pytest.raises(BayesLMError, match="hdi_prob"):
        beta_mixture_hdi([1.0], [2.0], 1.0)
    with pytest.raises(BayesLMError, match="parameters"):
        beta_mixture_hdi([1.0, 2.0], [-1.0, 2.0], 0.9)


# ---------------------------------------------------------------------------------- sentences
def total_variation(counts: np.ndarray, p: np.ndarray) -> float:
    return 0.5 * float(np.abs(counts / counts.sum() - p).sum())


def test_pitman_yor_sentences_follow_the_held_draws_next_token_distribution(pitman_yor_lm):
    lm, draw, n = pitman_yor_lm, 4, 20_000
    assert isinstance(lm, SamplesSentences) and isinstance(lm, ExportsArpa)
    V, bos, eos = len(lm.vocab_), lm.vocab_.bos_id, lm.vocab_.eos_id
    corpus = lm.sample_sentences(n, random_seed=5, draw=draw, max_tokens=2)
    lengths = corpus.sentence_lengths
    first = np.where(lengths > 0, corpus.ids[np.minimum(corpus.offsets[:-1], corpus.ids.size - 1)], eos)
    p_first = lm.next_token_probs(np.array([[bos, bos]]), draws=[draw])[0, 0]
    counts = np.bincount(first, minlength=V)
    assert counts[bos] == 0
    assert total_variation(counts, p_first) < 0.025
    keep = p_first > 0
    chi2 = stats.chisquare(counts[keep], n * p_first[keep])
    assert chi2.pvalue > 1e-3, chi2
    # the second token, given the commonest first one: the history moves on
    w1 = int(np.argmax(counts[:eos].tolist() + [0] + counts[eos + 1:].tolist()))
    rows = np.flatnonzero((first == w1) & (lengths > 0))
    second = np.where(lengths[rows] > 1, corpus.ids[np.minimum(corpus.offsets[rows] + 1, corpus.ids.size - 1)], eos)
    p_second = lm.next_token_probs(np.array([[bos, w1]]), draws=[draw])[0, 0]
    assert rows.size > 1000
    assert total_variation(np.bincount(second, minlength=V), p_second) < 4 * math.sqrt(V / rows.size)
    # a draw of another seating is another distribution (the check above has power)
    other = lm.next_token_probs(np.array([[bos, bos]]), draws=[0])[0, 0]
    assert total_variation(counts, other) > total_variation(counts, p_first)


def test_sampled_sentences_are_reproducible(pitman_yor_lm):
    one = pitman_yor_lm.sample_sentences(50, random_seed=11)
    again = pitman_yor_lm.sample_sentences(50, random_seed=11)
    other = pitman_yor_lm.sample_sentences(50, random_seed=12)
    np.testing.assert_array_equal(one.ids, again.ids)
    np.testing.assert_array_equal(one.offsets, again.offsets)
    assert not (one.ids.size == other.ids.size and np.array_equal(one.ids, other.ids))
    assert one.n_sentences == 50 and one.vocab == pitman_yor_lm.vocab_
    with pytest.raises(BayesLMError, match="draw must be in"):
        pitman_yor_lm.sample_sentences(2, draw=pitman_yor_lm.n_samples)


# ---------------------------------------------------------------------------------- id and fit
def test_id_does_not_change_across_fit(tmp_path, monkeypatch):
    """Neither buckets = "auto" (chosen on validation text) nor fit's sampler keywords change
    the configuration (nor its id): the choice is buckets_, the settings are recorded beside it."""
    lines = markov_sentences(2, 120)
    train, valid = Corpus.from_texts(lines[:100]), Corpus.from_texts(lines[100:])
    seen_fitted = []
    original = DirichletLM._fit
    monkeypatch.setattr(DirichletLM, "_fit", lambda self, *a: (seen_fitted.append(self.is_fitted_), original(self, *a))[1])
    lm = DirichletLM(order=2, buckets="auto", sampler_config={**QUICK, "draws": 40})
    before, config = lm.config_id, lm.get_config()
    lm.fit(train, valid=valid, draws=30, chains=1, random_seed=4)
    assert seen_fitted == [False]  # not marked fitted while validation text is encoded and the model fitted
    assert lm.config_id == before and lm.get_config() == config and lm.options["buckets"] == "auto"
    assert lm.sampler_config["draws"] == 40 and lm.fit_sampler_settings["draws"] == 30
    assert lm.idata["posterior"].sizes["draw"] == 30 and lm.idata["posterior"].attrs["config_id"] == before
    back = load(lm.save(tmp_path / "dirichlet"))
    assert back.config_id == before and back.buckets_ == lm.buckets_ and back.fit_sampler_settings["draws"] == 30
    py = PitmanYorLM(order=2, inference="ikn", retain=2, sampler_config={"progressbar": False})
    before = py.config_id
    py.fit(train, draws=12, tune=10, chains=1, random_seed=4)
    assert py.config_id == before and py.sampler_config["draws"] == 1000 and py.idata["posterior"].sizes["draw"] == 12


def test_a_bpe_tokenizer_the_corpus_brings_is_learned_state(tmp_path):
    """The configuration holds an untrained BPE; the corpus trained its own on the text: the
    model keeps that one (tokenizer_) for encoding and in its directory, and its id as configured."""
    lines = markov_sentences(3, 80)
    lm = DirichletLM(order=2, tokenizer="bpe", sampler_config={**QUICK, "random_seed": 6})
    before = lm.config_id
    lm.fit(Corpus.from_texts(lines, tokenizer=BPETokenizer()))
    assert not lm.tokenizer.is_trained and lm.tokenizer_.is_trained and lm.config_id == before
    text = ["the cat sat on the mat"]
    back = load(lm.save(tmp_path / "bpe"))
    assert back.config_id == before and back.id == lm.id and back.tokenizer_ == lm.tokenizer_
    np.testing.assert_array_equal(back.predictive_log_prob(text), lm.predictive_log_prob(text))
    other = DirichletLM(order=2, tokenizer=blm.make_tokenizer("bpe", vocab_size=50))
    with pytest.raises(blm.VocabularyMismatchError, match="tokenised with"):
        other.fit(Corpus.from_texts(lines, tokenizer=BPETokenizer()))


# ---------------------------------------------------------------------------------- ARPA export
def arpa_log10_prob(path, lines: list[str], order: int) -> float:
    """log10 probability of sentences under an ARPA back-off file, read and scored here:
    p(w | u) is the listed entry of (u, w), else bo(u) p(w | u without its oldest token);
    the state at a sentence start is the single token <s>."""
    prob, backoff, section = {}, {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.endswith("-grams:"):
            section = int(line[1:line.index("-")])
        elif section and line and not line.startswith("\\"):
            fields = line.split("\t")
            words = tuple(fields[1].split())
            prob[words] = float(fields[0])
            backoff[words] = float(fields[2]) if len(fields) > 2 else 0.0

    def score(context: tuple, w: str) -> float:
        if context + (w,) in prob:
            return prob[context + (w,)]
        return backoff.get(context, 0.0) + score(context[1:], w)

    total = 0.0
    for line in lines:
        history = ["<s>"]
        for w in line.split() + ["</s>"]:
            total += score(tuple(history[-(order - 1):]), w)
            history.append(w)
    return total


def zipf_sentences(seed: int, n: int) -> list[str]:
    """Sentences of words drawn with Zipfian frequencies (contexts seen once and hundreds of times)."""
    rng = np.random.default_rng(seed)
    words = ["".join(pair) for pair in itertools.product("abcdefgh", repeat=2)]
    p = 1.0 / np.arange(1, len(words) + 1)
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 9)), p=p / p.sum())) for _ in range(n)]


@pytest.mark.parametrize("family", ["dirichlet-buckets", "pitman-yor"])
def test_arpa_file_scores_as_the_model(family, tmp_path, pitman_yor_lm):
    """One interpolated model (a Dirichlet LM with context buckets; one retained Pitman-Yor
    sample) is exported exactly: the file's back-off arithmetic gives the model's probabilities."""
    from bayeslm.ngram.arpa import write_arpa

    test = markov_sentences(7, 30) + zipf_sentences(9, 30) + ["the zebra sat", "big big big dog"]
    if family == "pitman-yor":
        lm, sample = pitman_yor_lm, 1
        corpus = lm.encode(test)
        expected = float(lm.token_log_prob(corpus).values.reshape(lm.n_samples, -1)[sample].sum())
    else:
        lm, sample = DirichletLM(order=3, buckets=[3, 10], sampler_config={**QUICK, "random_seed": 8}), None
        lm.fit(Corpus.from_texts(zipf_sentences(0, 150)))
        in_bucket = np.bincount(np.searchsorted(lm.bounds, lm.counts_[2].context_total, side="right"), minlength=3)
        assert np.all(in_bucket > 0)  # the order below the top uses all three of its concentrations
        corpus = lm.encode(test)
        expected = float(lm.predictive_log_prob(corpus).sum())
    write_arpa(lm, tmp_path / "model.arpa", sample=sample)
    got = arpa_log10_prob(tmp_path / "model.arpa", corpus.decode_lines(), lm.order) * math.log(10)
    assert got == pytest.approx(expected, rel=2e-6)
