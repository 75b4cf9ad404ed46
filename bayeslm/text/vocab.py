"""Vocabulary: token strings <-> int32 ids, with ``<unk>``, ``<s>`` and ``</s>``.

Ids 0, 1 and 2 are always ``<unk>``, ``<s>`` and ``</s>``; the other tokens follow by
descending training count, ties broken alphabetically, so the same counts always give
the same ids. ``<s>`` is only ever a context (never predicted); ``</s>`` closes every
sentence.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from bayeslm.exceptions import ConfigError, ModelFileError

__all__ = ["Vocabulary", "UNK", "BOS", "EOS"]

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
SPECIALS = (UNK, BOS, EOS)
VOCAB_FORMAT = "bayeslm-vocabulary"


def vocabulary_order(types: np.ndarray, counts: np.ndarray, min_count: int = 1,
                     max_size: int | None = None) -> np.ndarray:
    """Indices of the types a vocabulary keeps, in vocabulary order (``Vocabulary.build``'s rule).

    ``types`` object (m,) distinct token strings, ``counts`` int (m,). Kept: types seen at
    least ``min_count`` times, not special; ordered by descending count, ties by the
    strings' code points (Python's ``<``); at most ``max_size - 3`` of them.
    """
    import pandas as pd

    if int(min_count) < 1:
        raise ConfigError(f"tokenizer.min_count must be at least 1, got {min_count}")
    if max_size is not None and int(max_size) < len(SPECIALS) + 1:
        raise ConfigError(f"tokenizer.max_size must be at least {len(SPECIALS) + 1}, got {max_size}")
    types, counts = np.asarray(types, dtype=object), np.asarray(counts, dtype=np.int64)
    keep = np.flatnonzero((counts >= int(min_count)) & ~pd.Index(types, dtype=object).isin(list(SPECIALS)))
    kept = types[keep]
    # rank the strings by code point (Python's <), then sort by descending count, ties by rank
    by_string = np.asarray(sorted(range(kept.size), key=kept.__getitem__), dtype=np.int64)
    rank = np.empty(kept.size, dtype=np.int64)
    rank[by_string] = np.arange(kept.size)
    order = keep[np.lexsort((rank, -counts[keep]))]
    return order if max_size is None else order[: int(max_size) - len(SPECIALS)]


class Vocabulary:
    """An ordered list of token strings.

    Parameters
    ----------
    tokens : iterable of str
        The regular tokens (special tokens are added in front, and dropped if repeated).
    """

    unk_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, tokens: Iterable[str] = ()):
        regular = [t for t in tokens if t not in SPECIALS]
        self.tokens: list[str] = [*SPECIALS, *regular]
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ConfigError("a vocabulary cannot list the same token twice")

    # -- construction --------------------------------------------------------------
    @classmethod
    def build(
        cls,
        counts: Mapping[str, int],
        min_count: int = 1,
        max_size: int | None = None,
    ) -> "Vocabulary":
        """Vocabulary of the tokens seen at least ``min_count`` times.

        Parameters
        ----------
        counts : mapping of token -> count
        min_count : int
            Tokens rarer than this become ``<unk>``.
        max_size : int, optional
            Keep at most this many tokens in all, the three special tokens included.
        """
        types = np.fromiter(counts.keys(), dtype=object, count=len(counts))
        values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
        return cls.from_type_counts(types, values, min_count, max_size)

    @classmethod
    def from_type_counts(cls, types: np.ndarray, counts: np.ndarray, min_count: int = 1,
                         max_size: int | None = None) -> "Vocabulary":
        """:meth:`build` from distinct token strings (object (type,)) and their counts (int (type,))."""
        return cls(types[vocabulary_order(types, counts, min_count, max_size)].tolist())

    # -- lookups -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def __iter__(self):
        return iter(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)})"

    def id(self, token: str) -> int:
        """Id of a token; unknown tokens give ``unk_id``."""
        return self.index.get(token, self.unk_id)

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """int32 ids of tokens; unknown ones, and literal ``<s>`` / ``</s>``, become ``<unk>``."""
        get, unk = self.index.get, self.unk_id
        ids = np.fromiter((get(t, unk) for t in tokens), dtype=np.int32)
        ids[(ids == self.bos_id) | (ids == self.eos_id)] = unk
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Token strings of ids."""
        tokens = self.tokens
        return [tokens[int(i)] for i in ids]

    def remap_from(self, other: "Vocabulary") -> np.ndarray:
        """Array ``m`` such that ``m[other_id]`` is this vocabulary's id of the same token."""
        mapping = np.fromiter((self.index.get(t, self.unk_id) for t in other.tokens), dtype=np.int32)
        return mapping

    @property
    def fingerprint(self) -> str:
        """Short sha256 of the token list; equal vocabularies have equal fingerprints."""
        digest = hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()
        return digest[:16]

    # -- files ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": VOCAB_FORMAT, "fingerprint": self.fingerprint, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise ModelFileError("not a bayeslm vocabulary (missing or wrong 'format')")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or tuple(tokens[:3]) != SPECIALS:
            raise ModelFileError("vocabulary tokens must be a list starting with <unk>, <s>, </s>")
        if not all(isinstance(t, str) for t in tokens):
            raise ModelFileError("vocabulary tokens must all be strings")
        try:
            vocab = cls(tokens[3:])
        except ConfigError as err:
            raise ModelFileError(f"invalid vocabulary file: {err}") from None
        if data.get("fingerprint") not in (None, vocab.fingerprint):
            raise ModelFileError("vocabulary fingerprint does not match its tokens (file altered?)")
        return vocab

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (UTF-8).

        Not atomic by itself: a model directory, where bayeslm writes it, is written under
        a temporary name and renamed as a whole (:mod:`bayeslm.core.storage`).
        """
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no vocabulary file") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelFileError(f"{path}: corrupt vocabulary file ({err})") from None
        return cls.from_dict(data)
