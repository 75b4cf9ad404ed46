"""Tokenizers: one line of text in, a list of token strings out.

Four kinds, all serialisable to a JSON-ready dict (``to_dict`` / ``tokenizer_from_dict``):

- ``word`` (default): lowercase, then words (an inner apostrophe kept whole, as in
  ``feed'st``), runs of digits, and every other non-space character on its own. On ASCII
  text this is the regex ``[a-z]+(?:'[a-z]+)?|[0-9]+|[^\\sa-z0-9]``; non-ASCII letters
  count as letters (text is NFC-normalised first so accents stay on their letters).
- ``whitespace``: the text is already tokenised; split on white space. A literal
  ``<unk>`` is the unknown token, as in the usual pre-processed benchmark corpora.
- ``char``: every character, spaces included, is a token.
- ``bpe``: byte-pair encoding trained with the ``tokenizers`` library (imported lazily).

Tokenizers never see sentence boundaries: a corpus is one sentence per non-empty line,
and the n-gram models add ``<s>`` / ``</s>`` themselves. ``normalisation`` says what
:meth:`Tokenizer.detokenize` of a line's tokens changes in it (the text whose characters
bits per character counts; :mod:`bayeslm.text.surface`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from abc import ABC, abstractmethod
from itertools import chain
from typing import Iterable, Sequence

import numpy as np

from bayeslm.exceptions import ConfigError

__all__ = [
    "Tokenizer",
    "WordTokenizer",
    "WhitespaceTokenizer",
    "CharTokenizer",
    "BPETokenizer",
    "make_tokenizer",
    "tokenizer_from_dict",
]

# Letters are word characters that are neither digits nor the underscore.
_LETTERS = r"[^\W\d_]+"
WORD_PATTERN = re.compile(rf"{_LETTERS}(?:'{_LETTERS})?|\d+|\S")
#: WORD_PATTERN that also finds line breaks: many lines split in one pass over their text
_LINES_PATTERN = re.compile(rf"{WORD_PATTERN.pattern}|\n")
#: the same on lowercase ASCII text, where letters are [a-z] and digits [0-9] (1.5x faster)
_ASCII_LINES_PATTERN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|\S|\n")
#: the word-start marker of the BPE's Metaspace pre-tokenizer (a space in the text)
METASPACE = "\u2581"


class Tokenizer(ABC):
    """Turns lines of text into token strings and back."""

    kind: str = ""
    #: string placed between tokens by :meth:`detokenize`
    separator: str = " "
    #: what :meth:`detokenize` of the tokens changes in a line ("" when nothing: the text is exact)
    normalisation: str = ""

    @abstractmethod
    def tokenize(self, line: str) -> list[str]:
        """Tokens of one line (no sentence markers)."""

    def tokenize_lines(self, lines: Iterable[str]) -> list[list[str]]:
        """Tokens of many lines; subclasses may batch this."""
        return [self.tokenize(line) for line in lines]

    def split_lines(self, lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The tokens of many lines in one flat object array, and how many each line has (int64, (line,)).

        The same tokens as :meth:`tokenize_lines`; subclasses may split the whole text at once.
        """
        token_lists = self.tokenize_lines(lines)
        counts = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        return np.array(list(chain.from_iterable(token_lists)), dtype=object), counts

    def spells_lines(self, lines: Sequence[str], tokens: Sequence[str], offsets: np.ndarray) -> np.ndarray:
        """:meth:`spells` of every line: bool (line,); line i's tokens are ``tokens[offsets[i]:offsets[i + 1]]``.

        Here :meth:`detokenize` joins tokens by ``separator``, so all tokens are joined once and
        each line is compared with its stretch of that text (a tokenizer that detokenizes
        otherwise overrides this).
        """
        tokens = _as_list(tokens)
        width = len(self.separator)
        text = self.separator.join(tokens)
        starts = _token_starts(text, tokens, self.separator)
        begin = starts[offsets[:-1]]
        end = np.maximum(starts[offsets[1:]] - width, begin)  # a line without tokens spells ""
        return np.array([line == text[a:b] for line, a, b in zip(lines, begin.tolist(), end.tolist())], dtype=bool)

    def detokenize(self, tokens: Iterable[str]) -> str:
        """Text of a token sequence, as close to the original as the tokenizer allows."""
        return self.separator.join(tokens)

    def surface(self, token: str) -> str:
        """The text one token stands for in :meth:`detokenize` (itself, but for BPE's word marker)."""
        return token

    def spells(self, line: str, tokens: list[str]) -> bool:
        """Whether :meth:`detokenize` of ``tokens`` (the tokens of ``line``) gives ``line`` back exactly."""
        return self.detokenize(tokens) == line

    def spelled_lengths(self, tokens: Sequence[str], offsets: np.ndarray):
        """(characters, bytes) of :meth:`detokenize` per line (line i's tokens are
        ``tokens[offsets[i]:offsets[i + 1]]``), int64 arrays; None when they are the sums of the
        tokens' :meth:`surface` and separators (every tokenizer but BPE)."""
        return None

    @property
    def is_trained(self) -> bool:
        return True

    def train(self, lines: Iterable[str]) -> "Tokenizer":
        """Learn what the tokenizer needs from training text (only BPE learns)."""
        return self

    def to_dict(self) -> dict:
        return {"kind": self.kind}

    def __eq__(self, other) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class WordTokenizer(Tokenizer):
    """Lowercased words, digit runs and single punctuation characters."""

    kind = "word"
    normalisation = "lowercased (NFC), one space between tokens"

    def tokenize(self, line: str) -> list[str]:
        if not line.isascii():
            line = unicodedata.normalize("NFC", line)
        return WORD_PATTERN.findall(line.lower())

    def split_lines(self, lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`tokenize` of every line, in one pass of the pattern over the lines' text.

        The lines are joined by line breaks, which the pattern also finds; NFC and lowercasing
        never carry across a line break, so each line's tokens are its own.
        """
        text = "\n".join(lines)
        if text.count("\n") != len(lines) - 1:  # a line holding a line break: one line at a time
            return super().split_lines(lines)
        plain = text.isascii()
        if not plain:
            text = unicodedata.normalize("NFC", text)
        found = np.array((_ASCII_LINES_PATTERN if plain else _LINES_PATTERN).findall(text.lower()), dtype=object)
        is_break = found == "\n"
        breaks = np.flatnonzero(is_break)
        counts = np.diff(breaks, prepend=-1, append=found.size) - 1
        return found[~is_break], counts


class WhitespaceTokenizer(Tokenizer):
    """Splits pre-tokenised text on white space; keeps case."""

    kind = "whitespace"
    normalisation = "one space between tokens"

    def tokenize(self, line: str) -> list[str]:
        return line.split()


class CharTokenizer(Tokenizer):
    """Every character of the line is a token (spaces included)."""

    kind = "char"
    separator = ""

    def tokenize(self, line: str) -> list[str]:
        return list(line)

    def spells(self, line: str, tokens: list[str]) -> bool:
        return True  # every character is a token

    def spells_lines(self, lines: Sequence[str], tokens: Sequence[str], offsets: np.ndarray) -> np.ndarray:
        return np.ones(len(lines), dtype=bool)


class BPETokenizer(Tokenizer):
    """Byte-pair encoding from the ``tokenizers`` library, trained on the training text.

    Parameters
    ----------
    vocab_size : int
        Target number of merges plus base symbols (the library's ``vocab_size``).
    min_frequency : int
        A pair must occur this often to be merged.
    """

    kind = "bpe"
    separator = ""
    normalisation = "characters the BPE does not know become <unk>"

    def __init__(self, vocab_size: int = 2000, min_frequency: int = 2, model_json: str | None = None):
        if int(vocab_size) < 2:
            raise ConfigError(f"tokenizer.vocab_size must be at least 2, got {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.min_frequency = int(min_frequency)
        self._backend = None
        if model_json is not None:
            from tokenizers import Tokenizer as HFTokenizer

            try:
                self._backend = HFTokenizer.from_str(model_json)
            except Exception as err:  # the library raises plain Exceptions
                raise ConfigError(f"invalid BPE tokenizer definition: {err}") from None

    @property
    def is_trained(self) -> bool:
        return self._backend is not None

    def train(self, lines: Iterable[str]) -> "BPETokenizer":
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        backend = HFTokenizer(models.BPE(unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        backend.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            special_tokens=["<unk>", "<s>", "</s>"],
            show_progress=False,
        )
        backend.train_from_iterator(list(lines), trainer=trainer)
        self._backend = backend
        return self

    def _check_trained(self):
        if self._backend is None:
            raise ConfigError("the BPE tokenizer is not trained: call train(lines) first")

    def tokenize(self, line: str) -> list[str]:
        self._check_trained()
        return self._backend.encode(line).tokens

    def tokenize_lines(self, lines: Iterable[str]) -> list[list[str]]:
        self._check_trained()
        return [enc.tokens for enc in self._backend.encode_batch(list(lines))]

    def detokenize(self, tokens: Iterable[str]) -> str:
        self._check_trained()
        return self._backend.decoder.decode(list(tokens))

    def spells_lines(self, lines: Sequence[str], tokens: Sequence[str], offsets: np.ndarray) -> np.ndarray:
        tokens = _as_list(tokens)
        return np.fromiter((self.spells(line, tokens[a:b]) for line, a, b in zip(lines, offsets[:-1], offsets[1:])),
                           dtype=bool, count=len(lines))

    def surface(self, token: str) -> str:
        return token.replace(METASPACE, " ")

    def spelled_lengths(self, tokens: Sequence[str], offsets: np.ndarray):
        tokens = _as_list(tokens)
        texts = [self.detokenize(tokens[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
        chars = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        nbytes = np.fromiter((len(t.encode("utf-8")) for t in texts), dtype=np.int64, count=len(texts))
        return chars, nbytes

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "min_frequency": self.min_frequency,
            "model_json": None if self._backend is None else self._backend.to_str(),
        }

    def __repr__(self) -> str:
        state = "trained" if self.is_trained else "untrained"
        return f"BPETokenizer(vocab_size={self.vocab_size}, {state})"


def _as_list(tokens: Sequence[str]) -> list[str]:
    return tokens.tolist() if isinstance(tokens, np.ndarray) else list(tokens)


def _token_starts(text: str, tokens: list[str], separator: str) -> np.ndarray:
    """Where each token begins in ``text = separator.join(tokens)``, and one past the end plus the
    separator's width: int64 (token + 1,). In ASCII text, a one-character separator that no token
    holds is found in the text's bytes; otherwise the tokens' lengths are summed."""
    width = len(separator)
    if width == 1 and len(tokens) > 1 and text.isascii():
        breaks = np.flatnonzero(np.frombuffer(text.encode("ascii"), dtype=np.uint8) == ord(separator))
        if breaks.size == len(tokens) - 1:
            return np.concatenate([[0], breaks + 1, [len(text) + 1]])
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    return np.concatenate([[0], np.cumsum(lengths + width)])


_KINDS = {cls.kind: cls for cls in (WordTokenizer, WhitespaceTokenizer, CharTokenizer, BPETokenizer)}


def make_tokenizer(kind: str = "word", **options) -> Tokenizer:
    """A tokenizer by kind name (``word``, ``whitespace``, ``char``, ``bpe``)."""
    if kind not in _KINDS:
        raise ConfigError(f"unknown tokenizer kind {kind!r}; choose one of {sorted(_KINDS)}")
    cls = _KINDS[kind]
    if cls is BPETokenizer:
        return cls(**options)
    if options:
        raise ConfigError(f"tokenizer kind {kind!r} takes no options, got {sorted(options)}")
    return cls()


def tokenizer_from_dict(data: dict) -> Tokenizer:
    """Inverse of :meth:`Tokenizer.to_dict`."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError("a tokenizer definition needs a 'kind'")
    options = {k: v for k, v in data.items() if k != "kind"}
    return make_tokenizer(data["kind"], **options)
