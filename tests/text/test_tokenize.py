import json
import re
import string
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayeslm.exceptions import ConfigError
from bayeslm.text.tokenize import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    WhitespaceTokenizer,
    WordTokenizer,
    make_tokenizer,
    tokenizer_from_dict,
)

# The specification of the word tokenizer on ASCII text (independent of the module's regex).
ASCII_SPEC = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[^\sa-z0-9]")


def random_ascii(rng, n):
    chars = np.array(list(string.printable))
    # bias towards apostrophes, letters and spaces so that the interesting cases occur
    extra = np.array(list("''' aAzZ09"))
    pool = np.concatenate([chars, extra])
    return "".join(rng.choice(pool, size=n))


# -- word tokenizer ----------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_word_tokenizer_matches_ascii_regex_on_random_text(seed):
    rng = np.random.default_rng(seed)
    tok = WordTokenizer()
    for _ in range(200):
        text = random_ascii(rng, int(rng.integers(0, 60)))
        assert tok.tokenize(text) == ASCII_SPEC.findall(text.lower()), repr(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Feed'st thee, 1601 times!", ["feed'st", "thee", ",", "1601", "times", "!"]),
        ("ABC123def", ["abc", "123", "def"]),
        ("don't 'quote' it''s", ["don't", "'", "quote", "'", "it", "'", "'", "s"]),
        ("a_b-c", ["a", "_", "b", "-", "c"]),
        ("  \t\n ", []),
        ("", []),
        ("x'", ["x", "'"]),
        ("o'er'er", ["o'er", "'", "er"]),
    ],
)
def test_word_tokenizer_examples(text, expected):
    assert WordTokenizer().tokenize(text) == expected
    # the examples themselves agree with the specification
    assert ASCII_SPEC.findall(text.lower()) == expected


def test_word_tokenizer_non_ascii_letters_are_letters():
    tok = WordTokenizer()
    assert tok.tokenize("Café naïve") == ["café", "naïve"]
    assert tok.tokenize("Straße über ΑΘΗΝΑ") == ["straße", "über", "αθηνα"]
    assert tok.tokenize("l'été, 2024.") == ["l'été", ",", "2024", "."]


def test_word_tokenizer_normalises_decomposed_accents():
    tok = WordTokenizer()
    decomposed = unicodedata.normalize("NFD", "Café naïve")
    assert decomposed != "Café naïve"
    assert tok.tokenize(decomposed) == ["café", "naïve"]


def test_tokenize_lines_is_tokenize_per_line():
    tok = WordTokenizer()
    lines = ["One two", "", "Three, four!"]
    assert tok.tokenize_lines(lines) == [tok.tokenize(line) for line in lines]


# -- whitespace and char tokenizers -------------------------------------------------
def test_whitespace_tokenizer_keeps_unk_and_case():
    tok = WhitespaceTokenizer()
    assert tok.tokenize(" The <unk> cat ,  sat\t<unk>\n") == ["The", "<unk>", "cat", ",", "sat", "<unk>"]
    assert tok.detokenize(["a", "<unk>", "b"]) == "a <unk> b"


def test_char_tokenizer_round_trip():
    tok = CharTokenizer()
    text = "Ab c, dé!"
    assert tok.tokenize(text) == ["A", "b", " ", "c", ",", " ", "d", "é", "!"]
    assert tok.detokenize(tok.tokenize(text)) == text
    assert tok.tokenize("") == []


# -- BPE -----------------------------------------------------------------------------
BPE_LINES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog met on the mat",
    "the cat and the dog sat together",
]


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer(vocab_size=60, min_frequency=1).train(BPE_LINES)


def test_bpe_untrained_raises():
    tok = BPETokenizer(vocab_size=50)
    assert not tok.is_trained
    with pytest.raises(ConfigError, match="not trained"):
        tok.tokenize("the cat")


def test_bpe_trains_and_detokenizes(bpe):
    assert bpe.is_trained
    for line in BPE_LINES + ["the log and the mat", "cat dog"]:
        tokens = bpe.tokenize(line)
        assert tokens, line
        assert "<unk>" not in tokens
        assert bpe.detokenize(tokens) == line
    # frequent words become single tokens; the pieces concatenate to the text
    tokens = bpe.tokenize("the cat")
    assert "".join(tokens).replace("\u2581", " ").strip() == "the cat"
    assert bpe.tokenize_lines(BPE_LINES) == [bpe.tokenize(line) for line in BPE_LINES]


def test_bpe_round_trips_through_dict(bpe):
    data = json.loads(json.dumps(bpe.to_dict()))
    assert data["kind"] == "bpe"
    again = tokenizer_from_dict(data)
    assert isinstance(again, BPETokenizer)
    assert again.is_trained
    assert again == bpe
    for line in BPE_LINES + ["a log met the dog"]:
        assert again.tokenize(line) == bpe.tokenize(line)
        assert again.detokenize(again.tokenize(line)) == line


def test_bpe_bad_options():
    with pytest.raises(ConfigError, match="tokenizer.vocab_size must be at least 2, got 1"):
        BPETokenizer(vocab_size=1)
    with pytest.raises(ConfigError, match="invalid BPE"):
        BPETokenizer(model_json="{not json")


# -- factory -------------------------------------------------------------------------
@pytest.mark.parametrize("kind, cls", [("word", WordTokenizer), ("whitespace", WhitespaceTokenizer), ("char", CharTokenizer)])
def test_make_tokenizer_and_dict_round_trip(kind, cls):
    tok = make_tokenizer(kind)
    assert type(tok) is cls
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert type(again) is cls and again == tok and hash(again) == hash(tok)
    assert tok != make_tokenizer("word" if kind != "word" else "char")


def test_default_tokenizer_is_word():
    assert isinstance(make_tokenizer(), WordTokenizer)


def test_unknown_kind_raises_config_error():
    with pytest.raises(ConfigError, match="unknown tokenizer kind"):
        make_tokenizer("sentencepiece")
    with pytest.raises(ConfigError, match="unknown tokenizer kind"):
        tokenizer_from_dict({"kind": "nope"})
    with pytest.raises(ConfigError, match="a tokenizer definition needs a 'kind'"):
        tokenizer_from_dict({"vocab_size": 3})
    with pytest.raises(ConfigError, match="a tokenizer definition needs a 'kind'"):
        tokenizer_from_dict(["word"])


def test_options_for_optionless_kind_raise():
    with pytest.raises(ConfigError, match="takes no options"):
        make_tokenizer("word", vocab_size=10)


def test_tokenizer_is_abstract():
    with pytest.raises(TypeError, match="abstract class Tokenizer"):
        Tokenizer()


# -- many lines at once -------------------------------------------------------------
#: characters where splitting the joined text could differ from one line at a time: case
#: mappings that depend on context (final sigma) or change length, combining marks at a line's
#: start or end, apostrophes, digits, white space that is not a space, line breaks inside a line
TRICKY = ["Σ", "ΟΔΟΣ", "İ", "ﬁ", "K", "e\u0301", "\u0301", "'", "''", "9", "_", "\t", "\r", "\x1c", "\u2028",
          "\x85", "\n", " ", "a", "Z", "é", "<s>", "<unk>"]
LINE_PARTS = st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), max_size=8).map("".join)


@pytest.mark.parametrize("tokenizer", [WordTokenizer(), WhitespaceTokenizer(), CharTokenizer()], ids=repr)
@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(lines=st.lists(LINE_PARTS, max_size=6))
def test_split_lines_are_the_tokens_of_each_line_alone(tokenizer, lines):
    tokens, counts = tokenizer.split_lines(lines)
    per_line = [tokenizer.tokenize(line) for line in lines]
    assert tokens.dtype == object and counts.dtype == np.int64
    assert counts.tolist() == [len(t) for t in per_line]
    assert tokens.tolist() == [t for line in per_line for t in line]


@pytest.mark.parametrize("tokenizer", [WordTokenizer(), WhitespaceTokenizer(), CharTokenizer()], ids=repr)
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(lines=st.lists(LINE_PARTS | st.sampled_from(["a b", "a  b", "A b", "x, y", "x , y", " a"]), max_size=6))
def test_spells_lines_is_spells_of_each_line(tokenizer, lines):
    tokens, counts = tokenizer.split_lines(lines)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    expected = [tokenizer.spells(line, tokenizer.tokenize(line)) for line in lines]
    assert tokenizer.spells_lines(lines, tokens, offsets).tolist() == expected


def test_split_lines_of_the_ascii_and_the_unicode_pattern_agree_on_ascii_text():
    """ASCII text takes a pattern with [a-z] and [0-9] for letters and digits: the same tokens."""
    rng = np.random.default_rng(11)
    lines = [random_ascii(rng, int(rng.integers(0, 60))) for _ in range(300)]
    tokens, counts = WordTokenizer().split_lines(lines)
    assert tokens.tolist() == [t for line in lines for t in ASCII_SPEC.findall(line.lower())]
    assert counts.tolist() == [len(ASCII_SPEC.findall(line.lower())) for line in lines]


def test_bpe_split_lines_and_spells_lines_are_per_line():
    pytest.importorskip("tokenizers")
    lines = ["the cat sat", "a dog ran on the mat", "", "cats and dogs"]
    bpe = BPETokenizer(vocab_size=40).train(lines * 5)
    tokens, counts = bpe.split_lines(lines)
    assert tokens.tolist() == [t for line in lines for t in bpe.tokenize(line)]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    assert bpe.spells_lines(lines, tokens, offsets).tolist() == [bpe.spells(x, bpe.tokenize(x)) for x in lines]
