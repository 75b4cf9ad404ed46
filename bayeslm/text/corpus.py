"""Corpus: sentences as token ids in one flat int32 array with offsets.

A corpus is read from files, directories (every ``*.txt``, sorted), glob patterns,
strings, or the built-in demo corpus (the Python documentation topics shipped in the
standard library's ``pydoc_data``). One sentence per non-empty line.

Sentence ``i`` is ``ids[offsets[i]:offsets[i + 1]]``; ``offsets`` has ``n_sentences + 1``
entries. :meth:`Corpus.padded` is the one padding function fit and score share: each
sentence becomes ``order - 1`` times ``<s>``, its tokens, then one ``</s>``.
"""

from __future__ import annotations

import glob as globlib
from itertools import chain
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from bayeslm.exceptions import CorpusError, VocabularyMismatchError
from bayeslm.text.surface import SurfaceText, surface_of_ids, surface_of_lines
from bayeslm.text.tokenize import Tokenizer, WordTokenizer
from bayeslm.text.vocab import BOS, EOS, UNK, Vocabulary

__all__ = ["Corpus", "demo_corpus", "read_lines", "resolve_paths", "sentence_lines"]

_GLOB_CHARS = set("*?[")


def resolve_paths(sources: str | Path | Iterable[str | Path]) -> list[Path]:
    """Files named by paths, directories (``*.txt`` inside, sorted) and glob patterns."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    files: list[Path] = []
    for source in sources:
        text = str(source)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.txt") if p.is_file())
            if not found:
                raise CorpusError(f"{text}: directory has no *.txt files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif _GLOB_CHARS & set(text):
            found = sorted(Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file())
            if not found:
                raise CorpusError(f"{text}: glob pattern matches no files")
            files.extend(found)
        else:
            raise CorpusError(f"{text}: no such file or directory")
    if not files:
        raise CorpusError("no input files given")
    return files


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(f"{name}: invalid UTF-8 at byte offset {err.start}") from None


def sentence_lines(text: str) -> list[str]:
    """The sentences of a text: its non-empty lines, stripped (any of ``\n``, ``\r\n``, ``\r`` ends a line)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [line for line in (raw.strip() for raw in text.split("\n")) if line]


def read_lines(paths: Iterable[Path]) -> list[str]:
    """Non-empty lines of UTF-8 files; an empty file or invalid UTF-8 is an error."""
    lines: list[str] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise CorpusError(f"{path}: cannot read ({err.strerror})") from None
        file_lines = sentence_lines(_decode(data, str(path)))
        if not file_lines:
            raise CorpusError(f"{path}: file is empty (no non-blank lines)")
        lines.extend(file_lines)
    return lines


class Corpus:
    """Tokenised sentences as ids of a vocabulary.

    Parameters
    ----------
    ids : int array, shape (n_tokens,)
        Token ids of all sentences, concatenated (no ``<s>`` / ``</s>``).
    offsets : int array, shape (n_sentences + 1,)
        Sentence boundaries into ``ids``; starts at 0, ends at ``n_tokens``.
    vocab : Vocabulary
        What the ids mean.
    tokenizer : Tokenizer
        How the text was split (a model checks it matches its own).
    surface : SurfaceText, optional
        Characters and bytes behind each token (:mod:`bayeslm.text.surface`); corpora read
        from text have it, one made from ids gets its tokens' own text.
    """

    def __init__(self, ids, offsets, vocab: Vocabulary, tokenizer: Tokenizer | None = None, sources=(),
                 surface: SurfaceText | None = None):
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if ids.ndim != 1 or offsets.ndim != 1 or offsets.size < 1:
            raise CorpusError("a corpus needs 1-d ids and at least one offset")
        if offsets[0] != 0 or offsets[-1] != ids.size or np.any(np.diff(offsets) < 0):
            raise CorpusError("corpus offsets must rise from 0 to the number of tokens")
        if ids.size and (ids.min() < 0 or ids.max() >= len(vocab)):
            raise VocabularyMismatchError(
                f"token ids run up to {int(ids.max())} but the vocabulary has {len(vocab)} tokens"
            )
        self.ids = ids
        self.offsets = offsets
        self.vocab = vocab
        self.tokenizer = tokenizer if tokenizer is not None else WordTokenizer()
        self.sources = tuple(str(s) for s in sources)
        self._surface = surface

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_lines(
        cls,
        lines: Sequence[str],
        tokenizer: Tokenizer | None = None,
        vocab: Vocabulary | None = None,
        sources=(),
    ) -> "Corpus":
        """Corpus of text lines (one sentence each; empty lines are skipped).

        Without ``vocab`` the corpus gets a vocabulary of every type it contains; a model
        re-encodes it with its own vocabulary (:meth:`with_vocabulary`).
        """
        tokenizer = tokenizer if tokenizer is not None else WordTokenizer()
        if not tokenizer.is_trained:
            tokenizer.train(lines)
        tokens, counts = tokenizer.split_lines(lines)
        if not tokens.size:
            raise CorpusError("the corpus has no tokens" + (f" ({', '.join(map(str, sources))})" if sources else ""))
        sentences = np.flatnonzero(counts > 0)  # lines without tokens are no sentences
        offsets = np.concatenate([[0], np.cumsum(counts[sentences])])
        types, codes = _distinct(tokens)
        if vocab is None:  # a vocabulary of every type the text holds
            vocab = Vocabulary.from_type_counts(types, np.bincount(codes, minlength=types.size))
        type_ids = vocab.encode(types)
        # what the text's own vocabulary calls each type: itself, but a literal <s> or </s> (never data) is <unk>
        spelled = np.array([UNK if t in (BOS, EOS) else t for t in types], dtype=object)
        surface = surface_of_lines([lines[i] for i in sentences], tokens, tokenizer, codes, offsets, spelled)
        if np.any((type_ids == vocab.unk_id) & (spelled != UNK)):
            surface = surface.with_words(spelled[codes])  # the words the vocabulary does not know
        return cls(type_ids[codes], offsets, vocab, tokenizer, sources, surface)

    @classmethod
    def from_texts(cls, texts: str | Iterable[str], tokenizer=None, vocab=None) -> "Corpus":
        """Corpus of strings; every non-empty line of each string is a sentence."""
        if isinstance(texts, str):
            texts = [texts]
        lines = sentence_lines("\n".join(texts))  # the lines of each text (a line break ends a line, never joins two)
        if not lines:
            raise CorpusError("the corpus has no tokens (all texts are empty)")
        return cls.from_lines(lines, tokenizer, vocab, sources=("<string>",))

    @classmethod
    def from_paths(cls, paths, tokenizer=None, vocab=None) -> "Corpus":
        """Corpus of files, directories (``*.txt``, sorted) and glob patterns."""
        files = resolve_paths(paths)
        return cls.from_lines(read_lines(files), tokenizer, vocab, sources=files)

    # -- sizes ---------------------------------------------------------------------
    @property
    def n_sentences(self) -> int:
        return self.offsets.size - 1

    @property
    def n_tokens(self) -> int:
        """Tokens without sentence markers."""
        return int(self.ids.size)

    @property
    def sentence_lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.n_sentences

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def __repr__(self) -> str:
        return (
            f"Corpus(sentences={self.n_sentences}, tokens={self.n_tokens}, "
            f"vocab={len(self.vocab)}, tokenizer={self.tokenizer.kind!r})"
        )

    # -- transformations -----------------------------------------------------------
    def select(self, sentence_idx) -> "Corpus":
        """Corpus of the chosen sentences (in the order given)."""
        idx = np.asarray(sentence_idx, dtype=np.int64)
        starts, lengths = self.offsets[idx], self.sentence_lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        token_idx = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Corpus(self.ids[token_idx], offsets, self.vocab, self.tokenizer, self.sources,
                      self.surface.select(token_idx, idx))

    def split(self, fraction: float = 0.9, random_seed: int | None = 0) -> tuple["Corpus", "Corpus"]:
        """Random split by sentences: (first part with ``fraction`` of them, the rest).

        Both parts keep the sentences' original order.
        """
        if not 0.0 < fraction < 1.0:
            raise CorpusError(f"split fraction must lie in (0, 1), got {fraction}")
        n = self.n_sentences
        n_first = int(round(fraction * n))
        if n_first < 1 or n_first >= n:
            raise CorpusError(f"cannot split {n} sentences at fraction {fraction}")
        order = np.random.default_rng(random_seed).permutation(n)
        return self.select(np.sort(order[:n_first])), self.select(np.sort(order[n_first:]))

    def concat(self, other: "Corpus") -> "Corpus":
        """This corpus followed by another one (re-encoded to this vocabulary)."""
        other = other.with_vocabulary(self.vocab, tokenizer=self.tokenizer)
        ids = np.concatenate([self.ids, other.ids])
        offsets = np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]])
        words = None
        if self.surface.words is not None or other.surface.words is not None:
            words = (self.words(), other.words())
        return Corpus(ids, offsets, self.vocab, self.tokenizer, self.sources + other.sources,
                      self.surface.concat(other.surface, words))

    def with_vocabulary(self, vocab: Vocabulary, tokenizer: Tokenizer | None = None) -> "Corpus":
        """The same sentences as ids of another vocabulary (unknown tokens become ``<unk>``).

        If ``tokenizer`` is given, the corpus must have been split by an equal tokenizer.
        """
        if tokenizer is not None and tokenizer != self.tokenizer:
            raise VocabularyMismatchError(
                f"the text was tokenised with {self.tokenizer!r} but the model uses {tokenizer!r}"
            )
        if vocab == self.vocab:
            return self
        ids = vocab.remap_from(self.vocab)[self.ids]
        surface = self.surface
        if surface.words is None and np.any((ids == vocab.unk_id) & (self.ids != self.vocab.unk_id)):
            surface = surface.with_words(self.words())  # the words the new vocabulary does not know
        return Corpus(ids, self.offsets, vocab, self.tokenizer, self.sources, surface)

    # -- the text behind the tokens --------------------------------------------------------
    @property
    def surface(self) -> SurfaceText:
        """Characters and bytes behind each token and which sentences are exact (:mod:`bayeslm.text.surface`)."""
        if self._surface is None:
            self._surface = surface_of_ids(self.tokenizer, self.ids, self.offsets, self.vocab)
        return self._surface

    def words(self) -> np.ndarray:
        """Each token's string as the text had it: object array (token,); ``<unk>`` only where the text is unknown."""
        if self.surface.words is not None:
            return self.surface.words
        return np.asarray(self.vocab.tokens, dtype=object)[self.ids]

    @property
    def n_chars(self) -> int:
        """Characters of the text the tokens spell, one newline per sentence included."""
        return int(self.surface.chars.sum()) + self.n_sentences

    @property
    def n_bytes(self) -> int:
        """UTF-8 bytes of the text the tokens spell, one newline per sentence included."""
        return int(self.surface.bytes.sum()) + self.n_sentences

    @property
    def exact(self) -> bool:
        """Every sentence's tokens spell its line exactly (nothing lowercased, respaced or unknown)."""
        return bool(self.surface.exact.all())

    def type_counts(self) -> dict[str, int]:
        """How often each token type occurs (for building a model's vocabulary)."""
        counts = np.bincount(self.ids, minlength=len(self.vocab))
        return {tok: int(c) for tok, c in zip(self.vocab.tokens, counts) if c > 0}

    def padded(self, order: int) -> tuple[np.ndarray, np.ndarray]:
        """The stream a model of ``order`` reads, and where its scored positions are.

        Returns
        -------
        stream : int32 array
            Each sentence as ``order - 1`` times ``<s>``, its tokens, ``</s>``.
        targets : int64 array, shape (n_tokens + n_sentences,)
            Indices into ``stream`` of every predicted token (all tokens and each ``</s>``;
            never ``<s>``), in reading order. The context of target ``t`` is
            ``stream[t - order + 1 : t]``.
        """
        if order < 1:
            raise CorpusError(f"order must be at least 1, got {order}")
        pad = order - 1
        lengths = self.sentence_lengths
        padded_len = lengths + pad + 1
        starts = np.concatenate([[0], np.cumsum(padded_len)[:-1]])
        stream = np.full(int(padded_len.sum()), self.vocab.bos_id, dtype=np.int32)
        sentence_of_token = np.repeat(np.arange(self.n_sentences), lengths)
        token_pos = starts[sentence_of_token] + pad + (np.arange(self.n_tokens) - self.offsets[sentence_of_token])
        stream[token_pos] = self.ids
        stream[starts + pad + lengths] = self.vocab.eos_id
        # data never holds <s> (Vocabulary.encode maps it to <unk>), so the rest are targets
        targets = np.flatnonzero(stream != self.vocab.bos_id)
        return stream, targets

    def context_windows(self, context_length: int) -> tuple[np.ndarray, np.ndarray]:
        """The context of every scored position and the token it predicts.

        Returns
        -------
        contexts : int64 array, shape (position, context_length)
            The ``context_length`` tokens before each scored position, oldest first,
            padded with ``<s>`` at sentence starts (the rows of ``next_token_probs``).
        tokens : int64 array, shape (position,)
            The scored token (every token and one ``</s>`` per sentence), in reading order.
        """
        stream, targets = self.padded(context_length + 1)
        offsets = np.arange(-context_length, 0)
        contexts = stream[targets[:, None] + offsets[None, :]].astype(np.int64)
        return contexts, stream[targets].astype(np.int64)

    def decode_lines(self, unk: str | None = None) -> list[str]:
        """Each sentence as its tokens joined by spaces (as a model sees them)."""
        tokens = list(self.vocab.tokens)
        if unk is not None:
            tokens[self.vocab.unk_id] = unk
        words = np.asarray(tokens, dtype=object)[self.ids]
        return [" ".join(words[a:b]) for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def _distinct(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct strings of ``tokens`` (object (type,), in order of first appearance) and each
    token's index into them (int64 (token,)): one hash of every token, then work per type."""
    import pandas as pd

    codes, types = pd.factorize(tokens)
    return types, codes


def demo_corpus(tokenizer: Tokenizer | None = None) -> Corpus:
    """The built-in demo corpus: the Python documentation topics from ``pydoc_data``.

    Every Python install has it, so examples, notebooks and tests run anywhere.
    About 8,700 sentences (non-empty lines) and 120,000 word tokens.
    """
    from pydoc_data.topics import topics

    texts = [topics[key] for key in sorted(topics)]
    lines = list(chain.from_iterable(sentence_lines(t) for t in texts))
    return Corpus.from_lines(lines, tokenizer, sources=("pydoc_data.topics",))
