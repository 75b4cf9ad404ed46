"""Domain adaptation of the Pitman-Yor LM: Wood and Teh's graphical hierarchy (bayeslm/ngram/pitman_yor/adapt.py,
docs/domain.md "Pitman-Yor").

The adapted predictive is checked against the general model where the domain has no say (no
domain customers and the general restaurant as the whole base: the general predictive, to
rounding), against itself along its two code paths (positions and dense rows), across files,
and on domains simulated from a known mixture of the general model and a domain unigram: the
predictive converges to the simulated domain and the general weight recovers the simulated one.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpora import markov_sentences
from sampling import QUICK, RECOVERY

import bayeslm as blm
from bayeslm.exceptions import BayesLMError, ConfigError, CorpusError, VocabularyMismatchError
from bayeslm.ngram.pitman_yor.adapt import AdaptedPitmanYorLM, DomainSeating, graphical_predictive

#: text of another chain than the general model's, with two words the general text never had (read as <unk>)
DOMAIN = markov_sentences(2, 120, words=["the", "cat", "dog", "sat", "ran", "on", "mat", "log", "big", "red", "fox", "hen"])
DOMAIN_TRAIN, DOMAIN_TEST = DOMAIN[:100], DOMAIN[100:]


@pytest.fixture(scope="module")
def general():
    """A Pitman-Yor trigram (fast mode) of one Markov chain's text."""
    lm = blm.PitmanYorLM(order=3, retain=3, sampler_config={**QUICK, "random_seed": 5})
    lm.fit(blm.Corpus.from_texts(markov_sentences(1, 400)))
    return lm


@pytest.fixture(scope="module")
def adapted(general):
    return general.adapt(general.encode(DOMAIN_TRAIN), random_seed=7)


def _without_domain(adapted, tmp_path):
    """A copy of ``adapted`` whose domain seating is empty and whose top-order general weight is 1."""
    copy = blm.load(adapted.save(tmp_path / "copy"))
    copy.domain_customers_[:] = 0
    for k in range(1, copy.order + 1):
        copy.idata["table_counts"][f"tables_o{k}"].values[:] = 0
    copy.idata["posterior"]["general_weight"].values[..., -1] = 1.0
    copy._domain_seating, copy._samples = None, None
    return copy


def test_with_no_domain_customers_the_predictive_is_the_general_models(general, adapted, tmp_path):
    empty = _without_domain(adapted, tmp_path)
    test = general.encode(DOMAIN_TEST)
    np.testing.assert_allclose(empty.predictive_log_prob(test), general.predictive_log_prob(test), rtol=1e-12)
    contexts = test.context_windows(general.context_length)[0][:40]
    np.testing.assert_allclose(empty.predictive_probs(contexts), general.predictive_probs(contexts), rtol=1e-12,
                               atol=1e-15)
    # the domain's customers are what moves it
    assert not np.allclose(adapted.predictive_log_prob(test), general.predictive_log_prob(test), rtol=1e-3)


def test_positions_dense_rows_and_sampled_tokens_agree(adapted):
    test = adapted.encode(DOMAIN_TEST)
    contexts, tokens = test.context_windows(adapted.context_length)
    dense = adapted.predictive_probs(contexts)
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.log(dense[np.arange(tokens.size), tokens]), adapted.predictive_log_prob(test),
                               rtol=1e-10)
    per_draw = adapted.next_token_probs(contexts[:5], draws=[0, 1])
    assert per_draw.shape == (2, 5, len(adapted.vocab_))
    sampled = adapted.sample_sentences(20, random_seed=3, draw=1)
    s_contexts, s_tokens = sampled.context_windows(adapted.context_length)
    assert np.all(adapted.next_token_probs(s_contexts, draws=[1])[0][np.arange(s_tokens.size), s_tokens] > 0)
    split = adapted.context_entropy_split(contexts[:30])
    assert np.all(split["epistemic"] >= 0) and np.all(split["total"] > 0)


def test_the_graphical_predictive_mixes_the_general_restaurant_and_the_domain_parent():
    """One order by hand: P = (c - d t + (theta + d T) (lam G + (1 - lam) P_parent)) / (theta + C)."""
    c, t, C, T = np.array([3.0, 0.0]), np.array([2.0, 0.0]), 3.0, 2.0
    live = np.array([True, True])
    parent, G = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    d, theta, lam = 0.4, 1.5, 0.25
    mix = lam * G + (1 - lam) * parent
    expected = (c - d * t + (theta + d * T) * mix) / (theta + C)
    got = graphical_predictive([(live, c, t, C, T)], [d], [theta], [lam], [G], parent)[-1]
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    np.testing.assert_allclose(expected.sum(), 1.0)
    dead = graphical_predictive([(~live, c * 0, t * 0, 0.0, 0.0)], [d], [theta], [lam], [G], parent)[-1]
    np.testing.assert_allclose(dead, mix, rtol=1e-15)  # a restaurant without customers passes its base through


def test_the_seating_sends_new_tables_by_the_general_weight():
    """One context, one dish: every customer after the first joins or opens a table; with lam = 1 every
    new table's dish comes from the general restaurant, with lam = 0 from the domain parent."""
    from bayeslm.counting.counts import count
    from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy

    lm = blm.PitmanYorLM(order=2)
    corpus = blm.Corpus.from_texts(["a"])
    lm._prepare_training(corpus)
    hier = Hierarchy(count(corpus.with_vocabulary(lm.vocab_), 2))
    top = hier.level(2).start  # the pair (<s>, a)
    chains = np.array([[hier.pair_parent[top]], [top]])
    for lam, sent in ((1.0, 0), (0.0, 1)):
        seating = DomainSeating(hier, chains, np.full((2, 1), 0.5), np.array([0.5]))
        seating.seat(np.zeros(50, np.int64), [0.5, 0.5], [1.0, 1.0], [lam, lam], seed=1)
        assert seating.customers[top] == 50 and seating.tables[top] >= 1
        assert seating.sent[1, sent] == seating.tables[top] and seating.sent[1, 1 - sent] == 0
        assert seating.customers[hier.pair_parent[top]] == seating.sent[1, 1]


def test_the_general_model_is_unchanged_and_the_domain_text_helps(general, adapted):
    test = general.encode(DOMAIN_TEST)
    before = general.evaluate(test).predictive_perplexity
    assert adapted.evaluate(test).predictive_perplexity < before
    assert general.evaluate(test).predictive_perplexity == before


def test_the_adapted_model_saves_and_loads_without_the_general_model(adapted, tmp_path):
    path = adapted.save(tmp_path / "adapted")
    loaded = blm.load(path)
    assert type(loaded) is AdaptedPitmanYorLM and loaded.general_ == adapted.general_
    test = adapted.encode(DOMAIN_TEST)
    np.testing.assert_array_equal(loaded.predictive_log_prob(test), adapted.predictive_log_prob(test))
    assert loaded.evaluate(test).predictive_perplexity == adapted.evaluate(test).predictive_perplexity


def test_bad_domain_input_is_refused(general, adapted, dirichlet_lm):
    with pytest.raises(CorpusError, match="no tokens"):
        general.adapt(blm.Corpus.from_texts(["", " "]))
    with pytest.raises(VocabularyMismatchError, match="domain text was tokenised"):
        general.adapt(blm.Corpus.from_texts(["the cat sat"], tokenizer=blm.CharTokenizer()))
    with pytest.raises(ConfigError, match="as a Corpus"):
        general.adapt(["the cat sat"])
    with pytest.raises(BayesLMError, match="not fitted alone"):
        AdaptedPitmanYorLM(order=2).fit(blm.Corpus.from_texts(["the cat"]))
    with pytest.raises(blm.NotFittedError):
        blm.PitmanYorLM(order=2).adapt(general.encode(["the cat"]))
    with pytest.raises(ConfigError, match="takes only rounds"):
        general.adapt(general.encode(["the cat"]), options={"order": 2})
    with pytest.raises(BayesLMError, match="not adapted again"):
        adapted.adapt(general.encode(["the cat"]))
    with pytest.raises(BayesLMError, match="ARPA export"):
        adapted.interpolation(0)
    with pytest.raises(BayesLMError, match="not updated"):
        adapted.update(general.encode(["the cat"]))
    with pytest.raises(BayesLMError, match="only a fitted PitmanYorLM"):
        AdaptedPitmanYorLM.from_general(dirichlet_lm, dirichlet_lm.encode(["the cat"]))


# -- simulated domains ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bigram_general():
    lm = blm.PitmanYorLM(order=2, sampler_config={**QUICK, "random_seed": 5})
    lm.fit(blm.Corpus.from_texts(markov_sentences(1, 400)))
    return lm


def _simulate(lm, truth: np.ndarray, row_of: dict, n_tokens: int, seed: int) -> blm.Corpus:
    """Sentences from the bigram ``truth`` (rows: contexts ``row_of[token]``), at most 50 tokens each."""
    rng = np.random.default_rng(seed)
    V, eos = truth.shape[1], lm.vocab_.eos_id
    ids, offsets = [], [0]
    while len(ids) < n_tokens:
        u = lm.vocab_.bos_id
        while len(ids) < offsets[-1] + 50:
            u = int(rng.choice(V, p=truth[row_of[u]]))
            if u == eos:
                break
            ids.append(u)
        offsets.append(len(ids))
    return blm.Corpus(np.array(ids, np.int32), np.array(offsets, np.int64), lm.vocab_, lm.tokenizer_)


def test_the_adapted_predictive_converges_to_the_domain_and_recovers_its_general_weight(bigram_general):
    """The domain's bigram is ``lam G(. | u) + (1 - lam) Q``: the general model's predictive mixed with a
    unigram of its own (the graphical hierarchy's limit of a large domain strength, with the domain's
    unigram restaurant at Q). As its text grows from 300 to 20,000 tokens the adapted predictive's
    total variation from it falls, and the top order's general weight ends within 0.1 of the simulated
    0.3 (10 seating rounds; its interval, given one seating, is too narrow to hold it every time:
    docs/domain.md)."""
    lm = bigram_general
    V, eos = len(lm.vocab_), lm.vocab_.eos_id
    contexts = np.array([[w] for w in range(V) if w != eos])
    row_of = {int(c[0]): i for i, c in enumerate(contexts)}
    general = lm.predictive_probs(contexts)
    unigram = np.random.default_rng(0).dirichlet(np.ones(V))
    unigram[lm.vocab_.bos_id] = 0.0
    truth = 0.3 * general + 0.7 * unigram / unigram.sum()
    distances = []
    for n_tokens in (300, 3000, 20000):
        adapted = lm.adapt(_simulate(lm, truth, row_of, n_tokens, seed=n_tokens), **{**RECOVERY, "random_seed": 1},
                           options={"rounds": 10})
        distances.append(0.5 * np.abs(adapted.predictive_probs(contexts) - truth).sum(axis=1).mean())
    assert 0.5 * np.abs(general - truth).sum(axis=1).mean() > 0.4
    assert distances[0] > distances[1] > distances[2] and distances[2] < 0.04
    weight = adapted.idata["posterior"]["general_weight"].sel(order=2)
    assert abs(float(weight.median()) - 0.3) < 0.1 and float(weight.std()) < 0.05
