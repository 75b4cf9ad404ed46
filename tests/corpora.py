"""Small texts and random corpora shared by the tests (counting, the n-gram families, the GPT),
and the way to the shared real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bayeslm import Corpus

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "log", "big", "red"]

#: short lines a tiny character GPT learns in seconds
CAT_LINES = [
    "the cat sat on the mat",
    "a dog ran to the log",
    "the cat and the dog sat",
    "on the mat a cat ran",
] * 30


def markov_sentences(seed: int, n: int, words=WORDS) -> list[str]:
    """Lower-case sentences from a random first-order Markov chain (so contexts repeat)."""
    rng = np.random.default_rng(seed)
    trans = rng.dirichlet(np.full(len(words), 0.3), size=len(words))
    out = []
    for _ in range(n):
        w = int(rng.integers(len(words)))
        sentence = [words[w]]
        for _ in range(int(rng.integers(0, 6))):
            w = int(rng.choice(len(words), p=trans[w]))
            sentence.append(words[w])
        out.append(" ".join(sentence))
    return out


#: the training text of the shared n-gram models (tests/conftest.py)
NGRAM_TRAIN = markov_sentences(0, 60)


def random_corpus(seed, vocab, n_sentences=200, max_len=12):
    """Random ids of ``vocab``: regular tokens and <unk> (id 0), never <s> / </s> inside a
    sentence; empty sentences included."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, max_len + 1, size=n_sentences)
    choices = np.array([0] + list(range(3, len(vocab))))
    ids = rng.choice(choices, size=int(lengths.sum()))
    return Corpus(ids, np.concatenate([[0], np.cumsum(lengths)]), vocab)


def shared_data(name: str, root: Path = SHARED_DATA) -> Path:
    """``root / name`` (by default in ../shared/data, beside the repository), or skip the test,
    saying what is missing, where it is absent."""
    path = root / name
    if not path.is_dir():
        pytest.skip(f"needs {path} (the shared data beside the repository); absent here")
    return path
