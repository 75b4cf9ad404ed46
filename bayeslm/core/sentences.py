"""Whole sentences drawn token by token, for models with the ``SamplesSentences`` ability.

One loop shared by every family: the family supplies how one token per row is drawn
given the rows' histories under one posterior draw; the loop pads with ``<s>``, stops
each sentence at ``</s>`` or ``max_tokens`` and returns a Corpus.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bayeslm.exceptions import BayesLMError
from bayeslm.text.corpus import Corpus

__all__ = ["check_draw", "draw_sentences"]

#: ``next_tokens(history, rng)``: one token id per row of ``history`` (m, context_length), shape (m,)
NextTokens = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def check_draw(draw: int | None, n_samples: int, rng: np.random.Generator) -> int:
    """The flattened posterior sample a replicate is drawn under: ``draw``, or a random one if None."""
    draw = int(rng.integers(n_samples)) if draw is None else int(draw)
    if not 0 <= draw < n_samples:
        raise BayesLMError(f"draw must be in 0..{n_samples - 1}, got {draw}")
    return draw


def draw_sentences(next_tokens: NextTokens, n_sentences: int, *, context_length: int, vocab, tokenizer,
                   rng: np.random.Generator, max_tokens: int = 200) -> Corpus:
    """``n_sentences`` sentences, each token drawn by ``next_tokens`` given the tokens before it.

    Histories start as ``context_length`` ``<s>`` ids and slide by one token per step;
    a sentence ends at ``</s>`` (not kept) or after ``max_tokens`` tokens. Returns a
    Corpus in ``vocab``.
    """
    eos = vocab.eos_id
    history = np.full((n_sentences, context_length), vocab.bos_id, dtype=np.int64)
    tokens = np.full((n_sentences, max_tokens), -1, dtype=np.int64)
    active = np.arange(n_sentences)
    for t in range(max_tokens):
        if active.size == 0:
            break
        nxt = next_tokens(history[active], rng)
        tokens[active, t] = nxt
        if context_length:
            history[active] = np.concatenate([history[active, 1:], nxt[:, None]], axis=1)
        active = active[nxt != eos]
    lengths = np.where((tokens == eos).any(axis=1), (tokens == eos).argmax(axis=1), (tokens >= 0).sum(axis=1))
    keep = np.arange(max_tokens)[None, :] < lengths[:, None]
    return Corpus(tokens[keep].astype(np.int32), np.concatenate([[0], np.cumsum(lengths)]), vocab, tokenizer)
