"""A mixture of fitted language models that share a tokenizer and a vocabulary.

``MixtureLM(components)`` fits its weights on held-out text: a PyMC model with a
Dirichlet prior on the weights and, per position, the log of the weighted components'
posterior-predictive probabilities; NUTS gives the weights' posterior. It answers the
whole protocol and saves its components inside its own directory. docs/mixture.md.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.special import entr, logsumexp

from bayeslm.core.base import BayesianLM
from bayeslm.core.draws import draw_indices
from bayeslm.core.protocol import SamplesSentences
from bayeslm.core.sampling import pm_sample_kwargs
from bayeslm.core.settings import ModelOptions, number, texts, whole
from bayeslm.core.storage import load_model
from bayeslm.exceptions import BayesLMError, ConfigError, ModelFileError, NotFittedError, VocabularyMismatchError
from bayeslm.stats.stacking import stacking_weights
from bayeslm.text.corpus import Corpus

__all__ = ["MixtureLM"]

#: arrays.npz key of one file of one component's model directory
_FILE_KEY = "component{k}__{name}"
#: dense probabilities held at once by context_entropy_split (draws x contexts x tokens)
_DENSE_BUDGET = 4_000_000


class MixtureOptions(ModelOptions):
    """The ``[model]`` options of :class:`MixtureLM`."""

    order: whole(ge=1) = Field(1, description="follows the components (the longest order): leave it out")
    components: texts() = Field(default_factory=list, description="the components' model ids, in order")
    concentration: number(gt=0.0) = Field(1.0, description="Dirichlet prior on the weights (1: uniform)")
    entropy_draws: whole(ge=1) = Field(8, description="posterior draws the aleatoric entropy averages over (Monte Carlo)")


class MixtureLM(BayesianLM, SamplesSentences):
    """p(w | u) = sum_k pi_k p_k(w | u), with a posterior over the weights pi.

    Parameters
    ----------
    components : sequence of fitted models or model directories
        At least two, with the same tokenizer and vocabulary (one fitted on a
        different text is refused: their token ids would not mean the same).
    concentration : float
        The weights' prior is Dirichlet(concentration, ..., concentration).
    entropy_draws : int
        Posterior draws over which :meth:`context_entropy_split` averages the aleatoric
        entropy (Monte Carlo: the components' mixture has no closed form).

    ``fit(valid_text)`` fits the weights on text none of the components was trained on;
    the mixture's draw s combines weight draw s with draw ``s mod n_k`` of component k
    (the components' posteriors and the weights' are independent).
    """

    family = "mixture"
    model_options = MixtureOptions

    def __init__(self, components=(), **kwargs):
        """``components``: models or model directories; a loaded mixture passes their ids instead."""
        models = []
        if _are_models(components):
            models = [load_model(c) if isinstance(c, (str, Path)) else c for c in components]
            _check_components(models)
            kwargs.update(tokenizer=models[0].tokenizer_, order=max(m.order for m in models))
            components = [m.id for m in models]
        super().__init__(components=components, **kwargs)
        self.components_ = models or None
        self._component_files: list[dict[str, bytes]] | None = None

    # -- fitting ----------------------------------------------------------------------------
    def _components(self) -> list:
        if not self.components_:
            raise NotFittedError(self, "this method (the mixture has no components)")
        return self.components_

    def _prepare_training(self, corpus):
        """The weights' text in the components' vocabulary: a Corpus (its tokenizer checked) or text."""
        first = self._components()[0]
        if isinstance(corpus, str):
            corpus = [corpus]
        if not isinstance(corpus, Corpus):
            if not all(isinstance(line, str) for line in corpus):
                raise ConfigError(f"fit needs a Corpus or lines of text, got {type(corpus).__name__}")
            corpus = Corpus.from_texts(list(corpus), tokenizer=first.tokenizer_, vocab=first.vocab_)
        if corpus.tokenizer != first.tokenizer_:
            raise VocabularyMismatchError(f"the text was tokenised with {corpus.tokenizer!r}, the components "
                                          f"with {first.tokenizer_!r}")
        self.vocab_ = first.vocab_
        return corpus.with_vocabulary(self.vocab_)

    def _fit(self, train, valid, sampler: dict):
        import pymc as pm

        lp = self.component_log_prob(train)
        names = self.component_names
        with pm.Model(coords={"component": names}):
            weights = pm.Dirichlet("weights", a=np.full(len(names), self.options["concentration"]), dims="component")
            pm.Potential("log_likelihood", pm.math.logsumexp(pm.math.log(weights)[:, None] + lp, axis=0).sum())
            idata = pm.sample(**pm_sample_kwargs(sampler))
        idata["posterior"].attrs["stacking_weights"] = json.dumps(stacking_weights(lp).tolist())
        self._component_files = [_directory_bytes(m) for m in self._components()]
        return idata

    # -- what the components say --------------------------------------------------------
    @property
    def component_names(self) -> list[str]:
        """``"k:family"`` per component: the ``component`` coordinate of the weights."""
        return [f"{k}:{m.family}" for k, m in enumerate(self._components())]

    def component_log_prob(self, data) -> np.ndarray:
        """Each component's posterior-predictive log p(token | context), shape (component, position), nats."""
        corpus = self._encode(data)
        return np.stack([m.predictive_log_prob(corpus) for m in self._components()])

    @property
    def weights(self) -> np.ndarray:
        """Posterior draws of the weights, shape (draw, component) (chains flattened)."""
        w = self.idata["posterior"]["weights"].values
        return w.reshape(-1, w.shape[-1])

    @property
    def stacking_weights_(self) -> np.ndarray:
        """The weights that maximise the log score on the fitting text (ArviZ's stacking), shape (component,)."""
        return np.array(json.loads(self.idata["posterior"].attrs["stacking_weights"]))

    def _component_draws(self, draws: np.ndarray) -> list[np.ndarray]:
        """Per component, its draw index for each mixture draw: ``s mod n_k``."""
        return [np.asarray(draws) % m.n_samples for m in self._components()]

    def _contexts_of(self, contexts: np.ndarray, model) -> np.ndarray:
        contexts = np.asarray(contexts)
        return contexts[:, contexts.shape[1] - model.context_length:]

    # -- the protocol ---------------------------------------------------------------------
    @property
    def context_length(self) -> int:
        return max(m.context_length for m in self._components())

    @property
    def diagnostic_var_names(self) -> list[str]:
        return ["weights"]

    def predictive_log_prob(self, data) -> np.ndarray:
        with np.errstate(divide="ignore"):  # a weight of exactly 0 drops its component
            log_w = np.log(self.weights.mean(axis=0))
        return logsumexp(log_w[:, None] + self.component_log_prob(data), axis=0)

    def _log_prob_draws(self, corpus):
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)  # (draw, component); a weight of 0 drops its component
        index = self._component_draws(np.arange(log_w.shape[0]))
        streams = [m._log_prob_draws(corpus) for m in self._components()]
        for positions, chunks in _aligned_chunks(streams):
            terms = [log_w[:, k, None] + lp[index[k]] for k, lp in enumerate(chunks)]
            yield positions, logsumexp(np.stack(terms), axis=0)

    def next_token_probs(self, contexts, draws=None) -> np.ndarray:
        chosen = draw_indices(self.weights.shape[0], draws)
        w = self.weights[chosen]  # (draw, component)
        out = None
        for k, (m, index) in enumerate(zip(self._components(), self._component_draws(chosen))):
            p = w[:, k, None, None] * m.next_token_probs(self._contexts_of(contexts, m), draws=index)
            out = p if out is None else out + p
        return out

    def predictive_probs(self, contexts) -> np.ndarray:
        mean_weights = self.weights.mean(axis=0)
        return sum(w * m.predictive_probs(self._contexts_of(contexts, m))
                   for w, m in zip(mean_weights, self._components()))

    def sample_distribution(self, contexts, draw: int, rng: np.random.Generator) -> np.ndarray:
        """sum_k pi_k p_k under weight draw ``draw`` and each component's own draw ``draw mod n_k``."""
        w = self.weights[int(draw)]
        return sum(w[k] * m.sample_distribution(self._contexts_of(contexts, m), int(draw) % m.n_samples, rng)
                   for k, m in enumerate(self._components()))

    # -- sentences (posterior predictive checks) ---------------------------------------------
    @property
    def can_sample_sentences(self) -> bool:
        return all(isinstance(m, SamplesSentences) and m.can_sample_sentences for m in self._components())

    def next_tokens(self, history: np.ndarray, draw: int, rng: np.random.Generator) -> np.ndarray:
        """One token per row from sum_k pi_k p_k(. | history) under weight draw ``draw``.

        Each row picks component k with probability pi_k (weight draw ``draw``), then the
        component draws its token under its own draw ``draw mod n_k``: a draw from the mixture.
        """
        if not self.can_sample_sentences:
            raise BayesLMError("a component of this mixture cannot draw sentences (no SamplesSentences ability)")
        history = np.asarray(history, dtype=np.int64)
        weights = self.weights[int(draw)]
        chosen = rng.choice(len(weights), size=len(history), p=weights / weights.sum())
        out = np.empty(len(history), dtype=np.int64)
        for k, model in enumerate(self._components()):
            rows = np.flatnonzero(chosen == k)
            if rows.size:
                out[rows] = model.next_tokens(self._contexts_of(history[rows], model), int(draw) % model.n_samples,
                                              rng)
        return out

    def context_entropy_split(self, contexts) -> pd.DataFrame:
        """``total`` exact (the entropy of :meth:`predictive_probs`), ``aleatoric`` averaged over
        ``entropy_draws`` evenly spaced posterior draws of :meth:`sample_distribution` (a fixed
        seed: the same answer every call), ``epistemic`` their difference (nats).

        Computed once per distinct context row (an n-gram text repeats its contexts).
        """
        unique, inverse = np.unique(np.asarray(contexts).reshape(len(contexts), -1), axis=0, return_inverse=True)
        draws = draw_indices(self.weights.shape[0], self.options["entropy_draws"])
        step = max(1, _DENSE_BUDGET // len(self.vocab_))
        rng = np.random.default_rng(0)
        total, aleatoric = np.zeros(len(unique)), np.zeros(len(unique))
        for start in range(0, len(unique), step):
            block = unique[start:start + step]
            total[start:start + step] = entr(self.predictive_probs(block)).sum(axis=-1)
            aleatoric[start:start + step] = np.mean(
                [entr(self.sample_distribution(block, s, rng)).sum(axis=-1) for s in draws], axis=0)
        total, aleatoric = total[inverse.ravel()], aleatoric[inverse.ravel()]
        return pd.DataFrame({"total": total, "aleatoric": aleatoric,
                             "epistemic": np.maximum(total - aleatoric, 0.0)})

    # -- the model directory ------------------------------------------------------------
    def _family_arrays(self) -> dict[str, np.ndarray]:
        if self._component_files is None:
            self._component_files = [_directory_bytes(m) for m in self._components()]
        return {_FILE_KEY.format(k=k, name=name): np.frombuffer(data, dtype=np.uint8)
                for k, files in enumerate(self._component_files) for name, data in files.items()}

    def _restore_family(self, arrays: dict[str, np.ndarray]) -> None:
        ids = self.options["components"]
        files: list[dict[str, bytes]] = [{} for _ in ids]
        for key, values in arrays.items():
            k, sep, name = key.removeprefix("component").partition("__")
            if not (sep and k.isdigit() and int(k) < len(ids)):
                raise ModelFileError(f"arrays.npz: {key!r} is not a file of one of the {len(ids)} components")
            files[int(k)][name] = values.tobytes()
        models = [_model_from_bytes(k, f) for k, f in enumerate(files)]
        for k, (model, want) in enumerate(zip(models, ids)):
            if model.id != want:
                raise ModelFileError(f"arrays.npz: component {k} is model {model.id}, the mixture was fitted "
                                     f"with {want} (changed since the mixture was saved)")
        _check_components(models)
        if models[0].vocab_.fingerprint != self.vocab_.fingerprint:
            raise ModelFileError("arrays.npz: the components' vocabulary is not the mixture's")
        self.components_, self._component_files = models, files


def _are_models(components) -> bool:
    """Models or model directories (a list of ids, or anything else, is left to the settings' checks)."""
    if not isinstance(components, (list, tuple)) or not components:
        return False
    if all(isinstance(c, str) and _is_id(c) for c in components):
        return False
    return all(isinstance(c, (BayesianLM, str, Path)) for c in components)


def _is_id(text: str) -> bool:
    """A model id (16 hex digits), not a path."""
    return len(text) == 16 and all(c in "0123456789abcdef" for c in text) and not Path(text).exists()


def _check_components(models) -> None:
    """At least two fitted models with one tokenizer and one vocabulary (one-line errors)."""
    if len(models) < 2:
        raise ConfigError(f"a mixture needs at least two components, got {len(models)}")
    for k, m in enumerate(models):
        if not isinstance(m, BayesianLM) or not m.is_fitted_:
            raise ConfigError(f"component {k} is not a fitted bayeslm model")
    first = models[0]
    for k, m in enumerate(models[1:], start=1):
        if m.tokenizer_ != first.tokenizer_:
            raise VocabularyMismatchError(f"component {k} uses {m.tokenizer_!r}, component 0 {first.tokenizer_!r}: "
                                          "a mixture needs one tokenizer")
        if m.vocab_.fingerprint != first.vocab_.fingerprint:
            raise VocabularyMismatchError(f"component {k} has another vocabulary than component 0 "
                                          f"({len(m.vocab_)} vs {len(first.vocab_)} tokens): a mixture needs one")


def _aligned_chunks(streams):
    """Zip the components' ``(positions, log_prob)`` chunks over common position ranges.

    Each stream covers positions 0..n in its own chunking; yields ``(slice, [lp_k])`` with
    every ``lp_k`` of shape (draw_k, slice length).
    """
    buffers = [(0, None) for _ in streams]  # (first position held, array (draw, held))
    iterators = [iter(s) for s in streams]
    while True:
        for k, it in enumerate(iterators):
            start, held = buffers[k]
            if held is None or held.shape[1] == 0:
                chunk = next(it, None)
                if chunk is None:
                    return
                positions, lp = chunk
                buffers[k] = (positions.start, lp)
        start = buffers[0][0]
        stop = min(s + held.shape[1] for s, held in buffers)
        yield slice(start, stop), [held[:, : stop - start] for _, held in buffers]
        buffers = [(stop, held[:, stop - s:]) for s, held in buffers]


def _directory_bytes(model) -> dict[str, bytes]:
    """The files of ``model``'s directory as written by ``save`` (name -> bytes)."""
    with tempfile.TemporaryDirectory(prefix="bayeslm-component-") as tmp:
        path = model.save(Path(tmp) / "model")
        return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def _model_from_bytes(k: int, files: dict[str, bytes]):
    """Component ``k`` loaded from its files (written to a temporary directory, checked as any)."""
    if "model.nc" not in files:
        raise ModelFileError(f"arrays.npz: component {k} is missing")
    with tempfile.TemporaryDirectory(prefix="bayeslm-component-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        try:
            return load_model(tmp)
        except ModelFileError as err:
            raise ModelFileError(f"arrays.npz: component {k}: {err}") from None
