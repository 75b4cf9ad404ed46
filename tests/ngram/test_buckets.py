"""Context-frequency buckets of the Dirichlet LM: one concentration per order and bucket."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sampling import QUICK

import bayeslm as blm
from bayeslm.exceptions import ConfigError
from bayeslm.ngram.evidence import OrderEvidence



def _markov_corpus(seed: int, n_sentences: int = 300):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(25)]
    trans = rng.dirichlet(np.full(len(words), 0.3), size=len(words))
    lines = []
    for _ in range(n_sentences):
        w = rng.integers(len(words))
        line = [words[w]]
        for _ in range(rng.integers(2, 12)):
            w = rng.choice(len(words), p=trans[w])
            line.append(words[w])
        lines.append(" ".join(line))
    return blm.Corpus.from_texts(lines, tokenizer=blm.WhitespaceTokenizer())


@pytest.fixture(scope="module")
def corpora():
    return _markov_corpus(0), _markov_corpus(1, 60), _markov_corpus(2, 60)


@pytest.fixture(scope="module")
def bucketed(corpora):
    """Its own fit: a bigram with three context-frequency buckets."""
    train, _, _ = corpora
    lm = blm.DirichletLM(order=2, tokenizer="whitespace", buckets=[3, 10])
    lm.fit(train, random_seed=1, **QUICK)
    return lm


def test_bad_boundaries_raise():
    for bad in ([2, 5], [5, 3], [3, 3], "some", [3.5]):
        with pytest.raises(ConfigError, match="buckets"):
            blm.DirichletLM(order=2, buckets=bad)


def test_auto_without_validation_text_keeps_one_concentration_per_order(corpora):
    lm = blm.DirichletLM(order=2, tokenizer="whitespace", buckets="auto")
    lm.fit(corpora[0], **QUICK)
    assert lm.buckets_ == [] and "no validation text" in lm.bucket_selection_[0]["note"]
    assert lm.options["buckets"] == "auto"  # the configuration stays as given
    assert lm.idata["posterior"]["concentration"].dims == ("chain", "draw", "order")


def test_posterior_has_order_and_bucket_dims(bucketed):
    post = bucketed.idata["posterior"]["concentration"]
    assert post.dims == ("chain", "draw", "order", "bucket")
    assert list(post["bucket"].values) == ["1-2", "3-9", "10+"]
    # the unigram order has one context: its buckets repeat that one concentration
    uni = post.sel(order=1).values
    assert np.all(uni == uni[..., :1])


def test_bucket_evidences_add_up_to_the_order_evidence(bucketed):
    lm = bucketed
    for k in (1, 2):
        oc = lm.counts_[k]
        whole = OrderEvidence(oc, lm._base_of(k, lm.plugin_))
        parts = lm._evidences(k, lm.plugin_)
        for a in (0.5, 3.0, 40.0):
            assert sum(ev.logp(a)[0] for ev in parts.values()) == pytest.approx(whole.logp(a)[0], rel=1e-10)
        assert sum(ev.total_mult.sum() for ev in parts.values()) == oc.n_contexts


def test_predictions_use_each_contexts_bucket(bucketed, corpora):
    """p(w | u, a) = (c_uw + a_b m_uw) / (c_u + a_b) with a_b the draw of u's bucket."""
    lm = bucketed
    train = corpora[0].with_vocabulary(lm.vocab_)
    stream, targets = train.padded(2)
    pairs = Counter(zip(stream[targets - 1].tolist(), stream[targets].tolist()))
    totals = Counter(stream[targets - 1].tolist())
    V = len(lm.vocab_)
    unigram = np.bincount(stream[targets], minlength=V).astype(float)
    N = unigram.sum()
    a1 = lm.plugin_[0, 0]  # all order-1 cells hold the single unigram context's mode
    m = (unigram + a1 / (V - 1)) / (N + a1)
    m[lm.vocab_.bos_id] = 0.0
    post = lm.idata["posterior"]["concentration"].sel(order=2).stack(s=("chain", "draw")).transpose("s", "bucket").values
    contexts = sorted(totals, key=totals.get)[:: max(1, len(totals) // 8)]
    got = lm.next_token_probs(np.array(contexts)[:, None])
    for i, u in enumerate(contexts):
        C = totals[u]
        b = 0 if C < 3 else (1 if C < 10 else 2)
        c = np.zeros(V)
        for (uu, w), n in pairs.items():
            if uu == u:
                c[w] = n
        a = post[:, b][:, None]
        np.testing.assert_allclose(got[:, i, :], (c + a * m) / (C + a), rtol=1e-10)
        np.testing.assert_allclose(got[:, i, :].sum(axis=1), 1.0)


def test_auto_picks_the_best_validation_candidate(corpora, tmp_path):
    train, valid, test = corpora
    lm = blm.DirichletLM(order=2, tokenizer="whitespace", buckets="auto")
    lm.fit(train, valid=valid, random_seed=2, **QUICK)
    table = lm.bucket_selection_
    assert [row["buckets"] for row in table] == [list(c) for c in blm.DirichletLM.BUCKET_CANDIDATES]
    best = min(table, key=lambda row: row["valid_perplexity"])
    assert lm.buckets_ == best["buckets"]
    assert lm.n_buckets == len(best["buckets"]) + 1
    # the choice is learned state: the configuration keeps "auto"; the choice survives a round trip
    assert lm.get_config()["model"]["buckets"] == "auto"
    back = blm.load(lm.save(tmp_path / "auto"))
    assert back.buckets_ == best["buckets"] and back.options["buckets"] == "auto"
    np.testing.assert_array_equal(back.predictive_log_prob(test), lm.predictive_log_prob(test))


def test_round_trip_and_generation(bucketed, corpora, tmp_path):
    _, _, test = corpora
    bucketed.save(tmp_path / "m")
    loaded = blm.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predictive_log_prob(test), bucketed.predictive_log_prob(test))
    np.testing.assert_array_equal(loaded.entropy_split(test).to_numpy(), bucketed.entropy_split(test).to_numpy())
    assert loaded.evaluate(test).predictive_perplexity == pytest.approx(bucketed.evaluate(test).predictive_perplexity)
    conts = loaded.generate("w1", n=2, max_tokens=5, random_seed=0)
    assert len(conts) == 2
    for c in conts:  # each token's predictive probability given the token before it (a bigram)
        history = [loaded.vocab_.id("w1")] + [t.id for t in c.tokens]
        expected = [bucketed.predictive_probs(np.array([[before]]))[0, t.id] for before, t in zip(history, c.tokens)]
        assert [t.prob_predictive for t in c.tokens] == pytest.approx(expected, rel=1e-12)
