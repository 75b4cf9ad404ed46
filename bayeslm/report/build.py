"""``report(model, test)``: posterior diagnostics and entropy reports of a fitted model.

A report answers three questions: can I trust the fit (model card, ArviZ diagnostics,
posterior predictive checks), how well does it predict (cross-entropy, perplexity,
calibration, comparison with other models), and where is it unsure (aleatoric / epistemic
entropy per position, the most surprising tokens, the most uncertain contexts). This module
checks the input and runs each section (:mod:`bayeslm.report.sections`); the result is a
:class:`~bayeslm.report.result.Report`, written as JSON (schema ``bayeslm.report/3``,
``docs/report.md``) and as a self-contained HTML page (:mod:`bayeslm.report.page`).

The model is used only through the protocol (:mod:`bayeslm.core.protocol`): ``evaluate``,
``predictive_log_prob``, ``context_entropy_split``, ``predictive_probs``,
``diagnostic_var_names``, and for the predictive checks the ``SamplesSentences`` ability
and ``training_counts``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Sequence

from bayeslm.core.base import BayesianLM
from bayeslm.exceptions import ConfigError, ModelFileError, NotFittedError
from bayeslm.report.heldout import TextView, count_oov, read_text
from bayeslm.report.result import SCHEMA, Report, jsonable, output_paths
from bayeslm.report.sections.calibration import calibration_section
from bayeslm.report.sections.card import model_card
from bayeslm.report.sections.comparison import comparison_section
from bayeslm.report.sections.continuations import continuations_section
from bayeslm.report.sections.departure import departure_section
from bayeslm.report.sections.diagnostics import diagnostics_section
from bayeslm.report.sections.entropy import entropy_section, score_held_out
from bayeslm.report.sections.predictive_checks import predictive_checks_section
from bayeslm.stats.intervals import HDI_PROB

__all__ = ["SCHEMA", "Report", "report", "output_paths"]


def _settings(hdi_prob, replicates, random_seed, passage_tokens, top_k) -> dict:
    """The report's settings as the JSON records them; ConfigError for a value out of range."""
    if not 0 < float(hdi_prob) < 1:
        raise ConfigError(f"hdi_prob must lie in (0, 1), got {hdi_prob}")
    if int(replicates) < 1:
        raise ConfigError(f"replicates must be at least 1, got {replicates}")
    if int(top_k) < 1 or int(passage_tokens) < 1:
        raise ConfigError("top_k and passage_tokens must be at least 1")
    return {"replicates": int(replicates), "hdi_prob": float(hdi_prob), "random_seed": random_seed,
            "passage_tokens": int(passage_tokens), "top_k": int(top_k)}


def _check_model(model, what: str = "the model") -> None:
    if not isinstance(model, BayesianLM):
        raise ConfigError(f"{what} must be a fitted bayeslm model, got {type(model).__name__}")
    if not model.is_fitted_:
        raise NotFittedError(model, "report")
    idata = model.idata
    if idata is None or "posterior" not in idata.groups():
        raise ModelFileError(f"{what} has no posterior (fit it, or load a complete model directory)")


def _checked_models(model, compare: Sequence) -> list:
    """``[model, *compare]``, each checked to be a fitted bayeslm model with a posterior."""
    models = [model, *compare]
    for i, each in enumerate(models):
        _check_model(each, "the model" if i == 0 else f"compared model {i}")
    return models


def _unique_labels(models: list, labels: Sequence[str] | None) -> list[str]:
    """The given labels (default: family, order and id), made unique with ``#2``, ``#3``, ..."""
    if labels is None:
        labels = [f"{m.family} order {m.order} ({m.id[:8]})" for m in models]
    labels = [str(x) for x in labels]
    if len(labels) != len(models):
        raise ConfigError(f"{len(labels)} labels for {len(models)} models")
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label} #{seen[label]}"
    return labels


@contextmanager
def _timed(timing: dict, name: str):
    start = time.perf_counter()
    yield
    timing[name] = time.perf_counter() - start


def _text_summary(raw, encoded, n_oov: int) -> dict:
    """Sizes of the held-out text: ``tokens`` as Corpus.n_tokens, ``positions`` with one </s> each."""
    return {
        "sources": list(raw.sources),
        "sentences": encoded.n_sentences,
        "tokens": encoded.n_tokens,
        "positions": encoded.n_tokens + encoded.n_sentences,
        "oov": n_oov,
        "oov_rate": n_oov / encoded.n_tokens,
    }


def _sections(models: list, labels: list[str], raw, encoded, train_encoded, settings: dict, timing: dict,
              lines: list[str] | None) -> dict:
    """The model card and the diagnostics, predictive checks, entropy, comparison and departure sections.

    ``models[0]`` is the reported model; ``settings`` the report's (see :func:`report`); ``lines``
    the held-out sentences as text, for compared models of other tokenizers (None: not kept).
    """
    model, hdi_prob, seed = models[0], settings["hdi_prob"], settings["random_seed"]
    with _timed(timing, "diagnostics"):
        card = model_card(model, seed)
        diagnostics = diagnostics_section(model.idata, model.diagnostic_var_names, hdi_prob)
    scores = score_held_out(model, encoded, hdi_prob, timing)
    with _timed(timing, "tables"):
        entropy = entropy_section(scores, TextView(raw, encoded), settings["passage_tokens"], settings["top_k"])
    with _timed(timing, "calibration"):
        entropy["calibration"] = calibration_section(model, scores)
    with _timed(timing, "ppc"):
        ppc = predictive_checks_section(model, encoded, train_encoded, settings["replicates"], seed)
    with _timed(timing, "comparison"):
        comparison = comparison_section(models, labels, raw, lines, encoded, scores, hdi_prob)
    with _timed(timing, "departure"):
        departure = departure_section(model, encoded, scores.epistemic_bits, hdi_prob)
    return {"model": card, "diagnostics": diagnostics, "ppc": ppc, "entropy": entropy, "comparison": comparison,
            "departure": departure}


def report(
    model,
    test,
    *,
    compare: Sequence = (),
    labels: Sequence[str] | None = None,
    train=None,
    replicates: int = 20,
    hdi_prob: float = HDI_PROB,
    random_seed: int | None = 0,
    passage_tokens: int = 60,
    top_k: int = 20,
    prompts: Sequence[str] = (),
    continuations: int = 3,
    max_tokens: int = 30,
) -> Report:
    """Diagnostics, posterior predictive checks, entropy and comparison of a fitted model.

    Parameters
    ----------
    model : BayesianLM
        A fitted model (any family answering the protocol of :mod:`bayeslm.core.protocol`).
    test : Corpus, str, list of str, or paths
        Held-out text. Tokenised by the model (a :class:`Corpus` must have been split by
        the same tokenizer); paths are ``pathlib.Path`` objects (files, directories, globs).
    compare : sequence of BayesianLM
        Other fitted models of any family and tokenizer, each reading the same sentences
        with its own tokenizer (from lines: a string, strings, paths, or a Corpus whose tokens
        spell its lines exactly); ranked by held-out elpd per character (docs/report.md).
    labels : sequence of str, optional
        Names of ``model`` and each compared model (default: family, order and id).
    train : Corpus, optional
        The training text. When given, the posterior predictive checks compare replicates
        of the training size with it; otherwise with the held-out text (replicates of its
        size). Either way the unseen-n-gram share is checked on held-out-sized replicates.
    replicates : int
        Replicate corpora drawn for the posterior predictive checks (at least 20 advised).
    hdi_prob : float
        Probability of the highest-density intervals.
    random_seed : int, optional
        Seed of the replicate corpora.
    passage_tokens : int
        Scored positions shown along the passage plot (from the start of the text).
    top_k : int
        Rows of the most-surprising-token and most-uncertain-context tables.
    prompts : sequence of str
        Prompts to continue in the "Sampled continuations" section (each with
        ``continuations`` samples of up to ``max_tokens`` tokens, one posterior draw held per
        continuation, seeded by ``random_seed``); none by default.

    Returns
    -------
    Report
    """
    settings = _settings(hdi_prob, replicates, random_seed, passage_tokens, top_k)
    start = time.perf_counter()
    models = _checked_models(model, compare)
    labels = _unique_labels(models, labels)
    raw, encoded, lines = read_text(model, test)
    n_oov = count_oov(model, encoded)
    train_encoded = None if train is None else read_text(model, train)[1]
    timing: dict = {}
    sections = _sections(models, labels, raw, encoded, train_encoded, settings, timing, lines)
    with _timed(timing, "continuations"):
        sampled = continuations_section(model, prompts, continuations, max_tokens, random_seed)
    timing["total"] = time.perf_counter() - start
    data = {
        "schema": SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label": labels[0],
        "model": sections.pop("model"),
        "test": _text_summary(raw, encoded, n_oov),
        "train": None if train_encoded is None else {"sentences": train_encoded.n_sentences, "tokens": train_encoded.n_tokens},
        "settings": settings,
        **sections,
        "continuations": sampled,
        "timing_seconds": timing,
    }
    return Report(data=jsonable(data), idata=model.idata)
