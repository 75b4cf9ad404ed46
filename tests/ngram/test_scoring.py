"""Scoring text with an n-gram model: the vectorised path (one tokenizer pass over all lines,
per-type encoding, lookups of seen rows only, Pitman-Yor's seen-first levels) against a
computation one line, one token and one position at a time from the dense next-token
distributions, for every family and inference mode, closed and open vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
from corpora import NGRAM_TRAIN
from sampling import QUICK

from bayeslm import Corpus, DirichletLM, PitmanYorLM
from bayeslm.ngram.pitman_yor.scoring import PositionIndex, SeenFirst

#: words the training text has and words it lacks, capitals, punctuation, a one-word line,
#: a blank line and a line of unknown words only: sentence starts and ends at every order
LINES = [
    "the cat sat on the mat",
    "The big red DOG ran, on the log!",
    "",
    "cat",
    "zebra quagga",
    "the zebra sat on a mat of ochre",
    "on on on the the mat mat",
    "dog ran   big mat red cat the",
]

FAMILIES = ["dirichlet_lm", "pitman_yor_lm", "ikn_lm", "fast_lm"]


def positions_one_by_one(lm, lines):
    """(contexts (position, order - 1), tokens (position,), words) of every scored position, built
    per line and per token: each line tokenised alone, each token looked up in the vocabulary,
    ``order - 1`` times ``<s>`` before a sentence and ``</s>`` after it (its word None)."""
    vocab, width = lm.vocab_, lm.order - 1
    rows, tokens, words = [], [], []
    for line in lines:
        found = lm.tokenizer_.tokenize(line)
        if not found:
            continue
        history = [vocab.bos_id] * width
        for word, token in zip([*found, None], [vocab.id(w) for w in found] + [vocab.eos_id]):
            rows.append(history[len(history) - width:])
            tokens.append(token)
            words.append(word)
            history.append(token)
    return np.array(rows, dtype=np.int64).reshape(len(tokens), width), np.array(tokens), words


def spelled_share(lm, tokens, words) -> np.ndarray:
    """log P_0(word) - log P_0(<unk>) where an unknown word is scored through the spelling model, else 0."""
    out = np.zeros(len(tokens))
    if lm.spelling_ is None:
        return out
    unk = lm.vocab_.unk_id
    for i, (token, word) in enumerate(zip(tokens, words)):
        if token == unk and word is not None:
            out[i] = lm.spelling_.log_base([word])[0] - np.log(lm.base_probs()[unk])
    return out


def dense_predictive_log_prob(lm, lines) -> np.ndarray:
    contexts, tokens, words = positions_one_by_one(lm, lines)
    return np.log(lm.predictive_probs(contexts)[np.arange(tokens.size), tokens]) + spelled_share(lm, tokens, words)


def dense_log_prob_draws(lm, lines) -> np.ndarray:
    """(sample, position): log p(token | context) under each posterior sample, from next_token_probs."""
    contexts, tokens, words = positions_one_by_one(lm, lines)
    probs = lm.next_token_probs(contexts)[:, np.arange(tokens.size), tokens]
    return np.log(probs) + spelled_share(lm, tokens, words)


@pytest.fixture(scope="module", params=["dirichlet", "pitman-yor-fast"])
def open_lm(request):
    """A trigram of each family with a spelling model (character trigram) under the unigram."""
    make = {"dirichlet": lambda: DirichletLM(order=3, spelling=3, sampler_config={**QUICK, "random_seed": 7}),
            "pitman-yor-fast": lambda: PitmanYorLM(order=3, spelling=3, inference="fast", retain=3,
                                                   sampler_config={**QUICK, "random_seed": 7})}[request.param]
    lm = make()
    lm.fit(Corpus.from_texts(NGRAM_TRAIN))
    return lm


def test_the_text_has_unknown_words_and_every_kind_of_position(dirichlet_lm):
    _, tokens, words = positions_one_by_one(dirichlet_lm, LINES)
    unknown = [w for t, w in zip(tokens, words) if t == dirichlet_lm.vocab_.unk_id]
    assert {"zebra", "quagga", "ochre"} <= set(unknown)
    assert (tokens == dirichlet_lm.vocab_.eos_id).sum() == len([line for line in LINES if line.strip()])


@pytest.mark.parametrize("family", FAMILIES)
def test_predictive_log_prob_equals_the_dense_distributions_position_by_position(family, request):
    lm = request.getfixturevalue(family)
    np.testing.assert_allclose(lm.predictive_log_prob(LINES), dense_predictive_log_prob(lm, LINES), rtol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_log_probs_per_draw_equal_the_dense_distributions_of_each_draw(family, request):
    lm = request.getfixturevalue(family)
    got = lm.token_log_prob(LINES).values  # (chain, draw, position)
    np.testing.assert_allclose(got.reshape(-1, got.shape[-1]), dense_log_prob_draws(lm, LINES), rtol=1e-12)


def test_open_vocabulary_scores_equal_the_dense_distributions_and_spellings(open_lm):
    np.testing.assert_allclose(open_lm.predictive_log_prob(LINES), dense_predictive_log_prob(open_lm, LINES),
                               rtol=1e-12)
    got = open_lm.token_log_prob(LINES).values
    np.testing.assert_allclose(got.reshape(-1, got.shape[-1]), dense_log_prob_draws(open_lm, LINES), rtol=1e-12)


@pytest.mark.parametrize("family", ["pitman_yor_lm", "ikn_lm", "fast_lm"])
def test_pitman_yor_seen_first_scoring_is_the_masked_rule_to_the_last_digit(family, request):
    """The seen-first levels change the layout, not the arithmetic: the predictive equals the mean of
    :meth:`PitmanYorLM._probs` (every position under a mask) bit for bit."""
    lm = request.getfixturevalue(family)
    index, tokens = lm._position_index(lm.encode(LINES))
    masked = sum(lm._probs(s, index, tokens) for s in range(lm.n_samples))
    np.testing.assert_array_equal(lm.predictive_log_prob(LINES), np.log(masked / lm.n_samples))


def test_seen_first_puts_each_orders_seen_contexts_first(fast_lm):
    index, tokens = fast_lm._position_index(fast_lm.encode(LINES))
    assert isinstance(index, PositionIndex)
    seen = SeenFirst(index, tokens, np.full(len(fast_lm.vocab_), -1))
    assert sorted(seen.order.tolist()) == list(range(index.contexts[0].size))
    assert seen.sizes[0] == index.contexts[0].size and seen.sizes == sorted(seen.sizes, reverse=True)
    for ctx, size in zip(index.contexts, seen.sizes):
        in_order = ctx[seen.order]
        assert np.all(in_order[:size] >= 0) and np.all(in_order[size:] < 0)
    assert np.array_equal(seen.tokens, tokens[seen.order])
    assert 0 < seen.sizes[-1] < seen.sizes[0]  # some trigram contexts seen, some not
