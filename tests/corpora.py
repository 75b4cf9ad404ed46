"""Random corpora shared by the counting tests (in memory and on Dask)."""

from __future__ import annotations

import numpy as np

from bayeslm import Corpus


def random_corpus(seed, vocab, n_sentences=200, max_len=12):
    """Random ids of ``vocab``: regular tokens and <unk> (id 0), never <s> / </s> inside a
    sentence; empty sentences included."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, max_len + 1, size=n_sentences)
    choices = np.array([0] + list(range(3, len(vocab))))
    ids = rng.choice(choices, size=int(lengths.sum()))
    return Corpus(ids, np.concatenate([[0], np.cumsum(lengths)]), vocab)
