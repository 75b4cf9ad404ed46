"""The text behind a corpus' tokens: characters and bytes per token, and how exact it is.

Bits per character divide a model's total bits by the characters of the text it priced.
That text is the corpus' sentences (its non-empty lines, stripped), each ended by one
newline, as the tokenizer leaves them: :meth:`Tokenizer.detokenize` of a sentence's tokens
(the character tokenizer keeps the line exactly; the word tokenizer lowercases and puts one
space between tokens). A sentence is *exact* when that text is the line itself.

Each token carries the characters it spells plus the separator before it (none before a
sentence's first token); ``</s>`` carries the newline (one character, one byte), so a
sentence's tokens and ``</s>`` sum to its characters. docs/open_vocabulary.md has the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SurfaceText", "surface_of_lines", "surface_of_ids"]

#: characters and bytes ``</s>`` stands for: the newline that ends a sentence
NEWLINE_CHARS = NEWLINE_BYTES = 1


@dataclass(frozen=True)
class SurfaceText:
    """Characters and bytes of each token's text, per-sentence exactness, the words as read.

    Attributes
    ----------
    chars, bytes : int64 arrays, shape (token,)
        Characters (code points) and UTF-8 bytes each token spells, the separator before it
        included.
    exact : bool array, shape (sentence,)
        The tokens spell the sentence's line exactly (no case folding, spacing or unknown
        characters lost).
    words : object array, shape (token,), or None
        Each token's string as the text had it, kept where a vocabulary maps some of them to
        ``<unk>`` (an open-vocabulary model spells them); None when the ids say it all.
    """

    chars: np.ndarray
    bytes: np.ndarray
    exact: np.ndarray
    words: np.ndarray | None = None

    def select(self, token_idx: np.ndarray, sentence_idx: np.ndarray) -> "SurfaceText":
        """The surface of chosen tokens and sentences (as :meth:`Corpus.select` chooses them)."""
        words = None if self.words is None else self.words[token_idx]
        return SurfaceText(self.chars[token_idx], self.bytes[token_idx], self.exact[sentence_idx], words)

    def concat(self, other: "SurfaceText", words: tuple[np.ndarray, np.ndarray] | None = None) -> "SurfaceText":
        """This surface followed by ``other``; ``words``: both parts' words when either keeps them."""
        joined = None if words is None else np.concatenate(words)
        return SurfaceText(np.concatenate([self.chars, other.chars]), np.concatenate([self.bytes, other.bytes]),
                           np.concatenate([self.exact, other.exact]), joined)

    def with_words(self, words: np.ndarray) -> "SurfaceText":
        return SurfaceText(self.chars, self.bytes, self.exact, words)

    def sentence_totals(self, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(characters, bytes) per sentence, its newline included: int64 (sentence,) each."""
        n = offsets.size - 1
        sentence_of = np.repeat(np.arange(n), np.diff(offsets))
        chars = np.bincount(sentence_of, weights=self.chars, minlength=n).astype(np.int64) + NEWLINE_CHARS
        nbytes = np.bincount(sentence_of, weights=self.bytes, minlength=n).astype(np.int64) + NEWLINE_BYTES
        return chars, nbytes

    def position_lengths(self, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(characters, bytes) of every scored position in reading order (tokens, then the newline of ``</s>``)."""
        lengths = np.diff(offsets)
        n_pos = int(lengths.sum()) + lengths.size
        eos = np.cumsum(lengths + 1) - 1  # where each sentence's </s> is scored
        is_token = np.ones(n_pos, dtype=bool)
        is_token[eos] = False
        chars = np.full(n_pos, NEWLINE_CHARS, dtype=np.int64)
        nbytes = np.full(n_pos, NEWLINE_BYTES, dtype=np.int64)
        chars[is_token], nbytes[is_token] = self.chars, self.bytes
        return chars, nbytes


def _type_lengths(tokenizer, types) -> tuple[np.ndarray, np.ndarray]:
    surfaces = [tokenizer.surface(t) for t in types]
    chars = np.fromiter((len(s) for s in surfaces), dtype=np.int64, count=len(surfaces))
    nbytes = np.fromiter((len(s.encode("utf-8")) for s in surfaces), dtype=np.int64, count=len(surfaces))
    return chars, nbytes


def _with_separators(tokenizer, ids, offsets, types) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per token (chars, bytes) of its surface plus the separator before it; and whether it is a sentence's first.

    Token i is the string ``types[ids[i]]``."""
    type_chars, type_bytes = _type_lengths(tokenizer, types)
    first = np.zeros(ids.size, dtype=bool)
    first[offsets[:-1][np.diff(offsets) > 0]] = True
    sep_chars, sep_bytes = len(tokenizer.separator), len(tokenizer.separator.encode("utf-8"))
    chars = type_chars[ids] + np.where(first, 0, sep_chars)
    nbytes = type_bytes[ids] + np.where(first, 0, sep_bytes)
    return chars, nbytes, first


def surface_of_lines(lines, tokens, tokenizer, codes, offsets, types) -> SurfaceText:
    """The surface of a corpus just read: ``tokens[offsets[i]:offsets[i + 1]]`` are the tokens of ``lines[i]``;
    token i spells ``types[codes[i]]`` (the corpus' name of it: a literal ``<s>`` is ``<unk>``).

    Sentence totals are those of ``tokenizer.detokenize(tokens)``: the tokens' surfaces and
    separators (:meth:`Tokenizer.spelled_lengths` where a tokenizer's detokenization is not
    their sum, as BPE drops the first token's leading space; the difference goes to the
    sentence's first token).
    """
    chars, nbytes, _ = _with_separators(tokenizer, codes, offsets, types)
    exact = tokenizer.spells_lines(lines, tokens, offsets)
    spelled = tokenizer.spelled_lengths(tokens, offsets)
    if spelled is not None:
        n = offsets.size - 1
        sentence_of = np.repeat(np.arange(n), np.diff(offsets))
        first_of = offsets[:-1]
        chars[first_of] += spelled[0] - np.bincount(sentence_of, weights=chars, minlength=n).astype(np.int64)
        nbytes[first_of] += spelled[1] - np.bincount(sentence_of, weights=nbytes, minlength=n).astype(np.int64)
    return SurfaceText(chars, nbytes, exact)


def surface_of_ids(tokenizer, ids, offsets, vocab) -> SurfaceText:
    """The surface of a corpus made from ids (sampled sentences): the tokens' own text, never exact."""
    chars, nbytes, _ = _with_separators(tokenizer, ids, offsets, vocab.tokens)
    return SurfaceText(chars, nbytes, np.zeros(offsets.size - 1, dtype=bool))
