"""MixtureLM: a posterior over the weights of fitted models that share a tokenizer.

Checked against independent computations: the stacking weights against a brute-force
maximisation of the log score, a mixture with all its weight on one model against that
model, the weights' posterior against the weight that simulated the text, and the
protocol's answers (evaluation, scores, report, generation, save/load) on the mixture.
The components are a unigram and a bigram Dirichlet LM of one text (one vocabulary);
this module fits its own models because the test is about combining them.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpora import markov_sentences
from model_dirs import reseal
from sampling import QUICK, SMALL
from scipy.special import logsumexp

import bayeslm as blm
from bayeslm.exceptions import ConfigError, ModelFileError, VocabularyMismatchError
from bayeslm.stats.stacking import stacking_weights

TRAIN = markov_sentences(0, 300)
VALID = markov_sentences(1, 120)
TEST = markov_sentences(2, 40)
TRUE_WEIGHT = 0.3  # of the unigram, in the simulated text


def dirichlet(order: int, seed: int):
    lm = blm.DirichletLM(order=order, tokenizer="whitespace", sampler_config={**QUICK, "random_seed": seed})
    lm.fit(blm.Corpus.from_texts(TRAIN, tokenizer=blm.WhitespaceTokenizer()))
    return lm


@pytest.fixture(scope="module")
def unigram():
    return dirichlet(1, 1)


@pytest.fixture(scope="module")
def bigram():
    return dirichlet(2, 2)


@pytest.fixture(scope="module")
def mixture(unigram, bigram):
    mix = blm.MixtureLM([unigram, bigram], sampler_config={**SMALL, "random_seed": 3})
    mix.fit(blm.Corpus.from_texts(VALID, tokenizer=blm.WhitespaceTokenizer()))
    return mix


def simulated_text(unigram, bigram, n_sentences: int, seed: int) -> list[str]:
    """Sentences drawn token by token from TRUE_WEIGHT p_unigram + (1 - TRUE_WEIGHT) p_bigram."""
    rng = np.random.default_rng(seed)
    vocab = unigram.vocab_
    p_uni = unigram.predictive_probs(np.zeros((1, 0), dtype=np.int64))[0]
    p_bi = bigram.predictive_probs(np.arange(len(vocab))[:, None])  # row u: p(. | u)
    lines = []
    for _ in range(n_sentences):
        previous, words = vocab.bos_id, []
        while len(words) < 30:
            p = TRUE_WEIGHT * p_uni + (1 - TRUE_WEIGHT) * p_bi[previous]
            token = int(rng.choice(len(p), p=p / p.sum()))
            if token == vocab.eos_id:
                break
            words.append(vocab.tokens[token])
            previous = token
        if words:
            lines.append(" ".join(words))
    return lines


# -- the weights -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_stacking_weights_maximise_the_log_score(seed):
    """ArviZ's stacking on pointwise values equals a brute-force search over the simplex."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 1.0, size=(3, 400)) ** np.array([[1.0], [2.0], [0.5]])
    grid = np.array([(a, b, 1 - a - b) for a in np.linspace(0, 1, 201) for b in np.linspace(0, 1, 201)
                     if a + b <= 1 + 1e-12])
    best = grid[np.argmax(np.log(np.clip(grid, 0, None) @ p).sum(axis=1))]
    np.testing.assert_allclose(stacking_weights(np.log(p)), best, atol=0.01)


def test_stacking_refuses_bad_log_densities():
    with pytest.raises(ConfigError, match=r"shape \(model >= 2, position >= 1\)"):
        stacking_weights(np.zeros((1, 5)))
    with pytest.raises(ConfigError, match="finite log densities"):
        stacking_weights(np.array([[0.0, -np.inf], [0.0, 0.0]]))


def test_the_weights_posterior_recovers_the_simulating_weight(unigram, bigram):
    text = simulated_text(unigram, bigram, 400, seed=7)
    mix = blm.MixtureLM([unigram, bigram], sampler_config={**SMALL, "random_seed": 4})
    mix.fit(blm.Corpus.from_texts(text, tokenizer=blm.WhitespaceTokenizer()))
    w = mix.weights[:, 0]
    assert abs(w.mean() - TRUE_WEIGHT) < 3 * w.std() + 0.01
    assert w.std() < 0.1  # the text says something about the weight
    # the posterior mean is near the stacking optimum on the same text (a flat prior, many positions)
    assert abs(w.mean() - mix.stacking_weights_[0]) < 2 * w.std()
    summary = mix.idata["posterior"]["weights"]
    assert summary.dims == ("chain", "draw", "component") and list(summary["component"].values) == mix.component_names


# -- the protocol -----------------------------------------------------------------------------
def test_all_weight_on_one_component_is_that_component(mixture, unigram, bigram):
    one = blm.MixtureLM([unigram, bigram], entropy_draws=40, sampler_config={**QUICK, "random_seed": 5})
    one.fit(blm.Corpus.from_texts(VALID, tokenizer=blm.WhitespaceTokenizer()))
    weights = one.idata["posterior"]["weights"]
    one.idata["posterior"]["weights"] = weights.copy(data=np.broadcast_to([0.0, 1.0], weights.shape).copy())
    np.testing.assert_allclose(one.predictive_log_prob(TEST), bigram.predictive_log_prob(TEST), rtol=1e-12)
    contexts, _ = bigram.encode(TEST).context_windows(1)
    draws = [0, 3, 7]
    np.testing.assert_allclose(one.next_token_probs(contexts, draws=draws),
                               bigram.next_token_probs(contexts, draws=[d % bigram.n_samples for d in draws]))
    ours, theirs = one.entropy_split(TEST), bigram.entropy_split(TEST)
    np.testing.assert_allclose(ours["total"], theirs["total"], rtol=1e-9)
    # the aleatoric part is a Monte Carlo average over entropy_draws (40) draws of the posterior:
    # unbiased (about 0.015 nats of error per context here, over a dozen distinct contexts); the
    # per-draw predictive in place of posterior draws of p is off by +0.04 on average, up to +0.09
    error = ours["aleatoric"] - theirs["aleatoric"]
    assert abs(error.mean()) < 0.012 and np.abs(error).max() < 0.05


def test_the_mixture_is_the_weighted_sum_of_its_components(mixture, unigram, bigram):
    w = mixture.weights.mean(axis=0)
    expected = logsumexp(np.log(w)[:, None] + np.stack([unigram.predictive_log_prob(TEST),
                                                       bigram.predictive_log_prob(TEST)]), axis=0)
    np.testing.assert_allclose(mixture.predictive_log_prob(TEST), expected, rtol=1e-12)
    contexts, targets = mixture.encode(TEST).context_windows(mixture.context_length)
    probs = mixture.predictive_probs(contexts)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(np.log(probs[np.arange(len(targets)), targets]), expected, rtol=1e-9)
    # per draw: draw s of the weights with draw s mod n_k of component k
    lp = mixture.token_log_prob(TEST).values.reshape(mixture.n_samples, -1)
    s = 5
    w_s = mixture.weights[s]
    by_draw = [m.token_log_prob(TEST).values.reshape(m.n_samples, -1)[s % m.n_samples] for m in (unigram, bigram)]
    np.testing.assert_allclose(lp[s], logsumexp(np.log(w_s)[:, None] + np.stack(by_draw), axis=0), rtol=1e-12)
    ev = mixture.evaluate(TEST)
    assert np.isclose(ev.predictive_cross_entropy_bits, -expected.mean() / np.log(2))


def test_the_mixture_predicts_no_worse_than_its_better_component(mixture, unigram, bigram):
    test_bits = {name: lm.evaluate(TEST).predictive_cross_entropy_bits
                 for name, lm in (("mix", mixture), ("uni", unigram), ("bi", bigram))}
    assert test_bits["mix"] <= min(test_bits["uni"], test_bits["bi"]) + 0.01


def test_report_score_and_generate_work_on_a_mixture(mixture, tmp_path):
    rep = blm.report(mixture, TEST, replicates=2)
    rep.write(tmp_path / "mix.html")
    assert (tmp_path / "mix.json").is_file() and (tmp_path / "mix.html").is_file()
    frame = mixture.score(TEST[:3], units="bits")
    assert len(frame) == 3 and np.all(frame["log_prob_hdi_low_bits"] <= frame["log_prob_hdi_high_bits"])
    [continuation] = mixture.generate("the", n=1, max_tokens=5, random_seed=0)
    assert 1 <= len(continuation.tokens) <= 5


# -- the model directory ------------------------------------------------------------------------
def test_save_and_load_a_mixture(mixture, tmp_path):
    mixture.save(tmp_path / "mix")
    back = blm.load(tmp_path / "mix")
    assert isinstance(back, blm.MixtureLM) and back.id == mixture.id
    assert [m.id for m in back.components_] == [m.id for m in mixture.components_]
    np.testing.assert_array_equal(back.predictive_log_prob(TEST), mixture.predictive_log_prob(TEST))


def test_a_changed_or_missing_component_is_refused(mixture, bigram, tmp_path):
    mixture.save(tmp_path / "mix")
    arrays = dict(np.load(tmp_path / "mix" / "arrays.npz", allow_pickle=False))
    other = dirichlet(2, 99)  # the same configuration and text, other draws: another model id
    other.save(tmp_path / "other")
    changed = {**arrays, **{f"component1__{p.name}": np.frombuffer(p.read_bytes(), dtype=np.uint8)
                            for p in (tmp_path / "other").iterdir()}}
    for name, contents in (("changed", changed),
                           ("missing", {k: v for k, v in arrays.items() if not k.startswith("component1__")})):
        broken = tmp_path / name
        broken.mkdir()
        for file in (tmp_path / "mix").iterdir():
            (broken / file.name).write_bytes(file.read_bytes())
        np.savez_compressed(broken / "arrays.npz", **contents)
        reseal(broken)
        with pytest.raises(ModelFileError, match="component 1"):
            blm.load(broken)


# -- bad input ---------------------------------------------------------------------------------
def test_components_must_share_tokenizer_and_vocabulary(unigram, bigram):
    with pytest.raises(ConfigError, match="at least two components, got 1"):
        blm.MixtureLM([unigram])
    other_text = blm.DirichletLM(order=1, tokenizer="whitespace", sampler_config={**QUICK, "random_seed": 1})
    other_text.fit(blm.Corpus.from_texts(VALID, tokenizer=blm.WhitespaceTokenizer()))
    with pytest.raises(VocabularyMismatchError, match="component 1 has another vocabulary than component 0"):
        blm.MixtureLM([unigram, other_text])
    chars = blm.DirichletLM(order=2, tokenizer="char", sampler_config={**QUICK, "random_seed": 1})
    chars.fit(blm.Corpus.from_texts(TRAIN, tokenizer=blm.CharTokenizer()))
    with pytest.raises(VocabularyMismatchError, match="component 1 uses"):
        blm.MixtureLM([bigram, chars])
    with pytest.raises(ConfigError, match="component 1 is not a fitted bayeslm model"):
        blm.MixtureLM([bigram, blm.DirichletLM(order=2)])
    mix = blm.MixtureLM([unigram, bigram], sampler_config=QUICK)
    with pytest.raises(VocabularyMismatchError, match="the text was tokenised with"):
        mix.fit(blm.Corpus.from_texts(VALID, tokenizer=blm.CharTokenizer()))


# -- sentences (posterior predictive checks) --------------------------------------------------
@pytest.mark.parametrize("draw", [0, 7])
def test_sentences_draw_their_tokens_from_the_weighted_components(mixture, draw):
    """The first tokens of many one-token sentences follow sum_k pi_k p_k(. | <s>) of that draw."""
    n = 20_000
    sampled = mixture.sample_sentences(n, random_seed=5, draw=draw, max_tokens=1)
    vocab = mixture.vocab_
    observed = np.bincount(sampled.ids, minlength=len(vocab)).astype(float)
    observed[vocab.eos_id] += n - len(sampled.ids)  # sentences that ended at once
    expected = mixture.next_token_probs(np.full((1, mixture.context_length), vocab.bos_id), draws=[draw])[0, 0]
    assert 0.5 * np.abs(observed / n - expected).sum() < 0.03


def test_sentences_are_reproducible_and_checked(mixture):
    a = mixture.sample_sentences(30, random_seed=1, draw=2)
    b = mixture.sample_sentences(30, random_seed=1, draw=2)
    np.testing.assert_array_equal(a.ids, b.ids)
    with pytest.raises(blm.BayesLMError, match="draw must be in"):
        mixture.sample_sentences(3, draw=mixture.n_samples)


def test_the_mixture_report_has_posterior_predictive_checks(mixture):
    checks = blm.report(mixture, TEST, replicates=2).to_dict()["ppc"]
    assert checks["available"] and len(checks["statistics"]) > 0


# -- the weights' text, and families that share a tokenizer ------------------------------------
def test_the_weights_text_may_be_lines_or_a_corpus(mixture, unigram, bigram):
    from_lines = blm.MixtureLM([unigram, bigram], sampler_config={**SMALL, "random_seed": 3})
    from_lines.fit(VALID)
    np.testing.assert_allclose(from_lines.weights, mixture.weights)
    with pytest.raises(ConfigError, match="a Corpus or lines of text"):
        blm.MixtureLM([unigram, bigram]).fit([1, 2, 3])


def test_a_character_ngram_and_a_gpt_mix(gpt_lm):
    """Two families with one character vocabulary: the mixture is their weighted sum; no sentences (the GPT has none)."""
    from corpora import CAT_LINES

    ngram = blm.PitmanYorLM(order=4, inference="ikn", tokenizer="char", spelling=1,
                            sampler_config={**QUICK, "random_seed": 0})
    ngram.fit(blm.Corpus.from_lines(CAT_LINES, tokenizer=blm.CharTokenizer()))
    mix = blm.MixtureLM([ngram, gpt_lm], sampler_config={**SMALL, "random_seed": 1})
    mix.fit(CAT_LINES[:10])
    w = mix.weights.mean(axis=0)
    text = CAT_LINES[-3:]
    expected = logsumexp(np.log(w)[:, None] + np.stack([ngram.predictive_log_prob(text),
                                                         gpt_lm.predictive_log_prob(text)]), axis=0)
    np.testing.assert_allclose(mix.predictive_log_prob(text), expected, rtol=1e-10)
    assert not mix.can_sample_sentences
    assert not blm.report(mix, text, replicates=2).to_dict()["ppc"]["available"]
