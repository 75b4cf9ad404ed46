"""Domain adaptation of a fitted Dirichlet LM: the general model's posterior, tempered, as the domain's prior.

``general.adapt(domain)`` returns an :class:`AdaptedDirichletLM`: for every order k and
domain context u, ``p_D(. | u) ~ Dirichlet(lam_k T_k(u) Q_k(. | u))``, the general model's
posterior Dirichlet at u (total ``T_k(u)``, mean ``Q_k``, its back-off the adapted order
k - 1) raised to the power ``lam_k``: 1 pools the texts as their concatenation, less lets
the domain depart, infinity is the general model. The general model is not refitted; each
power's posterior (the domain text's evidence, or with domain validation text its
predictive probability, the other powers at their modes) is one-dimensional and drawn from
exactly on a grid (:func:`grid_draws`), without PyMC. The adapted model is a Dirichlet LM over weighted back-off
levels (:class:`DomainLevels`), so evaluation, entropies, generation and files come from
:class:`DirichletLM`. The model, its files and its figures: docs/domain.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import copy
import json

import numpy as np
import pandas as pd

from bayeslm.core.protocol import AdaptedToDomain, domain_text, fit_adapted, power_meaning
from bayeslm.counting.counts import NgramCounts
from bayeslm.exceptions import BayesLMError, ConfigError, ModelFileError
from bayeslm.ngram.backoff import Backoff
from bayeslm.ngram.dirichlet import DirichletLM
from bayeslm.ngram.evidence import OrderEvidence
from bayeslm.stats.intervals import HDI_PROB, hdi
from bayeslm.text.corpus import Corpus

__all__ = ["AdaptedDirichletLM", "AdaptedNgram", "AdaptedBackoff", "DomainLevels", "HeldOutPredictive",
           "HeldOutEvidence", "map_contexts", "grid_draws", "ADAPTED_FAMILY", "INFERENCE_NOTE"]

#: the family name of adapted Dirichlet LMs in configurations and model directories
ADAPTED_FAMILY = "dirichlet-adapted"
_UNION = "union_"  # prefix of the union counts in arrays.npz
_GENERAL_CONC = "general_concentration_o"  # + order: the general model's concentration per union context
#: what the report says of how the powers were drawn (posterior attr ``inference_note``)
INFERENCE_NOTE = ("Independent exact draws of each order's power lam_k from its one-dimensional posterior (the other "
                  "orders at their modes), by inverse CDF on a grid: R-hat and ESS check the draws; divergences and "
                  "E-BFMI belong to Hamiltonian samplers and do not exist here (docs/domain.md).")


def grid_draws(log_density, center: float, size: int, rng: np.random.Generator, *, drop: float = 40.0,
               points_per_sd: int = 20, max_steps: int = 400) -> np.ndarray:
    """``size`` independent draws of a scalar t from the density ``exp(log_density(t))`` (unnormalised).

    ``center`` is the mode. The grid runs out from it in steps of the posterior standard
    deviation there (from the curvature; 1 where it is not concave) until the log density is
    ``drop`` nats below the mode's, or ``max_steps`` steps; it is then evaluated every
    ``1 / points_per_sd`` of that deviation and inverted as a CDF (trapezoids, linear in
    between), so the draws are exact up to terms of order the step squared.
    """
    peak = log_density(center)
    h = 1e-3
    curvature = (log_density(center + h) - 2 * peak + log_density(center - h)) / h**2
    sd = 1.0 / np.sqrt(-curvature) if np.isfinite(curvature) and curvature < 0 else 1.0
    ends = []
    for direction in (-1.0, 1.0):
        t = center
        for _ in range(max_steps):
            t += direction * sd
            if not log_density(t) > peak - drop:
                break
        ends.append(t)
    t = np.linspace(ends[0], ends[1], int(np.ceil((ends[1] - ends[0]) / sd * points_per_sd)) + 1)
    values = np.array([log_density(float(x)) for x in t])
    density = np.exp(values - values.max())
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(t))])
    return np.interp(rng.uniform(0.0, cdf[-1], size), cdf, t)


def map_contexts(source: NgramCounts, target: NgramCounts) -> list[np.ndarray]:
    """Per order, the id in ``target`` of every context of ``source`` (-1 where ``target`` lacks it).

    Follows the parents order by order: one hash lookup per context of ``source``.
    """
    ids = [np.zeros(1, dtype=np.int64)]
    for k in range(2, source.order + 1):
        parent = ids[-1][source[k].context_parent]
        found = target[k].index_of_context(np.maximum(parent, 0) * target.vocab_size + source[k].context_oldest)
        ids.append(np.where(parent < 0, -1, found))
    return ids


class AdaptedBackoff(Backoff):
    """:class:`Backoff` over levels with weighted (float) counts and one concentration per context.

    Parameters
    ----------
    levels : NgramCounts
        Level j's counts (``levels[j]``); its contexts' parents are contexts of level j - 1.
    level_conc : list of float arrays
        ``level_conc[j - 1][u]``: the concentration of level j at its context u.
    bos_id : int
    """

    def __init__(self, levels: NgramCounts, level_conc: list[np.ndarray], bos_id: int):
        # level 1's one context: its concentration is the a_1 of Backoff's base mass
        super().__init__(levels, np.r_[float(level_conc[0][0]), np.ones(levels.order - 1)], bos_id)
        self.level_conc = level_conc

    def conc(self, j: int, ctx: np.ndarray) -> np.ndarray:
        """Concentration of level j at context ids ``ctx`` (-1, an unseen context, passes through: 1)."""
        ctx = np.asarray(ctx, dtype=np.int64)
        return np.where(ctx >= 0, self.level_conc[j - 1][np.maximum(ctx, 0)], 1.0)


class DomainLevels:
    """The general and domain counts on one set of contexts, and the adapted back-off levels.

    ``union`` holds every n-gram of either text (the general counts merged with the
    domain's); per order, ``domain_count[k - 1]`` and ``general_count[k - 1]`` are each
    text's count of every union n-gram, and ``general_conc[k - 1]`` the general model's
    concentration at every union context (its plug-in: the mode, per bucket of general
    context totals where it has buckets); ``general_unseen[k - 1]`` the same at a context
    the general model never saw. ``T_k(u) = c_G(u) + a_G(u)`` (:meth:`weight`) is the total
    of the general posterior Dirichlet at u.

    :meth:`levels` gives, for the domain's powers ``lam``, the ``order + 1`` back-off
    levels of the adapted model: orders k < n collapse the domain Dirichlet
    ``Dirichlet(lam_k (c_G(u) + a_G P_{k-1}))`` and the general one into one level with
    counts ``c_D + lam_k c_G`` and concentration ``lam_k a_G``; level n is the general top
    order over the adapted order n - 1 (``Q_n``); level n + 1 the domain's top-order counts
    divided by ``T_n(u)``, whose concentration ``lam_n`` is sampled (its predictive is
    ``(c_D + lam T Q) / (c_D(u) + lam T)``; docs/domain.md, "Levels").
    """

    def __init__(self, union: NgramCounts, domain: NgramCounts, general_conc: list[np.ndarray],
                 general_unseen: np.ndarray, bos_id: int):
        self.union, self.order, self.V, self.bos_id = union, union.order, union.vocab_size, bos_id
        for oc in union.orders:  # the hash indexes, built once and shared by the levels' copies
            oc.index_of_context(np.zeros(0, dtype=np.int64))
            oc.index_of_ngram(np.zeros(0, dtype=np.int64))
        self.domain_ngram = []  # per order: the union index of every domain n-gram
        self.domain_context = map_contexts(domain, union)  # per order: the union id of every domain context
        self.domain_count, self.general_count = [], []
        for k, context in enumerate(self.domain_context, start=1):
            ngram = union[k].lookup(context[domain[k].ngram_context], domain[k].ngram_token)
            if np.any(ngram < 0):
                raise ModelFileError("the domain counts are not part of the union counts")
            c_domain = np.zeros(union[k].n_ngrams)
            c_domain[ngram] = domain[k].ngram_count
            self.domain_ngram.append(ngram)
            self.domain_count.append(c_domain)
            self.general_count.append(union[k].ngram_count - c_domain)
        self.general_total = [np.bincount(oc.ngram_context, weights=c, minlength=oc.n_contexts)
                              for oc, c in zip(union.orders, self.general_count)]
        if len(general_conc) != self.order or any(
                np.shape(a) != (oc.n_contexts,) or not np.all(np.asarray(a) > 0) for a, oc in zip(general_conc, union.orders)):
            raise ModelFileError("the general model's concentrations do not match the union counts")
        self.general_conc = [np.asarray(a, dtype=float) for a in general_conc]
        self.general_unseen = np.asarray(general_unseen, dtype=float)
        if self.general_unseen.shape != (self.order,) or not np.all(self.general_unseen > 0):
            raise ModelFileError("the general model's concentrations at unseen contexts are missing or not positive")
        self.domain_total = [np.bincount(oc.ngram_context, weights=c, minlength=oc.n_contexts)
                             for oc, c in zip(union.orders, self.domain_count)]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The union counts and the general concentrations (the domain counts are saved apart)."""
        arrays = {_UNION + name: value for name, value in self.union.to_arrays().items()}
        arrays.update({f"{_GENERAL_CONC}{k}": a for k, a in enumerate(self.general_conc, start=1)})
        arrays[f"{_GENERAL_CONC}unseen"] = self.general_unseen
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict, domain: NgramCounts, bos_id: int) -> "DomainLevels":
        union = NgramCounts.from_arrays({name[len(_UNION):]: value for name, value in arrays.items()
                                         if name.startswith(_UNION)})
        if union.order != domain.order or union.vocab_size != domain.vocab_size:
            raise ModelFileError("the union counts do not match the domain counts' order or vocabulary")
        names = [f"{_GENERAL_CONC}{k}" for k in (*range(1, union.order + 1), "unseen")]
        if any(name not in arrays for name in names):
            raise ModelFileError("the model directory has no general concentrations (arrays.npz foreign?)")
        return cls(union, domain, [arrays[name] for name in names[:-1]], arrays[names[-1]], bos_id)

    def weight(self, k: int, ctx: np.ndarray) -> np.ndarray:
        """T_k(u) = c_G(u) + a_G(u) at union context ids ``ctx`` of order k (-1: unseen by either text)."""
        ctx = np.asarray(ctx, dtype=np.int64)
        at = np.maximum(ctx, 0)
        return np.where(ctx >= 0, self.general_total[k - 1][at] + self.general_conc[k - 1][at], self.general_unseen[k - 1])

    def levels(self, lam: np.ndarray) -> AdaptedBackoff:
        """The adapted model's back-off for the domain's powers ``lam`` (shape (order,))."""
        n = self.order
        orders, conc = [], []
        for k in range(1, n):
            orders.append(self._weighted(self.union[k], self.domain_count[k - 1] + lam[k - 1] * self.general_count[k - 1]))
            conc.append(lam[k - 1] * self.general_conc[k - 1])
        top = self.union[n]
        orders.append(self._weighted(top, self.general_count[n - 1]))
        conc.append(self.general_conc[n - 1])
        weight = self.weight(n, np.arange(top.n_contexts))
        domain_top = self._weighted(top, self.domain_count[n - 1] / weight[top.ngram_context])
        domain_top.order = n + 1
        domain_top.context_key = np.arange(top.n_contexts, dtype=np.int64) * self.V  # parent: the same context at level n
        domain_top._context_index = None  # its context keys are not the union's
        orders.append(domain_top)
        conc.append(np.full(top.n_contexts, float(lam[n - 1])))
        return AdaptedBackoff(NgramCounts(orders, self.V), conc, bos_id=self.bos_id)

    @staticmethod
    def _weighted(oc, counts: np.ndarray):
        """A copy of ``oc`` (sharing its keys and indexes) with float ``counts``."""
        level = copy.copy(oc)
        level.ngram_count = np.asarray(counts, dtype=float)
        level.context_total = np.bincount(oc.ngram_context, weights=level.ngram_count, minlength=oc.n_contexts)
        return level

    def context_chain(self, contexts) -> list[np.ndarray]:
        """Context ids at every level for rows of token ids: the union's, the top one twice."""
        ids = self.union.context_ids(contexts)
        return [*ids, ids[-1]]

    def base(self, k: int, backoff: AdaptedBackoff) -> np.ndarray:
        """T_k(u) Q_k(w | u) at every domain n-gram (u, w) of order k: the general posterior Dirichlet's
        parameters at u, over the adapted order k - 1 (``backoff``: the levels of the powers below k)."""
        oc = self.union[k]
        ngram = self.domain_ngram[k - 1]
        context = oc.ngram_context[ngram]
        return self.weight(k, context) * self.base_at(k, backoff, backoff.ancestors(k, context), oc.ngram_token[ngram])

    def base_at(self, k: int, backoff: AdaptedBackoff, chain: list[np.ndarray], tokens: np.ndarray) -> np.ndarray:
        """Q_k(w | u) at positions whose union context ids per order are ``chain`` (-1: unseen, passes through)."""
        if k == 1:
            lower = np.where(tokens == self.bos_id, 0.0, 1.0 / (self.V - 1))
        else:
            lower = backoff.prob(chain, tokens, k - 1)
        ctx = chain[k - 1]
        seen = ctx >= 0
        at = np.maximum(ctx, 0)
        idx = self.union[k].lookup(ctx, tokens)
        c_general = np.where(idx >= 0, self.general_count[k - 1][np.maximum(idx, 0)], 0.0)
        a = np.where(seen, self.general_conc[k - 1][at], 1.0)
        return (c_general + a * lower) / (np.where(seen, self.general_total[k - 1][at], 0.0) + a)


class HeldOutPredictive:
    """log p of fixed positions under the adapted model at powers ``lam``, and its derivative in one lam_k.

    The positions' counts of both texts at every order are looked up once; each evaluation
    is then the back-off recursion in numpy, with its forward derivative (nats).
    """

    def __init__(self, levels: DomainLevels, contexts: np.ndarray, tokens: np.ndarray):
        self.order = levels.order
        chain = levels.context_chain(contexts)
        self.stats = []  # per order: c_D(u, w), c_D(u), c_G(u, w), c_G(u), a_G(u) at the positions
        for k in range(1, self.order + 1):
            ctx = chain[k - 1]
            idx, at, seen = levels.union[k].lookup(ctx, tokens), np.maximum(chain[k - 1], 0), ctx >= 0
            at_ngram = np.maximum(idx, 0)
            self.stats.append((np.where(idx >= 0, levels.domain_count[k - 1][at_ngram], 0.0),
                               np.where(seen, levels.domain_total[k - 1][at], 0.0),
                               np.where(idx >= 0, levels.general_count[k - 1][at_ngram], 0.0),
                               np.where(seen, levels.general_total[k - 1][at], 0.0),
                               np.where(seen, levels.general_conc[k - 1][at], levels.general_unseen[k - 1])))
        self.uniform = np.where(tokens == levels.bos_id, 0.0, 1.0 / (levels.V - 1))

    def log_prob(self, lam: np.ndarray, k: int) -> tuple[float, float]:
        """Sum over the positions of log P_n(w | u) at ``lam``, and its derivative in ``lam[k - 1]``.

        Order j's predictive is ``(c_D + lam_j (c_G + a P_{j-1})) / (c_D(u) + lam_j (c_G(u) + a))``
        (docs/domain.md); an unseen context passes ``P_{j-1}`` through.
        """
        p, dp = self.uniform, np.zeros_like(self.uniform)
        for j, (c_domain, total_domain, c_general, total_general, a) in enumerate(self.stats, start=1):
            general = c_general + a * p  # the general posterior's parameters at the token
            numerator = c_domain + lam[j - 1] * general
            denominator = total_domain + lam[j - 1] * (total_general + a)
            d_numerator = lam[j - 1] * a * dp + (general if j == k else 0.0)
            d_denominator = (total_general + a) if j == k else 0.0
            p = numerator / denominator
            dp = (d_numerator - p * d_denominator) / denominator
        return float(np.log(p).sum()), float((dp / p).sum())


class HeldOutEvidence(OrderEvidence):
    """Order k's evidence with domain validation text: its predictive probability as a function of
    lam_k, the other powers fixed (:class:`HeldOutPredictive`); tabulated like the counts' evidence."""

    def __init__(self, counts_k, predictive: HeldOutPredictive, k: int, lam: np.ndarray):
        super().__init__(counts_k, np.ones(counts_k.n_ngrams))  # the counts' statistics, for the summaries
        self.predictive, self.k, self.lam = predictive, k, np.array(lam, dtype=float)

    def _logp_and_grad(self, a: float) -> tuple[float, float]:
        lam = self.lam.copy()
        lam[self.k - 1] = a
        return self.predictive.log_prob(lam, self.k)


def _departure_words(low: float, high: float) -> str:
    """What a power's interval says, in words (1: the concatenation, 0: the domain text alone)."""
    return power_meaning(low, high, ("follows the general model more than their concatenation would",
                                     "close to the concatenation of the general and domain texts",
                                     "the domain text nearly alone: the general text weighs under 1% of it",
                                     "departs from the general model: its text weighs {low:.2g} to {high:.2g} of the "
                                     "domain's"))


class AdaptedNgram(ABC):
    """What the adapted n-gram models share (mixed in before their family's class): they are made by
    ``general.adapt(domain)`` from a general model held in ``_general`` while fitting, read the
    domain text as it does, and are neither adapted again nor updated."""

    #: the posterior variable holding each order's departure parameter (dim ``order``)
    departure_var: str
    #: what the departure parameter is, for people (the CLI prints it above the rows)
    departure_description: str

    @staticmethod
    @abstractmethod
    def _departure_meaning(low: float, high: float) -> str:
        """What a departure parameter's interval [low, high] says, in words."""

    def departure(self, hdi_prob: float = HDI_PROB) -> list[dict]:
        """Per order: the departure parameter's posterior ``mean``, ``sd``, HDI (``hdi_low``,
        ``hdi_high``, ``hdi_prob``) and its ``meaning`` in words (:attr:`departure_description`)."""
        self._check_fitted("departure")
        draws = self.idata["posterior"][self.departure_var]
        rows = []
        for k in draws["order"].values.tolist():
            values = draws.sel(order=k).values.ravel()
            low, high = hdi(values, hdi_prob=hdi_prob)
            rows.append({"order": int(k), "mean": float(values.mean()), "sd": float(values.std()),
                         "hdi_low": float(low), "hdi_high": float(high), "hdi_prob": float(hdi_prob),
                         "meaning": self._departure_meaning(float(low), float(high))})
        return rows

    def adapt(self, domain, valid=None, **sampler_kwargs):
        raise BayesLMError("adapt the general model to each domain; an adapted model is not adapted again")

    def update(self, corpus, **sampler_kwargs):
        raise BayesLMError("an adapted model is not updated: adapt the general model to the grown domain text")

    @classmethod
    def _fit_from(cls, general, config: dict, domain, valid, sampler_kwargs: dict):
        """A model of ``config`` in the general model's tokenizer and vocabulary, fitted to ``domain``
        with ``general`` held (``_general``) while fitting."""
        return fit_adapted(cls, general, config, domain, valid, sampler_kwargs)

    def _prepare_training(self, corpus) -> Corpus:
        """The domain text in the general model's vocabulary; its tokenizer must be the general model's."""
        return domain_text(corpus, self._general)


class AdaptedDirichletLM(AdaptedNgram, DirichletLM, AdaptedToDomain):
    """A Dirichlet LM of a domain whose prior is a fitted general Dirichlet LM's posterior, tempered.

    Made by :meth:`DirichletLM.adapt` (``general.adapt(domain)``), never fitted alone. The
    posterior's ``power`` (dim ``order``; ``concentration`` in directories adapted before
    2026-12-04, which load as they were) holds the powers ``lam_k``, the domain
    Dirichlet's concentration at u in units of the general posterior's total ``T_k(u)``:
    small where the domain departs from the general model, large where it follows it.
    Every method of :class:`DirichletLM` answers as for a Dirichlet LM whose levels are
    :meth:`DomainLevels.levels`; not available: ARPA export and ``update``.

    Learned state beside the Dirichlet LM's: ``counts_`` (the domain text's counts),
    ``levels_`` (:class:`DomainLevels`: the union of the general and domain counts and the
    general model's concentrations, all the model needs of the general model),
    ``held_out_`` (the domain validation text, whose predictive probability given the
    domain counts is then each power's likelihood; None without one) and ``general_`` (the
    general model's id, training size and fit time).
    """

    family = ADAPTED_FAMILY
    fits_with_pymc = property(lambda self: self.model_config["concentration"].numpy_logp() is None)

    @property
    def draws_var(self) -> str:
        """``power``: the powers' draws; directories adapted before it was named so hold them as ``concentration``."""
        if self.idata is not None and "power" not in self.idata["posterior"]:
            return "concentration"
        return "power"
    #: powers far below 1 (the domain's counts trusted over the general text's) are modes too
    MODE_GRID = (-25.0, 12.0)

    def __init__(self, order: int | None = None, **kwargs):
        super().__init__(order, **kwargs)
        if self.options["buckets"] != []:
            raise ConfigError("model: an adapted model has one power per order (buckets = [])")
        self.levels_: DomainLevels | None = None
        self.general_: dict | None = None
        self._general: DirichletLM | None = None  # the general model, while adapting only
        self.held_out_: Corpus | None = None  # domain validation text: its predictive is the evidence
        self._held_out_cache = (None, None)
        self._levels_backoff = (None, None)

    @classmethod
    def from_general(cls, general: DirichletLM, domain: Corpus, valid: Corpus | None = None, *,
                     model_config: dict | None = None, options: dict | None = None,
                     **sampler_kwargs) -> "AdaptedDirichletLM":
        """Adapt the fitted ``general`` model to ``domain`` text; see :meth:`DirichletLM.adapt`.

        ``model_config``: the powers' prior (``{"concentration": Prior}``;
        default ``LogNormal(mu=2, sigma=3)``); ``options``: ``entropy_draws`` (default the
        general model's). The order, tokenizer and vocabulary are the general model's.
        """
        if type(general) is not DirichletLM:
            raise BayesLMError(f"only a fitted DirichletLM can be adapted, not a {type(general).__name__} "
                               f"(family {general.family!r})")
        general._check_fitted("adapt")
        if general.open_vocabulary:  # the adapted levels back off to the uniform base
            raise BayesLMError("adapting an open-vocabulary model (spelling > 0) is not supported yet; adapt a "
                               "closed-vocabulary model (spelling = 0)")
        options = dict(options or {})
        if unknown := sorted(set(options) - {"entropy_draws"}):
            raise ConfigError(f"model: an adapted model takes only entropy_draws, not {unknown} "
                              "(its order, tokenizer and vocabulary are the general model's)")
        config = general.get_config()
        config["model"] = {**config["model"], **options, "family": ADAPTED_FAMILY, "buckets": []}
        config["prior"] = dict(model_config or {})  # the domain concentrations' own prior, not the general model's
        return cls._fit_from(general, config, domain, valid, sampler_kwargs)

    def interpolation(self, sample: int | None = None) -> list[np.ndarray]:
        raise BayesLMError("ARPA export of an adapted model is not available (docs/domain.md)")

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, train: Corpus, valid: Corpus | None, sampler: dict):
        general = self._general
        self.counts_ = self._count_training(train, sampler)
        self.buckets_ = []
        union = general.counts_.merge(self.counts_)
        self.levels_ = DomainLevels(union, self.counts_, *self._general_concentrations(general, union),
                                    self.vocab_.bos_id)
        attrs = general.idata["posterior"].attrs
        self.general_ = {"id": general.id, "training_tokens": int(attrs.get("training_tokens", 0)),
                         "fit_seconds": float(general.fit_seconds_ or 0.0)}
        self.held_out_ = valid
        idata = self._fit_counts(sampler)
        idata["posterior"].attrs["general_model"] = json.dumps(self.general_)
        return idata

    @staticmethod
    def _general_concentrations(general: DirichletLM, union: NgramCounts) -> tuple[list[np.ndarray], np.ndarray]:
        """The general model's concentration (its plug-in, per bucket) at every union context per order,
        and at an unseen context (see :class:`DomainLevels`)."""
        backoff = general._backoff()
        contexts = map_contexts(union, general.counts_)
        return ([backoff.conc(k, ids).astype(float) for k, ids in enumerate(contexts, start=1)],
                np.array([backoff.conc(k, np.array([-1]))[0] for k in range(1, general.order + 1)], dtype=float))

    def _base_of(self, k: int, plugin: np.ndarray) -> np.ndarray:
        """T_k(u) Q_k(w | u) at every domain n-gram of order k, the adapted orders below at ``plugin``'s powers."""
        lam = np.asarray(plugin, dtype=float).reshape(self.order, -1)[:, 0]
        return self.levels_.base(k, self.levels_.levels(lam))

    def _evidence_options(self, k: int, plugin) -> dict:
        """Order k's concentration at domain context u is ``lam_k T_k(u)``."""
        return {"context_scale": self.levels_.weight(k, self.levels_.domain_context[k - 1])}

    def _evidences(self, k: int, plugin) -> dict[int, OrderEvidence]:
        """Order k's evidence: of the domain counts, or with domain validation text its predictive
        probability under the whole model as a function of lam_k, the other powers at ``plugin``."""
        if self.held_out_ is None:
            return super()._evidences(k, plugin)
        if self._held_out_cache[0] is not self.levels_:
            contexts, tokens = self.held_out_.context_windows(self.context_length)
            self._held_out_cache = (self.levels_, HeldOutPredictive(self.levels_, contexts, tokens))
        lam = np.asarray(plugin, dtype=float).reshape(self.order, -1)[:, 0]
        return {0: HeldOutEvidence(self.counts_[k], self._held_out_cache[1], k, lam)}

    def _fit_bases(self) -> dict[tuple[int, int], OrderEvidence]:
        """The powers' modes, order by order (sets ``plugin_``).

        Without validation text order k's evidence does not involve the orders above it: one
        pass. With it, each order's depends on all the others: coordinate ascent, 3 passes.
        """
        prior_logp = self._prior_logp()
        plugin = np.ones((self.order, 1))
        for _ in range(1 if self.held_out_ is None else 3):
            for k in range(1, self.order + 1):
                plugin[k - 1, 0] = self._mode(self._evidences(k, plugin)[0], prior_logp)
        self.plugin_ = plugin[:, 0].copy()
        return {(k, 0): self._evidences(k, plugin)[0] for k in range(1, self.order + 1)}

    def check_priors(self) -> None:
        """A prior with a closed form (:meth:`Prior.numpy_logp`) is checked without PyMC; others against PyMC."""
        for name, prior in self.model_config.items():
            if prior.numpy_logp() is None:
                prior.validate(f"prior.{name}")

    def _prior_logp(self):
        """The powers' prior density in numpy where it has a closed form, else compiled from PyMC."""
        return self.model_config["concentration"].numpy_logp() or super()._prior_logp()

    def _sample_concentrations(self, evidences: dict, sampler: dict):
        """chains x draws independent draws of every power from its posterior given the others at
        their modes (:func:`grid_draws` in log lam, each evidence tabulated at its mode)."""
        from bayeslm.core.idata import from_draws

        prior_logp = self._prior_logp()
        rng = np.random.default_rng(sampler.get("random_seed"))
        chains, draws = int(sampler["chains"]), int(sampler["draws"])
        power = np.empty((chains * draws, self.order))
        for k in range(1, self.order + 1):
            evidence, mode = evidences[(k, 0)], float(self.plugin_[k - 1])
            evidence.tabulate(mode)

            def log_density(t: float, evidence=evidence) -> float:  # of t = log lam, Jacobian included
                lam = float(np.exp(t))
                return evidence.logp_and_grad(lam)[0] + float(prior_logp(np.array([lam]))[0]) + t

            power[:, k - 1] = np.exp(grid_draws(log_density, float(np.log(mode)), chains * draws, rng))
        return from_draws({"power": power.reshape(chains, draws, self.order)}, coords={"order": np.arange(1, self.order + 1)},
                          dims={"power": ["order"]}, attrs={"inference_method": "exact", "inference_note": INFERENCE_NOTE})

    # -- how far the domain departs ----------------------------------------------------------
    departure_var = property(lambda self: self.draws_var)
    departure_description = ("the power lam_k, the weight of the general text relative to the domain's (1: the texts "
                             "pooled as one, 0: the domain text alone)")

    domain_share_description = ("at a position's context the domain's Dirichlet has total c_D(u) + lam_k T_k(u): the "
                                "domain text's count there plus the general posterior's total, tempered; the domain "
                                "share is the first part's share (exact)")

    _departure_meaning = staticmethod(_departure_words)

    def uncertainty_sources(self, data) -> pd.DataFrame:
        """Per scored position: how much of the Dirichlet at its context comes from the domain text.

        At the position's context u (the highest order either text has seen) the domain's
        Dirichlet has total ``c_D(u) + lam_k T_k(u)``: the domain text's count at u plus the
        general posterior's total tempered by the power. The split is exact (a sum); the
        predictive is the same mixture, ``s P_domain + (1 - s) Q_k`` with ``s`` the domain
        share. Columns: ``order``, ``domain_count`` (c_D(u)), ``general_weight`` (lam_k T_k(u),
        the posterior mean at the top order, the mode below), ``domain_share`` (s, its
        posterior mean) and ``source``: ``"domain text"`` where s >= 1/2, else ``"general model"``.
        """
        self._check_fitted("uncertainty_sources")
        contexts, _ = self.encode(data).context_windows(self.context_length)
        chain = self.levels_.context_chain(contexts)[:self.order]
        order = np.ones(contexts.shape[0], dtype=np.int64)
        for k in range(2, self.order + 1):
            order = np.where(chain[k - 1] >= 0, k, order)
        domain_count, general_total = np.zeros(order.size), np.zeros(order.size)
        for k in range(1, self.order + 1):
            at = order == k
            ctx = chain[k - 1][at]
            domain_count[at] = self.levels_.domain_total[k - 1][ctx]
            general_total[at] = self.levels_.weight(k, ctx)
        lam = np.broadcast_to(self.plugin_[order - 1][:, None], (order.size, 1))
        top = order == self.order
        share = domain_count[:, None] / (domain_count[:, None] + lam * general_total[:, None])
        top_share = domain_count[top, None] / (domain_count[top, None] + self._top_draws()[:, 0][None, :]
                                               * general_total[top, None])
        domain_share = share[:, 0].copy()
        domain_share[top] = top_share.mean(axis=1)
        weight = lam[:, 0] * general_total
        weight[top] = self._top_draws()[:, 0].mean() * general_total[top]
        return pd.DataFrame({"order": order, "domain_count": domain_count, "general_weight": weight,
                             "domain_share": domain_share,
                             "source": np.where(domain_share >= 0.5, "domain text", "general model")})

    def _store_mi_threshold(self, corpus: Corpus, source: str, quantile: float = 0.9, max_sentences: int = 400) -> None:
        # the adapted entropy split sums over one more level (about 1 ms a sentence on Shakespeare): the
        # percentile is read off 400 sentences (thousands of positions), so adapting costs what the domain does
        super()._store_mi_threshold(corpus, source, quantile=quantile, max_sentences=max_sentences)

    # -- the levels ------------------------------------------------------------------------
    @property
    def top_level(self) -> int:
        """The domain's top-order counts sit above the general model's top order."""
        return self.order + 1

    def _backoff(self) -> AdaptedBackoff:
        key, backoff = self._levels_backoff
        if key != self.plugin_.tobytes():
            backoff = self.levels_.levels(self.plugin_)
            self._levels_backoff = (self.plugin_.tobytes(), backoff)
        return backoff

    def _context_chain(self, contexts) -> list[np.ndarray]:
        return self.levels_.context_chain(contexts)

    def _top_scale(self, ctx: np.ndarray) -> np.ndarray:
        """T_n(u): the top level holds c_D / T_n(u), so the Dirichlet of p(. | u) is T_n(u) (c + lam m)."""
        return self.levels_.weight(self.order, ctx)

    # -- files -----------------------------------------------------------------------------
    def _family_arrays(self) -> dict[str, np.ndarray]:
        held_out = {} if self.held_out_ is None else {"held_out_ids": self.held_out_.ids,
                                                      "held_out_offsets": self.held_out_.offsets}
        return {**super()._family_arrays(), **self.levels_.to_arrays(), **held_out}

    def _restore_family(self, arrays: dict) -> None:
        super()._restore_family(arrays)
        self.levels_ = DomainLevels.from_arrays(arrays, self.counts_, self.vocab_.bos_id)
        if "held_out_ids" in arrays:
            ids, offsets = np.asarray(arrays["held_out_ids"]), np.asarray(arrays["held_out_offsets"])
            if ids.size and (ids.min() < 0 or ids.max() >= len(self.vocab_)):
                raise ModelFileError("the held-out token ids are outside the vocabulary")
            self.held_out_ = Corpus(ids.astype(np.int32), offsets.astype(np.int64), self.vocab_, self.tokenizer_)
        recorded = self.idata["posterior"].attrs.get("general_model") if self.idata is not None else None
        self.general_ = json.loads(recorded) if isinstance(recorded, str) else None
