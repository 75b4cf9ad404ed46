"""The report's comparison of models that cut the same text into different tokens.

A word and a character model price the same sentences; the section's figures are checked
against sums of each model's own predictive log probabilities, the stacking weights against
``stacking_weights`` on the same per-sentence values, and text the models price differently
(a lowercasing tokenizer against an exact one) is refused. The models are fitted here: the
test needs two tokenizers on one text.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from corpora import markov_sentences
from sampling import QUICK

import bayeslm as blm
from bayeslm.exceptions import VocabularyMismatchError
from bayeslm.stats.stacking import stacking_weights

TRAIN = markov_sentences(0, 200)
TEST = markov_sentences(3, 25)


def fitted(tokenizer, order: int):
    lm = blm.DirichletLM(order=order, tokenizer=tokenizer.kind, sampler_config={**QUICK, "random_seed": 1})
    lm.fit(blm.Corpus.from_texts(TRAIN, tokenizer=tokenizer))
    return lm


@pytest.fixture(scope="module")
def words():
    return fitted(blm.WordTokenizer(), 2)


@pytest.fixture(scope="module")
def chars():
    return fitted(blm.CharTokenizer(), 4)


def per_sentence_bits(model, lines) -> np.ndarray:
    return np.array([model.predictive_log_prob([line]).sum() / math.log(2) for line in lines])


def test_models_of_two_tokenizers_rank_on_the_same_characters(words, chars):
    comparison = blm.report(words, TEST, compare=[chars], labels=["words", "chars"], replicates=2).data["comparison"]
    rows = {r["label"]: r for r in comparison["models"]}
    n_chars = sum(len(line) + 1 for line in TEST)  # each line and its newline
    assert comparison["characters"] == n_chars and comparison["same_tokens"] is False and comparison["fair"] is True
    e = {"words": per_sentence_bits(words, TEST), "chars": per_sentence_bits(chars, TEST)}
    for label, row in rows.items():
        assert row["characters"] == n_chars and row["text"] == "exact"
        assert row["elpd_sum_bits"] == pytest.approx(e[label].sum(), rel=1e-9)
        assert row["bits_per_character"] == pytest.approx(-e[label].sum() / n_chars, rel=1e-9)
        assert row["elpd_per_token_bits"] is None and row["elpd_diff_per_token_bits"] is None
    best, other = sorted(rows, key=lambda label: -e[label].sum())
    assert rows[best]["rank"] == 1 and rows[best]["elpd_diff_se_per_char_bits"] is None
    d = e[best] - e[other]
    assert rows[other]["elpd_diff_per_char_bits"] == pytest.approx(d.sum() / n_chars, rel=1e-9)
    assert rows[other]["elpd_diff_se_per_char_bits"] == pytest.approx(math.sqrt(d.size * d.var()) / n_chars, rel=1e-9)
    weights = stacking_weights(np.stack([e["words"], e["chars"]]) * math.log(2))
    assert [rows["words"]["stacking_weight"], rows["chars"]["stacking_weight"]] == pytest.approx(weights, abs=1e-9)


def test_text_priced_differently_is_refused(words, chars):
    shouting = [line.upper() for line in TEST]  # the word tokenizer lowercases it, the character one keeps it
    with pytest.raises(VocabularyMismatchError, match="they price different text"):
        blm.report(chars, shouting, compare=[words], replicates=2)


def test_a_closed_vocabulary_with_unseen_words_is_flagged_unfair(words, chars):
    unseen = [line + " zebra" for line in TEST]
    comparison = blm.report(chars, unseen, compare=[words], labels=["chars", "words"], replicates=2).data["comparison"]
    rows = {r["label"]: r for r in comparison["models"]}
    assert rows["words"]["oov"] == len(TEST) and rows["words"]["oov_priced"] is False
    assert comparison["fair"] is False
