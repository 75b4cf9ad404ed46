"""Domain adaptation of the Pitman-Yor LM: Wood and Teh's graphical hierarchy (bayeslm/ngram/pitman_yor/adapt.py,
docs/domain.md "Pitman-Yor").

The adapted predictive is checked against the general model where the domain has no say (no
domain customers and the general restaurant as the whole base: the general predictive, to
rounding), against itself along its two code paths (positions and dense rows), across files,
and on domains simulated from a known mixture of the general model and a domain unigram: the
predictive converges to the simulated domain and the general weight recovers the simulated one.
The domain share of each prediction (``uncertainty_sources``) is checked by hand from the domain
restaurants' statistics and against the predictive's own mixture, and in the report.
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


@pytest.fixture(scope="module")
def adapted_seatings(general):
    """As ``adapted``, keeping three domain seatings (after sweeps 3, 4 or 5, and 6)."""
    return general.adapt(general.encode(DOMAIN_TRAIN), random_seed=7, options={"sweeps": 6, "seatings": 3})


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
    new table's dish comes from the general restaurant, with lam = 0 from the domain parent; so after
    Gibbs sweeps at the other weight, every table's dish source is the other one."""
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
        for seed in range(3):
            seating.sweep(np.zeros(50, np.int64), [0.5, 0.5], [1.0, 1.0], [1 - lam, 1 - lam], seed=seed)
        assert seating.customers[top] == 50 and seating.sent[1, 1 - sent] == seating.tables[top] >= 1
        assert seating.sent[1, sent] == 0 and seating.customers[hier.pair_parent[top]] == seating.sent[1, 1]


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


def test_a_directory_of_one_seating_as_written_before_several_loads(general, tmp_path):
    """Before several seatings could be kept, arrays.npz held the domain customers as one vector (and the
    model's id and posterior fingerprint were made of that vector)."""
    from model_dirs import reseal, rewrite_attrs

    from bayeslm.core.fingerprint import model_id, posterior_fingerprint

    one = general.adapt(general.encode(DOMAIN_TRAIN), random_seed=7, options={"sweeps": 4, "seatings": 1})
    path = one.save(tmp_path / "one")
    with np.load(path / "arrays.npz") as stored:
        arrays = dict(stored)
    assert arrays["domain_customers"].shape[0] == 1
    arrays["domain_customers"] = arrays["domain_customers"][0]
    np.savez(path / "arrays.npz", **arrays)
    attrs = one.idata["posterior"].attrs
    fingerprint = posterior_fingerprint(one.idata, arrays)
    rewrite_attrs(path, posterior_fingerprint=fingerprint,
                  id=model_id(attrs["config_id"], attrs["data_fingerprint"], fingerprint))
    reseal(path)
    test = one.encode(DOMAIN_TEST)
    np.testing.assert_array_equal(blm.load(path).predictive_log_prob(test), one.predictive_log_prob(test))


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



_ADAPT_SCRIPT = """
import numpy as np, bayeslm as blm
from corpora import markov_sentences
from sampling import QUICK, RECOVERY
lm = blm.PitmanYorLM(order=2, sampler_config={**QUICK, "random_seed": 5})
lm.fit(blm.Corpus.from_texts(markov_sentences(1, 400)))
adapted = lm.adapt(blm.Corpus.from_texts(markov_sentences(7, 60)), **{**RECOVERY, "random_seed": 1})
print(repr(adapted.predictive_probs(np.array([[3], [4], [5]])).round(15).tolist()))
"""


def test_the_adaptation_is_the_same_in_another_process(bigram_general):
    """Same seed, same adapted predictive in a fresh process with another hash seed (and so another memory
    layout): the table-count move once read log n! past its end at the orders its upper orders had fed,
    and the draws then depended on whatever memory lay there."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    adapted = bigram_general.adapt(blm.Corpus.from_texts(markov_sentences(7, 60)), **{**RECOVERY, "random_seed": 1})
    here = repr(adapted.predictive_probs(np.array([[3], [4], [5]])).round(15).tolist())
    tests = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "12345",
           "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _ADAPT_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == here

# -- where each prediction's weight comes from ------------------------------------------------------
def test_mixture_weights_by_hand_and_as_the_predictives_own():
    """Two orders, two positions: the first with domain customers at both restaurants, the second with
    none on its whole chain (share 0: its weight is the general model's and the base measure's). The
    weights are the predictive's own: graphical_predictive with the general predictive and the base set
    to 0 leaves the domain tables' mass, with the tables' counts set to 0 the general model's."""
    from bayeslm.ngram.pitman_yor.adapt import mixture_weights

    d, theta, lam = np.array([[0.3, 0.6]]), np.array([[1.0, 2.5]]), np.array([[0.4, 0.7]])
    c = [np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), np.array([[3.0, 0.0, 1.0], [0.0, 0.0, 0.0]])]
    t = [np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), np.array([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]])]
    gathered = [(ck.sum(1) > 0, ck, tk, ck.sum(1), tk.sum(1)) for ck, tk in zip(c, t)]
    at_positions = [(live, ck[:, 0], tk[:, 0], Cu, Tu) for live, ck, tk, Cu, Tu in gathered]
    domain, general = mixture_weights(at_positions, d, theta, lam)
    a2, a1 = (4.0 - 0.6 * 3.0) / (2.5 + 4.0), (3.0 - 0.3 * 2.0) / (1.0 + 3.0)  # each restaurant keeps its tables' part
    np.testing.assert_allclose(domain[0], [a2 + (1 - a2) * 0.3 * a1, 0.0], rtol=1e-14)
    np.testing.assert_allclose(general[0], [(1 - a2) * (0.7 + 0.3 * (1 - a1) * 0.4), 0.7 + 0.3 * 0.4], rtol=1e-14)
    rows = [(live[:, None], ck, tk, Cu[:, None], Tu[:, None]) for live, ck, tk, Cu, Tu in gathered]
    G = [np.array([[0.2, 0.5, 0.3]] * 2), np.array([[0.6, 0.1, 0.3]] * 2)]
    base = np.full((1, 3), 1 / 3)
    zero = [np.zeros((2, 3))] * 2
    tables_only = graphical_predictive(rows, d[0], theta[0], lam[0], zero, 0.0 * base)[-1]
    no_tables = [(live, 0 * ck, 0 * tk, Cu, Tu) for live, ck, tk, Cu, Tu in rows]
    general_only = graphical_predictive(no_tables, d[0], theta[0], lam[0], G, 0.0 * base)[-1]
    np.testing.assert_allclose(tables_only.sum(axis=1), domain[0], rtol=1e-14)
    np.testing.assert_allclose(general_only.sum(axis=1), general[0], rtol=1e-14)
    whole = graphical_predictive(rows, d[0], theta[0], lam[0], G, base)[-1]  # the three parts add up
    base_part = graphical_predictive(no_tables, d[0], theta[0], lam[0], zero, base)[-1]
    np.testing.assert_allclose(whole, tables_only + general_only + base_part, rtol=1e-14)


def _restaurants(lm, seating: int = 0) -> list[dict[tuple, tuple[float, float]]]:
    """Per order {context tokens: (customers, tables)} of a kept domain seating, read from the model's
    arrays (customers per union pair, tables per order from the table_counts group)."""
    out, offset = [], 0
    for k in range(1, lm.order + 1):
        oc = lm.counts_[k]
        customers = lm.domain_customers_[seating, offset:offset + oc.n_ngrams]
        tables = lm.idata["table_counts"][f"tables_o{k}"].values[seating]
        offset += oc.n_ngrams
        out.append({tuple(ctx): (float(customers[oc.context_start[row]:oc.context_start[row + 1]].sum()),
                                 float(tables[oc.context_start[row]:oc.context_start[row + 1]].sum()))
                    for row, ctx in enumerate(lm.counts_.context_tokens(k))})
    return out


def test_uncertainty_sources_split_the_predictive_by_hand(adapted):
    _check_sources_by_hand(adapted)


def test_several_kept_seatings_each_serve_their_samples(adapted_seatings, tmp_path):
    """Three kept seatings: every retained sample is drawn given one of them and scored with it."""
    lm = adapted_seatings
    tc = lm.idata["table_counts"]
    assert tc.sizes["seating"] == 3 and lm.domain_customers_.shape[0] == 3
    assert set(tc["sample_seating"].values.tolist()) == {0, 1, 2}
    top = slice(lm.domain_customers_.shape[1] - lm.counts_[lm.order].n_ngrams, None)  # the top order's pairs are last
    assert all(np.array_equal(c[top], lm.domain_customers_[0, top]) for c in lm.domain_customers_)  # the domain text
    assert not np.array_equal(tc["tables_o2"].values[0], tc["tables_o2"].values[2])
    _check_sources_by_hand(lm)
    test = lm.encode(DOMAIN_TEST)
    contexts, tokens = test.context_windows(lm.context_length)
    dense = lm.predictive_probs(contexts)
    np.testing.assert_allclose(np.log(dense[np.arange(tokens.size), tokens]), lm.predictive_log_prob(test), rtol=1e-10)
    loaded = blm.load(lm.save(tmp_path / "three"))
    np.testing.assert_array_equal(loaded.predictive_log_prob(test), lm.predictive_log_prob(test))


def _check_sources_by_hand(adapted):
    """Per position: the domain tables' weight, walked down the context chain by hand from the domain
    restaurants' customers and tables of each retained sample's seating, averaged over the
    retained samples' (d, theta, lam); the restaurant's customers and tables, averaged likewise."""
    text = DOMAIN_TEST + markov_sentences(1, 20)  # domain and general-style text
    table = adapted.uncertainty_sources(adapted.encode(text))
    contexts, _ = adapted.encode(text).context_windows(adapted.context_length)
    tc, post = adapted.idata["table_counts"], adapted.idata["posterior"]
    seating_of = tc["sample_seating"].values
    seatings = {key: _restaurants(adapted, key) for key in set(seating_of.tolist())}
    ch, dr = tc["sample_chain"].values, tc["sample_draw"].values
    d, theta, lam = (post[name].transpose("chain", "draw", "order").values[ch, dr]
                     for name in ("discount", "strength", "general_weight"))
    assert len(table) == contexts.shape[0]
    for row, context in zip(table.itertuples(), contexts.tolist()):
        chain = [tuple(context[len(context) - k + 1:]) if k > 1 else () for k in range(1, adapted.order + 1)]
        seen = [k for k in range(1, adapted.order + 1) if chain[k - 1] in seatings[0][k - 1]]
        assert row.order == max(seen)
        C, T = np.mean([seatings[key][row.order - 1][chain[row.order - 1]] for key in seating_of], axis=0)
        assert (row.domain_customers, row.domain_tables) == (np.rint(C), np.rint(T))
        domain, general = np.zeros(d.shape[0]), np.zeros(d.shape[0])
        for s in range(d.shape[0]):
            reach = 1.0
            restaurants = seatings[seating_of[s]]
            for k in range(adapted.order, 0, -1):
                C, T = restaurants[k - 1].get(chain[k - 1], (0.0, 0.0))
                keep = (C - d[s, k - 1] * T) / (theta[s, k - 1] + C)
                domain[s] += reach * keep
                general[s] += reach * (1 - keep) * lam[s, k - 1]
                reach *= (1 - keep) * (1 - lam[s, k - 1])
        assert row.domain_share == pytest.approx(domain.mean(), rel=1e-12)
        assert row.general_share == pytest.approx(general.mean(), rel=1e-12)
        assert row.source == ("domain text" if row.domain_share >= 0.5 else "general model")
    shares = table[["domain_share", "general_share"]].to_numpy()
    assert np.all(shares >= 0) and np.all(shares.sum(axis=1) <= 1 + 1e-12)
    assert (table["domain_customers"] == 0).sum() > 5 and (table["domain_customers"] > 0).sum() > 50


def test_the_domain_share_is_the_dense_predictives_tables_mass(adapted):
    """On dense rows of the model's own hierarchy: the predictive of one retained sample with the general
    predictive and the base measure set to 0 sums to that sample's domain share."""
    from bayeslm.ngram.pitman_yor.adapt import _dense_gathered, mixture_weights
    from bayeslm.ngram.pitman_yor.model import gather_seating

    test = adapted.encode(DOMAIN_TEST)
    contexts, _ = test.context_windows(adapted.context_length)
    chain = adapted._context_chain(contexts[:30])
    d, theta = adapted._sample_params()
    lam = adapted._general_weights()
    zero = [np.zeros((30, len(adapted.vocab_)))] * adapted.order
    gathered = _dense_gathered(adapted._hierarchy(), adapted._seating(0), chain)
    index = adapted._chain_index(*adapted._position_chain(test))
    domain, _ = mixture_weights(gather_seating(adapted._seating(0), index), d, theta, lam)
    for s in range(d.shape[0]):
        tables_only = graphical_predictive(gathered, d[s], theta[s], lam[s], zero, np.zeros((1, zero[0].shape[1])))[-1]
        np.testing.assert_allclose(tables_only.sum(axis=1), domain[s, :30], rtol=1e-12)


def test_without_domain_customers_the_share_is_zero(adapted, tmp_path):
    """No domain customers on any chain and a top general weight of 1: every position rests on the
    general model alone."""
    table = _without_domain(adapted, tmp_path).uncertainty_sources(adapted.encode(DOMAIN_TEST))
    assert np.all(table["domain_share"] == 0.0) and np.all(table["domain_customers"] == 0)
    np.testing.assert_allclose(table["general_share"], 1.0, rtol=1e-15)
    assert set(table["source"]) == {"general model"}


@pytest.fixture(scope="module")
def adapted_small(general):
    """The same adaptation on a fifth of the domain text (the report's test text then has positions
    resting on either source: 40 and 123 of 163)."""
    return general.adapt(general.encode(DOMAIN_TRAIN[:20]), random_seed=7)


def test_more_domain_text_gives_larger_domain_shares(adapted, adapted_small):
    test = adapted.encode(DOMAIN_TEST)
    small, large = (lm.uncertainty_sources(test)["domain_share"].to_numpy() for lm in (adapted_small, adapted))
    assert large.mean() > small.mean() + 0.1
    assert np.mean(large > small) > 0.9


def test_the_report_of_an_adapted_model_shows_its_departure(general, adapted_small):
    """The report's departure section of a Pitman-Yor adapted model: the general weights as departure()
    states them, the positions split by source as uncertainty_sources does, rendered in HTML."""
    from bayeslm.report import report

    test = adapted_small.encode(DOMAIN_TEST + markov_sentences(1, 20))
    result = report(adapted_small, test, replicates=2)
    section = result.data["departure"]
    assert section["orders"] == adapted_small.departure()
    assert section["general_model"] == adapted_small.general_ and section["general_model"]["id"] == general.id
    table = adapted_small.uncertainty_sources(test)
    for group in section["sources"]:
        at = table["source"] == group["source"]
        assert group["positions"] == int(at.sum()) > 0
        assert group["mean_domain_share"] == pytest.approx(table["domain_share"][at].mean(), rel=1e-12)
    assert [g["order"] for g in section["by_order"]] == sorted(set(table["order"]))
    page = result.render_html()
    assert 'id="departure"' in page and "Departure from the general model" in page
    assert "the general weight lam_k" in page and "domain restaurants&#x27; tables" in page
