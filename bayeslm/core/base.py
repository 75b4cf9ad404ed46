"""``BayesianLM``: configuration, fitting, scoring and files, written once for every family.

A family subclasses :class:`BayesianLM` and implements the abstract methods of
:class:`bayeslm.core.protocol.LanguageModel`; evaluation with credible intervals, sentence
scores, per-token tables, entropy per position, generation and save/load come from here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd

from bayeslm.core.evaluation import Evaluation
from bayeslm.core.fingerprint import data_fingerprint, model_id, posterior_fingerprint
from bayeslm.core.priors import Prior
from bayeslm.core.protocol import LanguageModel
from bayeslm.core.sampling import prepare_pytensor
from bayeslm.core.settings import (
    ModelOptions,
    SamplerSettings,
    TokenizerSettings,
    options_from_defaults,
    validate_section,
)
from bayeslm.core.storage import (
    FORMAT_VERSION,
    config_id,
    family_class,
    load_model,
    register_family,
    save_model,
)
from bayeslm.exceptions import ConfigError, NotFittedError, VocabularyMismatchError
from bayeslm.stats.intervals import HDI_PROB, hdi
from bayeslm.text.corpus import Corpus
from bayeslm.text.tokenize import Tokenizer, tokenizer_from_dict
from bayeslm.text.vocab import Vocabulary

__all__ = ["BayesianLM", "Evaluation", "load", "FORMAT_VERSION", "UNITS", "check_units", "in_units"]

LN2 = np.log(2.0)
LN10 = np.log(10.0)
#: units of information quantities in the Python API (nats by default); people read bits
UNITS = ("nats", "bits")
#: entropy_split's columns and the names per-token and per-sentence tables give them
_SPLIT_COLUMNS = (("total", "entropy"), ("aleatoric", "aleatoric"), ("epistemic", "epistemic"))


def check_units(units: str) -> str:
    """``units`` if it is one of :data:`UNITS`, else a :class:`~bayeslm.exceptions.ConfigError`."""
    if units not in UNITS:
        raise ConfigError(f"units must be 'nats' or 'bits', got {units!r}")
    return units


def in_units(nats, units: str):
    """An information quantity given in nats (number, array, Series or DataFrame) in ``units``.

    ``units``: ``"nats"`` (returned unchanged) or ``"bits"`` (divided by ln 2); anything
    else is a :class:`~bayeslm.exceptions.ConfigError`.
    """
    return nats if check_units(units) == "nats" else nats / LN2


class BayesianLM(LanguageModel):
    """Base class of bayeslm's language models (see the module docstring for the protocol).

    Every argument is checked by type and range when the model is made
    (:mod:`bayeslm.core.settings`), before any work; the priors against PyMC when it is
    fitted (:meth:`check_priors`). A bad value is a :class:`ConfigError` of one line.

    Parameters
    ----------
    order : int, optional
        Context length plus one (3 for a trigram model); None: the family's default.
    tokenizer : str, dict or Tokenizer
        How text becomes tokens (``"word"``, ``"whitespace"``, ``"char"``, ``"bpe"``).
    min_count : int
        Training tokens seen fewer times become ``<unk>``.
    max_size : int, optional
        Largest vocabulary, special tokens included.
    model_config : dict of name -> Prior (or its dict form)
        Priors, merged over :attr:`default_model_config`.
    sampler_config : dict
        ``pm.sample`` settings (:class:`~bayeslm.core.settings.SamplerSettings`), merged
        over :attr:`default_sampler_config`.
    **options
        The family's ``[model]`` options (:attr:`model_options`).
    """

    family: ClassVar[str] = ""
    default_model_config: ClassVar[dict] = {}
    default_sampler_config: ClassVar[dict] = SamplerSettings().model_dump()
    #: the ``[model]`` section of this family: a :class:`~bayeslm.core.settings.ModelOptions`
    #: subclass, one typed field per option (a plain dict ``{name: default}`` declares untyped options)
    model_options: ClassVar[type[ModelOptions]] = ModelOptions
    #: whether ``fit`` samples with PyMC (then PyTensor's BLAS is resolved first); a family that
    #: draws without it sets False and imports neither
    fits_with_pymc: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("model_options"), dict):
            cls.model_options = options_from_defaults(f"{cls.__name__}Options", cls.__dict__["model_options"])
        if cls.family:
            register_family(cls)

    def __init__(
        self,
        order: int | None = None,
        *,
        tokenizer: str | dict | Tokenizer = "word",
        min_count: int = 1,
        max_size: int | None = None,
        model_config: dict | None = None,
        sampler_config: dict | None = None,
        **options,
    ):
        given = options if order is None else {"order": order, **options}
        owner = f"the {self.family} family" if self.family else type(self).__name__
        checked = validate_section(self.model_options, given, "model",
                                   unknown=f"model: {owner} has no option {{key!r}}; known: {{known}}")
        self.order = int(checked.order)
        self.options = checked.model_dump(exclude={"order"})
        self.tokenizer, self.min_count, self.max_size = self._configured_tokenizer(tokenizer, min_count, max_size)
        self.model_config = self._merge_priors(model_config or {})
        self.sampler_config = self._checked_sampler({**self.default_sampler_config, **(sampler_config or {})})
        self.idata = None
        self.vocab_: Vocabulary | None = None
        self.tokenizer_: Tokenizer | None = None  # the trained tokenizer the training text came with
        self.fit_seconds_: float | None = None
        self.is_fitted_ = False

    @staticmethod
    def _configured_tokenizer(tokenizer, min_count, max_size) -> tuple[Tokenizer, int, int | None]:
        """The tokenizer and vocabulary limits, checked as the ``[tokenizer]`` section."""
        given, trained = {}, None
        if isinstance(tokenizer, str):
            given = {"kind": tokenizer}
        elif isinstance(tokenizer, dict):
            given = dict(tokenizer)
            trained = given.pop("model_json", None)  # a trained BPE (tokenizer.json), not a setting
        elif not isinstance(tokenizer, Tokenizer):
            raise ConfigError(f"tokenizer must be a kind ('word', 'whitespace', 'char', 'bpe'), a table of "
                              f"[tokenizer] settings or a Tokenizer, got {type(tokenizer).__name__}")
        settings = validate_section(TokenizerSettings, {**given, "min_count": min_count, "max_size": max_size},
                                    "tokenizer")
        if not isinstance(tokenizer, Tokenizer):
            options = settings.tokenizer_options()
            if trained:
                options["model_json"] = trained
            tokenizer = tokenizer_from_dict({"kind": settings.kind, **options})
        return tokenizer, settings.min_count, settings.max_size

    def _merge_priors(self, model_config: dict) -> dict[str, Prior]:
        if not isinstance(model_config, dict):
            raise ConfigError(f"[prior] must be a table of priors (prior.NAME), got {model_config!r}")
        unknown = set(model_config) - set(self.default_model_config)
        if unknown:
            raise ConfigError(f"prior: unknown prior(s) {sorted(unknown)}; {type(self).__name__} has "
                              f"{sorted(self.default_model_config)}")
        merged = {}
        for name, default in self.default_model_config.items():
            value = model_config.get(name, default)
            merged[name] = value if isinstance(value, Prior) else Prior.from_dict(value, section=f"prior.{name}")
        return merged

    def _checked_sampler(self, settings: dict) -> dict:
        """``settings`` checked as the ``[sampler]`` section, with every setting."""
        return validate_section(SamplerSettings, settings, "sampler",
                                unknown="sampler: unknown sampler setting {key!r}; known: {known}").model_dump()

    def check_priors(self) -> None:
        """Check every prior against its PyMC distribution (:meth:`Prior.validate`; imports PyMC).

        ``fit`` does this before any work; the command line right after reading a configuration.
        """
        for name, prior in self.model_config.items():
            prior.validate(f"prior.{name}")

    # -- configuration ---------------------------------------------------------------
    def get_config(self) -> dict:
        """The full configuration as plain JSON-ready data (the TOML schema)."""
        tok = self.tokenizer.to_dict()
        tok.pop("model_json", None)  # the trained BPE lives in tokenizer.json
        return {
            "model": {"family": self.family, "order": self.order, **self.options},
            "tokenizer": {**tok, "min_count": self.min_count, "max_size": self.max_size},
            "prior": {name: p.to_dict() for name, p in self.model_config.items()},
            "sampler": dict(self.sampler_config),
        }

    @property
    def config_id(self) -> str:
        """Short sha256 of the configuration, the format version and the family."""
        return config_id(self.get_config(), self.family)

    @property
    def id(self) -> str:
        """The model's id: what identifies this fitted model, or, before fitting, its configuration.

        Fitted, the short sha256 of :attr:`config_id`, the training data's fingerprint and
        the posterior's (:mod:`bayeslm.core.fingerprint`; all three in the posterior attrs):
        two fits differ in id unless they share configuration, data and draws (the same
        seed on the same data gives the same id; ``random_seed = none`` a new one each
        time), and saving and loading keep it. Not fitted, a model is its configuration,
        and its id is :attr:`config_id`.
        """
        if self.is_fitted_ and self.idata is not None and "id" in self.idata["posterior"].attrs:
            return str(self.idata["posterior"].attrs["id"])
        return self.config_id

    def _check_fitted(self, what: str = "this method") -> None:
        if not self.is_fitted_:
            raise NotFittedError(self, what)

    @property
    def vocabulary(self) -> Vocabulary:
        self._check_fitted("vocabulary")
        return self.vocab_

    # -- data ------------------------------------------------------------------------
    def encode(self, data: "Corpus | str | Sequence[str]") -> Corpus:
        """A corpus in this model's vocabulary (text is tokenised with the model's tokenizer)."""
        self._check_fitted("encode")
        return self._encode(data)

    def _encode(self, data: "Corpus | str | Sequence[str]") -> Corpus:
        """:meth:`encode` for a model whose vocabulary and tokenizer are known (also during ``fit``)."""
        if self.tokenizer_ is None:  # a model put together by hand: no text without its tokenizer
            raise NotFittedError(self, "encode (tokenizer_ is not set)")
        if isinstance(data, Corpus):
            return data.with_vocabulary(self.vocab_, tokenizer=self.tokenizer_)
        if isinstance(data, str):
            data = [data]
        return Corpus.from_texts(list(data), tokenizer=self.tokenizer_, vocab=self.vocab_)

    def read(self, paths) -> Corpus:
        """Read files, directories or globs with this model's tokenizer and vocabulary."""
        self._check_fitted("read")
        return Corpus.from_paths(paths, tokenizer=self.tokenizer_, vocab=self.vocab_)

    def _prepare_training(self, corpus: Corpus) -> Corpus:
        """The training corpus in a vocabulary built from it (sets ``vocab_``)."""
        if not isinstance(corpus, Corpus):
            raise ConfigError(f"fit needs a Corpus, got {type(corpus).__name__}")
        self._check_tokenizer(corpus.tokenizer)
        self.vocab_ = Vocabulary.build(corpus.type_counts(), self.min_count, self.max_size)
        return corpus.with_vocabulary(self.vocab_)

    def _check_tokenizer(self, brought: Tokenizer) -> None:
        """Refuse training text tokenised otherwise than configured.

        A configured BPE tokenizer that is not trained accepts a corpus whose BPE has the
        same settings: the corpus trained it on its text (``Corpus.from_*`` does), and
        ``fit`` keeps that one as ``tokenizer_``.
        """
        if brought == self.tokenizer:
            return
        settings = lambda tok: {k: v for k, v in tok.to_dict().items() if k != "model_json"}
        if not self.tokenizer.is_trained and brought.is_trained and settings(brought) == settings(self.tokenizer):
            return
        raise VocabularyMismatchError(
            f"the training text was tokenised with {brought!r}, the model is configured for {self.tokenizer!r}"
        )

    def _training_corpus(self, corpus, sampler: dict) -> tuple[Corpus, tuple[int, int]]:
        """The training text in the model's vocabulary and its size (tokens, sentences).

        Sets ``vocab_``; the returned corpus carries the tokenizer ``fit`` keeps.
        """
        train = self._prepare_training(corpus)
        return train, (train.n_tokens, train.n_sentences)

    # -- fitting ---------------------------------------------------------------------
    def fit(self, corpus: Corpus, valid: Corpus | None = None, **sampler_kwargs):
        """Fit the model to a training corpus; returns (and keeps as ``.idata``) the InferenceData.

        Parameters
        ----------
        corpus : Corpus
            Training text.
        valid : Corpus, optional
            Validation text used to choose settings the configuration leaves open; never
            scored as test.
        **sampler_kwargs
            Override sampler settings for this call (draws, tune, chains, random_seed, ...).
            They are recorded in the posterior attrs (``sampler_settings``), not written
            into :attr:`sampler_config`: the configuration, and so :attr:`id`, stay as given.
        """
        if "client" in sampler_kwargs:  # fit(client=...) belongs to the families that fit from n-gram counts
            raise ConfigError(f"{type(self).__name__} does not fit from n-gram counts: it cannot count on Dask (client=)")
        sampler = self._sampler_settings(sampler_kwargs)
        self.check_priors()
        start = time.perf_counter()
        if self.fits_with_pymc:
            prepare_pytensor()
        try:
            train, (n_tokens, n_sentences) = self._training_corpus(corpus, sampler)
            self.tokenizer_ = train.tokenizer
            valid_enc = self._encode(valid) if valid is not None else None
            self.idata = self._fit(train, valid_enc, sampler)
            self.fit_seconds_ = time.perf_counter() - start
            self.is_fitted_ = True
            self._set_attrs(training_tokens=n_tokens, training_sentences=n_sentences, sampler=sampler, train=train)
            self._store_mi_threshold(valid_enc if valid_enc is not None else train,
                                     "valid" if valid_enc is not None else "train")
        except BaseException:
            self.is_fitted_ = False
            raise
        return self.idata

    def _sampler_settings(self, sampler_kwargs: dict) -> dict:
        """The sampler settings of one call: the configuration with the call's overrides, checked."""
        return self._checked_sampler({**self.sampler_config, **sampler_kwargs})

    @property
    def fit_sampler_settings(self) -> dict:
        """The sampler settings the last fit (or update) used; the configuration if none were recorded.

        Directories written before these were recorded saved them as the configuration.
        """
        self._check_fitted("fit_sampler_settings")
        recorded = self.idata["posterior"].attrs.get("sampler_settings")
        return {**self.sampler_config, **json.loads(recorded)} if recorded else dict(self.sampler_config)

    def _store_mi_threshold(self, corpus: Corpus, source: str, quantile: float = 0.9, max_sentences: int = 2000) -> None:
        """Store the 90th percentile of per-position mutual information (the generator's flag).

        Computed on validation text when given, else on up to ``max_sentences`` training
        sentences (in-sample, so it runs lower).
        """
        if corpus.n_sentences > max_sentences:
            corpus = corpus.select(np.sort(np.random.default_rng(0).choice(corpus.n_sentences, max_sentences, replace=False)))
        try:
            mi = self.entropy_split(corpus)["epistemic"].to_numpy()
        except NotImplementedError:
            return
        attrs = self.idata["posterior"].attrs
        attrs["mi_threshold_nats"] = float(np.quantile(mi, quantile))
        attrs["mi_threshold_source"] = f"{int(quantile * 100)}th percentile of mutual information over {source} positions"

    def _set_attrs(self, *, training_tokens: int, training_sentences: int, sampler: dict,
                   train: Corpus | None = None) -> None:
        """The posterior attrs of a fit: configuration, sizes, settings and the fitted model's id.

        ``train``: the training corpus, whose ids and offsets are the data fingerprint of a
        family without n-gram counts (:attr:`training_counts`; with them, the counts are).
        """
        from bayeslm.core.idata import set_root_attrs
        from bayeslm.version import __version__

        seed = sampler.get("random_seed")
        recorded = {**sampler, "random_seed": int(seed) if isinstance(seed, (int, np.integer)) else None}
        counts = self.training_counts
        data = counts.to_arrays() if counts is not None else {"ids": train.ids, "offsets": train.offsets}
        set_root_attrs(
            self.idata,
            {
                "model_type": self.family,
                "format_version": FORMAT_VERSION,
                **self._id_attrs(self.config_id, data_fingerprint(self.vocab_.fingerprint, data)),
                "config": self.get_config(),
                "bayeslm_version": __version__,
                "vocab_fingerprint": self.vocab_.fingerprint,
                "training_tokens": int(training_tokens),
                "training_sentences": int(training_sentences),
                "fit_seconds": float(self.fit_seconds_ or 0.0),
                "sampler_settings": recorded,
            },
        )

    # -- derived from the protocol ----------------------------------------------------
    def entropy_split(self, data, *, units: str = "nats") -> pd.DataFrame:
        """Per scored position: ``total``, ``aleatoric``, ``epistemic`` predictive entropy.

        ``total`` is the entropy of the posterior-predictive next-token distribution,
        ``aleatoric`` its expected entropy under the posterior, ``epistemic`` their
        difference (the mutual information between the next token and the parameters).
        In ``units``: ``"nats"`` (default) or ``"bits"``. A family that replaces this
        method keeps the ``units`` argument (:func:`in_units` converts).
        """
        check_units(units)
        contexts, _ = self.encode(data).context_windows(self.context_length)
        return in_units(self.context_entropy_split(contexts), units)

    @property
    def context_length(self) -> int:
        """Tokens of history the model conditions on."""
        return self.order - 1

    @property
    def n_samples(self) -> int:
        """Posterior samples (chains x draws)."""
        chains, draws = self._draw_shape()
        return chains * draws

    def generate(self, prompt: str = "", n: int = 5, max_tokens: int = 40, random_seed=None, **options):
        """Continuations of ``prompt`` sampled from the posterior; see :func:`bayeslm.generate.generate`."""
        from bayeslm.core.generation import generate

        return generate(self, prompt, n=n, max_tokens=max_tokens, random_seed=random_seed, **options)

    # -- scoring (written once) ---------------------------------------------------------
    def _draw_shape(self) -> tuple[int, int]:
        post = self.idata["posterior"]
        return int(post.sizes["chain"]), int(post.sizes["draw"])

    def token_log_prob(self, data):
        """log p(token | context) per posterior draw: DataArray (chain, draw, position), nats.

        Memory is samples x positions: for long texts use :meth:`evaluate`, which streams.
        """
        import xarray as xr

        corpus = self.encode(data)
        chains, draws = self._draw_shape()
        n_pos = corpus.n_tokens + corpus.n_sentences
        out = np.empty((chains * draws, n_pos))
        for positions, lp in self._log_prob_draws(corpus):
            out[:, positions] = lp
        return xr.DataArray(out.reshape(chains, draws, n_pos), dims=("chain", "draw", "position"),
                            coords={"chain": np.arange(chains), "draw": np.arange(draws)})

    def evaluate(self, data, hdi_prob: float = HDI_PROB) -> Evaluation:
        """Cross-entropy and perplexity per draw (with HDI) and the predictive perplexity.

        Each sentence is scored with one ``</s>`` and no ``<s>``; out-of-vocabulary words
        score as ``<unk>`` (KenLM's convention).
        """
        import xarray as xr

        corpus = self.encode(data)
        chains, draws = self._draw_shape()
        total = np.zeros(chains * draws)
        for _, lp in self._log_prob_draws(corpus):
            total += lp.sum(axis=1)
        n_pos = corpus.n_tokens + corpus.n_sentences
        bits = xr.DataArray((-total / n_pos / np.log(2)).reshape(chains, draws), dims=("chain", "draw"),
                            coords={"chain": np.arange(chains), "draw": np.arange(draws)})
        predictive_bits = float(-self.predictive_log_prob(corpus).sum() / n_pos / np.log(2))
        oov = int(np.count_nonzero(corpus.ids == self.vocab_.unk_id))
        return Evaluation(
            positions=int(n_pos),
            tokens=corpus.n_tokens,
            sentences=corpus.n_sentences,
            oov=oov,
            cross_entropy_bits=bits,
            predictive_cross_entropy_bits=predictive_bits,
            hdi_prob=hdi_prob,
            model={"family": self.family, "order": self.order, "id": self.id},
            characters=corpus.n_chars,
            bytes=corpus.n_bytes,
            text=self._priced_text(corpus),
            oov_priced=self.open_vocabulary or oov == 0,
        )

    def token_text(self, token_id: int, rng) -> str:
        """The text of a drawn token: its vocabulary string (a family with an open vocabulary spells ``<unk>``)."""
        return self.vocab_.tokens[int(token_id)]

    @property
    def open_vocabulary(self) -> bool:
        """Whether the model prices every string (a spelling model below its words); else OOV words are ``<unk>``."""
        return False

    def _priced_text(self, corpus: Corpus) -> str:
        """``"exact"`` if the tokens spell every line of ``corpus`` exactly, else what the tokenizer normalised."""
        return "exact" if corpus.exact else (self.tokenizer_.normalisation or "normalised by the tokenizer")

    def perplexity(self, data):
        """Perplexity per posterior draw: DataArray (chain, draw)."""
        return self.evaluate(data).perplexity

    def cross_entropy(self, data, *, units: str = "bits"):
        """Cross-entropy per posterior draw: DataArray (chain, draw), bits (or nats) per token."""
        bits = self.evaluate(data).cross_entropy_bits
        return bits if units == "bits" else bits * np.log(2)

    def score(self, sentences, *, per_token: bool = False, units: str = "nats",
              hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Each sentence's log probability, its credible interval and its entropy split.

        One row per sentence, information quantities in ``units`` (``"nats"`` by default, or
        ``"bits"``; the suffix ``<u>`` of the column names says which):

        - ``log_prob_<u>``: the sum over the sentence's scored positions (its tokens and
          ``</s>``) of the log posterior-predictive probability (what :meth:`evaluate`'s
          predictive cross-entropy averages);
        - ``log_prob_per_draw_mean_<u>``, ``log_prob_hdi_low_<u>``, ``log_prob_hdi_high_<u>``:
          the sentence's log probability under each posterior draw, its mean and its
          ``hdi_prob`` highest-density interval over the draws;
        - ``mean_entropy_<u>``, ``mean_aleatoric_<u>``, ``mean_epistemic_<u>``: the
          predictive entropy and its split (:meth:`entropy_split`) averaged over the
          sentence's scored positions;
        - ``log10_prob``: ``log_prob`` in base 10, as KenLM's ``query`` prints it;
        - ``characters``, ``bytes``: of the text the sentence's tokens spell, its newline
          included (:attr:`Evaluation.characters`); ``bits_per_character``,
          ``bits_per_byte``: ``-log_prob`` in bits over them;
        - ``sentence``, ``text`` (as the model reads it), ``tokens`` (the text's tokens, as
          :attr:`Evaluation.tokens`), ``positions`` (scored positions: the tokens and one
          ``</s>``, as :attr:`Evaluation.positions`), ``oov`` (tokens read as ``<unk>``).

        With ``per_token=True``, :meth:`per_token`'s rows instead.
        """
        check_units(units)
        corpus = self.encode(sentences)
        if per_token:
            return self.per_token(corpus, units=units)
        n_scored = corpus.sentence_lengths + 1
        per_draw = self._sentence_intervals(corpus, hdi_prob)  # before predictive_log_prob: a family may cache it
        sentence_of = np.repeat(np.arange(corpus.n_sentences), n_scored)
        sums = np.bincount(sentence_of, weights=self.predictive_log_prob(corpus), minlength=corpus.n_sentences)
        split = self.entropy_split(corpus, units=units)
        oov = np.bincount(np.repeat(np.arange(corpus.n_sentences), corpus.sentence_lengths),
                          weights=(corpus.ids == self.vocab_.unk_id), minlength=corpus.n_sentences)
        chars, nbytes = corpus.surface.sentence_totals(corpus.offsets)
        return pd.DataFrame({
            "sentence": np.arange(corpus.n_sentences),
            "text": corpus.decode_lines(),
            f"log_prob_{units}": in_units(sums, units),
            **{f"log_prob_{name}_{units}": in_units(values, units) for name, values in per_draw.items()},
            **{f"mean_{column}_{units}": np.bincount(sentence_of, weights=split[name].to_numpy(),
                                                     minlength=corpus.n_sentences) / n_scored
               for name, column in _SPLIT_COLUMNS},
            "log10_prob": sums / LN10,
            "tokens": corpus.sentence_lengths,
            "positions": n_scored,
            "oov": oov.astype(int),
            "characters": chars,
            "bytes": nbytes,
            "bits_per_character": -sums / LN2 / chars,
            "bits_per_byte": -sums / LN2 / nbytes,
        })

    def _sentence_intervals(self, corpus: Corpus, hdi_prob: float) -> dict[str, np.ndarray]:
        """Per sentence, over posterior draws of its log probability: ``per_draw_mean``, ``hdi_low``, ``hdi_high`` (nats)."""
        out = {name: np.empty(corpus.n_sentences) for name in ("per_draw_mean", "hdi_low", "hdi_high")}
        for sentence, draws in self._sentence_log_prob_draws(corpus):
            out["per_draw_mean"][sentence] = draws.mean()
            out["hdi_low"][sentence], out["hdi_high"][sentence] = hdi(draws, hdi_prob=hdi_prob)
        return out

    def _sentence_log_prob_draws(self, corpus: Corpus):
        """Yield ``(sentence, log_prob)`` with the sentence's log probability per posterior draw, shape (draw,), nats.

        Sums the protocol's :meth:`_log_prob_draws` chunks per sentence and yields a
        sentence once all its scored positions have streamed by: only the sentences a
        chunk leaves open are held (draws x open sentences), never draws x positions.
        """
        n_scored = corpus.sentence_lengths + 1
        sentence_of = np.repeat(np.arange(corpus.n_sentences), n_scored)
        remaining = n_scored.copy()
        open_sums: dict[int, np.ndarray] = {}
        for positions, lp in self._log_prob_draws(corpus):
            sentences = sentence_of[positions]
            if sentences.size == 0:
                continue
            order = np.argsort(sentences, kind="stable")
            sentences = sentences[order]
            starts = np.flatnonzero(np.concatenate([[True], sentences[1:] != sentences[:-1]]))
            partial = np.add.reduceat(np.asarray(lp)[:, order], starts, axis=1)  # (draw, sentences in the chunk)
            counts = np.diff(np.append(starts, sentences.size))
            for j, sentence in enumerate(sentences[starts].tolist()):
                open_sums[sentence] = open_sums.get(sentence, 0.0) + partial[:, j]
                remaining[sentence] -= counts[j]
                if remaining[sentence] == 0:
                    yield sentence, open_sums.pop(sentence)

    def per_token(self, data, *, entropies: bool = True, units: str = "nats") -> pd.DataFrame:
        """One row per scored position: token, its log probability and (optionally) entropies.

        Columns: ``sentence``, ``index`` (position in the sentence; its length for ``</s>``),
        ``token`` (as the model reads it), ``oov``, ``log_prob_<u>`` (log posterior-predictive
        probability), ``log10_prob`` (the same in base 10, as KenLM prints it), ``characters``
        and ``bytes`` (of the text the token spells with the separator before it; ``</s>``:
        the newline; summed over any span they divide its bits into bits per character) and with
        ``entropies`` the :meth:`entropy_split` as ``entropy_<u>``, ``aleatoric_<u>``,
        ``epistemic_<u>``. ``<u>`` is ``units``: ``"nats"`` (default) or ``"bits"``.
        """
        check_units(units)
        corpus = self.encode(data)
        stream, targets = corpus.padded(self.order)
        lengths = corpus.sentence_lengths + 1
        sentence = np.repeat(np.arange(corpus.n_sentences), lengths)
        index = np.arange(targets.size) - np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        lp = self.predictive_log_prob(corpus)
        tokens = np.asarray(self.vocab_.tokens, dtype=object)[stream[targets]]
        frame = pd.DataFrame({
            "sentence": sentence,
            "index": index,
            "token": tokens,
            "oov": stream[targets] == self.vocab_.unk_id,
            f"log_prob_{units}": in_units(lp, units),
            "log10_prob": lp / LN10,
        })
        if entropies:
            split = self.entropy_split(corpus, units=units)
            for name, column in _SPLIT_COLUMNS:
                frame[f"{column}_{units}"] = split[name].to_numpy()
        frame["characters"], frame["bytes"] = corpus.surface.position_lengths(corpus.offsets)
        return frame

    # -- files -----------------------------------------------------------------------
    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the model directory (``model.nc``, ``vocab.json``, ``tokenizer.json``, family arrays).

        The directory is written under a temporary name and renamed when complete, so an
        interrupted save leaves nothing half-written. An existing directory is replaced only
        with ``force=True``. A posterior changed after the fit gets its own :attr:`id`
        first. See :func:`bayeslm.core.storage.save_model`.
        """
        self._check_fitted("save")
        self._refresh_id()
        return save_model(self, path, force=force)

    def _refresh_id(self) -> None:
        """The id of the model as it is: a posterior changed since the fit makes another model.

        The posterior fingerprint (and with it :attr:`id`) is computed again; configuration
        id and data fingerprint stay as the fit recorded them. A model whose id is its
        configuration's (format 1) keeps it.
        """
        attrs = self.idata["posterior"].attrs
        if "data_fingerprint" in attrs:
            attrs.update(self._id_attrs(attrs["config_id"], attrs["data_fingerprint"]))

    def _id_attrs(self, configuration: str, training_data: str) -> dict:
        """The attrs ``config_id`` (``configuration``), ``data_fingerprint`` (``training_data``),
        ``posterior_fingerprint`` (of the model as it is) and the fitted model's ``id``."""
        fingerprints = {"config_id": configuration, "data_fingerprint": training_data,
                        "posterior_fingerprint": posterior_fingerprint(self.idata, self._family_arrays())}
        return {**fingerprints, "id": model_id(**fingerprints)}

    @classmethod
    def load(cls, path: str | Path) -> "BayesianLM":
        """Load a model directory written by :meth:`save` (never unpickles)."""
        return load_model(path, expected=None if cls is BayesianLM else cls)

    @classmethod
    def from_config(cls, config: dict, tokenizer: Tokenizer | None = None) -> "BayesianLM":
        """A model from the configuration schema (see ``docs/config.md``); every setting is checked.

        ``tokenizer``: a tokenizer to use instead of building the one ``[tokenizer]`` names
        (a loaded model's trained one); the section's ``min_count`` and ``max_size`` still apply.
        """
        if not isinstance(config, dict):
            raise ConfigError(f"a configuration must be a table of sections, got {type(config).__name__}")
        for section in ("model", "tokenizer", "prior", "sampler"):
            if not isinstance(config.get(section, {}), dict):
                raise ConfigError(f"[{section}] must be a table of settings, got {config[section]!r}")
        model = dict(config.get("model", {}))
        family = model.pop("family", cls.family)
        elsewhere = sorted(set(model) & {"tokenizer", "min_count", "max_size", "model_config", "sampler_config"})
        if elsewhere:
            raise ConfigError(f"model: {elsewhere[0]!r} is not a [model] option (tokenizer settings go in [tokenizer], "
                              "priors in [prior.NAME], sampler settings in [sampler])")
        target = family_class(family) if cls is BayesianLM else cls
        tok = dict(config.get("tokenizer", {}))
        min_count = tok.pop("min_count", 1)
        max_size = tok.pop("max_size", None)
        return target(
            tokenizer=tokenizer if tokenizer is not None else {"kind": "word", **tok},
            min_count=min_count,
            max_size=max_size,
            model_config=config.get("prior", {}),
            sampler_config=config.get("sampler", {}),
            **model,
        )

    def __repr__(self) -> str:
        state = f"vocab={len(self.vocab_)}" if self.is_fitted_ else "not fitted"
        return f"{type(self).__name__}(order={self.order}, {state})"


def load(path: str | Path) -> BayesianLM:
    """Load any bayeslm model directory."""
    return load_model(path)
