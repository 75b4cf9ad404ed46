"""Domain adaptation of a fitted Pitman-Yor LM: the graphical Pitman-Yor hierarchy (Wood and Teh, 2009).

``general.adapt(domain)`` returns an :class:`AdaptedPitmanYorLM`: each domain restaurant u of
order k draws from ``PY(d_k, theta_k, lam_k G_u + (1 - lam_k) D_{u'})``, a mixture of the
general model's restaurant at the same context (frozen: its retained seatings, averaged
over its retained samples, never refitted) and the domain's own parent. The domain
customers are seated by the Chinese restaurant rule of this hierarchy, then Gibbs sweeps of
that seating (:mod:`~bayeslm.ngram.pitman_yor.domain_seating`) alternate with exact draws of
(d_k, theta_k), as in the fast mode, and of lam_k from its Beta conditional (the tables whose
dish came from the general restaurant against those from the domain parent).
Everything lives on the union of both texts' n-grams, so one context lookup serves both
hierarchies. The model, its inference and figures: docs/domain.md ("Pitman-Yor").
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from pydantic import Field

from bayeslm.core.protocol import AdaptedToDomain
from bayeslm.core.settings import whole
from bayeslm.counting.counts import NgramCounts
from bayeslm.exceptions import BayesLMError, ConfigError, ModelFileError
from bayeslm.ngram.adapt import AdaptedNgram, map_contexts
from bayeslm.ngram.pitman_yor.domain_seating import DomainSeating
from bayeslm.ngram.pitman_yor.fast import HyperPosterior, prior_log_density
from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy
from bayeslm.ngram.pitman_yor.model import PitmanYorLM, PitmanYorOptions, dense_seating, gather_seating
from bayeslm.text.corpus import Corpus

__all__ = ["AdaptedPitmanYorLM", "FrozenGeneral", "DomainSeating", "graphical_predictive", "mixture_weights",
           "ADAPTED_PY_FAMILY"]

#: the family name of adapted Pitman-Yor LMs in configurations and model directories
ADAPTED_PY_FAMILY = "pitman-yor-adapted"
#: the general weight lam_k the first seating is made with (the discounts and strengths start at the
#: general model's posterior means)
START_WEIGHT = 0.5


def graphical_predictive(gathered, d, theta, lam, general, base):
    """The domain predictive of every order at positions (or dense rows), from the bottom up.

        P_k(w | u) = (c_uw - d t_uw + (theta + d t_u.) M_k(w | u)) / (theta + c_u.),
        M_k(w | u) = lam_k G_k(w | u) + (1 - lam_k) P_{k-1}(w | u'),

    with ``P_0`` the base measure ``base``; a restaurant without domain customers passes
    ``M_k`` through. ``gathered``: per order (live, c_uw, t_uw, c_u., t_u.) of the domain
    seating (:func:`gather_seating`; for dense rows c, t of shape (m, V), the rest (m, 1));
    ``general``: G_k at the same points per order. Returns the list of P_1 .. P_n.
    """
    p, out = base, []
    for k, (live, c, t, Cu, Tu) in enumerate(gathered):
        mix = lam[k] * general[k] + (1.0 - lam[k]) * p
        with np.errstate(divide="ignore", invalid="ignore"):
            new = (c - d[k] * t + (theta[k] + d[k] * Tu) * mix) / (theta[k] + Cu)
        p = np.where(live, new, mix)
        out.append(p)
    return out


def mixture_weights(gathered, d, theta, lam) -> tuple[np.ndarray, np.ndarray]:
    """The weights of :func:`graphical_predictive`'s top order as a mixture: (domain, general).

    P_n(. | u) is a mixture whose weights do not depend on the token:

        P_n = sum_k W_k D_k + sum_k V_k G_k + R P_0,

    with D_k the domain restaurant's tables at its order-k context ((c_uw - d_k t_uw) / (c_u. - d_k t_u.)),
    G_k the general predictive there and P_0 the base measure. Going down from the top, the
    restaurant of order k keeps ``a_k = (c_u. - d_k t_u.) / (theta_k + c_u.)`` of the weight that
    reaches it for its own tables (0 without customers) and passes the rest,
    ``(theta_k + d_k t_u.) / (theta_k + c_u.)``, to its base: lam_k of it to G_k, 1 - lam_k to
    the domain parent, where it recurses. ``gathered`` as :func:`graphical_predictive`'s at
    positions, shape (position,) each; d, theta, lam: (sample, order). Returns sum_k W_k (the
    domain text's weight) and sum_k V_k (the general model's), each (sample, position); the
    base measure's R is 1 minus both.
    """
    d, theta, lam = (np.atleast_2d(np.asarray(x, float)) for x in (d, theta, lam))
    reach, domain, general = 1.0, 0.0, 0.0
    for k in range(len(gathered) - 1, -1, -1):
        live, _, _, Cu, Tu = (np.asarray(x, float)[None, :] for x in gathered[k])
        dk, tk, lk = d[:, k, None], theta[:, k, None], lam[:, k, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(live > 0, (Cu - dk * Tu) / (tk + Cu), 0.0)
        domain = domain + reach * own
        reach = reach * (1.0 - own)
        general = general + reach * lk
        reach = reach * (1.0 - lk)
    return domain, general


class FrozenGeneral:
    """The general model, frozen, on the union hierarchy: its seatings and its retained (d, theta).

    ``customers``, ``tables``: (seating, pair) over the union's pairs (0 where the general
    text lacks the pair); ``sample_seating``: the seating of every retained sample;
    ``discount``, ``strength``: (sample, order). :meth:`order_probs` is its posterior
    predictive of every order, the mean over the retained samples.
    """

    def __init__(self, hier: Hierarchy, customers, tables, sample_seating, discount, strength, base: np.ndarray):
        self.hier, self.base = hier, base
        self.customers, self.tables = np.asarray(customers, float), np.asarray(tables, float)
        self.sample_seating = np.asarray(sample_seating, np.int64)
        self.discount, self.strength = np.asarray(discount, float), np.asarray(strength, float)
        if (self.customers.shape != self.tables.shape or self.customers.ndim != 2
                or self.customers.shape[1] != hier.n_pairs or self.discount.shape != (self.sample_seating.size, hier.n)
                or self.strength.shape != self.discount.shape
                or np.any((self.sample_seating < 0) | (self.sample_seating >= self.customers.shape[0]))):
            raise ModelFileError("the general model's seatings do not match the union counts")
        self._totals = [hier.totals(c, t) for c, t in zip(self.customers, self.tables)]

    @classmethod
    def from_model(cls, general: PitmanYorLM, hier: Hierarchy, base: np.ndarray) -> "FrozenGeneral":
        """The retained seatings and (d, theta) of a fitted ``general`` model, moved onto ``hier`` (the union's)."""
        own = Hierarchy(general.counts_)
        contexts = map_contexts(general.counts_, hier.counts)
        where = np.concatenate([hier.counts[k].lookup(contexts[k - 1][oc.ngram_context], oc.ngram_token) + hier.po[k - 1]
                                for k, oc in enumerate(general.counts_.orders, start=1)])
        tc, post = general.idata["table_counts"], general.idata["posterior"]
        inference = general.options["inference"]
        if inference == "ikn":
            own_tables, seating_of = own.one_table()[None, :], np.zeros(tc.sizes["sample"], np.int64)
        else:
            own_tables = np.concatenate([tc[f"tables_o{k}"].values for k in range(1, general.order + 1)], axis=1)
            seating_of = (tc["sample_seating"].values if inference == "fast" else np.arange(tc.sizes["sample"]))
        customers, tables = np.zeros((own_tables.shape[0], hier.n_pairs)), np.zeros((own_tables.shape[0], hier.n_pairs))
        for i, own_t in enumerate(own_tables.astype(np.int64)):
            customers[i, where], tables[i, where] = own.customers(own_t), own_t
        ch, dr = tc["sample_chain"].values, tc["sample_draw"].values
        d = post["discount"].transpose("chain", "draw", "order").values[ch, dr]
        theta = post["strength"].transpose("chain", "draw", "order").values[ch, dr]
        return cls(hier, customers, tables, seating_of, d, theta, base)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"general_customers": self.customers.astype(np.int64), "general_tables": self.tables.astype(np.int64),
                "general_sample_seating": self.sample_seating, "general_discount": self.discount,
                "general_strength": self.strength}

    @classmethod
    def from_arrays(cls, arrays: dict, hier: Hierarchy, base: np.ndarray) -> "FrozenGeneral":
        names = ("general_customers", "general_tables", "general_sample_seating", "general_discount", "general_strength")
        if any(name not in arrays for name in names):
            raise ModelFileError("the model directory has no general seatings (arrays.npz foreign?)")
        return cls(hier, *(arrays[name] for name in names), base=base)

    def _seating(self, i: int):
        return self.customers[i], self.tables[i], *self._totals[i]

    def order_probs(self, index, base_at: np.ndarray) -> list[np.ndarray]:
        """G_k(w | u) at positions, per order: the mean over the retained samples (``index``:
        union context and pair ids per order, :meth:`PitmanYorLM._chain_index`)."""
        gathered = {i: gather_seating(self._seating(i), index) for i in np.unique(self.sample_seating)}
        return self._mean(lambda s: gathered[self.sample_seating[s]], base_at)

    def dense_order_probs(self, chain, base_row: np.ndarray) -> list[np.ndarray]:
        """G_k(. | u) for rows of union context ids ``chain``, per order: (m, V) each."""
        dense = {}
        for i in np.unique(self.sample_seating):
            dense[i] = [(Cu[:, None] > 0, c, t, Cu[:, None], Tu[:, None])
                        for c, t, Cu, Tu in dense_seating(self.hier, self._seating(i), chain)]
        return self._mean(lambda s: dense[self.sample_seating[s]], base_row)

    def _mean(self, gathered_of, base) -> list[np.ndarray]:
        n, total = self.hier.n, None
        zero = np.zeros(n)
        for s in range(self.sample_seating.size):  # the general hierarchy: lam = 0 (no second parent)
            probs = graphical_predictive(gathered_of(s), self.discount[s], self.strength[s], zero, [0.0] * n, base)
            total = probs if total is None else [a + b for a, b in zip(total, probs)]
        return [a / self.sample_seating.size for a in total]


def _draw(posterior: HyperPosterior, size: int, rng, d: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """``size`` exact draws of one order's (d, theta) given the seating, searched from (d, theta)."""
    with np.errstate(divide="ignore", over="ignore"):  # a flat posterior's grid reaches d = 0 or 1: density 0 there
        return posterior.draw(size, rng, float(d), float(theta))


def _dense_gathered(hier: Hierarchy, seating, chain) -> list[tuple[np.ndarray, ...]]:
    """:func:`dense_seating` in the form :func:`graphical_predictive` reads (restaurant totals as columns)."""
    return [(Cu[:, None] > 0, c, t, Cu[:, None], Tu[:, None]) for c, t, Cu, Tu in dense_seating(hier, seating, chain)]


class KeptSeating:
    """One kept domain seating: its tables and customers per union pair, and its conditionals of
    (d, theta, lam) (per order a :class:`HyperPosterior`, lam's Beta parameters ``a``, ``b``)
    with the (d, theta) to search them from."""

    def __init__(self, seating: DomainSeating, posteriors: list, a, b, d, theta):
        self.tables, self.customers = seating.tables.copy(), seating.customers.copy()
        self.posteriors, self.a, self.b = posteriors, np.asarray(a, float), np.asarray(b, float)
        self.d, self.theta = np.array(d, float), np.array(theta, float)


class AdaptedPitmanYorOptions(PitmanYorOptions):
    """The ``[model]`` options of :class:`AdaptedPitmanYorLM` (its order, vocabulary and tokenizer are
    the general model's)."""

    rounds: whole(ge=1) = Field(3, description="seatings of the domain customers, each made with the previous "
                                               "one's modes of (d, theta, lam); the sweeps start from the last one")
    sweeps: whole(ge=0) = Field(60, description="Gibbs sweeps of the domain seating after the rounds, each after exact "
                                               "draws of (d, theta, lam) given the seating; the kept draws are given "
                                               "the kept seatings (seatings)")
    table_moves: whole(ge=0) = Field(1, description="passes of the table-count move after each sweep's customer "
                                                    "moves: every domain pair's tables and their dish sources drawn "
                                                    "from their exact conditional, the table sizes integrated out")
    seatings: whole(ge=1) = Field(8, description="domain seatings kept for prediction: the last sweep's and others "
                                                 "evenly spaced over the second half of the sweeps; each retained "
                                                 "sample is drawn given one of them")


class AdaptedPitmanYorLM(AdaptedNgram, PitmanYorLM, AdaptedToDomain):
    """A Pitman-Yor LM of a domain whose restaurants draw from a fitted general Pitman-Yor LM's.

    Made by :meth:`PitmanYorLM.adapt` (``general.adapt(domain)``), never fitted alone. The
    posterior holds per order ``discount`` and ``strength`` (the domain restaurants' d_k,
    theta_k) and ``general_weight`` (lam_k: the general restaurant's weight in the domain
    restaurant's base, 1 - lam_k the domain parent's; small where the domain departs from
    the general model). Every method of :class:`PitmanYorLM` answers, from the predictive of
    :func:`graphical_predictive`; not available: ARPA export, ``update``, adapting again.

    Learned state beside the Pitman-Yor LM's: ``counts_`` (the union of the general and the
    domain n-grams: the restaurants of both hierarchies), ``general_model_``
    (:class:`FrozenGeneral`: the general model's seatings and retained (d, theta) on the
    union, all the model needs of it), ``domain_customers_`` (the kept domain seatings' customers,
    (seating, union pair); their tables are the ``table_counts`` group's) and ``general_`` (the
    general model's id, training size and fit time).
    """

    family = ADAPTED_PY_FAMILY
    departure_var = "general_weight"
    departure_description = ("the general weight lam_k, the general model's share of the base the domain's restaurants "
                             "draw new tables from (1: the general model at the same context, 0: the domain's own "
                             "shorter context)")
    domain_share_description = ("a position's predictive mixes the domain restaurants' tables along its context chain, "
                                "the general model's predictive of every order and the base measure; the domain share "
                                "is the tables' weight (exact): the restaurant of order k keeps (c_u - d_k t_u) / "
                                "(theta_k + c_u) of what reaches it and passes the rest to its base, lam_k of it to the "
                                "general model and 1 - lam_k to the domain's shorter context")
    default_model_config = {**PitmanYorLM.default_model_config,
                            "general_weight": {"dist": "Beta", "kwargs": {"alpha": 1.0, "beta": 1.0}}}
    model_options = AdaptedPitmanYorOptions

    @staticmethod
    def _departure_meaning(low: float, high: float) -> str:
        if low > 0.9:
            return "follows the general model: new tables draw from its same context"
        if high < 0.1:
            return "departs from the general model: new tables draw from the domain's shorter context"
        return f"new tables draw {low:.2g} to {high:.2g} from the general model's same context, the rest from the domain's"

    def __init__(self, order: int | None = None, **kwargs):
        super().__init__(order, **kwargs)
        if self.options["inference"] != "fast" or self.fixed_discount_ is not None or self.fixed_strength_ is not None:
            raise ConfigError("model: an adapted Pitman-Yor model is seated as the fast mode (inference = 'fast') with "
                              "free discounts and strengths")
        if self.model_config["general_weight"].distribution != "Beta":
            raise ConfigError("prior.general_weight: the general weight's prior is a Beta (its conditional given the "
                              "seating is then a Beta)")
        self.general_model_: FrozenGeneral | None = None
        self.domain_customers_: np.ndarray | None = None
        self.general_: dict | None = None
        self._general: PitmanYorLM | None = None  # the general model, while adapting only
        self._domain_seating = None
        self._dense_general = (None, None)

    @classmethod
    def from_general(cls, general: PitmanYorLM, domain: Corpus, valid: Corpus | None = None, *,
                     model_config: dict | None = None, options: dict | None = None,
                     **sampler_kwargs) -> "AdaptedPitmanYorLM":
        """Adapt the fitted ``general`` model to ``domain`` text; see :meth:`PitmanYorLM.adapt`.

        ``model_config``: priors of ``discount``, ``strength_plus_discount`` (the Pitman-Yor
        LM's defaults) and ``general_weight`` (default ``Beta(1, 1)``); ``options``:
        ``rounds``, ``sweeps``, ``table_moves``, ``seatings``, ``retain``, ``entropy_draws``.
        """
        if type(general) is not PitmanYorLM:
            raise BayesLMError(f"only a fitted PitmanYorLM can be adapted this way, not a {type(general).__name__} "
                               f"(family {general.family!r})")
        general._check_fitted("adapt")
        if general.open_vocabulary:
            raise BayesLMError("adapting an open-vocabulary model (spelling > 0) is not supported yet; adapt a "
                               "closed-vocabulary model (spelling = 0)")
        options = dict(options or {})
        if unknown := sorted(set(options) - {"rounds", "sweeps", "table_moves", "seatings", "retain", "entropy_draws"}):
            raise ConfigError(f"model: an adapted Pitman-Yor model takes only rounds, sweeps, table_moves, seatings, "
                              f"retain and entropy_draws, not "
                              f"{unknown} (its order, tokenizer and vocabulary are the general model's)")
        config = general.get_config()
        config["model"] = {**config["model"], **options, "family": ADAPTED_PY_FAMILY, "inference": "fast",
                           "discount": None, "strength": None, "hyper_step": None}
        config["prior"] = dict(model_config or {})
        return cls._fit_from(general, config, domain, valid, sampler_kwargs)

    def interpolation(self, sample: int | None = None) -> list[np.ndarray]:
        raise BayesLMError("ARPA export of an adapted Pitman-Yor model is not available: its predictive at an unseen "
                           "n-gram mixes two lower-order distributions, which no back-off weight reproduces "
                           "(docs/domain.md)")

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, train: Corpus, valid: Corpus | None, sampler: dict):
        general = self._general
        domain = self._count_training(train, sampler)
        self.counts_ = general.counts_.merge(domain)
        self._hier = hier = Hierarchy(self.counts_)
        self.general_model_ = FrozenGeneral.from_model(general, hier, self._base_times(1.0, np.arange(hier.V)))
        attrs = general.idata["posterior"].attrs
        self.general_ = {"id": general.id, "training_tokens": int(attrs.get("training_tokens", 0)),
                         "fit_seconds": float(general.fit_seconds_ or 0.0)}
        rng = np.random.default_rng(sampler.get("random_seed"))
        seating, events = self._domain_customers(domain)
        start = [general.idata["posterior"][name].mean(("chain", "draw")).values for name in ("discount", "strength")]
        idata = self._sample_seated(seating, events, start, sampler, rng)
        idata["posterior"].attrs["general_model"] = json.dumps(self.general_)
        self._samples, self._domain_seating, self._dense_general = None, None, (None, None)
        return idata

    def _domain_customers(self, domain: NgramCounts) -> tuple[DomainSeating, np.ndarray]:
        """The seating machinery of the domain's top-order n-grams (union pairs at every order,
        the general predictive there), and one customer per domain token (column ids)."""
        h, n = self._hier, self.order
        top = domain[n]
        context = map_contexts(domain, self.counts_)[n - 1][top.ngram_context]
        chains = np.empty((n, top.n_ngrams), np.int64)
        chains[n - 1] = self.counts_[n].lookup(context, top.ngram_token) + h.po[n - 1]
        for k in range(n - 1, 0, -1):
            chains[k - 1] = h.pair_parent[chains[k]]
        if np.any(chains < 0):
            raise BayesLMError("the domain n-grams are not all in the union counts")
        base = self._base_times(1.0, top.ngram_token)
        index = ([h.pair_ctx[c] for c in chains], list(chains))
        general = np.stack(self.general_model_.order_probs(index, base))
        return DomainSeating(h, chains, general, base), np.repeat(np.arange(top.n_ngrams), top.ngram_count)

    def _sample_seated(self, seating: DomainSeating, events: np.ndarray, start, sampler: dict, rng):
        """Seat the domain customers (:meth:`_seat_domain`), then draw chains x draws of every order's
        (d, theta, lam), each given one of the kept seatings (draw i of every chain: seating
        ``i * seatings // draws``)."""
        import arviz as az

        n = self.order
        chains, draws = int(sampler.get("chains", 2)), int(sampler.get("draws", 1000))
        kept = self._seat_domain(seating, events, start, rng)
        seating_of_draw = np.arange(draws) * len(kept) // draws
        shape = (chains, draws, n)
        d_draws, theta_draws, lam_draws = np.empty(shape), np.empty(shape), np.empty(shape)
        for i, one in enumerate(kept):
            size = chains * int((seating_of_draw == i).sum())
            at = (slice(None), seating_of_draw == i)
            for k, posterior in enumerate(one.posteriors):
                d_k, theta_k = _draw(posterior, size, rng, one.d[k], one.theta[k])
                d_draws[at + (k,)], theta_draws[at + (k,)] = d_k.reshape(chains, -1), theta_k.reshape(chains, -1)
            lam_draws[at] = rng.beta(one.a, one.b, size=(size, n)).reshape(chains, -1, n)
        post = {"discount": d_draws, "strength": theta_draws, "strength_plus_discount": d_draws + theta_draws,
                "general_weight": lam_draws}
        tables = np.array([one.tables.sum() for one in kept])[seating_of_draw]
        idata = az.from_dict(posterior=post, sample_stats={"tables": np.broadcast_to(tables, (chains, draws)).copy()},
                             coords={"order": np.arange(1, n + 1)}, dims={name: ["order"] for name in post})
        retain = min(int(self.options["retain"]), draws)
        from bayeslm.core.idata import add_group

        group = self._table_group(idata, {"seating": kept[0].tables}, "fast", retain)
        names = [f"tables_o{k}" for k in range(1, n + 1)]
        group = group.drop_vars(names).assign(
            sample_seating=("sample", seating_of_draw[group["sample_draw"].values]),
            **{name: (("seating", f"ngram_o{k}"), np.stack([one.tables[self._hier.level(k)] for one in kept]))
               for k, name in enumerate(names, start=1)})
        add_group(idata, "table_counts", group)
        self.domain_customers_ = np.stack([one.customers for one in kept])
        method, note = ("exact", "Independent exact draws of each order's (d, theta, lam) given one of the kept "
                                 "seatings of the domain customers in the graphical hierarchy, from the last Gibbs "
                                 "sweeps (docs/domain.md): the intervals leave out most of the seating's "
                                 "uncertainty.")
        idata["posterior"].attrs.update(inference="fast", inference_method=method, inference_note=note)
        return idata

    def _seat_domain(self, seating: DomainSeating, events: np.ndarray, start, rng):
        """Seat the domain customers ``rounds`` times (each with the previous seating's modes of (d, theta,
        lam)), then alternate ``sweeps`` times exact draws of every order's (d, theta) and lam given
        the seating with a Gibbs sweep of the seating given them (the customer moves, then
        ``table_moves`` passes of the table-count move). Returns the kept seatings (the last one,
        and with ``seatings`` > 1 others evenly spaced over the second half of the sweeps), each
        a :class:`KeptSeating`."""
        n = self.order
        d, theta, lam = np.asarray(start[0], float), np.asarray(start[1], float), np.full(n, START_WEIGHT)
        log_prior_d = prior_log_density(self.model_config["discount"])
        log_prior_s = prior_log_density(self.model_config["strength_plus_discount"])
        weight_prior = self.model_config["general_weight"].parameters

        def conditionals():
            stats = seating.statistics()
            a, b = weight_prior["alpha"] + seating.sent[:, 0], weight_prior["beta"] + seating.sent[:, 1]
            return [HyperPosterior(stats[k], log_prior_d, log_prior_s) for k in range(n)], a, b

        def shuffled():
            order_events = events.copy()
            rng.shuffle(order_events)
            return order_events

        rounds, sweeps = int(self.options["rounds"]), int(self.options["sweeps"])
        keep = set(np.linspace(sweeps, sweeps // 2, int(self.options["seatings"])).round().astype(int).tolist())
        for r in range(rounds):
            seating.seat(shuffled(), d, theta, lam, int(rng.integers(2**31 - 1)))
            posteriors, a, b = conditionals()
            if r < rounds - 1:
                for k, posterior in enumerate(posteriors):
                    (d[k],), (theta[k],) = posterior.values(posterior.mode(float(d[k]), float(theta[k]))[0])
                lam = a / (a + b)
        kept = [KeptSeating(seating, posteriors, a, b, d, theta)] if sweeps == 0 else []
        for sweep in range(1, sweeps + 1):
            for k, posterior in enumerate(posteriors):
                (d[k],), (theta[k],) = _draw(posterior, 1, rng, d[k], theta[k])
            lam = rng.beta(a, b)
            seating.sweep(shuffled(), d, theta, lam, int(rng.integers(2**31 - 1)))
            for _ in range(int(self.options["table_moves"])):
                seating.move_table_counts(d, theta, lam, int(rng.integers(2**31 - 1)))
            posteriors, a, b = conditionals()
            if sweep in keep:
                kept.append(KeptSeating(seating, posteriors, a, b, d, theta))
        return kept

    # -- the domain seating and the predictive -----------------------------------------------
    def _seating(self, s: int):
        """(customers, tables) per union pair and per restaurant of sample s's domain seating."""
        key = self._seating_key(s)
        if self._domain_seating is None:
            self._domain_seating = {}
        if key not in self._domain_seating:
            h = self._hierarchy()
            tc = self.idata["table_counts"]
            tables = np.concatenate([tc[f"tables_o{k}"].values[key] for k in range(1, self.order + 1)]).astype(np.int64)
            C, T = h.totals(self.domain_customers_[key], tables)
            self._domain_seating[key] = tuple(x.astype(np.float64) for x in (self.domain_customers_[key], tables, C, T))
        return self._domain_seating[key]

    def _general_weights(self) -> np.ndarray:
        """lam of every retained sample: (samples, order)."""
        tc = self.idata["table_counts"]
        values = self.idata["posterior"]["general_weight"].transpose("chain", "draw", "order").values
        return np.asarray(values[tc["sample_chain"].values, tc["sample_draw"].values], float)

    def _position_index(self, corpus: Corpus):
        """The union context and pair ids of the positions, with the general predictive of every order there."""
        index, tokens = super()._position_index(corpus)
        return (index, self.general_model_.order_probs(index, self._base_times(1.0, tokens))), tokens

    def _gathered(self, s: int, index) -> list[tuple[np.ndarray, ...]]:
        return super()._gathered(s, index[0])

    def _probs(self, s: int, index, tokens, gathered=None) -> np.ndarray:
        d, theta = self._sample_params()
        lam = self._general_weights()
        return graphical_predictive(gathered or self._gathered(s, index), d[s], theta[s], lam[s], index[1],
                                    self._base_times(1.0, tokens))[-1]

    def _dense(self, s: int, chain) -> tuple[np.ndarray, np.ndarray]:
        """P_n(. | u) of sample s, shape (m, V), and each row's Dirichlet mass (as :meth:`PitmanYorLM._dense`)."""
        d, theta = self._sample_params()
        lam = self._general_weights()
        base = self._base_times(1.0, np.arange(self.counts_.vocab_size))[None, :]
        key = hash(tuple(c.tobytes() for c in chain))
        if self._dense_general[0] != key:
            self._dense_general = (key, self.general_model_.dense_order_probs(chain, base))
        gathered = _dense_gathered(self._hierarchy(), self._seating(s), chain)
        p = graphical_predictive(gathered, d[s], theta[s], lam[s], self._dense_general[1], base)[-1]
        Cu, dk, tk = gathered[-1][3][:, 0], d[s, -1], theta[s, -1]
        return p, np.where(Cu > 0, Cu + tk, (tk + dk) / (1.0 - dk))

    def _next_tokens(self, history: np.ndarray, draw: int, rng: np.random.Generator) -> np.ndarray:
        """One token per row from the dense P_n(. | u) of retained sample ``draw``."""
        p = self._dense(int(draw), self._context_chain(history))[0]
        cum = np.cumsum(p, axis=1)
        pick = (cum < rng.random(p.shape[0])[:, None] * cum[:, -1:]).sum(axis=1)
        return np.minimum(pick, p.shape[1] - 1).astype(np.int64)

    # -- where each prediction's weight comes from -------------------------------------------
    def uncertainty_sources(self, data) -> pd.DataFrame:
        """Per scored position: how much of the predictive's weight sits on the domain's tables.

        The predictive at a position is a mixture (:func:`mixture_weights`): the domain
        restaurants' tables along the context chain, the general predictive of every order
        and the base measure. ``domain_share`` is the tables' total weight, an exact
        decomposition of the predictive, averaged over the retained samples as the
        predictive is (so it is the domain tables' weight in the posterior predictive itself);
        ``general_share`` the general model's, 1 minus both the base measure's. Columns:
        ``order`` (the deepest context either text has seen), ``domain_customers`` and
        ``domain_tables`` (c_u. and t_u. of the domain restaurant there), ``general_share``,
        ``domain_share`` and ``source``: ``"domain text"`` where the domain share >= 1/2, else
        ``"general model"``.
        """
        self._check_fitted("uncertainty_sources")
        index = self._chain_index(*self._position_chain(self.encode(data)))
        d, theta = self._sample_params()
        lam = self._general_weights()
        order = np.ones(index[0][0].size, dtype=np.int64)
        for k in range(2, self.order + 1):
            order = np.where(index[0][k - 1] >= 0, k, order)
        at = order[None, :] - 1 == np.arange(self.order)[:, None]  # (order, position): the position's order
        keys = np.array([self._seating_key(s) for s in range(self.n_samples)])
        domain, general = np.empty((keys.size, order.size)), np.empty((keys.size, order.size))
        customers, tables = np.zeros(order.size), np.zeros(order.size)
        for key in np.unique(keys):  # the samples of one seating share its counts
            rows = keys == key
            gathered = gather_seating(self._seating(int(np.argmax(rows))), index)
            domain[rows], general[rows] = mixture_weights(gathered, d[rows], theta[rows], lam[rows])
            customers += rows.mean() * np.where(at, np.stack([g[3] for g in gathered]), 0.0).sum(axis=0)
            tables += rows.mean() * np.where(at, np.stack([g[4] for g in gathered]), 0.0).sum(axis=0)
        domain_share = domain.mean(axis=0)
        return pd.DataFrame({"order": order, "domain_customers": np.rint(customers).astype(np.int64),
                             "domain_tables": np.rint(tables).astype(np.int64), "general_share": general.mean(axis=0),
                             "domain_share": domain_share,
                             "source": np.where(domain_share >= 0.5, "domain text", "general model")})

    # -- files -----------------------------------------------------------------------------
    def _family_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._family_arrays(), **self.general_model_.to_arrays(), "domain_customers": self.domain_customers_}

    def _restore_family(self, arrays: dict) -> None:
        super()._restore_family(arrays)
        h = self._hierarchy()
        self.general_model_ = FrozenGeneral.from_arrays(arrays, h, self._base_times(1.0, np.arange(h.V)))
        customers = np.asarray(arrays.get("domain_customers", np.zeros(0)), np.int64)
        if customers.ndim == 1:  # written with one seating, before several could be kept
            customers = customers[None, :]
        seatings = int(self.idata["table_counts"].sizes.get("seating", 0))
        if customers.shape != (seatings, h.n_pairs) or np.any(customers < 0):
            raise ModelFileError("the domain seatings' customers do not match the union counts")
        self.domain_customers_ = customers
        self._domain_seating, self._dense_general = None, (None, None)
        recorded = self.idata["posterior"].attrs.get("general_model")
        self.general_ = json.loads(recorded) if isinstance(recorded, str) else None
