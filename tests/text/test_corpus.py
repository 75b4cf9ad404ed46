import re
from collections import Counter

import numpy as np
import pytest

from bayeslm.exceptions import CorpusError, VocabularyMismatchError
from bayeslm.text.corpus import Corpus, demo_corpus, resolve_paths
from bayeslm.text.tokenize import CharTokenizer, WhitespaceTokenizer, WordTokenizer
from bayeslm.text.vocab import UNK, Vocabulary

SPEC = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[^\sa-z0-9]")


def sentences_of(corpus):
    """Every sentence as a list of token strings."""
    return [corpus.vocab.decode(corpus[i]) for i in range(len(corpus))]


def spec_sentences(text):
    return [toks for toks in (SPEC.findall(line.lower()) for line in text.splitlines()) if toks]


TEXT_A = "The cat sat on the mat.\n\n  The dog sat, too!  \nCats and dogs: 2 of them\n"
TEXT_B = "A new line\nwith the dog and a bird\n"


# -- construction from strings -----------------------------------------------------
def test_from_texts_tokens_and_sizes():
    c = Corpus.from_texts(TEXT_A)
    expected = spec_sentences(TEXT_A)
    assert sentences_of(c) == expected
    assert c.n_sentences == len(c) == 3
    assert c.n_tokens == sum(map(len, expected))
    assert c.sentence_lengths.tolist() == [len(s) for s in expected]
    assert c.offsets[0] == 0 and c.offsets[-1] == c.ids.size
    assert c.ids.dtype == np.int32
    assert isinstance(c.tokenizer, WordTokenizer)
    # every type gets an id, ordered by count then alphabet
    counts = Counter(t for s in expected for t in s)
    assert c.vocab.tokens[3:] == sorted(counts, key=lambda t: (-counts[t], t))
    assert c.type_counts() == dict(counts)
    assert c.decode_lines() == [" ".join(s) for s in expected]


def test_from_texts_list_and_line_endings():
    c = Corpus.from_texts(["a b\r\nc d\rE", "", "f"])
    assert sentences_of(c) == [["a", "b"], ["c", "d"], ["e"], ["f"]]


def test_from_texts_with_given_vocab_maps_unknowns():
    vocab = Vocabulary(["the", "sat"])
    c = Corpus.from_texts("the cat sat", vocab=vocab)
    assert c.vocab is vocab
    assert sentences_of(c) == [["the", UNK, "sat"]]


def test_whitespace_tokenizer_unk_is_unknown_id():
    c = Corpus.from_texts("the <unk> sat\n<unk> <s> </s>", tokenizer=WhitespaceTokenizer())
    assert c[0].tolist()[1] == c.vocab.unk_id
    assert c[1].tolist() == [c.vocab.unk_id] * 3  # literal markers are not markers
    assert UNK not in c.vocab.tokens[3:]
    assert c.decode_lines() == ["the <unk> sat", "<unk> <unk> <unk>"]
    assert c.decode_lines(unk="?") == ["the ? sat", "? ? ?"]


def test_char_tokenizer_corpus():
    c = Corpus.from_texts("ab a\nb", tokenizer=CharTokenizer())
    assert sentences_of(c) == [["a", "b", " ", "a"], ["b"]]


def test_no_tokens_errors():
    with pytest.raises(CorpusError, match="no tokens"):
        Corpus.from_texts(["", "   \n\t\n"])
    with pytest.raises(CorpusError, match="no tokens"):
        Corpus.from_texts("")
    with pytest.raises(CorpusError, match="no tokens"):
        Corpus.from_lines(["", ""])


def test_constructor_validates():
    v = Vocabulary(["a"])
    with pytest.raises(CorpusError, match="offsets must rise from 0 to the number of tokens"):
        Corpus([3, 3], [0, 1], v)  # offsets do not end at n_tokens
    with pytest.raises(CorpusError, match="offsets must rise from 0 to the number of tokens"):
        Corpus([3, 3], [0, 2, 1, 2], v)  # offsets fall
    with pytest.raises(CorpusError, match="needs 1-d ids and at least one offset"):
        Corpus([3], [], v)
    with pytest.raises(VocabularyMismatchError, match="token ids run up to 4 but the vocabulary has 4 tokens"):
        Corpus([3, 4], [0, 2], v)
    with pytest.raises(VocabularyMismatchError, match="token ids run up to -1 but the vocabulary has 4 tokens"):
        Corpus([-1], [0, 1], v)


# -- files -------------------------------------------------------------------------
@pytest.fixture
def text_dir(tmp_path):
    d = tmp_path / "texts"
    d.mkdir()
    (d / "b.txt").write_text(TEXT_B, encoding="utf-8")
    (d / "a.txt").write_text(TEXT_A, encoding="utf-8")
    (d / "notes.md").write_text("ignored markdown\n", encoding="utf-8")
    (d / "data.csv").write_text("ignored,csv\n", encoding="utf-8")
    (d / "sub").mkdir()
    (d / "sub" / "c.txt").write_text("nested file\n", encoding="utf-8")
    return d


def test_from_paths_file(text_dir):
    c = Corpus.from_paths(text_dir / "b.txt")
    assert sentences_of(c) == spec_sentences(TEXT_B)
    assert c.sources == (str(text_dir / "b.txt"),)


def test_from_paths_directory_sorted_txt_only(text_dir):
    c = Corpus.from_paths(text_dir)
    assert sentences_of(c) == spec_sentences(TEXT_A) + spec_sentences(TEXT_B)
    assert [p.name for p in resolve_paths(text_dir)] == ["a.txt", "b.txt"]
    assert c.sources == (str(text_dir / "a.txt"), str(text_dir / "b.txt"))


def test_from_paths_glob(text_dir):
    c = Corpus.from_paths(str(text_dir / "*.txt"))
    assert sentences_of(c) == spec_sentences(TEXT_A) + spec_sentences(TEXT_B)
    c = Corpus.from_paths(str(text_dir / "**" / "*.txt"))
    assert sentences_of(c) == spec_sentences(TEXT_A) + spec_sentences(TEXT_B) + [["nested", "file"]]
    c = Corpus.from_paths(str(text_dir / "*.md"))
    assert sentences_of(c) == [["ignored", "markdown"]]


def test_from_paths_several_sources_in_order(text_dir):
    c = Corpus.from_paths([text_dir / "sub" / "c.txt", str(text_dir / "b.txt")])
    assert sentences_of(c) == [["nested", "file"]] + spec_sentences(TEXT_B)


def test_missing_path(tmp_path):
    with pytest.raises(CorpusError, match="no such file or directory"):
        Corpus.from_paths(tmp_path / "absent.txt")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty"):
        Corpus.from_paths(p)
    p.write_text(" \n\n\t \r\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty"):
        Corpus.from_paths(p)


def test_directory_without_txt(tmp_path):
    (tmp_path / "readme.md").write_text("no text files here\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"no \*\.txt files"):
        Corpus.from_paths(tmp_path)


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(CorpusError, match="glob pattern matches no files"):
        Corpus.from_paths(str(tmp_path / "*.nothing"))


def test_no_input_files():
    with pytest.raises(CorpusError, match="no input files"):
        Corpus.from_paths([])


def test_invalid_utf8_names_file_and_offset(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"good line\n\xff bad")
    with pytest.raises(CorpusError, match=r"bad\.txt.*byte offset 10") as info:
        Corpus.from_paths(p)
    assert str(p) in str(info.value)


# -- transformations ---------------------------------------------------------------
@pytest.fixture
def numbered():
    """100 distinct sentences of varied length."""
    lines = [f"line {i} " + " ".join(["w"] * (i % 5)) for i in range(100)]
    return Corpus.from_texts("\n".join(lines))


def test_select(numbered):
    idx = [5, 2, 2, 99, 0]
    sel = numbered.select(idx)
    full = sentences_of(numbered)
    assert sentences_of(sel) == [full[i] for i in idx]
    assert sel.vocab is numbered.vocab
    empty = numbered.select([])
    assert empty.n_sentences == 0 and empty.n_tokens == 0


def test_split_disjoint_complete_ordered(numbered):
    first, rest = numbered.split(0.8, random_seed=3)
    assert (first.n_sentences, rest.n_sentences) == (80, 20)
    full = numbered.decode_lines()
    a, b = first.decode_lines(), rest.decode_lines()
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(full)
    # each part keeps the original order
    pos = {line: i for i, line in enumerate(full)}
    assert [pos[x] for x in a] == sorted(pos[x] for x in a)
    assert [pos[x] for x in b] == sorted(pos[x] for x in b)
    assert first.n_tokens + rest.n_tokens == numbered.n_tokens


def test_split_reproducible(numbered):
    one = numbered.split(0.7, random_seed=11)
    two = numbered.split(0.7, random_seed=11)
    other = numbered.split(0.7, random_seed=12)
    assert one[0].decode_lines() == two[0].decode_lines()
    assert one[1].decode_lines() == two[1].decode_lines()
    assert one[0].decode_lines() != other[0].decode_lines()


def test_split_errors(numbered):
    for fraction in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(CorpusError, match="fraction"):
            numbered.split(fraction)
    tiny = Corpus.from_texts("a\nb")
    with pytest.raises(CorpusError, match="cannot split"):
        tiny.split(0.1)


def test_with_vocabulary_remaps_by_token_string():
    c = Corpus.from_texts(TEXT_A)
    target = Vocabulary(["dog", "zebra", "the", "sat", "."])
    r = c.with_vocabulary(target)
    assert r.vocab is target
    expected = [[t if t in target else UNK for t in s] for s in sentences_of(c)]
    assert sentences_of(r) == expected
    assert np.array_equal(r.offsets, c.offsets)
    assert c.with_vocabulary(Vocabulary(c.vocab.tokens)) is c  # equal vocabulary: no copy


def test_with_vocabulary_checks_tokenizer():
    c = Corpus.from_texts(TEXT_A)
    with pytest.raises(VocabularyMismatchError, match=r"tokenised with WordTokenizer\(\) but the model uses CharTokenizer"):
        c.with_vocabulary(c.vocab, tokenizer=CharTokenizer())
    assert c.with_vocabulary(c.vocab, tokenizer=WordTokenizer()) is c


def test_concat():
    a, b = Corpus.from_texts(TEXT_A), Corpus.from_texts(TEXT_B)
    ab = a.concat(b)
    assert ab.vocab is a.vocab
    expected = sentences_of(a) + [[t if t in a.vocab else UNK for t in s] for s in sentences_of(b)]
    assert sentences_of(ab) == expected
    assert ab.n_sentences == a.n_sentences + b.n_sentences
    assert ab.sources == a.sources + b.sources


# -- padding -----------------------------------------------------------------------
def naive_padded(corpus, order):
    bos, eos = corpus.vocab.bos_id, corpus.vocab.eos_id
    stream, targets = [], []
    for i in range(len(corpus)):
        stream.extend([bos] * (order - 1))
        for tok in list(corpus[i]) + [eos]:
            targets.append(len(stream))
            stream.append(int(tok))
    return stream, targets


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_padded_matches_naive(order):
    rng = np.random.default_rng(order)
    vocab = Vocabulary([f"t{i}" for i in range(8)])
    lengths = rng.integers(0, 6, size=30)
    ids = rng.integers(3, len(vocab), size=int(lengths.sum()))
    c = Corpus(ids, np.concatenate([[0], np.cumsum(lengths)]), vocab)
    stream, targets = c.padded(order)
    exp_stream, exp_targets = naive_padded(c, order)
    assert stream.tolist() == exp_stream
    assert targets.tolist() == exp_targets
    assert targets.size == c.n_tokens + c.n_sentences
    assert not np.any(stream[targets] == vocab.bos_id)
    assert np.sum(stream == vocab.eos_id) == c.n_sentences
    assert np.sum(stream == vocab.bos_id) == (order - 1) * c.n_sentences


def test_padded_example_and_bad_order():
    c = Corpus.from_texts("x y\nz")
    x, y, z = (c.vocab.id(t) for t in "xyz")
    stream, targets = c.padded(3)
    assert stream.tolist() == [1, 1, x, y, 2, 1, 1, z, 2]
    assert targets.tolist() == [2, 3, 4, 7, 8]
    with pytest.raises(CorpusError, match="order"):
        c.padded(0)


# -- demo --------------------------------------------------------------------------
def test_demo_corpus():
    from pydoc_data.topics import topics

    c = demo_corpus()
    n_lines = sum(
        1
        for text in topics.values()
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if line.strip()
    )
    assert c.n_sentences == n_lines
    assert c.n_sentences > 2000
    assert c.n_tokens > 5 * c.n_sentences
    assert c.sources == ("pydoc_data.topics",)
    assert "def" in c.vocab and "the" in c.vocab


# -- reading many lines at once ---------------------------------------------------------
def corpus_one_line_at_a_time(lines, tokenizer, vocab=None):
    """(ids, offsets, vocabulary, chars, bytes, exact, words) as a corpus of ``lines`` is defined: each
    line tokenised alone (lines without tokens dropped), a vocabulary of the type counts, each token
    looked up, its surface its own vocabulary string plus the separator before it."""
    kept = [(line, tokens) for line in lines if (tokens := tokenizer.tokenize(line))]
    flat = [t for _, tokens in kept for t in tokens]
    own = Vocabulary.build(Counter(flat))
    own_ids = own.encode(flat)
    own_words = [own.tokens[i] for i in own_ids]  # a literal <s> or </s> is <unk>
    first = np.concatenate([[True] + [False] * (len(tokens) - 1) for _, tokens in kept])
    sep = tokenizer.separator
    chars = [len(w) + (0 if f else len(sep)) for w, f in zip(own_words, first)]
    nbytes = [len(w.encode()) + (0 if f else len(sep.encode())) for w, f in zip(own_words, first)]
    ids, words = own_ids, None
    if vocab is not None:
        ids = np.array([vocab.id(w) for w in own_words], dtype=np.int32)
        if any(i == vocab.unk_id and w != UNK for i, w in zip(ids, own_words)):
            words = own_words
    offsets = np.cumsum([0] + [len(tokens) for _, tokens in kept])
    exact = [tokenizer.spells(line, tokens) for line, tokens in kept]
    return ids, offsets, (own if vocab is None else vocab), chars, nbytes, exact, words


READ_LINES = ["The cat sat.", "", "  ", "Σίσυφος ΟΔΟΣ café e\u0301te", "don't 'tis o'er 12ab3 __x__",
              "<s> the </s> <unk> zebra", "the cat", "a  b\tc", "ﬁne İstanbul", "the cat sat"]


@pytest.mark.parametrize("tokenizer", [WordTokenizer(), WhitespaceTokenizer(), CharTokenizer()], ids=repr)
@pytest.mark.parametrize("with_vocab", [False, True])
def test_from_lines_is_the_corpus_read_one_line_at_a_time(tokenizer, with_vocab):
    vocab = Vocabulary(["the", "cat", "sat", "a", "t", "e", "<s>", "zebra"]) if with_vocab else None
    corpus = Corpus.from_lines(READ_LINES, tokenizer, vocab)
    ids, offsets, expected_vocab, chars, nbytes, exact, words = corpus_one_line_at_a_time(READ_LINES, tokenizer, vocab)
    assert corpus.vocab == expected_vocab
    assert corpus.ids.tolist() == list(ids) and corpus.offsets.tolist() == list(offsets)
    assert corpus.surface.chars.tolist() == chars and corpus.surface.bytes.tolist() == nbytes
    assert corpus.surface.exact.tolist() == exact
    assert (corpus.surface.words is None) == (words is None)
    if words is not None:
        assert corpus.surface.words.tolist() == words


def test_from_texts_lines_are_those_of_each_text():
    texts = ["a b\r", "\nc\r\nd", "", "e\rf  \n\n", "g"]
    corpus = Corpus.from_texts(texts)
    assert sentences_of(corpus) == [["a", "b"], ["c"], ["d"], ["e"], ["f"], ["g"]]  # every text's own lines
