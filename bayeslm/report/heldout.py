"""The held-out text of a report: read in the model's vocabulary, and shown as written.

A report scores the text in the model's vocabulary (unknown words as ``<unk>``) but shows
it with its own vocabulary, so the page names an out-of-vocabulary word as written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bayeslm.exceptions import CorpusError, VocabularyMismatchError
from bayeslm.text.corpus import Corpus, read_lines, resolve_paths, sentence_lines

__all__ = ["corpus_lines", "text_lines", "WINDOW", "read_text", "count_oov", "position_layout", "TextView"]

WINDOW = 6  # tokens shown on each side of a token in the tables


def read_text(model, data) -> tuple[Corpus, Corpus, list[str] | None]:
    """(the text with its own full vocabulary, for display; the same in the model's vocabulary;
    its sentences as lines, for models of other tokenizers: :func:`text_lines`).

    ``data``: a Corpus, a string, a list of strings (tokenised by the model) or paths
    (``pathlib.Path`` objects: files, directories, globs). Raises
    :class:`~bayeslm.exceptions.CorpusError` for anything else or an empty text.
    """
    lines = text_lines(data)
    raw = _raw_corpus(model, data, lines)
    if raw.n_sentences == 0 or raw.n_tokens == 0:
        raise CorpusError("the test corpus is empty (no tokens to score)")
    return raw, model.encode(raw), lines


def text_lines(data) -> list[str] | None:
    """The sentences of held-out text as lines, for models of other tokenizers to read; None for a
    Corpus (its lines are not kept; :func:`corpus_lines` spells them where it can)."""
    if isinstance(data, Corpus):
        return None
    if isinstance(data, str):
        return sentence_lines(data)
    if isinstance(data, Path) or (isinstance(data, (list, tuple)) and data and all(isinstance(d, Path) for d in data)):
        return read_lines(resolve_paths(data))
    if isinstance(data, (list, tuple)) and all(isinstance(d, str) for d in data):
        return [line for text in data for line in sentence_lines(text)]
    raise CorpusError(f"test text must be a Corpus, a string, a list of strings or paths, got {type(data).__name__}")


def corpus_lines(corpus: Corpus) -> list[str] | None:
    """The lines a Corpus' tokens spell, when they spell them exactly; else None."""
    return corpus.decode_lines() if corpus.exact else None


def _raw_corpus(model, data, lines: list[str] | None) -> Corpus:
    if isinstance(data, Corpus):
        return data
    if not lines:
        raise CorpusError("the test corpus is empty (no tokens to score)")
    texts = isinstance(data, str) or all(isinstance(d, str) for d in data)
    return Corpus.from_lines(lines, tokenizer=model.tokenizer_, sources=("<string>",) if texts else resolve_paths(data))


def count_oov(model, encoded: Corpus) -> int:
    """Tokens of ``encoded`` outside the model's vocabulary; an error if no token is known."""
    n_oov = int(np.count_nonzero(encoded.ids == encoded.vocab.unk_id))
    if n_oov == encoded.n_tokens:
        raise VocabularyMismatchError(
            f"none of the {encoded.n_tokens} test tokens is in the model's vocabulary of {len(model.vocabulary)} types "
            "(another language, tokenizer or vocabulary?)"
        )
    return n_oov


def position_layout(corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """Sentence and index within the sentence of every scored position (index n_tokens: </s>).

    Both arrays have shape (position,).
    """
    lengths = corpus.sentence_lengths + 1
    sentence = np.repeat(np.arange(corpus.n_sentences), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return sentence, np.arange(int(lengths.sum())) - np.repeat(starts, lengths)


class TextView:
    """The scored positions of the held-out text as a person reads them (OOV words keep their spelling).

    ``raw`` is the text with its own vocabulary, ``encoded`` the same text in the model's.
    """

    def __init__(self, raw: Corpus, encoded: Corpus):
        self.words = np.asarray(raw.vocab.tokens, dtype=object)[raw.ids]
        self.oov = encoded.ids == encoded.vocab.unk_id
        self.offsets = raw.offsets
        self.lengths = raw.sentence_lengths
        self.vocabulary_tokens = encoded.vocab.tokens
        self.sentence, self.index = position_layout(encoded)

    def token(self, s: int, i: int) -> str:
        """Token ``i`` of sentence ``s`` as written (``</s>`` past its end)."""
        return "</s>" if i >= self.lengths[s] else str(self.words[self.offsets[s] + i])

    def is_oov(self, s: int, i: int) -> bool:
        return bool(i < self.lengths[s] and self.oov[self.offsets[s] + i])

    def around(self, s: int, i: int, window: int = WINDOW) -> tuple[str, str]:
        """Up to ``window`` tokens of the same sentence left and right of token ``i``."""
        start, length = self.offsets[s], self.lengths[s]
        left = self.words[start + max(0, i - window) : start + min(i, length)]
        right = self.words[start + i + 1 : start + min(length, i + 1 + window)] if i < length else []
        pre = "... " if i - window > 0 else ""
        post = " ..." if i + 1 + window < length else (" </s>" if i < length else "")
        return pre + " ".join(map(str, left)), " ".join(map(str, right)) + post

    def where(self, position: int) -> dict:
        """Where scored position ``position`` stands: sentence, index, token, OOV flag, text around."""
        s, i = int(self.sentence[position]), int(self.index[position])
        left, right = self.around(s, i)
        return {"position": int(position), "sentence": s, "index": i, "token": self.token(s, i),
                "oov": self.is_oov(s, i), "left": left, "right": right}
