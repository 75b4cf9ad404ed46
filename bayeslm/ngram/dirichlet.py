"""``DirichletLM``: Dirichlet-smoothed n-gram language models, written as PyMC models.

``p(. | u) ~ Dirichlet(a_k m_u)`` for a context u of order k, the base ``m_u`` being the
fitted order k - 1 predictive held at its mode (stagewise empirical Bayes). p(. | u) is
integrated out: each order's likelihood is the Dirichlet-multinomial evidence of its
sparse counts (:class:`~bayeslm.ngram.evidence.OrderEvidence`), and one NUTS run samples every order's
concentration. A posterior draw is a draw of the concentrations; uncertainty of p(. | u)
is in closed form. The model, its fitting and figures: docs/dirichlet.md.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Iterator, Literal

import numpy as np
from pydantic import Field, field_validator
from scipy.special import digamma, gammaln, xlogy

from bayeslm.core.draws import draw_indices
from bayeslm.core.protocol import Updatable
from bayeslm.core.sampling import pm_sample_kwargs, prepare_pytensor
from bayeslm.core.settings import Invalid, Rule
from bayeslm.core.storage import family_class
from bayeslm.counting.counts import count
from bayeslm.exceptions import BayesLMError, ConfigError, ModelFileError
from bayeslm.ngram.backoff import Backoff
from bayeslm.ngram.base import NgramLM, NgramOptions
from bayeslm.ngram.evidence import JointEvidence as _JointEvidence
from bayeslm.ngram.evidence import OrderEvidence
from bayeslm.ngram.evidence import MODE_GRID, concentration_mode, fixed_base
from bayeslm.text.corpus import Corpus

__all__ = ["DirichletLM", "DirichletOptions", "dirichlet_multinomial_evidence"]


def _g(y):
    """y psi(y + 1), 0 at 0: the summand of a Dirichlet's expected entropy."""
    return y * digamma(y + 1.0)


def _h(y):
    """-y log y, 0 at 0."""
    return -xlogy(y, y)


def dirichlet_multinomial_evidence(counts: np.ndarray, alpha: np.ndarray) -> float:
    """log p(sequence) of a Dirichlet-multinomial with parameters ``alpha``: reference formula.

    ``counts`` has shape (contexts, V) (dense; for tests and small examples).
    """
    counts, alpha = np.asarray(counts, float), np.asarray(alpha, float)
    A, N = alpha.sum(axis=-1), counts.sum(axis=-1)
    return float((gammaln(A) - gammaln(A + N) + (gammaln(alpha + counts) - gammaln(alpha)).sum(axis=-1)).sum())


class DirichletOptions(NgramOptions):
    """The ``[model]`` options of :class:`DirichletLM`."""

    buckets: Annotated[Literal["auto"] | list[int], Rule("'auto' or increasing whole numbers >= 3")] = Field(
        [], description="context-total boundaries of the concentration buckets, or \"auto\" (chosen on --valid); "
                        "[]: one concentration per order")

    @field_validator("buckets", mode="before")
    @classmethod
    def _increasing_from_3(cls, buckets):
        if buckets == "auto":
            return buckets
        whole_numbers = isinstance(buckets, list) and all(type(b) is int for b in buckets)
        if whole_numbers and all(b >= 3 for b in buckets) and buckets == sorted(set(buckets)):
            return buckets
        raise Invalid("a context seen once says nothing about a: its evidence a m / a does not depend on a, so the "
                      "first bucket must also hold contexts seen twice" if whole_numbers and min(buckets) < 3 else "")


class DirichletLM(NgramLM, Updatable):
    """Dirichlet-smoothed n-gram language model with a posterior over concentrations.

    Parameters
    ----------
    order : int
        3 for a trigram model.
    model_config : dict
        ``{"concentration": Prior(...)}``: prior of each order's concentration ``a_k``
        (default ``LogNormal(mu=2, sigma=3)``, weak across five decades).
    entropy_draws : int
        Posterior draws used for the expected (aleatoric) entropy per position.
    buckets : list of int or "auto"
        Context-frequency buckets: boundaries on context totals, e.g. ``[3, 5, 20]`` gives
        each order one concentration for contexts seen 1-2, 3-4, 5-19 and 20+ times
        (dims ``order``, ``bucket``; the first boundary is at least 3 because a context
        seen once carries no information about its concentration). ``"auto"`` chooses the boundaries on the validation
        text among :attr:`BUCKET_CANDIDATES` (without validation text: none). Default
        ``[]``: one concentration per order.
    Other parameters as :class:`bayeslm.core.base.BayesianLM`.

    The buckets in use after ``fit`` are ``buckets_`` (the chosen ones for ``"auto"``; the
    configuration keeps ``"auto"``).

    Examples
    --------
    >>> train, test = demo_corpus().split(0.9, random_seed=0)       # doctest: +SKIP
    >>> lm = DirichletLM(order=3)
    >>> idata = lm.fit(train, random_seed=1)
    >>> lm.evaluate(test).predictive_perplexity
    """

    family = "dirichlet"
    default_model_config = {"concentration": {"dist": "LogNormal", "kwargs": {"mu": 2.0, "sigma": 3.0}}}
    model_options = DirichletOptions
    #: bucket boundaries tried by ``buckets = "auto"`` (chosen by validation perplexity)
    BUCKET_CANDIDATES = ([], [3, 5, 10, 20], [3, 5, 10, 30, 100], [3, 4, 6, 10, 20, 50, 200])

    def __init__(self, order: int | None = None, **kwargs):
        super().__init__(order, **kwargs)
        self.buckets_: list[int] | None = None  # boundaries in use (chosen by "auto" on validation text)
        self.plugin_: np.ndarray | None = None  # modes fixing the bases: (order,) or (order, bucket)
        self.bucket_selection_: list[dict] | None = None  # validation perplexity of each candidate
        self._model = None
        self._draws_cache = None
        self._mixture_cache = None

    #: the posterior variable whose draws scoring reads (an adapted model's powers: ``power``)
    draws_var = "concentration"

    @property
    def diagnostic_var_names(self) -> list[str]:
        """``concentration``: one per order (and bucket); the free cells of a bucketed model repeat it."""
        return [self.draws_var]

    # -- fitting -------------------------------------------------------------------------
    def _base_of(self, k: int, plugin: np.ndarray) -> np.ndarray:
        """Fixed base m_uw of order k at every order-k n-gram (u, w) with c_uw > 0."""
        if k == 1:
            return self._base_times(1.0, self.counts_[1].ngram_token)
        return fixed_base(self._backoff_of(plugin), k)

    def _prior_logp(self):
        """Compiled log density of the concentration prior (numpy in, numpy out)."""
        import pymc as pm
        import pytensor
        import pytensor.tensor as pt

        value = pt.dvector("a")
        dist = self.model_config["concentration"]._pymc_class().dist(**self.model_config["concentration"].parameters)
        return pytensor.function([value], pm.logp(dist, value))

    #: the range of log a searched for a mode (an adapted model's powers reach further down)
    MODE_GRID = MODE_GRID

    def _mode(self, evidence: OrderEvidence, prior_logp) -> float:
        """Mode of the concentration under prior x evidence (:func:`~bayeslm.ngram.evidence.concentration_mode`
        over :attr:`MODE_GRID`)."""
        return concentration_mode(evidence, prior_logp, self.MODE_GRID)

    @property
    def bounds(self) -> np.ndarray:
        """Bucket boundaries on context totals in use (empty: one concentration per order).

        ``buckets_`` once fitted, else the configured ones (none for ``"auto"``).
        """
        buckets = self.buckets_ if self.buckets_ is not None else self.options["buckets"]
        return np.asarray([] if buckets == "auto" else buckets, dtype=np.int64)

    @property
    def n_buckets(self) -> int:
        return self.bounds.size + 1

    def bucket_labels(self) -> list[str]:
        """Context totals each bucket holds, e.g. ``["1", "2-4", "5+"]``."""
        edges = [1, *self.bounds.tolist()]
        labels = [f"{lo}-{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in zip(edges[:-1], edges[1:])]
        return labels + [f"{edges[-1]}+"]

    def _plugin_matrix(self) -> np.ndarray:
        return self.plugin_.reshape(self.order, self.n_buckets)

    def _evidences(self, k: int, plugin) -> dict[int, OrderEvidence]:
        """Order k's evidence per non-empty bucket, given the bases of ``plugin``."""
        oc = self.counts_[k]
        base = self._base_of(k, plugin)
        bucket = np.searchsorted(self.bounds, oc.context_total, side="right")
        if self.n_buckets == 1:
            return {0: OrderEvidence(oc, base, **self._evidence_options(k, plugin))}
        out = {}
        for b in np.unique(bucket):
            in_b = bucket == b
            ngram_in_b = in_b[oc.ngram_context]
            stats = SimpleNamespace(context_total=oc.context_total[in_b], ngram_count=oc.ngram_count[ngram_in_b])
            out[int(b)] = OrderEvidence(stats, base[ngram_in_b])
        return out

    def _evidence_options(self, k: int, plugin) -> dict:
        """Options of order k's :class:`OrderEvidence`: none here (an adapted model's
        ``context_scale``, :mod:`bayeslm.ngram.adapt`)."""
        return {}

    def _fit_bases(self) -> dict[tuple[int, int], OrderEvidence]:
        """Modes of every (order, bucket) concentration, bottom up; sets ``plugin_``."""
        prior_logp = self._prior_logp()
        plugin = np.ones((self.order, self.n_buckets))
        evidences = {}
        for k in range(1, self.order + 1):
            for b, ev in self._evidences(k, plugin).items():
                plugin[k - 1, b] = self._mode(ev, prior_logp)
                evidences[(k, b)] = ev
            empty = [b for b in range(self.n_buckets) if (k, b) not in evidences]
            if empty:  # no contexts there (e.g. the unigram's lower buckets): never used
                filled = [b for b in range(self.n_buckets) if (k, b) in evidences]
                for b in empty:
                    plugin[k - 1, b] = plugin[k - 1, min(filled, key=lambda f: abs(f - b))]
        self.plugin_ = plugin[:, 0].copy() if self.n_buckets == 1 else plugin
        return evidences

    def build_model(self, evidences: dict | None = None):
        """The ``pm.Model`` of all orders (kept as ``.model``).

        ``concentration`` has dim ``order`` (and ``bucket`` with context-frequency buckets);
        each (order, bucket) with contexts adds its evidence as a Potential. A bucket with no
        contexts (e.g. the unigram order has one context) keeps its prior.
        """
        import pymc as pm

        if evidences is None:
            evidences = {(k, b): ev for k in range(1, self.order + 1)
                         for b, ev in self._evidences(k, self.plugin_).items()}
        coords = {"order": np.arange(1, self.order + 1)}
        dims: tuple[str, ...] = ("order",)
        if self.n_buckets > 1:
            coords["bucket"] = self.bucket_labels()
            dims = ("order", "bucket")
        prior = self.model_config["concentration"]
        with pm.Model(coords=coords) as model:
            cells = sorted(evidences)
            joint = _JointEvidence([evidences[cell] for cell in cells])
            if self.n_buckets == 1:
                a = prior.create_variable("concentration", dims=dims)
                pm.Potential("evidence", joint.logp_tensor(a[[k - 1 for k, _ in cells]]))
            else:
                labels = self.bucket_labels()
                model.add_coord("cell", [f"{k}:{labels[b]}" for k, b in cells])
                free = prior.create_variable("concentration_cell", dims="cell")
                pm.Potential("evidence", joint.logp_tensor(free))
                pm.Deterministic("concentration", free[self._cell_index(cells)], dims=dims)
        self._model = model
        return model

    def _initvals(self, evidences) -> dict:
        if self.n_buckets == 1:
            return {"concentration": self.plugin_}
        return {"concentration_cell": np.array([self.plugin_[k - 1, b] for k, b in sorted(evidences)])}

    def _cell_index(self, cells: list[tuple[int, int]]) -> np.ndarray:
        """(order, bucket) -> index into the free cells; an empty bucket repeats its nearest neighbour."""
        index = np.zeros((self.order, self.n_buckets), dtype=np.int64)
        for k in range(1, self.order + 1):
            own = [b for kk, b in cells if kk == k]
            for b in range(self.n_buckets):
                index[k - 1, b] = cells.index((k, min(own, key=lambda f: abs(f - b))))
        return index

    @property
    def model(self):
        """The fitted ``pm.Model`` (all orders; each order's evidence is its own Potential)."""
        self._check_fitted("model")
        if self._model is None:
            self.build_model()
        return self._model

    def order_model(self, k: int):
        """A ``pm.Model`` of order ``k`` alone (its concentration(s), prior and evidence)."""
        import pymc as pm

        self._check_fitted("order_model")
        evidences = self._evidences(k, self.plugin_)
        coords = {"order": [k]}
        if self.n_buckets > 1:
            coords["bucket"] = self.bucket_labels()
        with pm.Model(coords=coords) as model:
            dims = ("order", "bucket") if self.n_buckets > 1 else ("order",)
            a = self.model_config["concentration"].create_variable("concentration", dims=dims)
            for b, ev in evidences.items():
                a_b = a[0, b] if self.n_buckets > 1 else a[0]
                pm.Potential(f"evidence_order_{k}" + (f"_bucket_{b}" if self.n_buckets > 1 else ""), ev.logp_tensor(a_b))
        return model

    def log_evidence(self, k: int, concentration, bucket: int = 0) -> np.ndarray:
        """log p(order-k data | a_k, fixed base) for concentration value(s) (nats).

        With context-frequency buckets, the evidence of the contexts in ``bucket``.
        """
        self._check_fitted("log_evidence")
        evidences = self._evidences(k, self.plugin_)
        if bucket not in evidences:
            raise BayesLMError(f"order {k} has no contexts in bucket {bucket}")
        return evidences[bucket].logp(concentration)

    def _fit(self, train: Corpus, valid: Corpus | None, sampler: dict):
        self.counts_ = self._count_training(train, sampler)
        if self.options["buckets"] == "auto":
            self._choose_buckets(valid)
        else:
            self.buckets_ = list(self.options["buckets"])
        return self._fit_counts(sampler)

    def _choose_buckets(self, valid: Corpus | None) -> None:
        """Pick bucket boundaries by validation perplexity at the concentrations' modes (sets ``buckets_``)."""
        if valid is None:  # nothing to choose with: one concentration per order, and say so
            self.buckets_ = []
            self.bucket_selection_ = [{"buckets": [], "valid_perplexity": None,
                                       "note": "no validation text: one concentration per order"}]
            return
        results = []
        for candidate in self.BUCKET_CANDIDATES:
            self.buckets_ = list(candidate)
            self._fit_bases()
            chain, tokens, _, _, _ = self._position_stats(valid)
            backoff = self._backoff_of(self.plugin_)
            log_p = np.log(backoff.prob(chain, tokens, self.order))
            results.append((float(np.exp(-log_p.mean())), list(candidate)))
        best = min(results)
        self.buckets_ = best[1]
        self.bucket_selection_ = [{"buckets": b, "valid_perplexity": p} for p, b in results]

    def _fit_counts(self, sampler: dict):
        """Fix the bases, then sample every order's concentration (:meth:`_sample_concentrations`)."""
        import xarray as xr

        from bayeslm.core.idata import add_group

        evidences = self._fit_bases()
        idata = self._sample_concentrations(evidences, sampler)
        order_dims = ("order", "bucket") if self.n_buckets > 1 else ("order",)
        coords = {"order": np.arange(1, self.order + 1)}
        if self.n_buckets > 1:
            coords["bucket"] = self.bucket_labels()
        bucket_contexts = np.zeros((self.order, self.n_buckets), dtype=np.int64)
        singletons = np.zeros(self.order, dtype=np.int64)
        for (k, b), ev in evidences.items():
            bucket_contexts[k - 1, b] = int(ev.total_mult.sum())
            singletons[k - 1] += ev.n_single
        constant = xr.Dataset(
            {
                "base_concentration": (order_dims, self.plugin_),
                "contexts": ("order", [oc.n_contexts for oc in self.counts_.orders]),
                "ngrams": ("order", [oc.n_ngrams for oc in self.counts_.orders]),
                "singletons": ("order", singletons),
                **({"bucket_contexts": (order_dims, bucket_contexts)} if self.n_buckets > 1 else {}),
            },
            coords=coords,
        )
        add_group(idata, "constant_data", constant)
        if self.bucket_selection_ is not None:
            import json

            idata["posterior"].attrs["bucket_selection"] = json.dumps(self.bucket_selection_)
        self._draws_cache = None
        self._mixture_cache = None
        return idata

    def _sample_concentrations(self, evidences: dict, sampler: dict):
        """Every (order, bucket) concentration in one NUTS run, each evidence tabulated at its mode."""
        import pymc as pm

        modes = self._plugin_matrix()
        for (k, b), ev in evidences.items():
            ev.tabulate(modes[k - 1, b])  # NUTS stays near the mode: a checked table there
        model = self.build_model(evidences)
        with model:
            return pm.sample(**pm_sample_kwargs(sampler), initvals=self._initvals(evidences))

    def update(self, corpus: Corpus, **sampler_kwargs):
        """Add text to the counts and refit the concentrations; returns the new InferenceData.

        The vocabulary stays fixed (new words count as ``<unk>``), so the result equals a
        fit on the concatenated corpus with this vocabulary.
        """
        import time

        self._check_fitted("update")
        prepare_pytensor()
        self._sampler_settings(sampler_kwargs)  # refuses unknown settings
        sampler = {**self.fit_sampler_settings, **sampler_kwargs}  # the last fit's, with this call's overrides
        start = time.perf_counter()
        new = self.encode(corpus)
        attrs = dict(self.idata["posterior"].attrs)
        self.counts_ = self.counts_.merge(count(new, self.order))
        self.idata = self._fit_counts(sampler)
        self.fit_seconds_ = time.perf_counter() - start
        self._set_attrs(
            training_tokens=int(attrs.get("training_tokens", 0)) + new.n_tokens,
            training_sentences=int(attrs.get("training_sentences", 0)) + new.n_sentences,
            sampler=sampler,
        )
        for key in ("mi_threshold_nats", "mi_threshold_source"):
            if key in attrs:
                self.idata["posterior"].attrs[key] = attrs[key]
        return self.idata

    def adapt(self, domain: Corpus, valid: Corpus | None = None, **kwargs):
        """A model of ``domain`` text whose prior is this model's posterior, raised to a power per order.

        At every order-k context u the domain's Dirichlet is this model's posterior Dirichlet
        at u (its back-off the adapted order k - 1) to the power ``lam_k``: how far the domain
        departs, learned by NUTS; this model is not refitted and not changed (docs/domain.md).

        Parameters
        ----------
        domain : Corpus
            Domain text, tokenised with this model's tokenizer (``lm.read(paths)``).
        valid : Corpus, optional
            Domain validation text: the powers' likelihood is then its predictive
            probability given the domain text (else the domain text's own evidence); and the
            generator's flag threshold.
        **kwargs
            ``model_config`` (the powers' prior), ``options``
            (``entropy_draws``) and sampler settings for this call, as :meth:`fit`'s
            (:meth:`bayeslm.ngram.adapt.AdaptedDirichletLM.from_general`).

        Returns
        -------
        AdaptedDirichletLM
            A new fitted model (:class:`bayeslm.ngram.adapt.AdaptedDirichletLM`).
        """
        self._check_fitted("adapt")
        return family_class("dirichlet-adapted").from_general(self, domain, valid, **kwargs)

    # -- draws ---------------------------------------------------------------------------
    @property
    def top_level(self) -> int:
        """The back-off level whose counts the top order's concentration draws smooth.

        ``order`` here; an adapted model (:mod:`bayeslm.ngram.adapt`) puts its domain counts
        one level above the general model's top order.
        """
        return self.order

    def _top_scale(self, ctx: np.ndarray) -> np.ndarray:
        """Per top-level context id (-1: unseen), the factor from the top level's (c + a m) to
        the parameters of the Dirichlet of p(. | u): 1 here (an adapted model's counts are
        scaled, :mod:`bayeslm.ngram.adapt`)."""
        return np.ones(np.shape(ctx))

    def _top_draws(self) -> np.ndarray:
        """Draws of the highest order's concentration(s), flattened chain-major: (samples, bucket)."""
        if self._draws_cache is None:
            post = self.idata["posterior"][self.draws_var].sel(order=self.order)
            dims = ("chain", "draw", "bucket") if "bucket" in post.dims else ("chain", "draw")
            values = post.transpose(*dims).values.astype(float)
            self._draws_cache = values.reshape(-1, self.n_buckets)
        return self._draws_cache

    def _top_bucket(self, total) -> np.ndarray:
        """Bucket of the highest order's contexts with these totals (0 also for unseen)."""
        return np.searchsorted(self.bounds, np.asarray(total), side="right")

    def _backoff_of(self, plugin: np.ndarray) -> Backoff:
        """The plug-in predictives at concentrations ``plugin`` over ``counts_``, down to :meth:`base_probs`."""
        base = self.base_probs() if self.open_vocabulary else None  # None: uniform, computed as it always was
        return Backoff(self.counts_, plugin, self.vocab_.bos_id, self.bounds, base=base)

    def _backoff(self) -> Backoff:
        key = (id(self.counts_), id(self.spelling_), self.plugin_.tobytes(), self.bounds.tobytes())
        if getattr(self, "_backoff_key", None) != key:
            self._backoff_obj = self._backoff_of(self.plugin_)
            self._backoff_key = key
        return self._backoff_obj

    # -- per-position statistics ---------------------------------------------------------
    def _position_stats(self, corpus: Corpus):
        """For every scored position: top-order counts c, context totals C and base m."""
        chain, tokens = self._position_chain(corpus)
        n = self.top_level
        backoff = self._backoff()
        c, total = backoff.level_stats(n, chain[n - 1], tokens)
        if n == 1:
            m = self._base_times(1.0, tokens)
        else:
            m = backoff.prob(chain, tokens, n - 1)
        return chain, tokens, c, total, m

    def _log_prob_draws(self, corpus: Corpus, chunk: int = 2048) -> Iterator[tuple[slice, np.ndarray]]:
        _, _, c, total, m = self._position_stats(corpus)
        draws, bucket = self._top_draws(), self._top_bucket(total)
        spelled = np.broadcast_to(self._spelling_log_ratio(corpus), c.shape)
        for start in range(0, c.size, chunk):
            sl = slice(start, min(start + chunk, c.size))
            a = draws[:, bucket[sl]]  # (samples, chunk)
            yield sl, np.log(c[sl] + a * m[sl]) - np.log(total[sl] + a) + spelled[sl]

    def _mixture_weights(self, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E_a[1 / (C + a)] and E_a[a / (C + a)] per position, over all draws.

        Tabulated once over the distinct context totals of the highest order (and 0 for
        unseen contexts); other totals (e.g. from dense callers) are computed directly.
        """
        total = np.asarray(total, dtype=float)
        draws = self._top_draws()
        if self._mixture_cache is None or self._mixture_cache[0] is not draws:  # tied to these draws
            values = np.unique(np.append(self._backoff().counts[self.top_level].context_total, 0)).astype(float)
            self._mixture_cache = (draws, values, *self._mixture_of(values))
        _, values, alpha, beta = self._mixture_cache
        idx = np.minimum(np.searchsorted(values, total), values.size - 1)
        if np.array_equal(values[idx], total):
            return alpha[idx], beta[idx]
        distinct, inverse = np.unique(total, return_inverse=True)
        alpha, beta = self._mixture_of(distinct)
        return alpha[inverse], beta[inverse]

    def _mixture_of(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = self._top_draws()[:, self._top_bucket(values)].T  # (distinct totals, samples)
        inv = 1.0 / (values[:, None] + a)
        return inv.mean(axis=1), (a * inv).mean(axis=1)

    def predictive_log_prob(self, data) -> np.ndarray:
        """log p(token | context), posterior predictive over the concentration draws, (position,)."""
        corpus = self.encode(data)
        _, _, c, total, m = self._position_stats(corpus)
        alpha, beta = self._mixture_weights(total)
        return np.log(c * alpha + m * beta) + self._spelling_log_ratio(corpus)

    # -- uncertainty of p(. | u) -----------------------------------------------------------
    def _entropy_draws(self) -> np.ndarray:
        """``entropy_draws`` evenly spaced samples of the top concentration(s): (k, bucket)."""
        return self._select_draws(int(self.options["entropy_draws"]))

    def _context_entropies(self, chain: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(H[predictive], E[H(p)]) per context, in closed form (nats).

        ``total`` is the entropy of the posterior-predictive next-token distribution;
        ``aleatoric`` the expected entropy of p(. | u) under its posterior,
        psi(A + 1) - sum_w (A_w / A) psi(A_w + 1) with A_w = c_uw + a m_uw, averaged over
        ``entropy_draws`` evenly spaced draws of a. Sums over the vocabulary use the sparse
        counts only (see :mod:`bayeslm.ngram.backoff`).
        """
        depth = sum((ids >= 0).astype(int) for ids in chain)  # deepest seen order per context
        ctx = np.choose(depth - 1, chain) if len(chain) > 1 else chain[0]
        n = self.top_level
        backoff = self._backoff()
        draws_s = self._entropy_draws()
        S, m = draws_s.shape[0], ctx.size
        if n == 1:  # one context: A_w = c_w + a P_0(w)
            predictable = np.flatnonzero(np.arange(self.counts_.vocab_size) != self.vocab_.bos_id)
            c = backoff.unigram_counts[predictable].astype(float)
            N = c.sum()
            b = int(self._top_bucket(N))
            a_all, a_s = self._top_draws()[:, b], draws_s[:, b]
            p_bar = c * np.mean(1 / (N + a_all)) + self._base_times(np.mean(a_all / (N + a_all)), predictable)
            A = c[None, :] + self._base_times(a_s[:, None], predictable[None, :])
            expected = digamma(N + a_s + 1) - (_g(A)).sum(axis=1) / (N + a_s)
            return np.full(m, _h(p_bar).sum()), np.full(m, expected.mean())
        H1 = float((_h(backoff.group_probs()) * backoff.group_size).sum())
        level_one_h = lambda x: x * H1 - xlogy(x, x)  # sum_w h(x P_1(w)), exact since sum P_1 = 1
        level_one_g = lambda x: backoff.unigram_sum_spline(_g, x)

        top = depth == n
        C = np.zeros(m)
        C[top] = backoff.counts[n].context_total[ctx[top]]
        alpha, beta = self._mixture_weights(C)  # over all draws, grouped by distinct totals
        scale = self._top_scale(np.where(top, ctx, -1))  # the Dirichlet of p(. | u) is (c + a m) times this
        a_s = draws_s[:, self._top_bucket(C)].T * scale[:, None]  # (context, entropy draws)

        # the base's context: parent of a seen top context, else the deepest seen one
        base_level = np.where(top, n - 1, depth)
        base_ctx = ctx.copy()
        base_ctx[top] = backoff.counts[n].context_parent[ctx[top]]

        sum_h = np.zeros(m)
        sum_g = np.zeros((m, S))
        for level in np.unique(base_level):
            sel = np.flatnonzero(base_level == level)
            sum_h[sel] = backoff.vocab_sum(_h, level_one_h, int(level), base_ctx[sel], beta[sel])
            x = a_s[sel].ravel()
            sum_g[sel] = backoff.vocab_sum(_g, level_one_g, int(level), np.repeat(base_ctx[sel], S), x).reshape(sel.size, S)

        # tokens seen after a seen top context: replace their base-only terms
        rows_top = np.flatnonzero(top)
        if rows_top.size:
            rows, tokens, c = backoff.seen(n, ctx[rows_top])
            parent_chain = backoff.ancestors(n - 1, base_ctx[rows_top][rows])
            mw = backoff.prob(parent_chain, tokens, n - 1)
            r = rows_top[rows]
            sum_h += np.bincount(r, weights=_h(c * alpha[r] + mw * beta[r]) - _h(mw * beta[r]), minlength=m)
            am = a_s[r] * mw[:, None]
            delta = _g((c * scale[r])[:, None] + am) - _g(am)
            for s in range(S):
                sum_g[:, s] += np.bincount(r, weights=delta[:, s], minlength=m)
        A = (C * scale)[:, None] + a_s
        expected = digamma(A + 1) - sum_g / A
        return sum_h, expected.mean(axis=1)

    # -- dense next-token distributions -----------------------------------------------------
    def next_token_probs(self, contexts, draws=None) -> np.ndarray:
        """p(w | u, a^s) for every token: shape (draw, context, token).

        Parameters
        ----------
        contexts : int array, shape (m, order - 1)
            Token ids of each context, oldest first (pad with ``<s>`` at sentence start).
        draws : int or sequence of int, optional
            An int is a *count*: that many evenly spaced samples (``draws=1`` is sample 0).
            A sequence gives sample *indices* into the flattened (chain-major) samples
            (``draws=[7]`` is sample 7). Default: all samples.
        """
        self._check_fitted("next_token_probs")
        chain = self._context_chain(contexts)
        a = self._select_draws(draws)
        n = self.top_level
        backoff = self._backoff()
        m_ctx = chain[0].size
        if n > 1:
            base = backoff.dense(chain, n - 1)
        else:
            base = np.repeat(self._base_times(1.0, np.arange(self.counts_.vocab_size))[None, :], m_ctx, axis=0)
        rows, tokens, c = backoff.seen(n, chain[n - 1])
        dense_c = np.zeros_like(base)
        dense_c[rows, tokens] = c
        total = dense_c.sum(axis=1)
        a = a[:, self._top_bucket(total)][:, :, None]  # (draw, context, 1)
        return (dense_c[None] + a * base[None]) / (total[None, :, None] + a)

    def predictive_probs(self, contexts) -> np.ndarray:
        """Posterior-predictive p(w | u) over all draws, shape (context, token); rows sum to 1."""
        self._check_fitted("predictive_probs")
        chain = self._context_chain(contexts)
        n, V = self.top_level, self.counts_.vocab_size
        backoff = self._backoff()
        if n == 1:
            base = np.repeat(self._base_times(1.0, np.arange(V))[None, :], chain[0].size, axis=0)
        else:
            base = backoff.dense(chain, n - 1)
        rows, tokens, c = backoff.seen(n, chain[n - 1])
        dense_c = np.zeros_like(base)
        dense_c[rows, tokens] = c
        alpha, beta = self._mixture_weights(dense_c.sum(axis=1))
        return dense_c * alpha[:, None] + base * beta[:, None]

    def _next_tokens(self, history: np.ndarray, draw: int, rng: np.random.Generator) -> np.ndarray:
        """One token per row from p(. | u, a) with p(. | u) integrated out, a = sample ``draw``.

        Drawn from the sparse counts (:meth:`Backoff.sample`), never a dense distribution.
        """
        n = self.top_level
        chain = self._context_chain(history)
        top_total = np.where(chain[n - 1] >= 0, self._backoff().counts[n].context_total[np.maximum(chain[n - 1], 0)], 0)
        a = self._top_draws()[draw]  # (bucket,)
        return self._backoff().sample(chain, n, rng, top=a[self._top_bucket(top_total)])

    def _select_draws(self, draws) -> np.ndarray:
        """Top-order concentration samples (rows) per bucket (columns)."""
        a = self._top_draws()
        return a if draws is None else a[draw_indices(a.shape[0], draws)]

    def dirichlet_parameters(self, contexts, draws=None) -> np.ndarray:
        """A_w = c_uw + a m_uw of the posterior Dirichlet of p(. | u): (draw, context, token).

        The predictive given a is A_w / A with A = c_u + a, so A_w = p(w | u, a) (c_u + a).
        """
        self._check_fitted("dirichlet_parameters")
        chain = self._context_chain(contexts)
        a = self._select_draws(draws)
        _, total = self._backoff().level_stats(self.top_level, chain[self.top_level - 1], np.zeros(chain[0].size, np.int64))
        a = a[:, self._top_bucket(total)]  # (draw, context)
        scale = self._top_scale(chain[self.top_level - 1])
        return self.next_token_probs(contexts, draws) * ((total[None, :] + a) * scale)[:, :, None]

    # -- point estimates of one probability --------------------------------------------------
    def estimate(self, token: str, context=(), kind: str = "mean", add_k: float | None = None) -> float:
        """A point estimate of p(token | context): the textbook's MLE, MAP or posterior mean.

        Parameters
        ----------
        kind : {"mle", "map", "mean"}
            ``mle``: relative frequency c_uw / c_u (0 for unseen tokens; undefined for an
            unseen context). ``mean``: posterior predictive mean. ``map``: with ``add_k`` >= 1,
            the mode under a symmetric Dirichlet(add_k) prior, (c_uw + add_k - 1) / (c_u +
            V'(add_k - 1)) (add-(k-1) smoothing); without ``add_k``, the mode of the fitted
            posterior Dirichlet(A), which exists only if every A_w > 1.
        """
        self._check_fitted("estimate")
        ctx = self._encode_context(context)
        w = self.vocab_.id(token)
        chain = self._context_chain(ctx)
        c, total = self._backoff().level_stats(self.top_level, chain[self.top_level - 1], np.array([w]))
        c, total = float(c[0]), float(total[0])
        V1 = self.counts_.vocab_size - 1
        if kind == "mle":
            if total == 0:
                raise BayesLMError("the MLE is undefined: the context was never seen (0 / 0)")
            return c / total
        if kind == "mean":
            return float(self.next_token_probs(ctx)[:, 0, w].mean())
        if kind != "map":
            raise ConfigError(f"kind must be 'mle', 'map' or 'mean', got {kind!r}")
        if add_k is not None:
            if add_k < 1:
                raise BayesLMError(f"a symmetric Dirichlet({add_k}) prior has no interior mode: add_k must be >= 1")
            return (c + add_k - 1) / (total + V1 * (add_k - 1))
        # A at the draw whose concentration is closest to its posterior mean
        a = self._top_draws()[:, self._top_bucket(total)]
        draw = int(np.argmin(np.abs(a - a.mean())))
        A_full = self.dirichlet_parameters(ctx, draws=[draw])[0, 0]
        A = np.delete(A_full, self.vocab_.bos_id)
        below = int((A <= 1).sum())
        if below:
            raise BayesLMError(
                f"the posterior Dirichlet has no interior mode: {below} of {A.size} parameters are <= 1 "
                "(the density grows toward the simplex edges); use kind='mean'"
            )
        return (float(A_full[w]) - 1) / (A.sum() - A.size)

    # -- ARPA export --------------------------------------------------------------------------
    def interpolation(self, sample: int | None = None) -> list[np.ndarray]:
        """P_k(w | u) at every seen n-gram of every order k, aligned with ``counts_[k]``.

        Orders below the top at their fixed modes (each context's bucket), the top order
        the mixture over all concentration draws: one interpolated model, which the ARPA
        file reproduces exactly. ``sample`` must be None (there is no sample to choose).
        """
        self._check_fitted("interpolation")
        if sample is not None:
            raise BayesLMError("--sample applies to Pitman-Yor models (a Dirichlet LM's mixture is exported exactly)")
        counts, n = self.counts_, self.order
        backoff = self._backoff()
        probs = []
        for k in range(1, n + 1):
            oc = counts[k]
            if k == 1:
                base = self._base_times(1.0, oc.ngram_token)
            else:
                base = probs[k - 2][counts[k - 1].lookup(oc.context_parent[oc.ngram_context], oc.ngram_token)]
            c = oc.ngram_count.astype(float)
            total = oc.context_total[oc.ngram_context].astype(float)
            if k < n:
                a = backoff.conc(k, oc.ngram_context)
                probs.append((c + a * base) / (total + a))
            else:
                alpha, beta = self._mixture_weights(total)
                probs.append(c * alpha + base * beta)
        return probs

    # -- files -----------------------------------------------------------------------------
    def _family_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._family_arrays(), "base_concentration": self.plugin_,
                "buckets": np.asarray(self.buckets_, dtype=np.int64)}

    def _restore_family(self, arrays: dict) -> None:
        self._restore_counts(arrays)
        if "base_concentration" not in arrays:
            raise ModelFileError("the model directory has no base concentrations (arrays.npz foreign?)")
        self.plugin_ = np.asarray(arrays["base_concentration"], dtype=float)
        if "buckets" in arrays:
            self.buckets_ = [int(b) for b in arrays["buckets"]]
        elif self.options["buckets"] != "auto":  # written before buckets_: the configuration held the choice
            self.buckets_ = list(self.options["buckets"])
        else:
            raise ModelFileError("the model directory does not say which buckets 'auto' chose")
