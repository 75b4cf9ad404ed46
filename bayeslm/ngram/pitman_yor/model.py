"""``PitmanYorLM``: the hierarchical Pitman-Yor language model (Teh, 2006) as a PyMC model.

G_u ~ PY(d_k, theta_k, G_u') for a context u of k - 1 tokens (u' without its oldest
token), integrated out by the Chinese restaurant representation. ``inference="fast"`` (the
default) seats the customers once and draws (d, theta) given that seating
(:mod:`~bayeslm.ngram.pitman_yor.fast`); ``inference="gibbs"`` samples the seating
(:class:`SeatingState`, numba kernels) and the hyperparameters in one compound
``pm.sample`` step and keeps a thinned set of table counts (``table_counts`` group);
``inference="ikn"`` fixes one table per type. A posterior sample for scoring is a retained
(seating, d, theta). The model, its inference and figures: docs/pitman_yor.md.
"""

from __future__ import annotations

from typing import Annotated, Iterator

import numpy as np
from pydantic import Field, model_validator
from scipy.special import digamma, xlogy

from bayeslm.core.draws import draw_indices
from bayeslm.core.sampling import pm_sample_kwargs
from bayeslm.core.storage import family_class
from bayeslm.core.settings import Invalid, Rule, choice, flag, whole
from bayeslm.exceptions import BayesLMError, ConfigError, CorpusError, ModelFileError
from bayeslm.ngram.base import NgramLM, NgramOptions
from bayeslm.ngram.pitman_yor.hierarchy import Hierarchy
from bayeslm.ngram.pitman_yor.scoring import PositionIndex, SeenFirst, restaurant_rule
from bayeslm.ngram.pitman_yor.seating_state import SeatingState
from bayeslm.text.corpus import Corpus

__all__ = ["PitmanYorLM", "PitmanYorOptions", "pitman_yor_predictive", "gather_seating", "dense_seating"]


def pitman_yor_predictive(c_w, t_w, c_total, t_total, d, theta, parent):
    """The Pitman-Yor predictive rule of one restaurant: reference formula.

    ``(c_w - d t_w + (theta + d t_total) parent) / (theta + c_total)``; with no customers
    (``c_total == 0``) the parent's probability.
    """
    c_w, t_w, parent = (np.asarray(x, dtype=float) for x in (c_w, t_w, parent))
    if c_total == 0:
        return parent
    return (c_w - d * t_w + (theta + d * t_total) * parent) / (theta + c_total)


def _per_order(value, n: int):
    """None, or a float array of length n from one number or one per order."""
    if value is None:
        return None
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    return np.full(n, float(arr[0])) if arr.size == 1 else arr


def gather_seating(seating, index) -> list[tuple[np.ndarray, ...]]:
    """Per order, at every position: (context seen and with customers, c_uw, t_uw, c_u., t_u.).

    ``seating``: (customers, tables) per pair and (customers, tables) per restaurant, flat
    over a :class:`Hierarchy`; ``index``: its global context and pair ids per order at the
    positions (-1: unseen).
    """
    gctx, gpair = index
    cust, tabs, C, T = seating
    out = []
    for ctx, pair in zip(gctx, gpair):
        ci, pi = np.maximum(ctx, 0), np.maximum(pair, 0)
        Cu, Tu = C[ci], T[ci]
        out.append(((ctx >= 0) & (Cu > 0), np.where(pair >= 0, cust[pi], 0.0), np.where(pair >= 0, tabs[pi], 0.0), Cu, Tu))
    return out


def dense_seating(hier: Hierarchy, seating, chain) -> Iterator[tuple[np.ndarray, ...]]:
    """Per order, for rows of context ids ``chain`` (one array per order, -1: unseen): the
    customers and tables of every token, shape (m, V), and of the restaurant, shape (m,)."""
    cust, tabs, C, T = seating
    m, V = chain[0].size, hier.V
    for k in range(1, hier.n + 1):
        oc, ctx = hier.counts[k], chain[k - 1]
        ok = ctx >= 0
        ci = np.maximum(ctx, 0)
        length = np.where(ok, oc.context_types[ci], 0)
        start = np.where(ok, oc.context_start[ci], 0)
        rows = np.repeat(np.arange(m), length)
        offsets = np.concatenate([[0], np.cumsum(length)[:-1]])
        local = np.repeat(start - offsets, length) + np.arange(int(length.sum()))
        dense_c = np.zeros((m, V))
        dense_t = np.zeros((m, V))
        dense_c[rows, oc.ngram_token[local]] = cust[local + hier.po[k - 1]]
        dense_t[rows, oc.ngram_token[local]] = tabs[local + hier.po[k - 1]]
        yield dense_c, dense_t, np.where(ok, C[ci + hier.co[k - 1]], 0.0), np.where(ok, T[ci + hier.co[k - 1]], 0.0)


#: the rules of a fixed discount and strength: one value for every order, or one per order
_DISCOUNT_RULE = "a number in [0, 1) or a list of one per order, or none"
_STRENGTH_RULE = "a number > -discount or a list of one per order, or none"


#: how the draws of the modes without NUTS come about (``stats.diagnostics`` method, what the report says)
_INFERENCE_METHODS = {
    "gibbs": ("gibbs", "Gibbs sweeps over the seating with slice steps on each order's (d, theta): R-hat and ESS "
                       "apply; divergences and E-BFMI belong to Hamiltonian samplers and do not exist here."),
    "fast": ("exact", "Independent exact draws of each order's (d, theta) given one seating of the customers (the "
                      "fast mode): R-hat and ESS check the draws; the seating is fixed, so the intervals leave out its "
                      "uncertainty, and d stays near the value the seating was made with (docs/pitman_yor.md)."),
}


class PitmanYorOptions(NgramOptions):
    """The ``[model]`` options of :class:`PitmanYorLM` (see its docstring)."""

    inference: choice("fast", "gibbs", "ikn") = Field(
        "fast", description="fast: one seating by the CRP, (d, theta) drawn given it; gibbs: table counts "
                             "sampled (full posterior, ~100x slower); ikn: one table per observed type")
    hyper_step: choice("slice", "nuts", optional=True) = Field(
        None, description="step of discount and strength (none: slice for gibbs, nuts for ikn)")
    discount: Annotated[float | list[float] | None, Rule(_DISCOUNT_RULE)] = Field(
        None, description="fix d_k instead of sampling it")
    strength: Annotated[float | list[float] | None, Rule(_STRENGTH_RULE)] = Field(
        None, description="fix theta_k instead of sampling it")
    retain: whole(ge=1) = Field(10, description="seatings kept per chain for prediction")
    entropy_draws: whole(ge=1) = Field(8, description="retained samples for entropies and probability intervals")
    refresh_min: whole(ge=0) = Field(
        10, description="table sizes of pairs with this many customers drawn afresh after each sweep (0: never)")
    table_step: flag() = Field(True, description="draw every pair's table count from its full conditional")

    @model_validator(mode="after")
    def _fixed_hyperparameters(self):
        d, th = self._per_order("discount"), self._per_order("strength")
        if d is not None and np.any((d < 0) | (d >= 1)):
            raise Invalid(key="discount", rule=_DISCOUNT_RULE, value=self.discount)
        if th is not None and np.any((th < 0) if d is None else (th <= -d)):
            raise Invalid("with a free discount (which can be near 0) give a strength > 0, or fix the discount"
                          if d is None else f"discount is {self.discount}", key="strength",
                          rule=_STRENGTH_RULE, value=self.strength)
        return self

    def _per_order(self, key: str):
        value = getattr(self, key)
        arr = _per_order(value, self.order)
        if arr is not None and arr.size != self.order:
            raise Invalid(f"order {self.order} needs one value or {self.order}", key=key,
                          rule=_DISCOUNT_RULE if key == "discount" else _STRENGTH_RULE, value=value)
        return arr


class PitmanYorLM(NgramLM):
    """Hierarchical Pitman-Yor n-gram language model with a posterior over discounts and strengths.

    Parameters
    ----------
    order : int
        3 for a trigram model.
    inference : {"fast", "gibbs", "ikn"}
        ``"fast"`` (default): the customers seated once by the Chinese restaurant rule, then
        independent draws of (d, theta) given that seating; seconds on a million tokens
        (the whole ``bayeslm fit`` process about 10x KenLM's ``lmplz``), and on Shakespeare
        a lower test perplexity than KenLM's. Its (d, theta) intervals are conditional on
        that one seating, which pins the discounts near the Kneser-Ney starting values: far
        narrower than their posterior, and not centred on it (docs/pitman_yor.md, "The fast
        mode").
        ``"gibbs"``: the full posterior, table counts sampled (compound step: seating sweep
        + slice sampling); predicts a little better and its (d, theta) are the posterior's,
        but it takes about 100x the fast mode's time (22 minutes for the Shakespeare
        trigram, 7 minutes 40 s for ``demo_corpus()``). ``"ikn"``: one table per observed
        type, NUTS on the hyperparameters only (predicts worse than KenLM).
    discount, strength : float or list of float, optional
        Fix d_k (in [0, 1)) or theta_k (> -d_k) instead of sampling them (one value for
        every order, or one per order).
    retain : int
        Seatings kept per chain for prediction (evenly spaced after tuning).
    refresh_min : int
        After every Gibbs sweep, the table sizes of each (context, token) pair with at
        least this many customers are drawn afresh from their exact conditional given its
        number of tables (``seating.refresh_partitions``; 0: never). The customer-level
        sweep changes a big pair's sizes only slowly. With ``table_step`` every pair's
        sizes are refreshed.
    table_step : bool
        After the sweep, draw every (context, token) pair's table count from its full
        conditional (:mod:`~bayeslm.ngram.pitman_yor.table_counts`; pairs with at most 2,000 raw counts whose parent has
        at most 2,000: the customer sweep then visits only the others). Reaches seatings
        one customer at a time cannot; default true.
    entropy_draws : int
        Retained samples used for entropies and probability intervals.
    model_config : dict
        ``{"discount": Prior, "strength_plus_discount": Prior}``: priors of d_k (default
        ``Beta(1, 1)``) and of theta_k + d_k > 0 (default ``Gamma(1, 0.01)``).
    Other parameters as :class:`bayeslm.core.base.BayesianLM`; what the n-gram families share
    is :class:`bayeslm.ngram.base.NgramLM`.
    """

    family = "pitman-yor"
    default_model_config = {
        "discount": {"dist": "Beta", "kwargs": {"alpha": 1.0, "beta": 1.0}},
        "strength_plus_discount": {"dist": "Gamma", "kwargs": {"alpha": 1.0, "beta": 0.01}},
    }
    default_sampler_config = {**NgramLM.default_sampler_config, "draws": 1000, "tune": 200}
    model_options = PitmanYorOptions

    def __init__(self, order: int | None = None, **kwargs):
        super().__init__(order, **kwargs)
        self.fixed_discount_ = _per_order(self.options["discount"], self.order)
        self.fixed_strength_ = _per_order(self.options["strength"], self.order)
        self._hier = None
        self._samples = None

    # -- fitting ------------------------------------------------------------------------
    def _check_corpus(self, train: Corpus) -> None:
        types = np.unique(train.ids)
        if types.size < 2:
            only = self.vocab_.tokens[int(types[0])] if types.size else "nothing"
            raise CorpusError(f"the training text has a single token type ({only!r}); a language model needs at least two")
        longest = int(train.sentence_lengths.max())
        if self.order > longest + 1:
            raise ConfigError(f"order {self.order} is larger than any sentence: the longest training sentence has "
                              f"{longest} token(s) ({longest + 1} with </s>); use order <= {longest + 1}")

    def _fit(self, train: Corpus, valid: Corpus | None, sampler: dict):
        self._check_corpus(train)
        self.counts_ = self._count_training(train, sampler)
        return self._fit_counts(sampler)

    def _fit_counts(self, sampler: dict):
        import xarray as xr

        from bayeslm.core.idata import add_group

        self._hier = Hierarchy(self.counts_)
        inference = self.options["inference"]
        # the seating's base is the one the predictive backs off to (open vocabulary: the spelling's)
        base = self.base_probs() if self.open_vocabulary else 1.0 / (self.counts_.vocab_size - 1)
        state = SeatingState(self._hier, base, inference != "ikn",
                              refresh_min=int(self.options["refresh_min"]),
                              table_step=bool(self.options["table_step"]))
        free_d, free_t = self.fixed_discount_ is None, self.fixed_strength_ is None
        n = self.order
        chains = int(sampler.get("chains", 2))
        draws = int(sampler.get("draws", 1000))
        retain = min(int(self.options["retain"]), draws)
        seed = sampler.get("random_seed")
        if inference == "fast":
            idata, kept = self._sample_fast(state, chains, draws, seed)
        elif free_d or free_t:
            idata, kept = self._sample_pymc(state, sampler, retain)
        else:
            idata, kept = self._sample_fixed(state, chains, draws, int(sampler.get("tune", 0)), retain, seed)
        coords = {"order": np.arange(1, n + 1)}
        constant = xr.Dataset(
            {"contexts": ("order", [oc.n_contexts for oc in self.counts_.orders]),
             "ngrams": ("order", [oc.n_ngrams for oc in self.counts_.orders])},
            coords=coords,
        )
        add_group(idata, "constant_data", constant)
        add_group(idata, "table_counts", self._table_group(idata, kept, inference, retain))
        idata["posterior"].attrs["inference"] = self.options["inference"]
        if self.options["inference"] != "ikn":  # ikn's NUTS records its own sampler statistics
            method, note = _INFERENCE_METHODS[self.options["inference"]]
            idata["posterior"].attrs.update(inference_method=method, inference_note=note)
        self._samples = None
        return idata

    def _table_group(self, idata, kept: dict, inference: str, retain: int):
        """The ``table_counts`` group: which draws are the retained samples, and their table counts.

        Gibbs: every retained sample's own seating, ``tables_o{k}`` (sample, ngram_o{k});
        fast: the one seating, ``tables_o{k}`` (seating, ngram_o{k}) and ``sample_seating``;
        ikn: none (one table per type).
        """
        import xarray as xr

        post = idata["posterior"]
        chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
        gibbs = inference == "gibbs"
        if gibbs:
            order_keys = sorted(kept)
            per_chain = {c: [k for k in order_keys if k[0] == c] for c in range(chains)}
            per = min(len(v) for v in per_chain.values())
            keys = [k for c in range(chains) for k in per_chain[c][:per]]
        else:
            per = min(retain, draws)
            idx = np.linspace(0, draws - 1, per).round().astype(int)
            keys = [(c, int(i)) for c in range(chains) for i in idx]
        data = {
            "sample_chain": ("sample", np.array([k[0] for k in keys], dtype=np.int64)),
            "sample_draw": ("sample", np.array([k[1] for k in keys], dtype=np.int64)),
        }
        if gibbs:
            stack = np.stack([kept[k] for k in keys])
            for k in range(1, self.order + 1):
                data[f"tables_o{k}"] = (("sample", f"ngram_o{k}"), stack[:, self._hier.level(k)].astype(np.int32))
        elif inference == "fast":
            data["sample_seating"] = ("sample", np.zeros(len(keys), dtype=np.int64))
            for k in range(1, self.order + 1):
                data[f"tables_o{k}"] = (("seating", f"ngram_o{k}"), kept["seating"][None, self._hier.level(k)])
        ds = xr.Dataset(data, coords={"sample": np.arange(len(keys))})
        ds.attrs["samples_per_chain"] = int(per)
        return ds

    def _sample_pymc(self, state: SeatingState, sampler: dict, retain: int):
        import pymc as pm
        import pytensor.tensor as pt

        from bayeslm.ngram.pitman_yor.step import HyperLogpOp, SeatingStep

        n = self.order
        with pm.Model(coords={"order": np.arange(1, n + 1)}) as model:
            free = []
            if self.fixed_discount_ is None:
                d = self.model_config["discount"].create_variable("discount", dims="order")
                free.append(d)
            else:
                d = pt.constant(self.fixed_discount_)
            if self.fixed_strength_ is None:
                s = self.model_config["strength_plus_discount"].create_variable("strength_plus_discount", dims="order")
                free.append(s)
                theta = pm.Deterministic("strength", s - d, dims="order")
            else:
                theta = pt.constant(self.fixed_strength_)
            pm.Potential("seating_likelihood", HyperLogpOp(state)(d, theta))
        value_vars = [model.rvs_to_values[v] for v in free]
        # the seating step reads (d, theta) of the current point: RVs replaced by their values
        outs = model.replace_rvs_by_values([pt.as_tensor_variable(d), pt.as_tensor_variable(theta)])
        hyper_fn = model.compile_fn(outs, inputs=value_vars, on_unused_input="ignore", point_fn=True)
        draws = int(sampler.get("draws", 1000))
        d0, theta0 = self._initial_values()
        if not state.gibbs and self.fixed_discount_ is None and self.fixed_strength_ is None:
            state.tabulate(d0)  # a fixed target: NUTS reads checked tables near the mode, and starts there
            found = np.isfinite(state.modes).all(axis=0)
            d0, theta0 = np.where(found, state.modes[0], d0), np.where(found, state.modes[1], theta0)
        init = {}
        if self.fixed_discount_ is None:
            init["discount"] = d0
        if self.fixed_strength_ is None:
            init["strength_plus_discount"] = theta0 + (d0 if self.fixed_discount_ is None else self.fixed_discount_)
        with model:
            if self._hyper_step() == "nuts":
                steps = [pm.NUTS(vars=value_vars, target_accept=float(sampler.get("target_accept", 0.9)),
                                 **self._tabulated_potential(state))]
            else:
                steps = [pm.Slice(vars=value_vars)]
            if state.gibbs:
                steps.insert(0, SeatingStep(value_vars, state, hyper_fn, thin=max(draws // retain, 1), retain=retain))
            idata = pm.sample(**pm_sample_kwargs(sampler, nuts=False), step=steps, initvals=init)
        kept = {}
        stats = idata["sample_stats"]
        if "table_counts" in stats:
            values = stats["table_counts"].values
            for c in range(values.shape[0]):
                for i in range(values.shape[1]):
                    v = values[c, i]
                    if isinstance(v, np.ndarray):
                        kept[(c, i)] = v
            idata.sample_stats = stats.drop_vars("table_counts")
        if state.gibbs and not kept:
            raise BayesLMError("the sampler returned no table counts (draws too few?)")
        return idata, kept

    def _tabulated_potential(self, state: SeatingState) -> dict:
        """NUTS's mass matrix from the tables' Gaussians, when every order has one.

        The value variables are (logit d_1..n, log(theta + d)_1..n), the tables'
        coordinates; each order's 2 x 2 covariance at the mode starts a full-rank
        adaptation (d and theta are strongly correlated, which a diagonal one cannot follow).
        """
        from pymc.step_methods.hmc.quadpotential import QuadPotentialFullAdapt

        if state.tables is None or any(t is None for t in state.tables):
            return {}
        n = len(state.tables)
        mean, cov = np.empty(2 * n), np.zeros((2 * n, 2 * n))
        for k, table in enumerate(state.tables):
            idx = [k, n + k]
            mean[idx] = table.center
            cov[np.ix_(idx, idx)] = table.cov
        return {"potential": QuadPotentialFullAdapt(2 * n, mean, initial_cov=cov, initial_weight=10)}

    def _initial_values(self) -> tuple[np.ndarray, np.ndarray]:
        """Starting (d, theta): Kneser-Ney's discount estimate n1 / (n1 + 2 n2) per order
        (raw counts at the top, continuation counts below) and theta = 1.

        The chains' first seating is drawn with these, so starting near the posterior
        shortens the relaxation of the table counts.
        """
        d0 = np.empty(self.order)
        for k in range(1, self.order + 1):
            oc = self.counts_[k]
            c = oc.ngram_count if k == self.order else oc.continuation
            n1, n2 = np.count_nonzero(c == 1), np.count_nonzero(c == 2)
            d0[k - 1] = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
        return np.clip(d0, 0.5, 0.95), np.ones(self.order)

    def _hyper_step(self) -> str:
        """Slice for the Gibbs sampler (the conditional moves with the seating every draw, and
        NUTS's adapted mass matrix then lags behind it), NUTS for ``ikn`` (a fixed target)."""
        if self.options["hyper_step"] is not None:
            return self.options["hyper_step"]
        return "slice" if self.options["inference"] == "gibbs" else "nuts"

    def _sample_fixed(self, state: SeatingState, chains: int, draws: int, tune: int, retain: int, seed):
        """Every hyperparameter fixed: sweeps only (no PyMC variable to sample)."""
        import arviz as az

        d, th = self.fixed_discount_, self.fixed_strength_
        rng = np.random.default_rng(seed)
        kept = {}
        thin = max(draws // retain, 1)
        tables = np.zeros((chains, draws))
        for c in range(chains):
            state.initialise(d, th, int(rng.integers(2**31 - 1)))
            for i in range(tune + draws):
                state.sweep(d, th, int(rng.integers(2**31 - 1)))
                j = i - tune
                if j >= 0:
                    tables[c, j] = state.total_tables()
                    if (j + 1) % thin == 0 and len([k for k in kept if k[0] == c]) < retain and state.gibbs:
                        kept[(c, j)] = state.table_counts()
        post = {"discount": np.broadcast_to(d, (chains, draws, self.order)).copy(),
                "strength": np.broadcast_to(th, (chains, draws, self.order)).copy()}
        idata = az.from_dict(posterior=post, sample_stats={"tables": tables},
                             coords={"order": np.arange(1, self.order + 1)},
                             dims={"discount": ["order"], "strength": ["order"]})
        return idata, kept

    def _sample_fast(self, state: SeatingState, chains: int, draws: int, seed):
        """The fast mode: one seating, then chains x draws independent draws of (d, theta) given it.

        The customers are seated once with the starting values (``_initial_values``; a fixed
        value where one is given); each order's posterior given that seating is drawn from
        on a grid (:class:`~bayeslm.ngram.pitman_yor.fast.HyperPosterior`).
        """
        import arviz as az

        from bayeslm.ngram.pitman_yor.fast import HyperPosterior, prior_log_density, seating_statistics

        rng = np.random.default_rng(seed)
        d0, theta0 = self._initial_values()
        fixed_d, fixed_t = self.fixed_discount_, self.fixed_strength_
        d_seat = d0 if fixed_d is None else fixed_d
        theta_seat = theta0 if fixed_t is None else fixed_t
        state.initialise(d_seat, theta_seat, int(rng.integers(2**31 - 1)))
        stats = seating_statistics(state)
        log_prior_d = prior_log_density(self.model_config["discount"]) if fixed_d is None else None
        log_prior_s = prior_log_density(self.model_config["strength_plus_discount"]) if fixed_t is None else None
        d, theta = np.empty((chains * draws, self.order)), np.empty((chains * draws, self.order))
        for k in range(self.order):
            posterior = HyperPosterior(stats[k], log_prior_d, log_prior_s,
                                       None if fixed_d is None else float(fixed_d[k]),
                                       None if fixed_t is None else float(fixed_t[k]))
            d[:, k], theta[:, k] = posterior.draw(chains * draws, rng, float(d_seat[k]), float(theta_seat[k]))
        shape = (chains, draws, self.order)
        post = {"discount": d.reshape(shape), "strength": theta.reshape(shape)}
        if fixed_t is None:
            post["strength_plus_discount"] = (theta + d).reshape(shape)
        idata = az.from_dict(posterior=post, sample_stats={"tables": np.full((chains, draws), state.total_tables())},
                             coords={"order": np.arange(1, self.order + 1)}, dims={name: ["order"] for name in post})
        return idata, {"seating": state.table_counts()}

    def _store_mi_threshold(self, corpus: Corpus, source: str, quantile: float = 0.9, max_sentences: int = 30) -> None:
        # entropies are dense per distinct context (V per row, per order and sample: 0.05-0.1 s a
        # sentence on Shakespeare), so the percentile is read off a smaller sample than the base's
        super()._store_mi_threshold(corpus, source, quantile=quantile, max_sentences=max_sentences)

    def adapt(self, domain: Corpus, valid: Corpus | None = None, **kwargs):
        """A model of ``domain`` text whose restaurants draw from this model's (Wood and Teh's graphical
        Pitman-Yor hierarchy); this model is not refitted and not changed (docs/domain.md).

        Each domain restaurant u of order k draws from ``PY(d_k, theta_k, lam_k G_u + (1 - lam_k) D_u')``:
        this model's restaurant at u mixed with the domain's parent, lam_k (``general_weight``)
        learned per order with (d_k, theta_k) from the domain customers' seating.

        Parameters
        ----------
        domain : Corpus
            Domain text, tokenised with this model's tokenizer (``lm.read(paths)``).
        valid : Corpus, optional
            Domain validation text: the generator's flag threshold.
        **kwargs
            ``model_config`` (priors), ``options`` (``rounds``, ``sweeps``, ``retain``, ``entropy_draws``)
            and sampler settings for this call, as :meth:`fit`'s
            (:meth:`bayeslm.ngram.pitman_yor.adapt.AdaptedPitmanYorLM.from_general`).

        Returns
        -------
        AdaptedPitmanYorLM
            A new fitted model.
        """
        self._check_fitted("adapt")
        return family_class("pitman-yor-adapted").from_general(self, domain, valid, **kwargs)

    # -- posterior samples ------------------------------------------------------------------
    def _draw_shape(self) -> tuple[int, int]:
        tc = self.idata["table_counts"]
        chains = int(np.unique(tc["sample_chain"].values).size)
        return chains, int(tc.sizes["sample"]) // chains

    def _sample_params(self) -> tuple[np.ndarray, np.ndarray]:
        """(d, theta) of every retained sample: arrays (samples, order)."""
        if self._samples is None:
            post, tc = self.idata["posterior"], self.idata["table_counts"]
            ch, dr = tc["sample_chain"].values, tc["sample_draw"].values
            d = post["discount"].transpose("chain", "draw", "order").values[ch, dr]
            th = post["strength"].transpose("chain", "draw", "order").values[ch, dr]
            self._samples = (np.asarray(d, float), np.asarray(th, float), {})
        return self._samples[0], self._samples[1]

    def _hierarchy(self) -> Hierarchy:
        if self._hier is None:
            self._hier = Hierarchy(self.counts_)
        return self._hier

    def _seating_key(self, s: int) -> int:
        """The stored seating of sample s: its own (gibbs), the one its draw was made with
        (fast), none (ikn: 0, one table per type)."""
        inference = self.options["inference"]
        if inference == "fast":
            return int(self.idata["table_counts"]["sample_seating"].values[s])
        return s if inference == "gibbs" else 0

    def _seating(self, s: int):
        """(customers, tables) per pair and (customers, tables) per restaurant of sample s."""
        self._sample_params()
        cache = self._samples[2]
        inference, tc = self.options["inference"], self.idata["table_counts"]
        key = self._seating_key(s)
        if key not in cache:
            h = self._hierarchy()
            if inference == "ikn":
                tables = h.one_table()
            else:  # the sample's seating (gibbs), or the seating the sample's draw was made with (fast)
                tables = np.concatenate([tc[f"tables_o{k}"].values[key] for k in range(1, self.order + 1)]).astype(np.int64)
            cust = h.customers(tables)
            C, T = h.totals(cust, tables)
            if len(cache) >= 8:
                cache.pop(next(iter(cache)))
            cache[key] = (cust.astype(np.float64), tables.astype(np.float64), C.astype(np.float64), T.astype(np.float64))
        return cache[key]

    @property
    def n_samples(self) -> int:
        return int(self.idata["table_counts"].sizes["sample"])

    def _select(self, draws) -> np.ndarray:
        return draw_indices(self.n_samples, draws)

    # -- per-position probabilities -----------------------------------------------------------
    def _position_index(self, corpus: Corpus):
        """Global context and pair ids of every scored position at every order, and the tokens."""
        chain, tokens = self._position_chain(corpus)
        return PositionIndex(*self._chain_index(chain, tokens)), tokens

    def _chain_index(self, chain, tokens):
        h = self._hierarchy()
        gctx, gpair = [], []
        local = None
        for k in range(1, self.order + 1):
            ctx = chain[k - 1]
            # a pair is seen only if the pair one order below is (the Hierarchy's parent): only those are looked up
            local = self.counts_[k].lookup(ctx if local is None else np.where(local >= 0, ctx, -1), tokens)
            gctx.append(np.where(ctx >= 0, ctx + h.co[k - 1], -1))
            gpair.append(np.where(local >= 0, local + h.po[k - 1], -1))
        return gctx, gpair

    def _gathered(self, s: int, index) -> list[tuple[np.ndarray, ...]]:
        """Per order, at every position: (context seen and with customers, c_uw, t_uw, c_u., t_u.)
        under sample s's seating (:func:`gather_seating`)."""
        return gather_seating(self._seating(s), index)

    def _probs(self, s: int, index, tokens, gathered=None) -> np.ndarray:
        """P_n(token | context) of sample s at every position (``gathered``: :meth:`_gathered`
        of a sample with the same seating, if at hand)."""
        d, th = self._sample_params()
        p = self._base_times(1.0, tokens)
        for k, (live, c, t, Cu, Tu) in enumerate(gathered or self._gathered(s, index), start=1):
            dk, tk = d[s, k - 1], th[s, k - 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                new = restaurant_rule(c, t, Cu, Tu, dk, tk, p)
            p = np.where(live, new, p)
        return p

    def _sample_probs(self, index, tokens) -> Iterator[np.ndarray]:
        """:meth:`_probs` of every retained sample in turn; samples that share a seating (the
        fast mode's) share its gathered counts."""
        gathered: dict = {}
        for s in range(self.n_samples):
            key = self._seating_key(s)
            if key not in gathered:
                gathered = {key: self._gathered(s, index)}
            yield self._probs(s, index, tokens, gathered[key])

    def _ordered_probs(self, index, tokens) -> tuple[np.ndarray | slice, Iterator[np.ndarray]]:
        """Every retained sample's P_n(token | context) at the positions, and where they go:
        ``(where, probs)``, ``values[where] = p`` puts a sample's ``p`` in position order.

        The family's own index (:class:`~bayeslm.ngram.pitman_yor.scoring.PositionIndex`) is
        scored seen-first (:class:`~bayeslm.ngram.pitman_yor.scoring.SeenFirst`); any other
        (a subclass' own) through :meth:`_sample_probs`, in position order.
        """
        if not isinstance(index, PositionIndex):
            return slice(None), self._sample_probs(index, tokens)
        V = len(self.vocab_)
        unigram_pairs = self.counts_[1].lookup(np.zeros(V, dtype=np.int64), np.arange(V))  # order 1's pairs are first
        seen = SeenFirst(index, tokens, unigram_pairs)
        base = self._base_times(1.0, np.arange(V))
        d, th = self._sample_params()

        def probs() -> Iterator[np.ndarray]:
            key = levels = None
            for s in range(self.n_samples):
                if self._seating_key(s) != key:  # samples that share a seating share its counts
                    key, levels = self._seating_key(s), seen.levels(self._seating(s))
                yield seen.probs(base, levels, d[s], th[s])

        return seen.order, probs()

    def _log_prob_draws(self, corpus: Corpus, chunk: int = 2048) -> Iterator[tuple[slice, np.ndarray]]:
        index, tokens = self._position_index(corpus)
        where, probs = self._ordered_probs(index, tokens)
        out = np.empty((self.n_samples, tokens.size))
        for s, p in enumerate(probs):
            out[s, where] = np.log(p)
        out += self._spelling_log_ratio(corpus)
        for start in range(0, tokens.size, chunk):
            sl = slice(start, min(start + chunk, tokens.size))
            yield sl, out[:, sl]

    def predictive_log_prob(self, data) -> np.ndarray:
        """log p(token | context) under the posterior predictive (mean over retained samples)."""
        corpus = self.encode(data)
        index, tokens = self._position_index(corpus)
        where, probs = self._ordered_probs(index, tokens)
        total = np.zeros(tokens.size)
        for p in probs:
            total += p
        mean = np.empty(tokens.size)
        mean[where] = total / self.n_samples
        return np.log(mean) + self._spelling_log_ratio(corpus)

    # -- dense next-token distributions --------------------------------------------------------
    def _dense(self, s: int, chain) -> tuple[np.ndarray, np.ndarray]:
        """P_n(. | u) of sample s, shape (m, V), and each row's Dirichlet mass A (see docs)."""
        d, th = self._sample_params()
        m, V = chain[0].size, self.counts_.vocab_size
        p = np.repeat(self._base_times(1.0, np.arange(V))[None, :], m, axis=0)
        mass = np.zeros(m)
        for k, (dense_c, dense_t, Cu, Tu) in enumerate(dense_seating(self._hierarchy(), self._seating(s), chain), start=1):
            dk, tk = d[s, k - 1], th[s, k - 1]
            live = Cu > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                new = (dense_c - dk * dense_t + (tk + dk * Tu)[:, None] * p) / (tk + Cu)[:, None]
            p = np.where(live[:, None], new, p)
            if k == self.order:
                mass = np.where(live, Cu + tk, (tk + dk) / (1.0 - dk))
        return p, mass

    def next_token_probs(self, contexts, draws=None) -> np.ndarray:
        """p(w | u) per retained sample for every token: shape (sample, context, token)."""
        self._check_fitted("next_token_probs")
        chain = self._context_chain(contexts)
        return np.stack([self._dense(int(s), chain)[0] for s in self._select(draws)])

    def predictive_probs(self, contexts) -> np.ndarray:
        self._check_fitted("predictive_probs")
        chain = self._context_chain(contexts)
        total = None
        for s in range(self.n_samples):
            p = self._dense(s, chain)[0]
            total = p if total is None else total + p
        return total / self.n_samples

    def dirichlet_parameters(self, contexts, draws=None) -> np.ndarray:
        """alpha_w = A P_s(w | u) of the Dirichlet approximation of G_u's posterior per sample.

        A = c_u. + theta for a seen context (exact for d = 0); for an unseen one the mass
        whose Dirichlet has the Pitman-Yor prior's variance, (theta + d) / (1 - d).
        """
        self._check_fitted("dirichlet_parameters")
        chain = self._context_chain(contexts)
        out = []
        for s in self._select(draws):
            p, mass = self._dense(int(s), chain)
            out.append(p * mass[:, None])
        return np.stack(out)

    def _next_tokens(self, history: np.ndarray, draw: int, rng: np.random.Generator) -> np.ndarray:
        """One token per row from P_n(. | u) of retained sample ``draw``, read off the seating.

        The predictive is a mixture: at order k, with probability
        (c_u. - d t_u.) / (theta + c_u.) the token is one served in restaurant u, chosen in
        proportion to c_uw - d t_uw, else it comes from the order below (a restaurant
        without customers passes it on); below order 1 it is the base measure
        (:meth:`base_probs`). No dense distribution is built.
        """
        h = self._hierarchy()
        d, th = (x[draw] for x in self._sample_params())
        cust, tabs, C, T = self._seating(draw)
        chain = self._context_chain(history)
        out = np.full(history.shape[0], -1, dtype=np.int64)
        for k in range(self.order, 0, -1):
            oc, ctx = self.counts_[k], chain[k - 1]
            rows = np.flatnonzero((out < 0) & (ctx >= 0))
            rows = rows[C[ctx[rows] + h.co[k - 1]] > 0]
            local = ctx[rows]
            Cu, Tu = C[local + h.co[k - 1]], T[local + h.co[k - 1]]
            served = Cu - d[k - 1] * Tu
            take = rng.random(rows.size) * (th[k - 1] + Cu) < served
            rows, local, served = rows[take], local[take], served[take]
            level = h.level(k)
            cum = np.cumsum(cust[level] - d[k - 1] * tabs[level])  # over the order's pairs, contexts contiguous
            first = oc.context_start[local]
            before = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0.0)
            pick = np.searchsorted(cum, before + rng.random(rows.size) * served, side="right")
            out[rows] = oc.ngram_token[np.clip(pick, first, first + oc.context_types[local] - 1)]
        rest = np.flatnonzero(out < 0)
        out[rest] = self._sample_base(rest.size, rng)
        return out

    # -- entropies -------------------------------------------------------------------------------
    def _entropy_samples(self) -> np.ndarray:
        return self._select(int(self.options["entropy_draws"]))

    def _context_entropies(self, chain, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        m = chain[0].size
        total, aleatoric = np.empty(m), np.empty(m)
        samples = self._entropy_samples()
        for a in range(0, m, chunk):
            sub = [c[a:a + chunk] for c in chain]
            mix, exp_h = 0.0, 0.0
            for s in samples:
                p, mass = self._dense(int(s), sub)
                mix = mix + p
                A = np.maximum(mass, 1e-300)[:, None]
                alpha = p * A
                exp_h = exp_h + digamma(A[:, 0] + 1.0) - (alpha * digamma(alpha + 1.0)).sum(axis=1) / A[:, 0]
            mix = mix / samples.size
            total[a:a + chunk] = -xlogy(mix, mix).sum(axis=1)
            aleatoric[a:a + chunk] = exp_h / samples.size
        return total, aleatoric

    # -- the interpolation, for ARPA export ----------------------------------------------------
    def interpolation(self, sample: int | None = None) -> list[np.ndarray]:
        """P_k(w | u) at every seen n-gram of every order k, aligned with ``counts_[k]``.

        With ``sample`` (a retained sample index) that sample's predictive, which the ARPA
        file reproduces exactly; without, the mean over the retained samples (the
        exporter's normalised back-off weights then give unseen n-grams the mean model's
        shape from the order below).
        """
        self._check_fitted("interpolation")
        h = self._hierarchy()
        samples = range(self.n_samples) if sample is None else [int(sample)]
        probs = [np.zeros(self.counts_[k].n_ngrams) for k in range(1, self.order + 1)]
        d, th = self._sample_params()
        for s in samples:
            cust, tabs, C, T = self._seating(s)
            lower = None
            for k in range(1, self.order + 1):
                oc, sl = self.counts_[k], h.level(k)
                if k == 1:
                    parent = self._base_times(1.0, oc.ngram_token)
                else:
                    idx = self.counts_[k - 1].lookup(oc.context_parent[oc.ngram_context], oc.ngram_token)
                    parent = lower[idx]
                Cu = C[h.co[k - 1]:h.co[k]]
                Tu = T[h.co[k - 1]:h.co[k]]
                dk, tk = d[s, k - 1], th[s, k - 1]
                ctx = oc.ngram_context
                p = (cust[sl] - dk * tabs[sl] + (tk + dk * Tu[ctx]) * parent) / (tk + Cu[ctx])
                probs[k - 1] += p
                lower = p
        return [p / len(samples) for p in probs]

    # -- files ---------------------------------------------------------------------------------
    def _restore_family(self, arrays: dict) -> None:
        self._restore_counts(arrays)
        if "table_counts" not in self.idata.groups():
            raise ModelFileError("model.nc has no table_counts group (not a Pitman-Yor model?)")
        self._hier = None
        self._samples = None
