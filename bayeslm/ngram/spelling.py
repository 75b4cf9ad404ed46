"""``SpellingModel``: a character n-gram over spellings, the base measure of an open vocabulary.

Below a word model's unigram level, P_0(w) is the probability that the spelling model
spells ``w`` (Mochihashi, Yamada and Ueda 2009 put a character HPYLM under the word
HPYLM; here an interpolated Dirichlet character n-gram at its concentrations' modes). So
every string has a probability: the word model's vocabulary words through their own
counts and P_0, every other string through ``<unk>``, whose base is the spelling mass of
all strings outside the vocabulary. Characters never seen in training are the
character model's ``<unk>``, its mass spread evenly over the Unicode scalar values not
seen. docs/open_vocabulary.md has the model and its checks.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain

import numpy as np

from bayeslm.counting.counts import count
from bayeslm.exceptions import NotFittedError
from bayeslm.ngram.backoff import Backoff
from bayeslm.ngram.evidence import OrderEvidence, concentration_mode, fixed_base
from bayeslm.text.corpus import Corpus
from bayeslm.text.tokenize import CharTokenizer
from bayeslm.text.vocab import SPECIALS, Vocabulary

__all__ = ["SpellingModel", "UNICODE_SCALARS"]

#: code points that are characters: 0x110000 minus the 2,048 surrogates
UNICODE_SCALARS = 0x110000 - 2048
#: prior of every order's concentration: the Dirichlet LM's default, LogNormal(mu=2, sigma=3)
PRIOR_MU, PRIOR_SIGMA = 2.0, 3.0


def _prior_logp(a: np.ndarray) -> np.ndarray:
    """log density of LogNormal(PRIOR_MU, PRIOR_SIGMA) at a (> 0)."""
    log_a = np.log(a)
    return -log_a - 0.5 * np.log(2 * np.pi * PRIOR_SIGMA**2) - (log_a - PRIOR_MU) ** 2 / (2 * PRIOR_SIGMA**2)


class SpellingModel:
    """P(spelling) of every string: a character n-gram of ``order`` over the vocabulary's words.

    A word is its characters, then ``</s>`` (the end of the word); contexts start with
    ``<s>``. Fitted on the word types of a vocabulary and the training words outside it
    (each once: new words resemble the rare types more than the frequent tokens), each order's concentration at
    its posterior mode given the orders below (stagewise empirical Bayes, as the Dirichlet
    LM fixes its lower orders): one distribution, no draws.

    Parameters
    ----------
    order : int
        Characters of context plus one.
    """

    def __init__(self, order: int):
        self.order = int(order)
        self.chars_: Vocabulary | None = None
        self.counts_ = None
        self.concentration_: np.ndarray | None = None  # (order,)
        self.eos_share_: float | None = None  # P_0(</s>) in the word model's base
        self._backoff: Backoff | None = None

    def __repr__(self) -> str:
        state = f"chars={len(self.chars_) - len(SPECIALS)}" if self.chars_ is not None else "not fitted"
        return f"SpellingModel(order={self.order}, {state})"

    # -- fitting -------------------------------------------------------------------------
    def fit(self, vocab: Vocabulary, unknown_words=()) -> "SpellingModel":
        """Fit on the regular words of ``vocab`` (not ``<unk>``, ``<s>``, ``</s>``) and on
        ``unknown_words``, the training words the vocabulary maps to ``<unk>`` (each type once:
        they are the kind of word ``<unk>`` stands for); returns self."""
        regular = [w for w in vocab.tokens if w not in SPECIALS]
        known = set(regular) | set(SPECIALS)
        words = regular + sorted({str(w) for w in unknown_words} - known)
        self.chars_ = Vocabulary.build(Counter(chain.from_iterable(words)))
        self.counts_ = count(self._spell(words), self.order)
        plugin = np.ones(self.order)
        for k in range(1, self.order + 1):
            oc = self.counts_[k]
            if k == 1:
                base = np.full(oc.n_ngrams, 1.0 / (len(self.chars_) - 1))
            else:
                base = fixed_base(Backoff(self.counts_, plugin, self.chars_.bos_id), k)
            plugin[k - 1] = concentration_mode(OrderEvidence(oc, base), _prior_logp)
        self.concentration_ = plugin
        self.eos_share_ = 1.0 / (len(vocab) - 1)  # the share the uniform base gives every token
        self._backoff = Backoff(self.counts_, plugin, self.chars_.bos_id)
        return self

    def _spell(self, words) -> Corpus:
        """The words as a character corpus, one word a sentence (its ``</s>`` ends the word)."""
        lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        ids = self.chars_.encode(list(chain.from_iterable(words)))
        return Corpus(ids, np.concatenate([[0], np.cumsum(lengths)]), self.chars_, CharTokenizer())

    # -- probabilities -------------------------------------------------------------------
    def log_prob(self, words, *, end: bool = True) -> np.ndarray:
        """log P(spelling) of each string, nats, (word,); over all strings they sum to 1 (the empty one included).

        ``end=False``: the probability that a spelling starts with the string (its end not priced).
        """
        if self._backoff is None:
            raise NotFittedError(self, "log_prob")
        words = list(words)
        if not words:
            return np.zeros(0)
        corpus = self._spell(words)
        contexts, chars = corpus.context_windows(self.order - 1)
        p = self._backoff.prob(self.counts_.context_ids(contexts), chars, self.order)
        unseen = UNICODE_SCALARS - (len(self.chars_) - len(SPECIALS))
        log_p = np.log(p) - np.where(chars == self.chars_.unk_id, np.log(unseen), 0.0)
        if not end:
            log_p[chars == self.chars_.eos_id] = 0.0
        word_of = np.repeat(np.arange(len(words)), corpus.sentence_lengths + 1)
        return np.bincount(word_of, weights=log_p, minlength=len(words))

    def log_base(self, words) -> np.ndarray:
        """log P_0 of each string as a word of the word model: its spelling's share of the base."""
        return np.log1p(-self.eos_share_) + self.log_prob(words)

    def base_probs(self, vocab: Vocabulary) -> np.ndarray:
        """P_0 over the word model's vocabulary, (token,), summing to 1.

        A regular word: (1 - P_0(</s>)) P(spelling); ``</s>``: ``eos_share_``; ``<unk>``:
        the rest, the base of every string outside the vocabulary; ``<s>``: 0.
        """
        base = np.zeros(len(vocab))
        regular = np.arange(len(SPECIALS), len(vocab))
        base[regular] = np.exp(self.log_base(vocab.tokens[len(SPECIALS):]))
        base[vocab.eos_id] = self.eos_share_
        base[vocab.unk_id] = max(1.0 - self.eos_share_ - base[regular].sum(), 0.0)
        return base

    def sample(self, n: int, rng: np.random.Generator, avoid: Vocabulary | None = None,
               max_chars: int = 40) -> list[str]:
        """``n`` spellings drawn from the model; with ``avoid``, none of its words (drawn again).

        A spelling is cut at ``max_chars`` characters; an unseen character is drawn as ``\\ufffd``.
        """
        out: list[str] = []
        chars = np.asarray(self.chars_.tokens, dtype=object)
        chars[self.chars_.unk_id] = "\ufffd"
        while len(out) < n:
            history = np.full((n, self.order - 1), self.chars_.bos_id, dtype=np.int64)
            drawn = np.full((n, max_chars), self.chars_.eos_id, dtype=np.int64)
            for t in range(max_chars):
                nxt = self._backoff.sample(self.counts_.context_ids(history), self.order, rng)
                drawn[:, t] = nxt
                if self.order > 1:
                    history = np.concatenate([history[:, 1:], nxt[:, None]], axis=1)
            for row in drawn:
                end = int(np.argmax(row == self.chars_.eos_id)) if (row == self.chars_.eos_id).any() else max_chars
                word = "".join(chars[row[:end]])
                if word and (avoid is None or word not in avoid) and len(out) < n:
                    out.append(word)
        return out
