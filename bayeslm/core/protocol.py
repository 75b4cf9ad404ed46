"""The protocol every bayeslm language model answers, and the optional abilities.

:class:`LanguageModel` declares what evaluation, reports, generation and the command line
may ask of any fitted model; :class:`bayeslm.core.base.BayesianLM` derives the rest
(evaluation with intervals, sentence scores, per-token tables, save/load) from it. A family
declares an optional ability by also subclassing :class:`SamplesSentences`,
:class:`ExportsArpa` or :class:`Updatable`; callers test it with ``isinstance``.
``docs/architecture.md`` describes the protocol in full.

Units: natural logarithms (nats) throughout. Shapes: ``position`` indexes scored
positions (every token and one ``</s>`` per sentence), ``context`` rows of token ids
(``context_length`` of them, oldest first, ``<s>``-padded), ``token`` the vocabulary,
``draw`` posterior samples (flattened chain-major).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

import numpy as np
import pandas as pd

from bayeslm.core.sentences import check_draw, draw_sentences
from bayeslm.exceptions import BayesLMError, ConfigError, CorpusError, VocabularyMismatchError
from bayeslm.text.corpus import Corpus

__all__ = ["LanguageModel", "SamplesSentences", "ExportsArpa", "Updatable", "AdaptedToDomain", "domain_text",
           "fit_adapted", "power_meaning"]


class LanguageModel(ABC):
    """What every fitted bayeslm model answers.

    Implemented by a family (abstract here):

    - :meth:`_fit` builds the PyMC model, infers, and returns the InferenceData;
    - :meth:`_log_prob_draws` streams log p(token | context) per posterior draw;
    - :meth:`predictive_log_prob` is the log posterior-predictive probability per position;
    - :meth:`next_token_probs` gives next-token distributions per draw for contexts;
    - :meth:`context_entropy_split` splits the predictive entropy of contexts into
      aleatoric and epistemic parts;
    - :meth:`_family_arrays` / :meth:`_restore_family`: what a model directory holds beside
      ``model.nc``, ``vocab.json`` and ``tokenizer.json``.

    Given with a default that a family may replace: :meth:`predictive_probs`,
    :meth:`sample_distribution`, :meth:`entropy_split`, :attr:`diagnostic_var_names`,
    :attr:`training_counts`, :attr:`context_length`, :attr:`n_samples`.
    """

    #: the family's name in configurations and model directories (``model.family``)
    family: str = ""

    # -- implemented by every family ----------------------------------------------------
    @abstractmethod
    def _fit(self, train, valid, sampler: dict):
        """Fit on ``train`` (a Corpus in the model's vocabulary); ``valid`` chooses open settings.

        ``sampler`` holds the sampler settings of this call. Returns the InferenceData.
        """

    @abstractmethod
    def _log_prob_draws(self, corpus) -> Iterator[tuple[slice, np.ndarray]]:
        """Chunks ``(positions, log_prob)``; ``log_prob`` has shape (draw, chunk), nats."""

    @abstractmethod
    def predictive_log_prob(self, data) -> np.ndarray:
        """log p(token | context) under the posterior predictive, shape (position,), nats."""

    @abstractmethod
    def next_token_probs(self, contexts, draws=None) -> np.ndarray:
        """p(token | context) per posterior draw, shape (draw, context, token).

        ``draws``: None for all, an int k for k evenly spaced draws, a sequence for those
        flattened indices (see :func:`bayeslm.core.draws.draw_indices`).
        """

    @abstractmethod
    def context_entropy_split(self, contexts) -> pd.DataFrame:
        """Per context row: ``total``, ``aleatoric``, ``epistemic`` next-token entropy (nats)."""

    @abstractmethod
    def _family_arrays(self) -> dict[str, np.ndarray]:
        """Arrays the model directory keeps in ``arrays.npz`` (no object arrays)."""

    @abstractmethod
    def _restore_family(self, arrays: dict[str, np.ndarray]) -> None:
        """Rebuild the learned state from :meth:`_family_arrays`' output; raise ModelFileError if foreign."""

    # -- defaults ---------------------------------------------------------------------------
    @property
    def diagnostic_var_names(self) -> list[str] | None:
        """Posterior variables that get R-hat / ESS rows; None: every small variable, []: none."""
        return None

    @property
    def training_counts(self):
        """The training text's n-gram counts (:class:`bayeslm.counting.counts.NgramCounts`), or None.

        A family that fits from n-gram counts returns them; reports use them for the
        unseen-n-gram share of the posterior predictive checks (None: not computed).
        """
        return None

    def predictive_probs(self, contexts) -> np.ndarray:
        """Posterior-predictive next-token probabilities, shape (context, token)."""
        return self.next_token_probs(contexts).mean(axis=0)

    def sample_distribution(self, contexts, draw: int, rng: np.random.Generator) -> np.ndarray:
        """p(. | context) under posterior draw ``draw``, shape (context, token): what a continuation holds."""
        return self.next_token_probs(contexts, draws=[int(draw)])[0]


class SamplesSentences(ABC):
    """Ability: draw whole sentences from the posterior predictive (posterior predictive checks)."""

    def sample_sentences(self, n_sentences: int, *, random_seed=None, draw: int | None = None,
                         max_tokens: int = 200):
        """``n_sentences`` sentences (a Corpus) drawn under posterior draw ``draw`` (random if None).

        Every token comes from :meth:`next_tokens` under the one draw given the tokens
        before it, so each call is one replicate from the posterior predictive; sentences
        end at ``</s>`` or after ``max_tokens`` tokens (:func:`bayeslm.core.sentences.draw_sentences`).
        """
        rng = np.random.default_rng(random_seed)
        draw = check_draw(draw, self.n_samples, rng)
        return draw_sentences(lambda history, gen: self.next_tokens(history, draw, gen), n_sentences,
                              context_length=self.context_length, vocab=self.vocab_, tokenizer=self.tokenizer_,
                              rng=rng, max_tokens=max_tokens)

    @abstractmethod
    def next_tokens(self, history: np.ndarray, draw: int, rng: np.random.Generator) -> np.ndarray:
        """One token id per row drawn from p(. | history row) under posterior draw ``draw``.

        ``history``: token ids, shape (m, context_length), ``<s>``-padded. Returns shape (m,).
        """

    @property
    def can_sample_sentences(self) -> bool:
        """False where the ability depends on parts that lack it (a mixture of models)."""
        return True


class ExportsArpa(ABC):
    """Ability: write the model as an ARPA back-off file (KenLM, SRILM)."""

    @abstractmethod
    def interpolation(self, sample: int | None = None) -> list[np.ndarray]:
        """P_k(w | u) at every seen n-gram of every order k, aligned with ``counts_[k]``.

        ``sample``: one retained posterior sample, exported exactly; None: the
        posterior-predictive (mean) model. :mod:`bayeslm.ngram.arpa` writes the file.
        """


class Updatable(ABC):
    """Ability: add text to a fitted model without refitting from scratch."""

    @abstractmethod
    def update(self, corpus, **sampler_kwargs):
        """Add ``corpus`` to the training data and refit; returns the new InferenceData."""


class AdaptedToDomain(ABC):
    """Ability: a model of a domain adapted from a general model, which says how far it departs from it
    (the report's "Departure from the general model" section)."""

    #: what the departure parameter is, in words (the CLI and the report print it)
    departure_description: str
    #: what :meth:`uncertainty_sources`' ``domain_share`` is, in words (the report prints it)
    domain_share_description: str

    @abstractmethod
    def departure(self, hdi_prob: float) -> list[dict]:
        """Per order: ``order``, the departure parameter's ``mean``, ``sd``, ``hdi_low``, ``hdi_high``,
        ``hdi_prob`` and its ``meaning`` in words."""

    @abstractmethod
    def uncertainty_sources(self, data) -> pd.DataFrame:
        """Per scored position of ``data``: ``order``, ``domain_share`` (the part of the prediction's
        weight that comes from the domain text, 0..1) and ``source`` (``"domain text"`` or
        ``"general model"``), with the family's own columns."""


def domain_text(corpus, general) -> Corpus:
    """The domain text of ``general.adapt(domain)`` in the general model's vocabulary.

    ``general``: the general model, held by the adapted one while it fits (None: an adapted
    model fitted alone, refused). Refused too: anything but a Corpus, a Corpus tokenised
    otherwise than the general model (VocabularyMismatchError), a text without tokens (CorpusError).
    """
    if general is None:
        raise BayesLMError("an adapted model is made by general.adapt(domain), not fitted alone")
    if not isinstance(corpus, Corpus):
        raise ConfigError(f"adapt needs the domain text as a Corpus, got {type(corpus).__name__}")
    if corpus.tokenizer != general.tokenizer_:
        raise VocabularyMismatchError(f"the domain text was tokenised with {corpus.tokenizer!r}, the general "
                                      f"model with {general.tokenizer_!r}")
    domain = corpus.with_vocabulary(general.vocab_)
    if domain.n_tokens == 0:
        raise CorpusError("the domain text has no tokens: nothing to adapt to")
    return domain


def fit_adapted(cls, general, config: dict, domain, valid, sampler_kwargs: dict):
    """A model of class ``cls`` and configuration ``config`` in the general model's tokenizer and
    vocabulary, fitted to ``domain`` with ``general`` held (as ``_general``) while it fits."""
    lm = cls.from_config(config, tokenizer=general.tokenizer_)
    lm.vocab_, lm._general = general.vocab_, general
    try:
        lm.fit(domain, valid, **sampler_kwargs)
    finally:
        lm._general = None
    return lm


def power_meaning(low: float, high: float, words: tuple[str, str, str, str]) -> str:
    """What the interval [low, high] of a power of the general posterior says: ``words`` for an
    interval above 1, one holding 1, one below 0.01, and otherwise (a format string of low, high)."""
    above, near, alone, departs = words
    if low > 1:
        return above
    if high >= 1:
        return near
    return alone if high < 0.01 else departs.format(low=low, high=high)
