"""``GPTLM`` (family ``"gpt-bll"``): a TinyGPT body with a Bayesian last layer, answering bayeslm's protocol.

``fit`` trains the body (MAP) on most of the training text, freezes it and fits a
:class:`bayeslm.BayesianLastLayer` on its features at held-out positions; a corpus is read as
one stream across line breaks, scored at the same positions as the n-gram models
(docs/transformer.md, "The gpt-bll family"). Imports torch only inside methods.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import OrderedDict
from typing import Iterator

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from bayeslm.core.base import BayesianLM, check_units, in_units
from bayeslm.core.settings import Invalid, ModelOptions, choice, flag, number, text, whole
from bayeslm.core.storage import family_class
from bayeslm.exceptions import (
    BayesLMError,
    ConfigError,
    ModelFileError,
    VocabularyMismatchError,
)
from bayeslm.neural.domain_head import LaplacePosterior
from bayeslm.neural.last_layer import HESSIANS, METHODS, PRIOR_MEANS, PRIOR_SCALES
from bayeslm.text.corpus import Corpus
from bayeslm.text.vocab import Vocabulary

__all__ = ["GPTLM", "GPTOptions", "split_holdout", "body_settings", "training_settings"]

log = logging.getLogger(__name__)

_BODY = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "tie_weights")
_TRAIN = {"train_steps": "max_steps", "train_seconds": "max_seconds", "batch_size": "batch_size",
          "learning_rate": "learning_rate", "min_lr": "min_lr", "warmup_steps": "warmup_steps", "l2": "l2",
          "regularization": "regularization", "eval_interval": "eval_interval", "eval_batches": "eval_batches",
          "patience": "patience", "precision": "precision"}
_CACHE_SIZE = 4
_LAPLACE = "laplace."  # prefix of the last layer's Laplace posterior in arrays.npz


class GPTOptions(ModelOptions):
    """The ``[model]`` options of :class:`GPTLM` (see its docstring and ``docs/transformer.md``)."""

    order: whole(ge=2, optional=True) = Field(None, description="follows block_size (block_size + 1): leave it out")
    block_size: whole(ge=1) = Field(128, description="longest context, in tokens")
    n_layer: whole(ge=1) = Field(4, description="Transformer blocks")
    n_head: whole(ge=1) = Field(4, description="attention heads per block")
    n_embd: whole(ge=1) = Field(128, description="width; a multiple of n_head")
    dropout: number(ge=0.0, lt=1.0) = Field(0.0, description="dropout rate while training")
    bias: flag() = Field(True, description="biases in Linear layers and LayerNorms")
    tie_weights: flag() = Field(True, description="the output layer shares the token embedding")
    train_steps: whole(ge=0) = Field(2000, description="training steps (0: keep the body of init_from)")
    train_seconds: number(gt=0.0, optional=True) = Field(None, description="time budget of training (none: no limit)")
    batch_size: whole(ge=1) = Field(32, description="windows per training step")
    learning_rate: number(gt=0.0) = Field(3e-3, description="peak learning rate")
    min_lr: number(ge=0.0) = Field(3e-4, description="learning rate at the end of the cosine decay")
    warmup_steps: whole(ge=0) = Field(100, description="steps of linear warm-up")
    l2: number(ge=0.0) = Field(1e-6, description="L2 penalty (a Gaussian prior: MAP)")
    regularization: choice("l2", "adamw") = Field("l2", description="l2 (MAP) or adamw (decoupled decay)")
    eval_interval: whole(ge=1) = Field(100, description="steps between validation evaluations")
    eval_batches: whole(ge=1) = Field(8, description="batches per validation evaluation")
    patience: whole(ge=1, optional=True) = Field(
        5, description="evaluations without improvement before stopping (none: never stop early)")
    precision: choice("fp32", "bf16") = Field(
        "fp32", description="bf16: train under bfloat16 autocast (about 1.5x the steps per second on CPUs with bf16)")
    checkpoint_dir: text(optional=True) = Field(None, description="training checkpoints (resumed from) go here")
    init_from: text(optional=True) = Field(None, description="a TinyGPT checkpoint or gpt-bll model to fine-tune")
    method: choice(*METHODS) = Field("laplace", description="the last layer's inference")
    hessian: choice(*HESSIANS) = Field("auto", description="the Laplace curvature")
    prior_scale: choice(*PRIOR_SCALES) = Field(
        "auto", description="how the prior scale is set (auto: the selection rule on validation positions)")
    prior_mean: choice(*PRIOR_MEANS) = Field("auto", description="centre of the last layer's prior")
    fit_positions: whole(ge=1) = Field(50000, description="positions the last layer is fitted on")
    fit_holdout: number(ge=0.0, lt=1.0) = Field(
        0.05, description="fraction of the training text held out from the body for the last layer")
    fit_holdout_pieces: whole(ge=1) = Field(100, description="segments the held-out fraction is spread over")
    valid_positions: whole(ge=1) = Field(20000, description="validation positions for the temperatures")
    eval_stride: whole(ge=1, optional=True) = Field(
        None, description="window step when reading long texts, <= block_size (none: block_size // 2)")
    advi_steps: whole(ge=1) = Field(10000, description="ADVI optimisation steps")
    advi_batch: whole(ge=1) = Field(512, description="ADVI minibatch size")
    advi_rank: whole(ge=1) = Field(10, description="rank of advi_lowrank's covariance")

    @model_validator(mode="after")
    def _consistent(self):
        if self.order is not None and self.order != self.block_size + 1:
            raise Invalid("a gpt-bll model's order is block_size + 1; leave model.order out", key="order",
                          rule=f"block_size + 1 = {self.block_size + 1}", value=self.order)
        if self.n_embd % self.n_head:
            raise Invalid(f"n_head is {self.n_head}", key="n_embd", rule="a multiple of n_head", value=self.n_embd)
        if self.eval_stride is not None and self.eval_stride > self.block_size:
            raise Invalid(key="eval_stride", rule=f"in 1..block_size = {self.block_size} or none",
                          value=self.eval_stride)
        self.order = self.block_size + 1
        return self


class GPTLM(BayesianLM):
    """A TinyGPT with a Bayesian last layer, as a bayeslm language model.

    Parameters (``[model]`` options; see ``docs/transformer.md``)
    ----------
    block_size, n_layer, n_head, n_embd, dropout, bias, tie_weights
        The body (:class:`bayeslm.neural.transformer.GPTConfig`).
    train_steps, train_seconds, batch_size, learning_rate, min_lr, warmup_steps, l2,
    regularization, eval_interval, eval_batches, patience, precision
        Training (:class:`bayeslm.neural.training.TrainConfig`); ``train_steps = 0`` keeps the
        body as loaded from ``init_from``.
    checkpoint_dir : str, optional
        Training checkpoints go here, and training resumes from one found there.
    init_from : str, optional
        A TinyGPT checkpoint or a gpt-bll model directory to start from (fine-tuning): its
        body settings and vocabulary are used, and the tokenizer must match.
    method, hessian, prior_scale, prior_mean
        The last layer's inference (:class:`bayeslm.BayesianLastLayer`); by default
        (``prior_mean = "auto"``) the prior of W is centred at the trained output layer
        calibrated on the validation text (``"calibrated_head"``), or at the output layer
        itself without validation text (``"head"``).
    fit_positions, valid_positions : int
        Training positions the last layer is fitted on; validation positions for the
        temperature that calibrates the prior's centre and the baselines' temperature /
        dropout rate.
    fit_holdout : float
        Fraction of the training stream held out from the body's training (the tails of
        ``fit_holdout_pieces`` segments, cut at line breaks; see :func:`split_holdout`);
        the last layer's ``fit_positions`` are drawn from that text only, so its features
        are those of text the body has not seen, like test text's (default 0.05; 0:
        fitted on the body's own training text, whose features are easier than any new
        text's). Validation text stays for early stopping and the temperatures above.
    fit_holdout_pieces : int
        Hold ``fit_holdout`` out of this many equal segments of the training stream (the
        tail of each), so that the held-out text spreads over the corpus and samples the
        training text as a whole (default 100; 1: one contiguous tail, in a trial a few
        plays whose own style the last layer then chased).
    eval_stride : int, optional
        Window step when reading long texts (default ``block_size // 2``).
    advi_steps, advi_batch, advi_rank
        ADVI settings.

    ``order`` is the context length plus one and follows ``block_size``; the sampler's
    ``draws`` is the number of posterior draws of the last layer, ``random_seed`` seeds the
    body's initialisation, its training batches, the positions and the draws.
    """

    family = "gpt-bll"
    default_model_config = {"weight_scale": {"dist": "LogNormal", "kwargs": {"mu": 0.0, "sigma": 2.0}}}
    default_sampler_config = {**BayesianLM.default_sampler_config, "draws": 200, "tune": 500, "chains": 1}
    model_options = GPTOptions

    def __init__(self, order: int | None = None, **kwargs):
        kwargs.setdefault("tokenizer", "char")
        super().__init__(order, **kwargs)
        self.body_ = None  # the TinyGPT
        self.bll_ = None  # the BayesianLastLayer
        self.train_result_ = None
        self.fit_split_ = None  # how fit divided the training stream between the body and the last layer
        self.laplace_posterior_ = None  # the last layer's Laplace posterior, what adapt() takes as the domain's prior
        self._features = OrderedDict()
        self._predictive = OrderedDict()
        self._body_version = 0

    @property
    def context_length(self) -> int:
        return int(self.options["block_size"])

    @property
    def diagnostic_var_names(self) -> list[str]:
        """Posterior variables worth an MCMC diagnostics row: ``weight_scale`` under NUTS; none
        for the other methods, whose draws are independent (not a Markov chain)."""
        if self.options["method"] != "nuts" or self.idata is None:
            return []
        return [v for v in ("weight_scale",) if v in self.idata["posterior"]]

    # -- the stream ------------------------------------------------------------------
    def stream(self, data) -> np.ndarray:
        """The token stream of a text: ``</s>``, then each line's tokens and ``</s>``.

        Position t of the stream predicts token t + 1; the targets ``stream[1:]`` are the
        scored positions of the protocol, in reading order.
        """
        return _stream_of(self.encode(data))

    def _body_config(self):
        from bayeslm.neural.transformer import GPTConfig

        return GPTConfig(vocab_size=len(self.vocab_), **body_settings(self.options))

    def _train_config(self, seed):
        from bayeslm.neural.training import TrainConfig

        return TrainConfig(**training_settings(self.options), seed=int(seed or 0), objective="causal")

    # -- fitting -----------------------------------------------------------------------
    def _prepare_training(self, corpus: Corpus) -> Corpus:
        init = self.options["init_from"]
        if init is None:
            return super()._prepare_training(corpus)
        # fine-tuning: the checkpoint's vocabulary, so its embeddings keep their meaning
        meta = _read_body_meta(init)
        if meta.get("tokenizer") is not None and meta["tokenizer"].get("kind") != self.tokenizer.kind:
            raise VocabularyMismatchError(
                f"{init} was trained with a {meta['tokenizer'].get('kind')!r} tokenizer, this model uses "
                f"{self.tokenizer.kind!r}")
        if corpus.tokenizer != self.tokenizer:
            raise VocabularyMismatchError(
                f"the text was tokenised with {corpus.tokenizer!r} but the model uses {self.tokenizer!r}")
        if "vocabulary" not in meta:
            raise ModelFileError(f"{init}: the checkpoint records no vocabulary; cannot fine-tune on new text")
        self.vocab_ = Vocabulary(meta["vocabulary"])
        return corpus.with_vocabulary(self.vocab_)

    def _fit(self, train: Corpus, valid: Corpus | None, sampler: dict):
        import torch

        from bayeslm.neural.last_layer import BayesianLastLayer
        from bayeslm.neural.training import train_gpt
        from bayeslm.neural.transformer import TinyGPT

        seed = sampler.get("random_seed")
        seed = int(seed) if seed is not None else int(np.random.default_rng().integers(2**31))
        progress = bool(sampler.get("progressbar", True))
        o = self.options
        if o["init_from"] is not None:
            body = _load_body(o["init_from"])
            if body.config.vocab_size != len(self.vocab_):
                raise VocabularyMismatchError(f"{o['init_from']}: the body has {body.config.vocab_size} tokens, "
                                              f"the vocabulary {len(self.vocab_)}")
            _check_body_settings(o, body.config, o["init_from"])
            if not body.config.causal:
                raise ConfigError(f"{o['init_from']}: a masked-token (bidirectional) body cannot predict the next token")
        else:
            torch.manual_seed(seed)
            body = TinyGPT(self._body_config())
        # the body trains on the head of the stream; the last layer is fitted on its held-out tail
        body_stream, holdout_stream = split_holdout(_stream_of(train), float(o["fit_holdout"]), self.vocab_.eos_id,
                                                    pieces=int(o["fit_holdout_pieces"]))
        fit_stream = holdout_stream if holdout_stream is not None else body_stream
        self.fit_split_ = {"fit_holdout": float(o["fit_holdout"]), "fit_holdout_pieces": int(o["fit_holdout_pieces"]),
                           "body_positions": int(len(body_stream) - 1),
                           "holdout_positions": int(len(holdout_stream) - 1) if holdout_stream is not None else 0}
        valid_stream = _stream_of(valid) if valid is not None else None
        self.train_result_ = None
        if int(o["train_steps"]) > 0:
            self.train_result_ = train_gpt(body, body_stream, self._train_config(seed), valid_stream=valid_stream,
                                           checkpoint_dir=o["checkpoint_dir"], progress=progress,
                                           meta={**self._body_meta(), "fit_holdout": float(o["fit_holdout"]),
                                                 "fit_holdout_pieces": int(o["fit_holdout_pieces"])})
        body.eval()
        self._set_body(body)
        X, y = self._sampled_features(fit_stream, int(o["fit_positions"]), seed)
        valid_xy = None
        if valid_stream is not None and len(valid_stream) > 2:
            valid_xy = self._sampled_features(valid_stream, int(o["valid_positions"]), seed + 1)
        elif o["method"] in ("map_temperature", "mc_dropout"):
            raise ConfigError(f"model.method = {o['method']!r} needs validation text (--valid / fit(valid=...))")
        self.bll_ = BayesianLastLayer(
            method=o["method"], hessian=o["hessian"], prior_scale=o["prior_scale"], prior_mean=o["prior_mean"],
            draws=int(sampler["draws"]),
            model_config={"weight_scale": self.model_config["weight_scale"]}, labels=self.vocab_.tokens,
            advi_steps=int(o["advi_steps"]), advi_batch=int(o["advi_batch"]), advi_rank=int(o["advi_rank"]),
            sampler_config={k: sampler[k] for k in ("tune", "chains", "target_accept", "cores", "nuts_sampler")
                            if sampler.get(k) is not None},
            random_seed=seed, progressbar=progress)
        head = body.lm_head.weight.detach().cpu().numpy().astype(float).copy()  # untied copy
        idata = self.bll_.fit(X, y, n_classes=len(self.vocab_), valid=valid_xy, init=(head, None))
        fit = self.bll_.laplace_
        self.laplace_posterior_ = LaplacePosterior.from_laplace(fit) if fit is not None else None
        attrs = idata["posterior"].attrs
        attrs["body_parameters"] = int(body.num_params())
        attrs["fit_holdout"] = float(o["fit_holdout"])
        attrs["fit_holdout_pieces"] = int(o["fit_holdout_pieces"])
        attrs["body_train_positions"] = int(len(body_stream) - 1)
        attrs["holdout_positions"] = self.fit_split_["holdout_positions"]
        if self.train_result_ is not None:
            r = self.train_result_
            attrs["gpt_training"] = json.dumps({"steps": r.steps, "best_step": r.best_step, "stopped": r.stopped,
                                                "seconds": r.seconds, "best_valid_loss": r.best_valid_loss,
                                                "history": r.history})
        return idata

    def _body_meta(self) -> dict:
        return {"vocabulary": list(self.vocab_.tokens), "vocab_fingerprint": self.vocab_.fingerprint,
                "tokenizer": {k: v for k, v in self.tokenizer.to_dict().items() if k != "model_json"}}

    def _set_body(self, body) -> None:
        self.body_ = body
        self._body_version += 1
        self._features.clear()
        self._predictive.clear()

    # -- features -------------------------------------------------------------------------
    def _stride(self) -> int:
        s = self.options["eval_stride"]
        return int(s) if s is not None else max(1, self.context_length // 2)

    def stream_features(self, stream: np.ndarray) -> np.ndarray:
        """h at every position of a stream but the last (position t predicts token t + 1), (n, d).

        Computed once per stream and kept (the last few streams are cached).
        """
        key = (hashlib.sha1(np.ascontiguousarray(stream, dtype=np.int64).tobytes()).hexdigest(), self._body_version,
               self._stride())
        if key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        feats = _window_features(self.body_, stream, self.context_length, self._stride())
        self._features[key] = feats
        while len(self._features) > _CACHE_SIZE:
            self._features.popitem(last=False)
        return feats

    def _sampled_features(self, stream: np.ndarray, n: int, seed: int):
        if len(stream) - 1 <= self.context_length:
            X = self.stream_features(stream)
            return X[:n], stream[1:][:n]
        return sampled_features(self.body_, stream, n, seed)

    def context_features(self, contexts) -> np.ndarray:
        """h after each context (token ids, oldest first; leading ``<s>`` = start of text), (m, d)."""
        import torch

        self._check_fitted("context_features")
        contexts = np.atleast_2d(np.asarray(contexts, dtype=np.int64))
        if contexts.size and (contexts.min() < 0 or contexts.max() >= len(self.vocab_)):
            raise BayesLMError("context token ids outside the vocabulary")
        T = self.context_length
        if contexts.shape[1] > T:
            warnings.warn(f"contexts of {contexts.shape[1]} tokens exceed the block size {T}: "
                          f"the last {T} are used", stacklevel=3)
            contexts = contexts[:, -T:]
        bos, eos = self.vocab_.bos_id, self.vocab_.eos_id
        rows = []
        for ctx in contexts:
            lead = int(np.argmax(ctx != bos)) if (ctx != bos).any() else ctx.size
            body = ctx[lead:].copy()
            body[body == bos] = eos
            if lead > 0 or body.size == 0:
                body = np.concatenate([[eos], body])[-T:]
            rows.append(body)
        out = np.empty((len(rows), self.options["n_embd"] if self.body_ is None else self.body_.config.n_embd),
                       dtype=np.float32)
        lengths = np.array([r.size for r in rows])
        with torch.no_grad():
            for length in np.unique(lengths):
                idx = np.flatnonzero(lengths == length)
                batch = torch.from_numpy(np.stack([rows[i] for i in idx]))
                out[idx] = self.body_.features(batch)[:, -1, :].numpy()
        return out

    # -- the protocol ----------------------------------------------------------------------
    def _targets(self, corpus: Corpus):
        stream = _stream_of(corpus)
        return stream, self.stream_features(stream), stream[1:].astype(np.int64)

    def _log_prob_draws(self, corpus: Corpus) -> Iterator[tuple[slice, np.ndarray]]:
        stream, X, y = self._targets(corpus)
        pred = np.empty(y.size)
        S = self.n_samples
        from scipy.special import logsumexp

        for sl, lp in self.bll_.log_prob_draws(X, y):
            pred[sl] = logsumexp(lp, axis=0) - np.log(S)
            yield sl, lp
        self._remember_predictive(stream, pred)

    def _remember_predictive(self, stream, pred) -> None:
        key = (hashlib.sha1(np.ascontiguousarray(stream, dtype=np.int64).tobytes()).hexdigest(), self._body_version)
        self._predictive[key] = pred
        while len(self._predictive) > _CACHE_SIZE:
            self._predictive.popitem(last=False)

    def predictive_log_prob(self, data) -> np.ndarray:
        """log p(token | context) under the posterior predictive, per scored position (nats)."""
        corpus = self.encode(data)
        stream = _stream_of(corpus)
        key = (hashlib.sha1(np.ascontiguousarray(stream, dtype=np.int64).tobytes()).hexdigest(), self._body_version)
        if key in self._predictive:
            return self._predictive[key].copy()
        X = self.stream_features(stream)
        pred = self.bll_.predictive_log_prob(X, stream[1:].astype(np.int64))
        self._remember_predictive(stream, pred)
        return pred

    def entropy_split(self, data, *, units: str = "nats") -> pd.DataFrame:
        """Per scored position: predictive entropy ``total``, expected entropy ``aleatoric``,
        mutual information ``epistemic`` (``units``: nats or bits), by Monte Carlo over the last layer's draws."""
        check_units(units)
        corpus = self.encode(data)
        return in_units(self.bll_.entropy_split(self.stream_features(_stream_of(corpus))), units)

    def next_token_probs(self, contexts, draws=None) -> np.ndarray:
        """softmax(W_s h + b_s) after each context, for each posterior draw: (draw, context, token).

        ``contexts``: token ids (m, length <= block_size; longer ones keep their last
        block_size tokens); ``draws``: a count (evenly spaced) or indices, as for every model.
        """
        self._check_fitted("next_token_probs")
        return self.bll_.prob_draws(self.context_features(contexts), draws)

    def predictive_probs(self, contexts) -> np.ndarray:
        self._check_fitted("predictive_probs")
        return self.bll_.predict_proba(self.context_features(contexts))

    def context_entropy_split(self, contexts) -> pd.DataFrame:
        self._check_fitted("context_entropy_split")
        return self.bll_.entropy_split(self.context_features(contexts))

    # -- files -------------------------------------------------------------------------
    def _family_arrays(self) -> dict[str, np.ndarray]:
        from bayeslm.neural.transformer import state_tensors

        arrays = {f"body.{k}": v.numpy() for k, v in state_tensors(self.body_).items()}
        from dataclasses import asdict

        arrays["body_config"] = np.array(json.dumps(asdict(self.body_.config)))
        if self.laplace_posterior_ is not None:
            arrays.update(self.laplace_posterior_.to_arrays(_LAPLACE))
        return arrays

    def _restore_family(self, arrays: dict) -> None:
        import torch

        from bayeslm.neural.last_layer import BayesianLastLayer
        from bayeslm.neural.transformer import GPTConfig, TinyGPT

        if "body_config" not in arrays:
            raise ModelFileError("the model directory holds no GPT body (arrays.npz missing or foreign)")
        try:
            config = GPTConfig.from_dict(json.loads(str(arrays["body_config"])))
        except (ValueError, TypeError, ConfigError) as err:
            raise ModelFileError(f"the GPT body's settings are corrupt ({err})") from None
        if config.vocab_size != len(self.vocab_):
            raise ModelFileError(f"the GPT body has {config.vocab_size} tokens but vocab.json {len(self.vocab_)}")
        body = TinyGPT(config)
        state = {k[5:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("body.")}
        try:
            missing, unexpected = body.load_state_dict(state, strict=False)
        except RuntimeError as err:
            raise ModelFileError(f"the GPT body's weights do not fit its settings ({str(err).splitlines()[0]})") from None
        if unexpected or [m for m in missing if m != "lm_head.weight"]:
            raise ModelFileError("the GPT body's weights do not match its settings")
        body.eval()
        self._set_body(body)
        self.bll_ = BayesianLastLayer(method=self.options["method"], labels=self.vocab_.tokens,
                                      model_config={"weight_scale": self.model_config["weight_scale"]})
        self.bll_.idata = self.idata
        self.laplace_posterior_ = LaplacePosterior.from_arrays(arrays, _LAPLACE)

    def adapt(self, domain: Corpus, valid: Corpus | None = None, *, head: str = "bayes", **kwargs):
        """A GPT of ``domain`` text: this model's body, frozen, and its last layer refitted on the domain.

        ``head="bayes"``: the last layer's prior is this model's Laplace posterior raised to a
        power lam, N(theta, (lam Lambda)^-1), lam chosen on ``valid`` or by evidence (how far the
        domain departs); ``head="map"``: plain fine-tuning of the head (MAP with the weight decay
        ``l2``), for comparison. This model is not changed (docs/domain.md, "GPT").

        ``domain`` is a Corpus in this model's tokenizer (``lm.read(paths)``); ``valid``, domain
        validation text, chooses lam (its positions' probability under the posterior mode) and
        the generator's flag threshold. ``kwargs``: ``model_config`` (``{"power": Prior}``),
        ``options`` (``power``, ``fit_positions``) and sampler settings (``draws``, ``random_seed``).
        Returns an AdaptedGPTLM or a FineTunedGPTLM (:mod:`bayeslm.neural.adapt`).
        """
        self._check_fitted("adapt")
        families = {"bayes": "gpt-bll-adapted", "map": "gpt-bll-finetuned"}
        if head not in families:
            raise ConfigError(f"head must be 'bayes' or 'map', got {head!r}")
        return family_class(families[head]).from_general(self, domain, valid, **kwargs)

    def __repr__(self) -> str:
        state = f"vocab={len(self.vocab_)}" if self.is_fitted_ else "not fitted"
        o = self.options
        return (f"GPTLM(block_size={o['block_size']}, n_layer={o['n_layer']}, n_embd={o['n_embd']}, "
                f"method={o['method']!r}, {state})")


# ---------------------------------------------------------------------------- helpers
def body_settings(options: dict) -> dict:
    """The :class:`~bayeslm.neural.transformer.GPTConfig` settings (all but ``vocab_size``) of gpt-bll options."""
    return {k: options[k] for k in _BODY}


def training_settings(options: dict) -> dict:
    """The :class:`~bayeslm.neural.training.TrainConfig` settings (all but ``seed``, ``objective``) of gpt-bll options."""
    return {v: options[k] for k, v in _TRAIN.items()}


def _stream_of(corpus: Corpus) -> np.ndarray:
    """``</s>``, then each sentence's ids followed by ``</s>`` (int64)."""
    eos = corpus.vocab.eos_id
    S, n = corpus.n_sentences, corpus.n_tokens
    stream = np.empty(n + S + 1, dtype=np.int64)
    stream[0] = eos
    sentence_of_token = np.repeat(np.arange(S), corpus.sentence_lengths)
    stream[1 + np.arange(n) + sentence_of_token] = corpus.ids
    stream[1 + corpus.offsets[1:] + np.arange(S)] = eos
    return stream


def split_holdout(stream: np.ndarray, fraction: float, eos_id: int,
                  pieces: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """Split a stream into the body's training stream and held-out text for the last layer.

    The stream is cut (at line breaks) into ``pieces`` segments of about equal length, and
    the last ``fraction`` of every segment is held out, cut at the ``</s>`` closest to
    ``(1 - fraction)`` of the way along it. The body's stream is its segments' heads
    joined, the held-out stream their tails joined; every piece runs from one ``</s>`` to
    the next, and where two pieces join their shared ``</s>`` appears once, so both
    streams start with ``</s>`` like any stream and every position (target) of the
    original stream lands in exactly one of them. ``pieces = 1`` holds out one contiguous
    tail (with files read in sorted order, the end of the last file(s)); more pieces spread
    the held-out text over the whole corpus, so it is new text in general rather than one
    or two plays, at the cost of a seam (a line break joining distant text) every
    ``len / pieces`` positions. A text of fewer than ``pieces / fraction`` lines is cut
    into fewer pieces (at most lines x ``fraction``, each of two lines or more), so that
    the held-out share stays near ``fraction``. ``fraction = 0`` gives ``(stream, None)``.
    """
    fraction, pieces = float(fraction), int(pieces)
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"fit_holdout must lie in [0, 1), got {fraction}")
    if pieces < 1:
        raise ConfigError(f"fit_holdout_pieces must be at least 1, got {pieces}")
    if fraction == 0.0:
        return stream, None
    L = len(stream) - 1
    breaks = np.flatnonzero(stream[1:-1] == eos_id) + 1  # inner line breaks
    if breaks.size == 0:
        raise BayesLMError("cannot hold out part of a text of one line: it has no inner line break")
    # a short text: fewer pieces, so that each holds about fraction x its lines >= 1 line out
    # (with two-line pieces every held-out tail would be a whole line: half the text)
    pieces = max(1, min(pieces, (breaks.size + 1) // 2, int((breaks.size + 1) * fraction)))

    def nearest(target: float, lo: int, hi: int) -> int:
        """The inner line break nearest to ``target`` strictly between ``lo`` and ``hi``."""
        inside = breaks[(breaks > lo) & (breaks < hi)]
        if inside.size == 0:
            raise BayesLMError(f"cannot hold out {pieces} piece(s): a segment has no line break to cut at")
        return int(inside[np.argmin(np.abs(inside - target))])

    bounds = [0]
    for j in range(1, pieces):
        bounds.append(nearest(j * L / pieces, bounds[-1], L))
    bounds.append(L)
    body, held = [], []
    for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        cut = nearest(lo + (1.0 - fraction) * (hi - lo), lo, hi)
        first = 0 if j == 0 else 1  # the piece's leading </s> ended the previous piece
        body.append(stream[lo + first:cut + 1])
        held.append(stream[cut + first:hi + 1])
    return np.concatenate(body), np.concatenate(held)


def _window_features(body, stream: np.ndarray, T: int, stride: int, batch: int = 32) -> np.ndarray:
    """h at positions 0 .. len(stream) - 2, reading windows of T tokens advancing by ``stride``."""
    import torch

    L = len(stream) - 1  # positions with a target
    d = body.config.n_embd
    out = np.empty((L, d), dtype=np.float32)
    if L <= 0:
        return out
    # (window start, first kept position, end); every window but the first keeps its last part
    spans = [(0, 0, min(T, L))]
    covered = spans[0][2]
    while covered < L:
        end = min(covered + stride, L)
        spans.append((end - T, covered, end))
        covered = end
    src = torch.from_numpy(np.ascontiguousarray(stream, dtype=np.int64))
    with torch.no_grad():
        first = spans[0]
        out[:first[2]] = body.features(src[None, :first[2]])[0].numpy()
        rest = spans[1:]
        for i in range(0, len(rest), batch):
            group = rest[i:i + batch]
            x = torch.stack([src[s:s + T] for s, _, _ in group])
            h = body.features(x).numpy()
            for row, (s, keep, end) in enumerate(group):
                out[keep:end] = h[row, keep - s:end - s]
    return out


def sampled_features(body, stream: np.ndarray, n: int, seed: int, batch: int = 64):
    """h and the next token at n positions of a stream: the second halves of random windows.

    Windows of ``block_size`` tokens start at random multiples of ``block_size // 2``
    (without repetition), so the kept positions never repeat and each sees at least
    ``block_size // 2 + 1`` tokens of context. Returns (features (n', d), targets (n',)),
    n' = n unless the stream is too short.
    """
    import torch

    T = body.config.block_size
    L = len(stream) - 1
    half = T // 2 if T > 1 else 0
    keep = np.arange(half, T)
    starts = np.arange(0, L - T + 1, max(1, T - half))
    rng = np.random.default_rng(seed)
    need = -(-n // keep.size)
    chosen = np.sort(rng.choice(starts, size=min(need, starts.size), replace=False))
    windows = np.stack([stream[s:s + T] for s in chosen]).astype(np.int64)
    feats = []
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            h = body.features(torch.from_numpy(windows[i:i + batch]))[:, half:, :]
            feats.append(h.reshape(-1, h.shape[-1]).numpy())
    targets = np.stack([stream[s + keep + 1] for s in chosen]).reshape(-1)
    return np.concatenate(feats, axis=0)[:n], targets[:n]


def _check_body_settings(options: dict, body_config, source) -> None:
    """ConfigError unless the configuration describes the body it fine-tunes (``init_from``).

    The configuration is the model's description and its id: it is not rewritten to match
    the checkpoint, so the body settings must be given as the checkpoint has them.
    """
    differ = [k for k in _BODY if getattr(body_config, k) != options[k]]
    if differ:
        wanted = ", ".join(f"model.{k} = {getattr(body_config, k)!r}" for k in differ)
        given = ", ".join(f"{k} = {options[k]!r}" for k in differ)
        raise ConfigError(f"{source}: its body has other settings than the configuration ({given}); "
                          f"fine-tuning keeps the body's, so set {wanted}")


def _read_body_meta(path) -> dict:
    """The checkpoint document of a TinyGPT checkpoint or of a gpt-bll model directory."""
    from pathlib import Path

    path = Path(path)
    if (path / "model.nc").is_file():  # a gpt-bll model directory
        vocab = Vocabulary.load(path / "vocab.json")
        tok = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
        return {"vocabulary": list(vocab.tokens), "tokenizer": tok}
    from bayeslm.neural.transformer import read_checkpoint_meta

    return read_checkpoint_meta(path)


def _load_body(path):
    from pathlib import Path

    from bayeslm.neural.transformer import load_checkpoint

    path = Path(path)
    if (path / "model.nc").is_file():
        model = BayesianLM.load(path)
        if not isinstance(model, GPTLM):
            raise ModelFileError(f"{path}: holds a {model.family!r} model, not a gpt-bll model")
        return model.body_
    return load_checkpoint(path)[0]
