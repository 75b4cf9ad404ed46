"""``NgramLM``: what the two n-gram families share, written once.

Counting the training text (in memory, or on a Dask cluster with ``fit(client=...)``),
the counts ``counts_``, how a context given as text or tokens becomes token ids, the
posterior of one probability (:meth:`NgramLM.prob`: mean and highest-density interval),
the per-context scaffolding of the entropy split, whole sentences drawn from the model,
and the counts in the model directory. A family supplies the hooks named in the class
docstring.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pandas as pd
from pydantic import Field

from bayeslm.core.base import BayesianLM
from bayeslm.core.draws import sample_dirichlet_rows
from bayeslm.core.protocol import ExportsArpa, SamplesSentences
from bayeslm.core.settings import ModelOptions, whole
from bayeslm.counting.counts import NgramCounts, count
from bayeslm.exceptions import BayesLMError, ModelFileError
from bayeslm.ngram.backoff import sample_base
from bayeslm.ngram.beta_mixture import beta_mixture_hdi
from bayeslm.ngram.spelling import SpellingModel
from bayeslm.stats.intervals import HDI_PROB
from bayeslm.text.corpus import Corpus

__all__ = ["NgramLM", "NgramOptions", "MAX_NGRAM_ORDER"]

#: the longest n-gram order a model may have (KenLM's default build: 6); counts and contexts
#: grow with the order while the text's longer n-grams are ever fewer repeats
MAX_NGRAM_ORDER = 10


class NgramOptions(ModelOptions):
    """The ``[model]`` options every n-gram family has; a family's options subclass this."""

    order: whole(ge=1, le=MAX_NGRAM_ORDER) = Field(3, description="context length + 1 (3: a trigram model)")
    entropy_draws: whole(ge=1) = Field(
        16, description="posterior draws (spread over the posterior) for entropies and probability intervals")
    spelling: whole(ge=0, le=MAX_NGRAM_ORDER) = Field(
        0, description="order of the character n-gram that spells words below the unigram (open vocabulary: "
                       "every string has a probability); 0: closed vocabulary, unknown words are <unk>")


class NgramLM(BayesianLM, SamplesSentences, ExportsArpa):
    """Base class of the n-gram families (:class:`DirichletLM`, :class:`PitmanYorLM`).

    A family implements, beside the abstract methods of
    :class:`bayeslm.core.protocol.LanguageModel` and :meth:`interpolation`
    (:class:`~bayeslm.core.protocol.ExportsArpa`):

    - :meth:`dirichlet_parameters`: the Dirichlet of p(. | u) under each posterior draw
      (exact, or an approximation the family names); :meth:`prob`,
      :meth:`sample_distribution` and the aleatoric entropy read it;
    - :meth:`_context_entropies`: (total, aleatoric) entropy of distinct contexts;
    - :meth:`_next_tokens`: one next token per row of contexts under one posterior draw,
      the step of :meth:`sample_sentences`;

    and in ``_fit`` takes its counts from :meth:`_count_training`, and in
    ``_restore_family`` restores them with :meth:`_restore_counts`. Every family has the
    ``entropy_draws`` option (draws used for entropies and intervals) and ``spelling``: the
    order-0 distribution its unigram level backs off to is :meth:`base_probs` (the family
    reads it through :meth:`_base_times`), and its log probabilities of a corpus add
    :meth:`_spelling_log_ratio` (an unknown word's spelling, with a spelling model).
    """

    model_options = NgramOptions

    def __init__(self, order: int | None = None, **kwargs):
        super().__init__(order, **kwargs)
        self.counts_: NgramCounts | None = None
        self._count_client = None  # the Dask client of the fit in progress
        self._given_counts: NgramCounts | None = None  # counts made on Dask from files
        self.spelling_: SpellingModel | None = None  # the base measure of an open vocabulary
        self.spelling_words_ = np.zeros(0, dtype=str)  # training words outside the vocabulary it also spells
        self._base_cache = None

    # -- counting --------------------------------------------------------------------------
    def fit(self, corpus, valid: Corpus | None = None, *, client=None, **sampler_kwargs):
        """Fit the model to a training corpus; returns (and keeps as ``.idata``) the InferenceData.

        Parameters
        ----------
        corpus : Corpus, or (with ``client``) files, directories or glob patterns
            Training text.
        valid : Corpus, optional
            Validation text used to choose settings the configuration leaves open; never
            scored as test.
        client : distributed.Client, optional
            Count on this Dask cluster (``pip install 'bayeslm[dask]'``). Given paths, the
            files are read, tokenised and counted on the workers
            (:func:`bayeslm.counting.distributed.count_files`) and never held in this
            process; inference then runs here on the merged counts.
        **sampler_kwargs
            Override sampler settings for this call (see :meth:`BayesianLM.fit`).
        """
        self._count_client, self._given_counts = client, None
        try:
            return super().fit(corpus, valid, **sampler_kwargs)
        finally:
            self._count_client, self._given_counts = None, None

    def _training_corpus(self, corpus, sampler: dict) -> tuple[Corpus, tuple[int, int]]:
        """Files given with a Dask client are counted there; ``train`` is then only a sample
        (the first partition's first sentences and the longest sentence)."""
        if self._count_client is None or isinstance(corpus, Corpus):
            return super()._training_corpus(corpus, sampler)
        from bayeslm.counting.distributed import count_files

        done = count_files(corpus, self.order, self._count_client, tokenizer=self.tokenizer, min_count=self.min_count,
                           max_size=self.max_size, progress=bool(sampler.get("progressbar", True)))
        self.vocab_, self._given_counts = done.vocab, done.counts
        return done.sample, (done.n_tokens, done.n_sentences)

    def _count_training(self, train: Corpus, sampler: dict) -> NgramCounts:
        """The n-gram counts of the training text (a family's ``_fit`` calls this).

        Counts already made on Dask from files, else ``count(train)``, on the Dask client
        ``fit`` was given if any.
        """
        self._fit_spelling(self._unknown_words(train))
        if self._given_counts is not None:
            return self._given_counts
        return count(train, self.order, progress=bool(sampler.get("progressbar", True)), client=self._count_client)

    # -- the base measure ---------------------------------------------------------------------
    def _unknown_words(self, train: Corpus) -> np.ndarray:
        """The distinct training words the vocabulary maps to ``<unk>`` (a spelling model's extra words), sorted."""
        if not int(self.options.get("spelling", 0)):
            return np.zeros(0, dtype=str)
        words = train.words()[train.ids == self.vocab_.unk_id]
        return np.array(sorted(set(words.tolist()) - {self.vocab_.tokens[self.vocab_.unk_id]}), dtype=str)

    def _fit_spelling(self, unknown_words: np.ndarray | None = None) -> None:
        """With ``spelling`` > 0, the spelling model (``spelling_``) of the vocabulary's words and of
        ``unknown_words`` (``spelling_words_``, stored with the counts, so a loaded model rebuilds it the same)."""
        self._base_cache = None
        order = int(self.options.get("spelling", 0))
        self.spelling_words_ = np.zeros(0, dtype=str) if unknown_words is None else np.asarray(unknown_words, dtype=str)
        self.spelling_ = SpellingModel(order).fit(self.vocab_, self.spelling_words_) if order else None

    @property
    def open_vocabulary(self) -> bool:
        """Whether a spelling model prices every string (else unknown words are ``<unk>``)."""
        return self.spelling_ is not None

    def token_text(self, token_id: int, rng) -> str:
        """A drawn token's text; with a spelling model, ``<unk>`` is a new word it spells (not in the vocabulary)."""
        if self.spelling_ is not None and int(token_id) == self.vocab_.unk_id:
            return self.spelling_.sample(1, rng, avoid=self.vocab_)[0]
        return super().token_text(token_id, rng)

    def base_probs(self) -> np.ndarray:
        """P_0 over the vocabulary, (token,): what the unigram level backs off to; sums to 1, 0 at ``<s>``.

        Closed vocabulary: uniform over the V - 1 other tokens. Open: the spelling model's
        :meth:`~bayeslm.ngram.spelling.SpellingModel.base_probs` (each word's spelling, ``</s>``,
        and on ``<unk>`` every other string).
        """
        if self._base_cache is None:
            V = len(self.vocab_)
            if self.spelling_ is None:
                base = np.full(V, 1.0 / (V - 1))
                base[self.vocab_.bos_id] = 0.0
            else:
                base = self.spelling_.base_probs(self.vocab_)
            self._base_cache = base
        return self._base_cache

    def _base_times(self, scale, tokens) -> np.ndarray:
        """``scale * P_0(token)``, broadcast; in closed vocabulary computed as ``scale / (V - 1)``
        (0 at ``<s>``), as it always was, so that closed models give the same numbers to the last digit."""
        tokens = np.asarray(tokens)
        if self.spelling_ is None:
            return np.where(tokens == self.vocab_.bos_id, 0.0, np.asarray(scale, dtype=float) / (len(self.vocab_) - 1))
        return scale * self.base_probs()[tokens]

    def _sample_base(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` tokens drawn from :meth:`base_probs` (closed vocabulary: uniform, as always drawn)."""
        base = self.base_probs() if self.spelling_ is not None else None
        return sample_base(base, len(self.vocab_), self.vocab_.bos_id, size, rng)

    def _spelling_log_ratio(self, corpus: Corpus) -> np.ndarray | float:
        """Per scored position, what an unknown word's spelling adds to log p(<unk> | u) (nats; 0 elsewhere).

        log P_0(word) - log P_0(<unk>): ``<unk>``'s mass spread over the strings it stands
        for by the spelling model, so the probabilities of all strings sum to 1. Closed
        vocabulary: 0.
        """
        if self.spelling_ is None:
            return 0.0
        unknown = np.flatnonzero(corpus.ids == self.vocab_.unk_id)
        words = corpus.words()[unknown]
        spelled = words != self.vocab_.tokens[self.vocab_.unk_id]  # a literal <unk> has no spelling
        ratio = np.zeros(corpus.n_tokens + corpus.n_sentences)
        sentence_of = np.searchsorted(corpus.offsets, unknown[spelled], side="right") - 1
        log_unk = np.log(self.base_probs()[self.vocab_.unk_id])
        ratio[unknown[spelled] + sentence_of] = self.spelling_.log_base(list(words[spelled])) - log_unk
        return ratio

    # -- contexts -------------------------------------------------------------------------
    def _encode_context(self, context) -> np.ndarray:
        """Token ids of one context, shape (1, order - 1), left-padded with ``<s>``.

        ``context`` is text or a sequence of tokens. In text, a literal ``<s>`` is the
        sentence start and the text around it is tokenised with the model's tokenizer
        (``"<s> the"``: the first word of a sentence is "the"); a token ``"<s>"`` is the
        sentence start too. Unknown words are ``<unk>``; only the last ``order - 1``
        tokens count.
        """
        if isinstance(context, str):
            parts = context.split("<s>")
            tokens = self.tokenizer_.tokenize(parts[0])
            for part in parts[1:]:
                tokens += ["<s>", *self.tokenizer_.tokenize(part)]
        else:
            tokens = list(context)
        bos = self.vocab_.bos_id
        padded = [bos] * self.context_length + [bos if t == "<s>" else self.vocab_.id(t) for t in tokens]
        return np.asarray(padded[len(padded) - self.context_length:], dtype=np.int64).reshape(1, self.context_length)

    @property
    def training_counts(self) -> NgramCounts | None:
        """The training text's n-gram counts (``counts_``): the predictive checks' unseen-n-gram share."""
        return self.counts_

    def _context_chain(self, contexts) -> list[np.ndarray]:
        """Context ids per order 1..n for rows of token ids (``NgramCounts.context_ids``)."""
        return self.counts_.context_ids(contexts)

    def _position_chain(self, corpus: Corpus) -> tuple[list[np.ndarray], np.ndarray]:
        """Context ids per order of every scored position of ``corpus``, and the scored tokens."""
        contexts, tokens = corpus.context_windows(self.context_length)
        return self._context_chain(contexts), tokens

    # -- one probability ----------------------------------------------------------------------
    @abstractmethod
    def dirichlet_parameters(self, contexts, draws=None) -> np.ndarray:
        """A_w of the Dirichlet of p(. | u) per posterior draw: (draw, context, token).

        ``A_w / A`` (A = sum_w A_w) is the draw's next-token distribution.
        """

    def prob(self, token: str, context=(), hdi_prob: float = HDI_PROB) -> dict:
        """Posterior of p(token | context): its mean and highest-density interval.

        Under one posterior draw, p(. | u) is Dirichlet(A) (:meth:`dirichlet_parameters`),
        so p(token | u) is Beta(A_w, A - A_w); over ``entropy_draws`` evenly spaced draws
        its posterior is the mixture of those Betas, and ``low``, ``high`` are that
        mixture's HDI of mass ``hdi_prob`` (:func:`bayeslm.ngram.beta_mixture.beta_mixture_hdi`;
        ``low`` is 0 when the density falls from 0, as for most unseen tokens). ``mean`` is
        the posterior-predictive probability over all draws.

        Parameters
        ----------
        token : str
        context : str or sequence of str
            See :meth:`_encode_context`: text with a literal ``<s>`` for the sentence
            start, or tokens.
        hdi_prob : float
            Mass of the interval, in (0, 1).

        Returns
        -------
        dict
            ``token`` (as the vocabulary has it; with a spelling model an unknown word is
            itself, its probability ``<unk>``'s times its share of ``<unk>``'s base), ``mean``,
            ``low``, ``high``, ``interval_prob`` (= ``hdi_prob``).
        """
        self._check_fitted("prob")
        ctx = self._encode_context(context)
        w = self.vocab_.id(token)
        A = self.dirichlet_parameters(ctx, draws=int(self.options["entropy_draws"]))[:, 0, :]
        a_w = A[:, w]
        low, high = beta_mixture_hdi(a_w, np.maximum(A.sum(axis=1) - a_w, 0.0), hdi_prob)
        mean = float(self.predictive_probs(ctx)[0, w])
        if self.spelling_ is not None and w == self.vocab_.unk_id and token != self.vocab_.tokens[w]:
            # an unknown word: <unk>'s probability times its share of <unk>'s base, under every draw
            share = float(np.exp(self.spelling_.log_base([token])[0]) / self.base_probs()[w])
            return {"token": token, "mean": mean * share, "low": low * share, "high": high * share,
                    "interval_prob": float(hdi_prob)}
        return {"token": self.vocab_.tokens[w], "mean": mean, "low": low, "high": high,
                "interval_prob": float(hdi_prob)}

    def sample_distribution(self, contexts, draw: int, rng: np.random.Generator) -> np.ndarray:
        """One posterior draw of p(. | u) per context: Dirichlet(A) of sample ``draw``, (context, token).

        See :meth:`dirichlet_parameters` and :func:`bayeslm.core.draws.sample_dirichlet_rows`.
        """
        self._check_fitted("sample_distribution")
        return sample_dirichlet_rows(self.dirichlet_parameters(contexts, draws=[int(draw)])[0], rng)

    # -- entropies --------------------------------------------------------------------------
    @abstractmethod
    def _context_entropies(self, chain: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(entropy of the predictive, expected entropy of p(. | u)) per context, nats.

        ``chain``: context ids per order of distinct contexts, shape (m,) each.
        """

    def context_entropy_split(self, contexts) -> pd.DataFrame:
        """Per context row: ``total``, ``aleatoric``, ``epistemic`` next-token entropy (nats).

        Contexts are rows of token ids, shape (m, order - 1). Each distinct context (the
        same deepest seen context, the same predictive) is computed once.
        """
        self._check_fitted("context_entropy_split")
        chain = self._context_chain(contexts)
        depth = sum((ids >= 0).astype(int) for ids in chain)  # deepest seen order per row
        deepest = np.choose(depth - 1, chain) if self.order > 1 else chain[0]
        key = depth.astype(np.int64) * (1 << 40) + deepest
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        total, aleatoric = self._context_entropies([ids[first] for ids in chain])
        return pd.DataFrame({
            "total": total[inverse],
            "aleatoric": aleatoric[inverse],
            "epistemic": np.maximum(total - aleatoric, 0.0)[inverse],
        })

    # -- sentences ------------------------------------------------------------------------------
    @abstractmethod
    def _next_tokens(self, history: np.ndarray, draw: int, rng: np.random.Generator) -> np.ndarray:
        """One token per row drawn from p(. | history row) under posterior sample ``draw``.

        ``history``: token ids, shape (m, order - 1), ``<s>``-padded. Returns shape (m,).
        """

    def next_tokens(self, history: np.ndarray, draw: int, rng: np.random.Generator) -> np.ndarray:
        """One token per row from p(. | history row) under posterior sample ``draw`` (:meth:`_next_tokens`)."""
        self._check_fitted("next_tokens")
        return self._next_tokens(np.asarray(history, dtype=np.int64), int(draw), rng)

    def sample_sentences(self, n_sentences: int, *, random_seed=None, draw: int | None = None,
                         max_tokens: int = 200) -> Corpus:
        """Replicate sentences (:meth:`SamplesSentences.sample_sentences`, tokens by :meth:`_next_tokens`);
        with a spelling model the sampled ``<unk>`` tokens are spelled as new words.
        """
        self._check_fitted("sample_sentences")
        rng = np.random.default_rng(random_seed)
        sampled = super().sample_sentences(n_sentences, random_seed=rng, draw=draw, max_tokens=max_tokens)
        return self._spell_unknown(sampled, rng)

    def _spell_unknown(self, corpus: Corpus, rng: np.random.Generator) -> Corpus:
        """With a spelling model, the sampled ``<unk>`` tokens of ``corpus`` spelled as new words (its ``words()``)."""
        unknown = np.flatnonzero(corpus.ids == self.vocab_.unk_id)
        if self.spelling_ is None or unknown.size == 0:
            return corpus
        words = corpus.words().copy()
        words[unknown] = self.spelling_.sample(unknown.size, rng, avoid=self.vocab_)
        return Corpus(corpus.ids, corpus.offsets, self.vocab_, self.tokenizer_,
                      surface=corpus.surface.with_words(words))

    # -- files ------------------------------------------------------------------------------------
    def _family_arrays(self) -> dict[str, np.ndarray]:
        arrays = self.counts_.to_arrays()
        if self.spelling_ is not None and self.spelling_words_.size:
            arrays["spelling_words"] = self.spelling_words_
        return arrays

    def _restore_counts(self, arrays: dict) -> None:
        """``counts_`` from a model directory's arrays; ModelFileError if they are missing or foreign."""
        if "o1_ngram_key" not in arrays:
            raise ModelFileError("the model directory has no n-gram counts (arrays.npz missing or foreign)")
        self.counts_ = NgramCounts.from_arrays(arrays)
        if self.counts_.order != self.order or self.counts_.vocab_size != len(self.vocab_):
            raise ModelFileError("the counts do not match the model's order or vocabulary")
        self._fit_spelling(arrays.get("spelling_words"))
