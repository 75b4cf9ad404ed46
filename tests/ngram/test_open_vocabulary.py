"""Open vocabulary: a spelling model under the word unigram gives every string a probability.

The checks enumerate: on a two-letter alphabet (and one stand-in for every character never
seen), the probabilities of all strings up to length L, plus the mass of the longer ones
(the probability that a spelling starts with each string of length L + 1), sum to 1, for
the spelling model alone and for a word model's next-word distribution over all strings.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bayeslm import Corpus, DirichletLM, PitmanYorLM
from bayeslm.ngram.spelling import UNICODE_SCALARS, SpellingModel
from bayeslm.text.vocab import Vocabulary
from sampling import QUICK

TRAIN = ["ab ba ab", "a b ab", "ba ba a", "b ab ba ab", "aab ab"]
L = 5  # every training word is at most this long
UNSEEN = "z"  # stands for each of the UNICODE_SCALARS - 2 characters the training words never use


def strings(length: int) -> list[str]:
    return ["".join(t) for t in itertools.product("ab" + UNSEEN, repeat=length)]


def weight(words: list[str]) -> np.ndarray:
    """How many strings each enumerated one stands for (every unseen character is one of many)."""
    return (UNICODE_SCALARS - 2.0) ** np.array([w.count(UNSEEN) for w in words])


@pytest.fixture(scope="module")
def spelling():
    return SpellingModel(3).fit(Corpus.from_texts(TRAIN).vocab)


def test_the_spelling_probabilities_of_all_strings_sum_to_one(spelling):
    short = [w for n in range(L + 1) for w in strings(n)]  # the empty string included
    enumerated = float((np.exp(spelling.log_prob(short)) * weight(short)).sum())
    longer = strings(L + 1)
    tail = float((np.exp(spelling.log_prob(longer, end=False)) * weight(longer)).sum())
    assert 0.0 < tail < 0.1
    assert enumerated + tail == pytest.approx(1.0, abs=1e-12)


def test_every_unseen_character_gets_the_same_share_of_the_unknown_mass(spelling):
    lp = spelling.log_prob(["az", "aé", "a\U0001F600"])
    assert lp[0] == pytest.approx(lp[1], rel=1e-15) and lp[0] == pytest.approx(lp[2], rel=1e-15)
    assert spelling.log_prob(["ab"])[0] > spelling.log_prob(["bz"])[0] + 10  # a seen spelling is far likelier


def test_the_base_over_the_word_vocabulary_sums_to_one_and_unk_holds_every_other_string(spelling):
    vocab = Vocabulary(["ab", "ba", "a"])
    model = SpellingModel(3).fit(vocab)
    base = model.base_probs(vocab)
    assert base.sum() == pytest.approx(1.0, abs=1e-14) and base[vocab.bos_id] == 0.0
    assert base[vocab.eos_id] == pytest.approx(1 / (len(vocab) - 1))
    regular = np.exp(model.log_base(["ab", "ba", "a"]))
    np.testing.assert_allclose(base[3:], regular, rtol=1e-14)
    assert base[vocab.unk_id] == pytest.approx(1 - base[vocab.eos_id] - regular.sum(), rel=1e-12)


OPEN_MODELS = {
    "dirichlet": lambda: DirichletLM(order=2, spelling=3, sampler_config={**QUICK, "random_seed": 5}),
    "pitman-yor-ikn": lambda: PitmanYorLM(order=2, spelling=3, inference="ikn",
                                          sampler_config={**QUICK, "random_seed": 5}),
    "pitman-yor-gibbs": lambda: PitmanYorLM(order=2, spelling=3, retain=5, sampler_config={**QUICK, "random_seed": 5}),
}


@pytest.fixture(scope="module", params=sorted(OPEN_MODELS))
def open_lm(request):
    """Each n-gram family with a spelling model (its own fit: the tests enumerate its strings)."""
    lm = OPEN_MODELS[request.param]()
    lm.fit(Corpus.from_texts(TRAIN))
    return lm


@pytest.mark.parametrize("context", ["", "ab", "b"])
def test_the_next_word_probabilities_of_all_strings_sum_to_one(open_lm, context):
    """p(w | u) over every string w (each as the word after ``context``), p(</s> | u) and the longer strings."""
    words = [w for n in range(1, L + 1) for w in strings(n)]
    lines = [f"{context} {w}".strip() for w in words]
    at = len(context.split())  # the position of w in its sentence
    corpus = open_lm.encode(lines)
    per_draw = open_lm.token_log_prob(corpus).values.reshape(open_lm.n_samples, -1)  # (draw, position)
    starts = corpus.offsets[:-1] + np.arange(len(lines))  # each sentence's first scored position
    word_lp = per_draw[:, starts + at]
    vocab = open_lm.vocab_
    last = np.array([[vocab.id(context.split()[-1]) if context else vocab.bos_id]])
    eos_lp = np.log(open_lm.next_token_probs(last)[:, 0, vocab.eos_id])
    # an unknown string x has p(x | u) = lambda(u) P_0(x): lambda from one of them, for "" and the tail
    unknown = "zzzzzz"
    lam = np.exp(open_lm.token_log_prob([f"{context} {unknown}".strip()]).values.reshape(open_lm.n_samples, -1)[:, at]
                 - open_lm.spelling_.log_base([unknown])[0])
    empty = lam * np.exp(open_lm.spelling_.log_base([""])[0])
    longer = strings(L + 1)
    tail = lam * math.exp(math.log1p(-open_lm.spelling_.eos_share_)) * float(
        (np.exp(open_lm.spelling_.log_prob(longer, end=False)) * weight(longer)).sum())
    total = (np.exp(word_lp) * weight(words)).sum(axis=1) + np.exp(eos_lp) + empty + tail
    np.testing.assert_allclose(total, 1.0, atol=1e-10)
    # the posterior predictive too
    predictive = np.exp(open_lm.predictive_log_prob(corpus)[starts + at])
    assert (predictive * weight(words)).sum() + np.exp(eos_lp).mean() + empty.mean() + tail.mean() == \
        pytest.approx(1.0, abs=1e-10)


def test_an_open_vocabulary_prices_every_word_and_a_closed_one_does_not(open_lm):
    ev = open_lm.evaluate(["ab zebra ba"])
    assert ev.oov == 1 and ev.oov_priced
    assert open_lm.predictive_log_prob(["ab zebra"])[1] > open_lm.predictive_log_prob(["ab zzzzzzzzzz"])[1]
    assert open_lm.predictive_log_prob(["ab zebra"])[1] != open_lm.predictive_log_prob(["ab quail"])[1]


def test_sampled_sentences_spell_new_words_outside_the_vocabulary(open_lm):
    sampled = open_lm.sample_sentences(200, random_seed=3, max_tokens=30)
    unknown = sampled.ids == open_lm.vocab_.unk_id
    assert unknown.any()
    new = sampled.words()[unknown]
    assert all(w and w not in open_lm.vocab_ for w in new)
    # generate shows what token_text gives a drawn <unk>: a new word
    rng = np.random.default_rng(0)
    assert all(open_lm.token_text(open_lm.vocab_.unk_id, rng) not in open_lm.vocab_ for _ in range(20))
    assert open_lm.token_text(open_lm.vocab_.id("ab"), rng) == "ab"
    drawn = [t.token for c in open_lm.generate("ab", n=30, max_tokens=8, random_seed=1) for t in c.tokens]
    assert "<unk>" not in drawn


def test_a_loaded_open_model_scores_the_same(open_lm, tmp_path):
    from bayeslm import load

    loaded = load(open_lm.save(tmp_path / "open"))
    assert loaded.open_vocabulary
    text = ["ab zebra ba", "quail a"]
    np.testing.assert_array_equal(loaded.predictive_log_prob(text), open_lm.predictive_log_prob(text))


def test_an_open_vocabulary_model_is_not_exported_as_arpa(open_lm, tmp_path):
    from bayeslm.exceptions import BayesLMError
    from bayeslm.ngram.arpa import write_arpa

    with pytest.raises(BayesLMError, match="an ARPA file is a closed vocabulary"):
        write_arpa(open_lm, tmp_path / "open.arpa")


def test_the_probability_of_an_unknown_word_is_its_share_of_unk(open_lm):
    unk = open_lm.prob("<unk>", "ab")
    zebra = open_lm.prob("zebra", "ab")
    assert zebra["token"] == "zebra"
    predictive = math.exp(open_lm.predictive_log_prob(["ab zebra"])[1])
    assert zebra["mean"] == pytest.approx(predictive, rel=1e-10)
    share = zebra["mean"] / unk["mean"]
    assert zebra["high"] == pytest.approx(unk["high"] * share, rel=1e-12) and 0 < share < 1


def test_the_spelling_model_also_learns_the_training_words_outside_the_vocabulary(tmp_path):
    """With min_count 2 the words seen once are ``<unk>`` in training; the spelling model is fitted
    on the vocabulary's words and on those (each once), equal to one fitted on a vocabulary that
    holds both; a loaded model rebuilds it from the stored words and scores the same."""
    from bayeslm import load

    train = TRAIN + ["ab bba ba", "a abab"]
    lm = PitmanYorLM(order=2, spelling=3, min_count=2, retain=5, sampler_config={**QUICK, "random_seed": 5})
    lm.fit(Corpus.from_texts(train))
    once = sorted({"aab", "bba", "abab"})  # the training words seen once
    assert lm.spelling_words_.tolist() == once and not any(w in lm.vocab_ for w in once)
    regular = [w for w in lm.vocab_.tokens if not w.startswith("<")]
    probe = ["abab", "bba", "bbb", "zab"]
    both = SpellingModel(3).fit(Vocabulary(regular + once))
    np.testing.assert_allclose(lm.spelling_.log_prob(probe), both.log_prob(probe), rtol=1e-13)
    alone = SpellingModel(3).fit(lm.vocab_)
    assert lm.spelling_.log_prob(["abab"])[0] > alone.log_prob(["abab"])[0]
    loaded = load(lm.save(tmp_path / "open"))
    assert loaded.spelling_words_.tolist() == once
    text = ["ab abab ba", "bba a"]
    np.testing.assert_array_equal(loaded.predictive_log_prob(text), lm.predictive_log_prob(text))
