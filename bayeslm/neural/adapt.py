"""A GPT adapted to a domain: the general model's body, frozen, and a last layer refitted on domain text.

``general.adapt(domain)`` on a fitted :class:`~bayeslm.neural.gpt.GPTLM` returns an
:class:`AdaptedGPTLM` (``head="bayes"``): the last layer's prior is the general last layer's
Laplace posterior N(theta_G, Lambda^-1) raised to a power lam, N(theta_G, (lam Lambda)^-1)
(:mod:`bayeslm.neural.domain_head`), lam chosen on domain validation text or by evidence: how far
the domain departs. With
``head="map"`` it returns a :class:`FineTunedGPTLM`: plain fine-tuning of the head (MAP with
the body's weight decay), for comparison. Both keep a copy of the body in their directory and
answer the protocol as a GPTLM does. docs/domain.md ("GPT").
"""

from __future__ import annotations

from abc import abstractmethod

import json

import numpy as np
import pandas as pd
from pydantic import Field

from bayeslm.core.protocol import AdaptedToDomain, domain_text, fit_adapted, power_meaning
from bayeslm.core.settings import number
from bayeslm.exceptions import BayesLMError, ConfigError, ModelFileError
from bayeslm.neural.domain_head import domain_share, fit_adapted_head, fit_finetuned_head
from bayeslm.neural.gpt import GPTLM, GPTOptions
from bayeslm.stats.intervals import HDI_PROB, hdi
from bayeslm.text.corpus import Corpus

__all__ = ["AdaptedGPTLM", "FineTunedGPTLM", "AdaptedGPTOptions", "ADAPTED_FAMILY", "FINETUNED_FAMILY"]

ADAPTED_FAMILY = "gpt-bll-adapted"  # GPTLM.adapt(head="bayes")
FINETUNED_FAMILY = "gpt-bll-finetuned"  # GPTLM.adapt(head="map")
_SHARE = "domain_share."  # prefix of the domain-share matrices in arrays.npz
#: what the power's 94% interval means: above 1, holding 1, below 0.01, else (core.protocol.power_meaning)
_POWER_WORDS = ("the general model counts more than the domain text taken as more general text",
                "close to the domain text taken as more of the general text (lam = 1)",
                "the domain text nearly alone: the general posterior's precision counts under 1%",
                "departs from the general model: its posterior precision counts {low:.2g} to {high:.2g}")


class AdaptedGPTOptions(GPTOptions):
    """The ``[model]`` options of an adapted GPT: the general model's, and the power."""

    power: number(gt=0.0, optional=True) = Field(
        None, description="the power of the general posterior in the domain's prior (none: chosen on the "
                          "validation text, or by evidence without one)")


class _DomainGPT(GPTLM):
    """What both domain GPTs share: made by ``general.adapt(domain)`` from a fitted GPTLM held in
    ``_general`` while fitting; the general model's body (kept as a copy in the directory),
    vocabulary and tokenizer; the domain text read as the general model reads text."""

    family = ""  # not a family of its own (a class with a family name registers as that family's)
    model_options = AdaptedGPTOptions
    fits_with_pymc = False

    def __init__(self, order: int | None = None, **kwargs):
        super().__init__(order, **kwargs)
        self._general: GPTLM | None = None  # the general model, while adapting only
        self.general_: dict | None = None  # the general model's id, training size and fit time

    @classmethod
    def from_general(cls, general: GPTLM, domain: Corpus, valid: Corpus | None = None, *,
                     model_config: dict | None = None, options: dict | None = None, **sampler_kwargs):
        """Adapt the fitted ``general`` GPT to ``domain`` text (see :meth:`GPTLM.adapt`).

        ``model_config``: ``{"power": Prior}`` (the power's prior, default LogNormal(0, 2));
        ``options``: ``power`` (fixed instead of chosen by evidence) and ``fit_positions``
        (the most domain positions the head is fitted on).
        """
        if type(general) is not GPTLM:
            raise BayesLMError(f"only a fitted GPTLM can be adapted, not a {type(general).__name__} "
                               f"(family {general.family!r})")
        general._check_fitted("adapt")
        options = dict(options or {})
        if unknown := sorted(set(options) - {"power", "fit_positions"}):
            raise ConfigError(f"model: adapting a GPT takes only power and fit_positions, not {unknown} (the body, "
                              "tokenizer and vocabulary are the general model's)")
        config = general.get_config()
        config["model"] = {**config["model"], **options, "family": cls.family, "train_steps": 0,
                           "init_from": None, "checkpoint_dir": None}
        config["prior"] = {**config.get("prior", {}), **(model_config or {})}
        return fit_adapted(cls, general, config, domain, valid, sampler_kwargs)

    def adapt(self, domain, valid=None, **kwargs):
        raise BayesLMError("adapt the general model to each domain; an adapted model is not adapted again")

    def check_priors(self) -> None:
        for name, prior in self.model_config.items():  # closed forms without PyMC (the power's is LogNormal)
            if prior.numpy_logp() is None:
                prior.validate(f"prior.{name}")

    def _prepare_training(self, corpus) -> Corpus:
        """The domain text in the general model's vocabulary; its tokenizer must be the general model's."""
        return domain_text(corpus, self._general)

    def _positions(self, text: Corpus, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Features and next tokens at a text's positions (at most ``n``, drawn at random)."""
        _, X, y = self._targets(text)
        if y.size > n:
            keep = np.sort(np.random.default_rng(seed).choice(y.size, n, replace=False))
            X, y = X[keep], y[keep]
        return X, y

    def _fit(self, train: Corpus, valid: Corpus | None, sampler: dict):
        import arviz as az

        from bayeslm.neural.last_layer import BayesianLastLayer

        general = self._general
        seed = sampler.get("random_seed")
        seed = int(seed) if seed is not None else int(np.random.default_rng().integers(2**31))
        self.train_result_ = self.fit_split_ = None
        self._set_body(general.body_)  # frozen: shared while adapting, its weights copied when saved
        X, y = self._positions(train, int(self.options["fit_positions"]), seed)
        valid_xy = self._positions(valid, int(self.options["valid_positions"]), seed + 1) if valid is not None else None
        thetas, extra, attrs = self._fit_head(general, X, y, valid_xy, int(sampler["draws"]), np.random.default_rng(seed))
        V, D = thetas.shape[1:]
        idata = az.from_dict(posterior={"W": thetas[None, :, :, :-1], "b": thetas[None, :, :, -1], **extra},
                             coords={"token": list(self.vocab_.tokens), "feature": np.arange(D - 1)},
                             dims={"W": ["token", "feature"], "b": ["token"]})
        self.general_ = {"id": general.id, "training_tokens": int(general.idata["posterior"].attrs.get("training_tokens", 0)),
                         "fit_seconds": float(general.fit_seconds_ or 0.0)}
        idata["posterior"].attrs.update({**attrs, "general_model": json.dumps(self.general_), "domain_positions": int(y.size)})
        self.bll_ = BayesianLastLayer(method=self.options["method"], labels=self.vocab_.tokens,
                                      model_config={"weight_scale": self.model_config["weight_scale"]})
        self.bll_.idata = idata
        return idata

    @abstractmethod
    def _fit_head(self, general: GPTLM, X, y, valid_xy, draws: int, rng) -> tuple[np.ndarray, dict, dict]:
        """Draws of theta (S, V, D), other posterior variables and attrs (``valid_xy``: validation
        features and next tokens, or None)."""

    def _restore_family(self, arrays: dict) -> None:
        super()._restore_family(arrays)
        recorded = self.idata["posterior"].attrs.get("general_model") if self.idata is not None else None
        self.general_ = json.loads(recorded) if isinstance(recorded, str) else None


class AdaptedGPTLM(_DomainGPT, AdaptedToDomain):
    """A GPT of a domain: the general GPT's body, and a last layer whose prior is the general last
    layer's Laplace posterior raised to a power lam: N(theta_G, (lam Lambda)^-1).

    Made by ``general.adapt(domain)`` (:meth:`GPTLM.adapt`). lam = 1 is the posterior of the
    general data then the domain's (the domain text counted as more of the general text);
    lam < 1 lets the domain depart; lam -> infinity is the general model at its mode. lam is
    chosen on domain validation text (its posterior-predictive probability) or, without one,
    by evidence; the posterior's ``power`` holds lam's draws (the Laplace approximation of log
    lam's posterior there; the last layer's draws are at the chosen lam). Learned state beside the
    GPTLM's: ``general_`` and the domain-share matrices ``share_domain_``, ``share_total_``
    (:meth:`uncertainty_sources`).
    """

    family = ADAPTED_FAMILY
    default_model_config = {**GPTLM.default_model_config,
                            "power": {"dist": "LogNormal", "kwargs": {"mu": 0.0, "sigma": 2.0}}}

    departure_description = ("the power lam, the weight of the general last layer's posterior relative to the "
                             "domain text (1: the domain text as more of the general text; below 1: the domain "
                             "departs; large: the general model)")
    domain_share_description = ("the part of the posterior variance of the position's logits that the domain text's "
                                "curvature accounts for: Sigma = Sigma H Sigma + lam Sigma Lambda Sigma (exact)")

    def __init__(self, order: int | None = None, **kwargs):
        super().__init__(order, **kwargs)
        self.share_domain_: np.ndarray | None = None
        self.share_total_: np.ndarray | None = None

    @property
    def diagnostic_var_names(self) -> list[str]:
        return []  # independent draws of a Gaussian and of lam's Laplace approximation: no chain

    def _fit_head(self, general, X, y, valid_xy, draws, rng):
        prior = general.laplace_posterior_
        if prior is None:
            raise BayesLMError("the general GPT keeps no Laplace posterior of its last layer (fitted with "
                               f"method {general.options['method']!r}, or saved before 2026-12-04): refit it with "
                               "method laplace, advi, advi_lowrank or nuts to adapt it")
        head = fit_adapted_head(X, y, prior, power=self.options["power"],
                                power_logp=self.model_config["power"].numpy_logp(), draws=draws, rng=rng,
                                valid=valid_xy)
        self.share_domain_, self.share_total_ = head.B_domain, head.B_total
        attrs = {"inference_method": "laplace", **{f"adapt_{k}": v for k, v in head.info.items()}}
        return head.thetas, {"power": head.power_draws[None, :]}, attrs

    def departure(self, hdi_prob: float = HDI_PROB) -> list[dict]:
        """One row (``order``: the model's): the power's posterior ``mean``, ``sd``, HDI and ``meaning``."""
        self._check_fitted("departure")
        values = self.idata["posterior"]["power"].values.ravel()
        low, high = hdi(values, hdi_prob=hdi_prob)
        return [{"order": int(self.order), "mean": float(values.mean()), "sd": float(values.std()),
                 "hdi_low": float(low), "hdi_high": float(high), "hdi_prob": float(hdi_prob),
                 "meaning": power_meaning(float(low), float(high), _POWER_WORDS)}]

    def uncertainty_sources(self, data) -> pd.DataFrame:
        """Per scored position: how much of the last layer's posterior spread there the domain text accounts for.

        Columns: ``order`` (the model's: one context length), ``logit_variance`` (the sum over
        tokens of the logits' posterior variance, x~^T Sigma-blocks x~), ``domain_share``
        (:func:`~bayeslm.neural.domain_head.domain_share`) and ``source``: ``"domain text"`` where
        the share is at least 1/2, else ``"general model"``.
        """
        self._check_fitted("uncertainty_sources")
        share, variance = domain_share(self.stream_features(self.stream(data)), self.share_domain_, self.share_total_)
        return pd.DataFrame({"order": np.full(share.size, int(self.order)), "logit_variance": variance,
                             "domain_share": share, "source": np.where(share >= 0.5, "domain text", "general model")})

    def _family_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._family_arrays(), f"{_SHARE}domain": self.share_domain_, f"{_SHARE}total": self.share_total_}

    def _restore_family(self, arrays: dict) -> None:
        super()._restore_family(arrays)
        D = self.body_.config.n_embd + 1
        try:
            self.share_domain_, self.share_total_ = (np.asarray(arrays[f"{_SHARE}{k}"], dtype=float) for k in ("domain", "total"))
        except KeyError:
            raise ModelFileError("the adapted GPT's domain-share matrices are missing from arrays.npz") from None
        if self.share_domain_.shape != (D, D) or self.share_total_.shape != (D, D):
            raise ModelFileError(f"the adapted GPT's domain-share matrices are not ({D}, {D})")


class FineTunedGPTLM(_DomainGPT):
    """Plain fine-tuning of a GPT's head on domain text, for comparison with :class:`AdaptedGPTLM`:
    the mode of the domain positions' log likelihood with the body's weight decay (prior
    N(0, 1 / (N l2)), N the domain positions), found from the general head. One draw."""

    family = FINETUNED_FAMILY

    @property
    def diagnostic_var_names(self) -> list[str]:
        return []

    def _fit_head(self, general, X, y, valid_xy, draws, rng):
        start = general.bll_.theta_draws().mean(axis=0)
        if general.laplace_posterior_ is not None:
            start = general.laplace_posterior_.theta
        alpha = float(self.options["l2"]) * max(1, y.size)
        theta = fit_finetuned_head(X, y, start, alpha)
        return theta[None], {}, {"inference_method": "map", "finetune_prior_precision": alpha}
