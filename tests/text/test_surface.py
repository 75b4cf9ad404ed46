"""The text behind a corpus' tokens: characters and bytes per token, exactness, the words as read."""

from __future__ import annotations

import numpy as np
import pytest

from bayeslm.text.corpus import Corpus
from bayeslm.text.tokenize import make_tokenizer

LINES = ["Hello, World!", "ab  cd", "naïve café 12ab", "x"]


@pytest.mark.parametrize("kind", ["word", "whitespace", "char"])
def test_sentence_characters_are_those_of_the_detokenized_tokens_and_a_newline(kind):
    tokenizer = make_tokenizer(kind)
    corpus = Corpus.from_texts(LINES, tokenizer=tokenizer)
    texts = [tokenizer.detokenize(tokenizer.tokenize(line)) for line in LINES]
    chars, nbytes = corpus.surface.sentence_totals(corpus.offsets)
    assert chars.tolist() == [len(t) + 1 for t in texts]
    assert nbytes.tolist() == [len(t.encode("utf-8")) + 1 for t in texts]
    assert corpus.n_chars == sum(len(t) + 1 for t in texts) and corpus.n_bytes == int(nbytes.sum())
    assert corpus.surface.exact.tolist() == [t == line for t, line in zip(texts, LINES)]


def test_only_the_character_tokenizer_keeps_every_line_exactly():
    assert Corpus.from_texts(LINES, tokenizer=make_tokenizer("char")).exact
    word = Corpus.from_texts(LINES, tokenizer=make_tokenizer("word"))
    assert not word.exact and word.surface.exact.tolist() == [False, False, False, True]
    assert Corpus.from_texts(["ab cd"], tokenizer=make_tokenizer("whitespace")).exact


def test_bpe_counts_its_word_marker_as_the_space_it_stands_for():
    tokenizer = make_tokenizer("bpe", vocab_size=40, min_frequency=1)
    corpus = Corpus.from_texts(["ab cd ab", "cd ab"], tokenizer=tokenizer)
    assert corpus.exact and corpus.n_chars == len("ab cd ab") + 1 + len("cd ab") + 1
    assert corpus.n_bytes == corpus.n_chars  # the marker is three bytes, the space it stands for one


def test_select_concat_and_positions_keep_the_surface():
    corpus = Corpus.from_texts(LINES, tokenizer=make_tokenizer("word"))
    chosen = corpus.select([2, 0])
    assert chosen.surface.sentence_totals(chosen.offsets)[0].tolist() == [len("naïve café 12 ab") + 1,
                                                                          len("hello , world !") + 1]
    both = chosen.concat(corpus.select([3]))
    assert both.n_chars == chosen.n_chars + 2 and both.surface.exact.tolist() == [False, False, True]
    chars, nbytes = corpus.select([3, 1]).surface.position_lengths(corpus.select([3, 1]).offsets)
    assert chars.tolist() == [1, 1, 2, 3, 1]  # "x", </s>, "ab", " cd", </s>


def test_a_smaller_vocabulary_keeps_the_words_it_does_not_know():
    known = Corpus.from_texts(["the cat"]).vocab
    corpus = Corpus.from_texts(["the zebra", "the cat"], vocab=known)
    assert corpus.ids[1] == known.unk_id
    assert corpus.words().tolist() == ["the", "zebra", "the", "cat"]
    assert corpus.n_chars == len("the zebra") + 1 + len("the cat") + 1
    assert corpus.select([0]).words().tolist() == ["the", "zebra"]
    assert corpus.concat(Corpus.from_texts(["cat moon"])).words().tolist()[-2:] == ["cat", "moon"]
    assert Corpus.from_texts(["the cat"], vocab=known).surface.words is None  # nothing unknown: nothing kept


def test_a_corpus_made_from_ids_counts_its_tokens_text():
    vocab = Corpus.from_texts(["ab c"]).vocab
    corpus = Corpus(np.array([vocab.id("ab"), vocab.id("c")]), np.array([0, 2]), vocab)
    assert corpus.n_chars == len("ab c") + 1 and not corpus.exact
