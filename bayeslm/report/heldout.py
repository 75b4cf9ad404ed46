"""The held-out text of a report: read in the model's vocabulary, and shown as written.

A report scores the text in the model's vocabulary (unknown words as ``<unk>``) but shows
it with its own vocabulary, so the page names an out-of-vocabulary word as written.
"""

from __future__ import annotations

import numpy as np

from bayeslm.exceptions import CorpusError, VocabularyMismatchError
from bayeslm.text.corpus import Corpus

__all__ = ["WINDOW", "read_text", "count_oov", "position_layout", "TextView"]

WINDOW = 6  # tokens shown on each side of a token in the tables


def read_text(model, data) -> tuple[Corpus, Corpus]:
    """(the text with its own full vocabulary, for display; the same in the model's vocabulary).

    ``data``: a Corpus, a string or a list of strings (tokenised by the model). Raises
    :class:`~bayeslm.exceptions.CorpusError` for anything else or an empty text.
    """
    if isinstance(data, Corpus):
        raw = data
    elif isinstance(data, (str, list, tuple)):
        raw = Corpus.from_texts(list(data) if not isinstance(data, str) else data, tokenizer=model.tokenizer_)
    else:
        raise CorpusError(f"test text must be a Corpus, a string or a list of strings, got {type(data).__name__}")
    if raw.n_sentences == 0 or raw.n_tokens == 0:
        raise CorpusError("the test corpus is empty (no tokens to score)")
    return raw, model.encode(raw)


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
