"""Posterior diagnostics and entropy reports: one HTML page a person reads, JSON a program reads.

``report(model, test)`` computes, for a fitted model and held-out text, the figures that
answer three questions: can I trust the fit (model card, ArviZ diagnostics, posterior
predictive checks), how well does it predict (cross-entropy, perplexity, calibration,
comparison with other models), and where is it unsure (aleatoric / epistemic entropy per
position, the most surprising tokens, the most uncertain contexts). The result is a
:class:`Report`; ``to_json`` writes every number (schema ``bayeslm.report/1``, documented
in ``docs/report.md``), ``to_html`` a self-contained page (images inlined as PNG data URIs,
no script, a Content-Security-Policy that forbids any).

The statistics come from :mod:`bayeslm.diagnostics`, :mod:`bayeslm.ppc`,
:mod:`bayeslm.calibration` and the model protocol (``evaluate``, ``per_token``,
``predictive_log_prob``, ``predictive_probs``, ``sample_sentences``); figures from
:mod:`bayeslm.plots`, imported only when HTML is rendered.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from bayeslm.exceptions import (
    ConfigError,
    CorpusError,
    ModelFileError,
    NotFittedError,
    VocabularyMismatchError,
)
from bayeslm.stats.intervals import HDI_PROB
from bayeslm.text.corpus import Corpus

__all__ = ["SCHEMA", "Report", "report", "output_paths"]

SCHEMA = "bayeslm.report/1"
LN2 = math.log(2.0)
WINDOW = 6  # tokens shown on each side of a surprising token
N_HIST = 40
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


# ----------------------------------------------------------------------------- helpers
def _jsonable(obj):
    """Plain JSON data: numpy scalars/arrays to python, NaN and infinities to None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _write_text(path: Path, text: str) -> None:
    """Atomic write (temporary file, rename)."""
    from bayeslm.core.files import atomic_write_text

    atomic_write_text(path, text)


def output_paths(out: str | Path) -> tuple[Path, Path]:
    """The HTML path and the JSON path beside it (same stem), checked before any work.

    Raises :class:`~bayeslm.exceptions.ConfigError` if the directory does not exist, the
    path is a directory, or it ends in ``.json`` (the JSON would overwrite the page).
    """
    out = Path(out)
    if out.suffix.lower() == ".json":
        raise ConfigError(f"{out}: give the HTML path (e.g. report.html); the JSON is written beside it")
    if out.is_dir():
        raise ConfigError(f"{out} is a directory; give a file name such as {out / 'report.html'}")
    parent = out.parent
    if not parent.is_dir():
        raise ConfigError(f"{out}: directory {parent} does not exist")
    return out, out.with_suffix(".json")


def _check_model(model, what: str = "the model") -> None:
    from bayeslm.core.base import BayesianLM

    if not isinstance(model, BayesianLM):
        raise ConfigError(f"{what} must be a fitted bayeslm model, got {type(model).__name__}")
    if not model.is_fitted_:
        raise NotFittedError(model, "report")
    idata = model.idata
    if idata is None or "posterior" not in idata.groups():
        raise ModelFileError(f"{what} has no posterior (fit it, or load a complete model directory)")


def _as_corpus(model, data) -> tuple[Corpus, Corpus]:
    """(the text with its own full vocabulary, for display; the same in the model's vocabulary)."""
    if isinstance(data, Corpus):
        raw = data
    elif isinstance(data, (str, list, tuple)):
        raw = Corpus.from_texts(list(data) if not isinstance(data, str) else data, tokenizer=model.tokenizer_)
    else:
        raise CorpusError(f"test text must be a Corpus, a string or a list of strings, got {type(data).__name__}")
    if raw.n_sentences == 0 or raw.n_tokens == 0:
        raise CorpusError("the test corpus is empty (no tokens to score)")
    enc = model.encode(raw)
    return raw, enc


def _interval(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std()), "median": float(np.median(v)),
            "q05": float(np.quantile(v, 0.05)), "q95": float(np.quantile(v, 0.95)), "max": float(v.max())}


def _position_layout(corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """Sentence and index within the sentence of every scored position (index n_tokens: </s>)."""
    lengths = corpus.sentence_lengths + 1
    sentence = np.repeat(np.arange(corpus.n_sentences), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return sentence, np.arange(int(lengths.sum())) - np.repeat(starts, lengths)


class _Text:
    """Words of the test text as written (OOV words keep their spelling) for display."""

    def __init__(self, raw: Corpus, enc: Corpus):
        self.words = np.asarray(raw.vocab.tokens, dtype=object)[raw.ids]
        self.oov = enc.ids == enc.vocab.unk_id
        self.offsets = raw.offsets
        self.lengths = raw.sentence_lengths

    def token(self, s: int, i: int) -> str:
        return "</s>" if i >= self.lengths[s] else str(self.words[self.offsets[s] + i])

    def is_oov(self, s: int, i: int) -> bool:
        return bool(i < self.lengths[s] and self.oov[self.offsets[s] + i])

    def around(self, s: int, i: int, window: int = WINDOW) -> tuple[str, str]:
        start, length = self.offsets[s], self.lengths[s]
        left = self.words[start + max(0, i - window) : start + min(i, length)]
        right = self.words[start + i + 1 : start + min(length, i + 1 + window)] if i < length else []
        pre = "... " if i - window > 0 else ""
        post = " ..." if i + 1 + window < length else (" </s>" if i < length else "")
        return pre + " ".join(map(str, left)), " ".join(map(str, right)) + post


# ---------------------------------------------------------------------------- sections
def _model_card(model, report_seed) -> dict:
    post = model.idata["posterior"]
    attrs = dict(post.attrs)
    try:
        config = json.loads(attrs["config"]) if "config" in attrs else model.get_config()
    except (TypeError, json.JSONDecodeError):
        config = model.get_config()
    stats_attrs = dict(model.idata["sample_stats"].attrs) if "sample_stats" in model.idata.groups() else {}
    from bayeslm import __version__
    card = {
        "family": getattr(model, "family", type(model).__name__),
        "class": type(model).__name__,
        "order": getattr(model, "order", None),
        "architecture": config.get("model", {}),
        "id": attrs.get("id", model.id),
        "vocabulary_size": len(model.vocabulary),
        "tokenizer": config.get("tokenizer", {}),
        "training_tokens": attrs.get("training_tokens"),
        "training_sentences": attrs.get("training_sentences"),
        "priors": config.get("prior", {}),
        "sampler": config.get("sampler", {}),
        "seeds": {"sampler_random_seed": config.get("sampler", {}).get("random_seed"), "report_random_seed": report_seed},
        "posterior": {"chains": int(post.sizes.get("chain", 0)), "draws_per_chain": int(post.sizes.get("draw", 0)),
                      "tuning_steps": stats_attrs.get("tuning_steps", attrs.get("tuning_steps")),
                      "variables": [str(v) for v in post.data_vars]},
        "fit_seconds": attrs.get("fit_seconds", model.fit_seconds_),
        "sampling_seconds": stats_attrs.get("sampling_time", attrs.get("sampling_time")),
        "fitted_at": attrs.get("created_at"),
        "versions": {
            "bayeslm_at_fit": attrs.get("bayeslm_version"),
            "bayeslm": __version__,
            "pymc": _version("pymc"),
            "arviz": _version("arviz"),
            "inference_library_at_fit": stats_attrs.get("inference_library", attrs.get("inference_library")),
            "inference_library_version_at_fit": stats_attrs.get("inference_library_version",
                                                                attrs.get("inference_library_version")),
        },
    }
    if "mi_threshold_nats" in attrs:
        card["mi_threshold_nats"] = attrs["mi_threshold_nats"]
    return card


def _diagnostics(idata, var_names: list[str] | None, hdi_prob: float) -> dict:
    from bayeslm.stats import diagnostics as dg
    method = dg.inference_method(idata)
    names = dg.variables_to_check(idata, var_names)
    table = dg.parameter_table(idata, var_names=names, hdi_prob=hdi_prob) if names else None
    out = {
        "method": method,
        "thresholds": {"r_hat_max": dg.RHAT_MAX, "ess_min": dg.ESS_MIN, "bfmi_min": dg.BFMI_MIN,
                       "pareto_k_max": dg.PARETO_K_MAX, "divergences_max": 0},
        "hdi_prob": hdi_prob,
        "var_names": names,
        "parameters": [],
        "chains": [],
        "divergences": None,
        "max_treedepth_hits": None,
        "approximation": None,
        "message": None,
        "problems": [],
        "warnings": [],
    }
    mcmc = method == "mcmc"
    if table is not None:
        for name, row in table.iterrows():
            entry = {"name": str(name)}
            for col in ("mean", "sd", "hdi_low", "hdi_high", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"):
                entry[col] = float(row[col])
            if mcmc:
                for col in ("r_hat_ok", "ess_bulk_ok", "ess_tail_ok", "ok"):
                    entry[col] = bool(row[col])
                entry["problems"] = row["problems"]
                if not row["ok"]:
                    out["problems"].append(f"{name}: {row['problems']}")
            else:
                entry.update({"r_hat_ok": None, "ess_bulk_ok": None, "ess_tail_ok": None, "ok": None, "problems": ""})
            out["parameters"].append(entry)
    if mcmc:
        chains = dg.chain_table(idata)
        for chain, row in chains.iterrows():
            out["chains"].append({"chain": int(chain), **{k: row[k] for k in chains.columns}})
        if "divergences" in chains:
            out["divergences"] = int(chains["divergences"].sum())
            if out["divergences"] > 0:
                out["problems"].append(f"{out['divergences']} divergent transitions (after tuning)")
        if "max_treedepth_hits" in chains:
            out["max_treedepth_hits"] = int(chains["max_treedepth_hits"].sum())
            if out["max_treedepth_hits"] > 0:
                out["warnings"].append(f"{out['max_treedepth_hits']} transitions hit the maximum tree depth (slow mixing)")
        if "bfmi" in chains:
            for chain, row in chains.iterrows():
                if not row["bfmi_ok"]:
                    out["problems"].append(f"chain {chain}: E-BFMI {row['bfmi']:.2f} < {dg.BFMI_MIN}")
    else:
        approx = dg.approximation_checks(idata)
        out["approximation"] = {k: v for k, v in approx.items()}
        if approx["pareto_k_ok"] is False:
            out["problems"].append(f"Pareto k {approx['pareto_k']:.2f} > {dg.PARETO_K_MAX}: the approximation is far from the posterior")
        what = {"advi": "variational inference (ADVI)", "laplace": "a Laplace approximation"}.get(method, None)
        if what is None:
            out["message"] = (
                "No MCMC sampler statistics were recorded (no divergences or energy in sample_stats), so R-hat, "
                "ESS, divergences and E-BFMI cannot show whether the posterior was explored. Treat the intervals "
                "below as unchecked."
            )
        else:
            out["message"] = (
                f"This model was fitted by {what}, not MCMC. There are no Markov chains, so R-hat, ESS, "
                "divergences, tree depth and E-BFMI do not exist, and nothing here shows that independent chains "
                "agree. An approximation can be confidently wrong: ADVI tends to understate posterior spread, a "
                "Laplace approximation assumes a Gaussian around the mode. Its own checks are the ELBO trace (did "
                "the optimisation converge?) and, where importance sampling applies, PSIS Pareto k (k <= 0.7: "
                "close enough to the posterior to correct by importance sampling)."
            )
    out["ok"] = not out["problems"]
    return out


def _ppc(model, test_enc: Corpus, train_enc: Corpus | None, replicates: int, random_seed) -> dict:
    from bayeslm.stats.ppc import posterior_predictive_check

    if not callable(getattr(model, "sample_sentences", None)):
        return {"available": False, "reason": f"{type(model).__name__} cannot draw replicate corpora (no sample_sentences)"}
    observed, which = (train_enc, "train") if train_enc is not None else (test_enc, "test")
    try:
        check = posterior_predictive_check(model, observed, test=test_enc, observed_corpus=which,
                                           replicates=replicates, random_seed=random_seed)
    except NotImplementedError:
        return {"available": False, "reason": f"{type(model).__name__} cannot draw replicate corpora"}
    out = {"available": True, **check.to_dict()}
    flagged = [name for name, s in out["statistics"].items()
               if s["p_value_two_sided"] is not None and s["p_value_two_sided"] < 0.05]
    out["flag_two_sided_below"] = 0.05
    out["flagged"] = flagged
    return out


def _histogram(values, edges) -> dict:
    counts, edges = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {"bin_edges_bits": [float(e) for e in edges], "count": [int(c) for c in counts]}


_CHUNK_CONTEXT_SAMPLES = 1 << 23  # contexts x posterior samples per context_entropy_split call (64 MB per array)


def _entropy_split_bits(model, enc: Corpus, contexts: np.ndarray, inverse: np.ndarray):
    """(total, aleatoric, epistemic) bits per scored position.

    Computed once per distinct context with ``model.context_entropy_split``, in chunks of
    contexts sized so that a (contexts, posterior samples) array stays near 64 MB; a family
    without it falls back to ``model.entropy_split`` over the whole text.
    """
    chunk = max(256, _CHUNK_CONTEXT_SAMPLES // max(int(model.n_samples), 1))
    try:
        parts = [model.context_entropy_split(contexts[start : start + chunk])
                 for start in range(0, contexts.shape[0], chunk)]
    except NotImplementedError:
        split = model.entropy_split(enc)
        return tuple(split[k].to_numpy() / LN2 for k in ("total", "aleatoric", "epistemic"))
    per_context = {k: np.concatenate([p[k].to_numpy() for p in parts]) / LN2 for k in ("total", "aleatoric", "epistemic")}
    return per_context["total"][inverse], per_context["aleatoric"][inverse], per_context["epistemic"][inverse]


def _entropy(model, raw: Corpus, enc: Corpus, hdi_prob: float, passage_tokens: int, top_k: int, timing: dict) -> tuple[dict, dict]:
    """The entropy section and arrays the comparison reuses."""
    from bayeslm.stats.calibration import (
        N_BINS,
        distinct_contexts,
        expected_calibration_error,
        reliability_bins,
        top1_of_contexts,
    )

    t0 = time.perf_counter()
    evaluation = model.evaluate(enc, hdi_prob=hdi_prob)
    lp = np.asarray(model.predictive_log_prob(enc), dtype=float)
    timing["evaluate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    contexts, inverse, tokens = distinct_contexts(enc, model.context_length)
    total, ale, epi = _entropy_split_bits(model, enc, contexts, inverse)
    timing["entropy_split"] = time.perf_counter() - t0
    surprisal = -lp / LN2
    text = _Text(raw, enc)
    sentence, index = _position_layout(enc)

    ce_draws = np.asarray(evaluation.cross_entropy_bits).ravel()
    ce_counts, ce_edges = np.histogram(ce_draws, bins=30)
    top_edge = float(max(total.max(), ale.max(), 1e-9))
    shared = np.linspace(0.0, top_edge, N_HIST + 1)
    epi_edges = np.linspace(0.0, float(max(epi.max(), 1e-9)), N_HIST + 1)
    out = {
        "evaluation": evaluation.to_dict(),
        "cross_entropy_bits_histogram": {"bin_edges_bits": ce_edges.tolist(), "count": ce_counts.tolist()},
        "per_position_bits": {"total": _interval(total), "aleatoric": _interval(ale), "epistemic": _interval(epi),
                              "surprisal": _interval(surprisal)},
        "epistemic_share": float(epi.sum() / total.sum()) if total.sum() > 0 else None,
        "histograms": {"total": _histogram(total, shared), "aleatoric": _histogram(ale, shared),
                       "epistemic": _histogram(epi, epi_edges)},
    }

    # a passage: the first positions of the text
    n_pass = int(min(max(passage_tokens, 1), lp.size))
    out["passage"] = {
        "positions": n_pass,
        "tokens": [text.token(int(s), int(i)) for s, i in zip(sentence[:n_pass], index[:n_pass])],
        "oov": [text.is_oov(int(s), int(i)) for s, i in zip(sentence[:n_pass], index[:n_pass])],
        "sentence_starts": [int(p) for p in np.flatnonzero(index[:n_pass] == 0)],
        "surprisal_bits": surprisal[:n_pass].tolist(),
        "entropy_bits": total[:n_pass].tolist(),
        "aleatoric_bits": ale[:n_pass].tolist(),
        "epistemic_bits": epi[:n_pass].tolist(),
    }

    def where(p: int) -> dict:
        s, i = int(sentence[p]), int(index[p])
        left, right = text.around(s, i)
        return {"position": int(p), "sentence": s, "index": i, "token": text.token(s, i), "oov": text.is_oov(s, i),
                "left": left, "right": right}

    k = int(min(top_k, lp.size))
    worst = np.argsort(lp, kind="stable")[:k]
    out["most_surprising"] = [
        {**where(int(p)), "log_prob_nats": float(lp[p]), "surprisal_bits": float(surprisal[p]),
         "entropy_bits": float(total[p]), "epistemic_bits": float(epi[p])}
        for p in worst
    ]

    t0 = time.perf_counter()
    first = np.full(contexts.shape[0], lp.size, dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(lp.size))
    occurrences = np.bincount(inverse, minlength=contexts.shape[0])
    ctx_epi = epi[first]
    # highest epistemic first; ties (contexts with equal counts share their entropies) by occurrences, then position
    order = np.lexsort((first, -occurrences, -np.round(ctx_epi, 9)))[: int(min(top_k, contexts.shape[0]))]
    vocab_tokens = enc.vocab.tokens
    out["most_uncertain_contexts"] = [
        {"context": [vocab_tokens[int(t)] for t in contexts[c]], "occurrences": int(occurrences[c]),
         "epistemic_bits": float(epi[first[c]]), "aleatoric_bits": float(ale[first[c]]),
         "entropy_bits": float(total[first[c]]), "example": where(int(first[c]))}
        for c in order
    ]

    timing["tables"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    conf_ctx, top_ctx = top1_of_contexts(model, contexts)
    confidence = conf_ctx[inverse]
    correct = top_ctx[inverse] == tokens
    bins = reliability_bins(confidence, correct, N_BINS)
    out["calibration"] = {
        "n_bins": N_BINS,
        "ece": expected_calibration_error(confidence, correct, N_BINS),
        "positions": int(confidence.size),
        "distinct_contexts": int(contexts.shape[0]),
        "accuracy": float(correct.mean()),
        "mean_confidence": float(confidence.mean()),
        "bins": bins.to_dict(orient="records"),
    }
    timing["calibration"] = time.perf_counter() - t0
    return out, {"log_prob": lp, "evaluation": evaluation}


def _comparison(models: list, labels: list[str], raw: Corpus, main_enc: Corpus, main_arrays: dict, hdi_prob: float) -> dict:
    n_pos = main_enc.n_tokens + main_enc.n_sentences
    sentence_of = np.repeat(np.arange(main_enc.n_sentences), main_enc.sentence_lengths + 1)
    rows = []
    per_sentence = []
    for i, (model, label) in enumerate(zip(models, labels)):
        if i == 0:
            lp, ev = main_arrays["log_prob"], main_arrays["evaluation"]
        else:
            try:
                enc = model.encode(raw)
            except VocabularyMismatchError as err:
                raise VocabularyMismatchError(f"cannot compare {label!r} on the same tokens: {err}") from None
            if enc.n_sentences != main_enc.n_sentences or not np.array_equal(enc.offsets, main_enc.offsets):
                raise VocabularyMismatchError(
                    f"cannot compare {label!r}: it splits the test text into other tokens than {labels[0]!r} "
                    "(models are compared on the same scored tokens; use the same tokenizer)"
                )
            lp = np.asarray(model.predictive_log_prob(enc), dtype=float)
            ev = model.evaluate(enc, hdi_prob=hdi_prob)
        if lp.size != n_pos:
            raise VocabularyMismatchError(f"{label!r} scores {lp.size} positions, {labels[0]!r} scores {n_pos}")
        e = np.bincount(sentence_of, weights=lp, minlength=main_enc.n_sentences)
        per_sentence.append(e)
        d = ev.to_dict()
        rows.append({
            "label": label,
            "family": getattr(model, "family", type(model).__name__),
            "order": getattr(model, "order", None),
            "id": model.id,
            "tokens": int(n_pos),
            "elpd_sum_nats": float(lp.sum()),
            "elpd_per_token_nats": float(lp.sum() / n_pos),
            "elpd_se_per_token_nats": float(np.sqrt(e.size * np.var(e)) / n_pos),
            "predictive_cross_entropy_bits": float(-lp.sum() / n_pos / LN2),
            "predictive_perplexity": d["predictive_perplexity"],
            "perplexity": d["perplexity"],
            "cross_entropy_bits": d["cross_entropy_bits"],
            "fit_seconds": float(model.fit_seconds_) if model.fit_seconds_ is not None else None,
        })
    ranking = sorted(range(len(rows)), key=lambda j: -rows[j]["elpd_sum_nats"])
    best = ranking[0]
    out_rows = []
    for rank, j in enumerate(ranking, start=1):
        diff = per_sentence[best] - per_sentence[j]  # >= 0 on average: how much worse than the best
        row = dict(rows[j])
        row["rank"] = rank
        row["elpd_diff_per_token_nats"] = float(diff.sum() / n_pos)
        row["elpd_diff_se_per_token_nats"] = None if j == best else float(np.sqrt(diff.size * np.var(diff)) / n_pos)
        out_rows.append(row)
    return {
        "method": ("elpd_i = log mean_s p(y_i | theta_s) per scored position (model.predictive_log_prob); "
                   "per-sentence sums e_j; difference to the best d_j = e_best,j - e_j; "
                   "se = sqrt(J * var(d_j)) / N per token (J sentences, N scored tokens, var with ddof 0, as arviz.compare)"),
        "sentences": int(main_enc.n_sentences),
        "tokens": int(n_pos),
        "models": out_rows,
    }


# ------------------------------------------------------------------------------ report
@dataclass
class Report:
    """The computed report: ``data`` (the JSON content) and the InferenceData its MCMC plots need.

    Use :meth:`to_dict` / :meth:`to_json` for programs, :meth:`to_html` for people,
    :meth:`write` for both at once (``x.html`` and ``x.json``).
    """

    data: dict
    idata: object = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Every figure of the report as plain JSON data (schema ``bayeslm.report/1``)."""
        return json.loads(json.dumps(self.data))

    def json_text(self) -> str:
        return json.dumps(self.data, indent=1, allow_nan=False, ensure_ascii=False)

    def to_json(self, path: str | Path) -> Path:
        """Write the JSON atomically; the directory must exist."""
        path = Path(path)
        if not path.parent.is_dir():
            raise ConfigError(f"{path}: directory {path.parent} does not exist")
        _write_text(path, self.json_text() + "\n")
        return path

    def render_html(self) -> str:
        """The page as a string (renders the figures; needs matplotlib)."""
        return _render_html(self)

    def to_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML page atomically; the directory must exist."""
        path = Path(path)
        if not path.parent.is_dir():
            raise ConfigError(f"{path}: directory {path.parent} does not exist")
        _write_text(path, self.render_html())
        return path

    def write(self, out: str | Path) -> tuple[Path, Path]:
        """Write ``out`` (HTML) and the JSON beside it with the same stem; both or neither.

        Both texts are rendered before either file is written; each is written to a
        temporary file and renamed.
        """
        html_path, json_path = output_paths(out)
        page, text = self.render_html(), self.json_text() + "\n"
        _write_text(json_path, text)
        _write_text(html_path, page)
        return html_path, json_path

    @property
    def ok(self) -> bool:
        return bool(self.data["diagnostics"]["ok"])

    def __str__(self) -> str:
        d = self.data
        ev = d["entropy"]["evaluation"]
        pp = ev["perplexity"]
        diag = d["diagnostics"]
        lines = [
            f"{d['model']['family']} order {d['model']['order']} on {d['test']['tokens']} held-out tokens",
            "fit: OK" if diag["ok"] else f"fit: {len(diag['problems'])} problem(s): " + " | ".join(diag["problems"][:3])
            + (" | ..." if len(diag["problems"]) > 3 else ""),
            f"predictive cross-entropy {ev['predictive_cross_entropy_bits']:.4f} bits/token, perplexity "
            f"{ev['predictive_perplexity']:.2f} (per draw {pp['mean']:.2f}, {100 * pp['hdi_prob']:.0f}% HDI "
            f"[{pp['hdi_low']:.2f}, {pp['hdi_high']:.2f}])",
            f"calibration: ECE {d['entropy']['calibration']['ece']:.4f}",
        ]
        if d["ppc"].get("available"):
            lines.append("posterior predictive checks: " + (
                "flagged " + ", ".join(d["ppc"]["flagged"]) if d["ppc"]["flagged"] else "no statistic outside the replicates"))
        return "\n".join(lines)


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
        A fitted model (any family answering the protocol of :mod:`bayeslm.base`).
    test : Corpus, str or list of str
        Held-out text. Tokenised by the model (a :class:`Corpus` must have been split by
        the same tokenizer).
    compare : sequence of BayesianLM
        Other fitted models scored on the same tokens; ranked with ``model`` by held-out
        elpd per token with paired standard errors over sentences.
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
    if not 0 < float(hdi_prob) < 1:
        raise ConfigError(f"hdi_prob must lie in (0, 1), got {hdi_prob}")
    if int(replicates) < 1:
        raise ConfigError(f"replicates must be at least 1, got {replicates}")
    if int(top_k) < 1 or int(passage_tokens) < 1:
        raise ConfigError("top_k and passage_tokens must be at least 1")
    start = time.perf_counter()
    _check_model(model)
    compare = list(compare)
    for i, other in enumerate(compare):
        _check_model(other, f"compared model {i + 1}")
    models = [model, *compare]
    if labels is None:
        labels = [f"{getattr(m, 'family', type(m).__name__)} order {getattr(m, 'order', '?')} ({m.id[:8]})" for m in models]
    labels = [str(x) for x in labels]
    if len(labels) != len(models):
        raise ConfigError(f"{len(labels)} labels for {len(models)} models")
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):  # unique labels
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label} #{seen[label]}"

    raw, enc = _as_corpus(model, test)
    n_oov = int(np.count_nonzero(enc.ids == enc.vocab.unk_id))
    if n_oov == enc.n_tokens:
        raise VocabularyMismatchError(
            f"none of the {enc.n_tokens} test tokens is in the model's vocabulary of {len(model.vocabulary)} types "
            "(another language, tokenizer or vocabulary?)"
        )
    train_enc = None
    if train is not None:
        _, train_enc = _as_corpus(model, train)

    timing: dict = {}
    t0 = time.perf_counter()
    card = _model_card(model, random_seed)
    diagnostics = _diagnostics(model.idata, model.diagnostic_var_names, hdi_prob)
    timing["diagnostics"] = time.perf_counter() - t0
    entropy, arrays = _entropy(model, raw, enc, hdi_prob, passage_tokens, top_k, timing)
    t0 = time.perf_counter()
    ppc = _ppc(model, enc, train_enc, replicates, random_seed)
    timing["ppc"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    comparison = _comparison(models, labels, raw, enc, arrays, hdi_prob)
    timing["comparison"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sampled = [
        {"prompt": prompt, "continuations": [c.to_dict() for c in model.generate(
            prompt, n=int(continuations), max_tokens=int(max_tokens), random_seed=random_seed)]}
        for prompt in prompts
    ]
    timing["continuations"] = time.perf_counter() - t0
    timing["total"] = time.perf_counter() - start

    data = {
        "schema": SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label": labels[0],
        "model": card,
        "test": {
            "sources": list(raw.sources),
            "sentences": enc.n_sentences,
            "words": enc.n_tokens,
            "tokens": enc.n_tokens + enc.n_sentences,
            "oov": n_oov,
            "oov_rate": n_oov / enc.n_tokens,
        },
        "train": None if train_enc is None else {"sentences": train_enc.n_sentences, "words": train_enc.n_tokens},
        "settings": {"replicates": int(replicates), "hdi_prob": float(hdi_prob), "random_seed": random_seed,
                     "passage_tokens": int(passage_tokens), "top_k": int(top_k)},
        "diagnostics": diagnostics,
        "ppc": ppc,
        "entropy": entropy,
        "comparison": comparison,
        "continuations": sampled,
        "timing_seconds": timing,
    }
    return Report(data=_jsonable(data), idata=model.idata)


# -------------------------------------------------------------------------------- HTML
def _e(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _num(x, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    x = float(x)
    if not math.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 10 ** -(digits - 1)):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:,.{digits}f}"


def _img(fig, alt: str, width: str | None = None) -> str:
    from bayeslm.report.plots import figure_to_png

    data = base64.b64encode(figure_to_png(fig)).decode("ascii")
    style = f' style="max-width:{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}"{style}>'


def _figure(make, alt: str, caption: str, width: str | None = None) -> str:
    """An image with its caption; a failed plot becomes a visible note, not a broken page."""
    try:
        image = _img(make(), alt, width)
    except Exception as err:  # noqa: BLE001 - a plot must never lose the numbers
        image = f'<p class="note">This figure could not be drawn ({_e(type(err).__name__)}: {_e(err)}).</p>'
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None, cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        c = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{c}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _kv(pairs: list[tuple[str, str]]) -> str:
    return '<table class="kv"><tbody>' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs) + "</tbody></table>"


def _json_cell(obj) -> str:
    return f"<code>{_e(json.dumps(obj, ensure_ascii=False))}</code>"


def _status(ok) -> str:
    if ok is None:
        return '<span class="na">n/a</span>'
    return '<span class="pass">&#10003; pass</span>' if ok else '<span class="failmark">&#10007; FAIL</span>'


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f6f7f9;color:#1d2430;line-height:1.45}
main{max-width:1120px;margin:0 auto;padding:18px 28px 60px;background:#fff;box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:1.7em;margin:.3em 0 .1em}h2{border-bottom:2px solid #dde3ea;padding-bottom:.2em;margin-top:2.2em}
h3{margin-top:1.6em}.sub{color:#5a6472;margin:0 0 1em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.9em}th,td{border:1px solid #dde3ea;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#eef2f6}td:first-child,th:first-child{text-align:left}table.kv th{text-align:left;width:14em}table.kv td{text-align:left}
table.text td,table.text th{text-align:left}table.cmp td:nth-child(-n+3),table.cmp th:nth-child(-n+3){text-align:left}
.nowrap{white-space:nowrap}tr.fail td{background:#fde8e8}tr.warn td{background:#fff6dd}
.pass{color:#1a7f37;font-weight:600}.failmark{color:#b42318;font-weight:700}.na{color:#7a8491}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:14px;margin:1em 0}
.card{border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;background:#fbfcfd}.card h3{margin:.1em 0 .4em;font-size:1.02em}
.card.bad{border-color:#f1a7a7;background:#fff5f5}.card.good{border-color:#a6dcb5;background:#f4fbf6}.card.warn{border-color:#f0cf7a;background:#fffaeb}
.big{font-size:1.35em;font-weight:700}figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eef0f3}
figcaption{font-size:.88em;color:#4a5563;max-width:900px}.note{background:#fff6dd;border-left:4px solid #e0a800;padding:8px 12px}
.alert{background:#fde8e8;border-left:4px solid #b42318;padding:8px 12px}mark{background:#ffe08a;padding:0 2px}
code{font-size:.85em;word-break:break-all}nav a{margin-right:1em}.oov{color:#b42318;font-size:.8em}
.passage{line-height:2.1;font-size:.95em}.passage span{padding:1px 2px;border-radius:3px}
footer{margin-top:3em;color:#6b7480;font-size:.85em}
ol.continuations li{margin:.5em 0;line-height:2}.tok{padding:1px 3px;border-radius:3px;border:1px solid #eef0f3}
.prompt{color:#5a6472;font-style:italic}
"""


def _section_card(d: dict) -> str:
    card = d["model"]
    post = card["posterior"]
    v = card["versions"]
    pairs = [
        ("family / class", f"{_e(card['family'])} / {_e(card['class'])}"),
        ("order / architecture", f"{_e(card['order'])} &nbsp; {_json_cell(card['architecture'])}"),
        ("model id", _e(card["id"])),
        ("vocabulary", f"{_num(card['vocabulary_size'])} types &nbsp; tokenizer {_json_cell(card['tokenizer'])}"),
        ("training text", f"{_num(card['training_tokens'])} tokens in {_num(card['training_sentences'])} sentences"),
        ("priors", _json_cell(card["priors"])),
        ("sampler settings", _json_cell(card["sampler"])),
        ("posterior", f"{post['chains']} chains x {post['draws_per_chain']} draws (tuning {_e(post['tuning_steps'])}); "
                      f"variables {_e(', '.join(post['variables']))}"),
        ("seeds", f"sampler {_e(card['seeds']['sampler_random_seed'])}, report replicates {_e(card['seeds']['report_random_seed'])}"),
        ("fit time", f"{_num(card['fit_seconds'], 1)} s (sampling {_num(card['sampling_seconds'], 1)} s), fitted {_e(card['fitted_at'])}"),
        ("versions", f"bayeslm {_e(v['bayeslm'])} (fitted with {_e(v['bayeslm_at_fit'])}), PyMC {_e(v['pymc'])}, "
                     f"ArviZ {_e(v['arviz'])}; sampled by {_e(v['inference_library_at_fit'])} {_e(v['inference_library_version_at_fit'])}"),
    ]
    if "mi_threshold_nats" in card:
        pairs.append(("epistemic flag threshold", f"{_num(card['mi_threshold_nats'] / LN2)} bits (used by generate)"))
    t = d["test"]
    pairs.append(("held-out text", f"{_num(t['words'])} tokens in {_num(t['sentences'])} sentences ({_num(t['tokens'])} scored "
                                   f"positions with one &lt;/s&gt; each), {_num(t['oov'])} out of vocabulary "
                                   f"({100 * t['oov_rate']:.2f}%); {_e(', '.join(t['sources']))}"))
    return '<h2 id="card">1. Model card</h2>' + _kv(pairs)


def _section_diagnostics(rep: Report) -> str:
    from bayeslm.report import plots
    dg = rep.data["diagnostics"]
    th = dg["thresholds"]
    parts = ['<h2 id="diagnostics">2. Posterior diagnostics</h2>']
    if dg["ok"]:
        parts.append(f'<p class="pass">&#10003; All checks pass: R-hat &le; {th["r_hat_max"]}, bulk and tail ESS &ge; '
                     f'{th["ess_min"]}, no divergences, E-BFMI &ge; {th["bfmi_min"]} in every chain.</p>'
                     if dg["method"] == "mcmc" else '<p>No failed check.</p>')
    else:
        parts.append('<div class="alert"><b>&#10007; Do not trust this fit yet.</b><ul>'
                     + "".join(f"<li>{_e(p)}</li>" for p in dg["problems"]) + "</ul></div>")
    for w in dg["warnings"]:
        parts.append(f'<p class="note">{_e(w)}</p>')
    if dg["message"]:
        parts.append(f'<p class="note">{_e(dg["message"])}</p>')
    pct = f"{100 * dg['hdi_prob']:.0f}%"
    header = ["parameter", "mean", "sd", f"{pct} HDI", "MCSE mean", "MCSE sd", "ESS bulk", "ESS tail", "R-hat", "check"]
    rows, classes = [], []
    for p in dg["parameters"]:
        check = _status(p["ok"]) + (f"<br><small>{_e(p['problems'])}</small>" if p["problems"] else "")
        rows.append([_e(p["name"]), _num(p["mean"]), _num(p["sd"]), f"[{_num(p['hdi_low'])}, {_num(p['hdi_high'])}]",
                     _num(p["mcse_mean"]), _num(p["mcse_sd"]), _num(p["ess_bulk"], 0), _num(p["ess_tail"], 0),
                     _num(p["r_hat"], 4), check])
        classes.append("fail" if p["ok"] is False else "")
    parts.append(f"<p>Thresholds: R-hat &le; {th['r_hat_max']}, bulk and tail ESS &ge; {th['ess_min']} "
                 "(Vehtari et al. 2021). Failing rows are marked.</p>")
    parts.append(_table(header, rows, classes))
    if dg["chains"]:
        cols = [c for c in ("draws", "divergences", "max_treedepth_hits", "bfmi") if c in dg["chains"][0]]
        rows, classes = [], []
        for c in dg["chains"]:
            rows.append([str(c["chain"])] + [_num(c[k], 3) if k == "bfmi" else _num(c[k]) for k in cols]
                        + [_status(c.get("bfmi_ok", True) and not c.get("divergences", 0))])
            classes.append("" if (c.get("bfmi_ok", True) and not c.get("divergences", 0)) else "fail")
        names = {"draws": "draws", "divergences": "divergences", "max_treedepth_hits": "max tree depth hits", "bfmi": "E-BFMI"}
        parts.append("<h3>Per chain</h3>" + _table(["chain"] + [names[c] for c in cols] + ["check"], rows, classes))
    names = dg["var_names"]
    if dg["method"] == "mcmc" and names:
        parts.append(_figure(lambda: plots.plot_rank(rep.idata, names), "rank plots",
                             "Rank plots: the ranks of all draws, split by chain. When the chains explore the same "
                             "posterior every bar is near the dashed uniform line; bars sloping or differing between "
                             "chains mean the chains disagree."))
        parts.append(_figure(lambda: plots.plot_trace(rep.idata, names), "trace plots",
                             "Trace plots: each chain's posterior density (left) and its draws in order (right); the "
                             "chains should overlap and the traces look like stationary noise."))
        if "sample_stats" in rep.idata.groups() and "energy" in rep.idata["sample_stats"]:
            parts.append(_figure(lambda: plots.plot_energy(rep.idata), "energy plot",
                                 "NUTS energy: the marginal energy distribution against the energy transitions. "
                                 "If the transition distribution is much narrower (E-BFMI &lt; 0.3), the sampler "
                                 "explores the tails poorly.", width="640px"))
    approx = dg.get("approximation")
    if approx:
        rows = [("final ELBO", _num(approx.get("elbo_final"))),
                ("relative ELBO change over the last 10% of iterations", _num(approx.get("elbo_relative_change_last_10pct"))),
                ("PSIS Pareto k (max)", f"{_num(approx.get('pareto_k'), 3)} {_status(approx.get('pareto_k_ok'))}")]
        parts.append("<h3>Checks of the approximation</h3>" + _kv(rows))
        if approx.get("elbo"):
            parts.append(_figure(lambda: plots.plot_elbo(approx["elbo"]), "ELBO trace",
                                 "ELBO per iteration: it should rise and level off."))
    return "".join(parts)


def _section_ppc(rep: Report) -> str:
    from bayeslm.report import plots
    ppc = rep.data["ppc"]
    parts = ['<h2 id="ppc">3. Posterior predictive checks</h2>']
    if not ppc.get("available"):
        return "".join(parts) + f'<p class="note">{_e(ppc.get("reason"))}</p>'
    what = "training text" if ppc["observed_corpus"] == "train" else "held-out text"
    parts.append(
        f"<p>{ppc['replicates']} replicate corpora of {_num(ppc['replicate_sentences'])} sentences each (the size of the "
        f"{what}) were drawn from the fitted model, each from its own posterior draw, and compared with the {what}. "
        f"The unseen-n-gram share is measured on {_num(ppc['novelty_sentences'])}-sentence replicates (the held-out size) "
        "against the training counts. p is the share of replicates whose statistic is &ge; the observed one; "
        "the two-sided value 2&nbsp;min(p,&nbsp;1&minus;p) below 0.05 is flagged: the model does not reproduce that "
        "feature of the text.</p>")
    if ppc["observed_corpus"] == "test":
        parts.append('<p class="note">The training text was not given (<code>train=</code> / <code>--train</code>), '
                     "so the replicates are compared with the held-out text: a check of the model's predictions on "
                     "new text rather than of its fit to the training text.</p>")
    rows, classes = [], []
    for name, s in ppc["statistics"].items():
        flagged = name in ppc["flagged"]
        digits = 4 if "share" in name else 2
        rows.append([f"<b>{_e(name)}</b><br><small>{_e(s['description'])}</small>", _num(s["observed"], digits),
                     _num(s["replicated_mean"], digits),
                     f"[{_num(s['replicated_q025'], digits)}, {_num(s['replicated_q975'], digits)}]",
                     _num(s["p_value"], 2), _num(s["p_value_two_sided"], 2),
                     '<span class="failmark nowrap">&#9888; outside</span>' if flagged else '<span class="pass">&#10003;</span>'])
        classes.append("warn" if flagged else "")
    parts.append(_table(["statistic", "observed", "replicated mean", "replicates 95%", "p", "two-sided p", ""], rows, classes))
    parts.append(_figure(lambda: plots.plot_ppc_statistics(ppc), "posterior predictive statistics",
                         "Each panel: the statistic in every replicate (grey) and in the observed text (red line)."))
    parts.append('<div class="cards" style="grid-template-columns:1fr 1fr">')
    parts.append(_figure(lambda: plots.plot_count_of_counts(ppc), "frequency of frequencies",
                         "How many types occur exactly c times. Language has many rare types (Zipf); a model that "
                         "smooths too little or too much shifts the left end."))
    parts.append(_figure(lambda: plots.plot_type_token(ppc), "type-token growth",
                         "Distinct types met as the text is read; its slope is the rate of new words."))
    parts.append("</div>")
    parts.append(_figure(lambda: plots.plot_sentence_lengths(ppc), "sentence lengths",
                         "Sentence lengths of the observed text (bars) and the replicates (band and median line).",
                         width="640px"))
    return "".join(parts)


def _context_html(item: dict) -> str:
    oov = ' <span class="oov">OOV</span>' if item.get("oov") else ""
    return f"{_e(item['left'])} <mark>{_e(item['token'])}</mark>{oov} {_e(item['right'])}"


def _section_entropy(rep: Report) -> str:
    from bayeslm.report import plots
    ent = rep.data["entropy"]
    ev = ent["evaluation"]
    ce, pp = ev["cross_entropy_bits"], ev["perplexity"]
    pct = f"{100 * ce['hdi_prob']:.0f}%"
    per = ent["per_position_bits"]
    parts = ['<h2 id="entropy">4. Entropy on the held-out text</h2>']
    parts.append(_table(
        ["", "posterior predictive", "per draw: mean", f"{pct} HDI"],
        [["cross-entropy (bits per token)", _num(ev["predictive_cross_entropy_bits"]), _num(ce["mean"]),
          f"[{_num(ce['hdi_low'])}, {_num(ce['hdi_high'])}]"],
         ["perplexity", _num(ev["predictive_perplexity"], 2), _num(pp["mean"], 2),
          f"[{_num(pp['hdi_low'], 2)}, {_num(pp['hdi_high'], 2)}]"]]))
    parts.append("<p>The posterior-predictive value scores each token by its probability averaged over the posterior "
                 "(the mixture); the per-draw values score the text under one posterior draw at a time, so their HDI "
                 "shows how much the posterior's uncertainty moves the score. "
                 f"Scored positions: {_num(ev['tokens'])}, out-of-vocabulary words scored as &lt;unk&gt;: "
                 f"{_num(ev['oov'])}.</p>")
    parts.append(_figure(lambda: plots.plot_cross_entropy(ent), "cross-entropy posterior",
                         "Held-out cross-entropy under each posterior draw, its HDI and the posterior-predictive value.",
                         width="640px"))
    parts.append("<h3>Where the model is unsure</h3>")
    parts.append(
        "<p>At every position the entropy of the predictive next-token distribution splits into the <b>expected "
        "entropy</b> (aleatoric: the language itself leaves the next token open, even if the parameters were known) "
        "and the <b>mutual information</b> between the next token and the parameters (epistemic: the model has seen "
        "too little of this context; more data would reduce it).</p>")
    rows = [[name, _num(per[k]["mean"]), _num(per[k]["median"]), _num(per[k]["q05"]), _num(per[k]["q95"]), _num(per[k]["max"])]
            for name, k in (("predictive entropy", "total"), ("aleatoric (expected entropy)", "aleatoric"),
                            ("epistemic (mutual information)", "epistemic"), ("surprisal of the actual token", "surprisal"))]
    parts.append(_table(["bits per position", "mean", "median", "5%", "95%", "max"], rows))
    if ent.get("epistemic_share") is not None:
        parts.append(f"<p>Epistemic share of the predictive entropy: {100 * ent['epistemic_share']:.1f}%.</p>")
    parts.append(_figure(lambda: plots.plot_entropy_histograms(ent), "entropy histograms",
                         "Distributions over held-out positions (counts on a log scale; dashed: mean)."))
    parts.append(_figure(lambda: plots.plot_passage(ent), "entropy along a passage",
                         f"The first {ent['passage']['positions']} scored positions of the held-out text: bars are the "
                         "predictive entropy split into aleatoric (blue) and epistemic (orange) parts, red dots the "
                         "surprisal of the token that actually came; grey lines separate sentences."))
    # the passage as text, shaded by epistemic entropy
    p = ent["passage"]
    top = max(max(p["epistemic_bits"]), 1e-12)
    spans = []
    for tok, e_b, s_b, o in zip(p["tokens"], p["epistemic_bits"], p["surprisal_bits"], p["oov"]):
        alpha = min(e_b / top, 1.0) * 0.6
        title = f"surprisal {s_b:.2f} bits, epistemic {e_b:.3f} bits" + (", out of vocabulary" if o else "")
        oov_style = ";color:#b42318;text-decoration:underline dotted" if o else ""
        spans.append(f'<span style="background:rgba(221,132,82,{alpha:.2f}){oov_style}" title="{_e(title)}">{_e(tok)}</span>')
    parts.append('<p class="passage">' + " ".join(spans) + "</p>"
                 "<p><small>The same passage, shaded by epistemic uncertainty (darker: more); out-of-vocabulary words "
                 "(scored as &lt;unk&gt;) in red, here and on the plot's axis.</small></p>")

    rows = [[str(i + 1), _context_html(t), _num(t["surprisal_bits"], 2), _num(t["entropy_bits"], 2), _num(t["epistemic_bits"], 3),
             f"{t['sentence']}:{t['index']}"] for i, t in enumerate(ent["most_surprising"])]
    parts.append(f"<h3>The {len(rows)} most surprising tokens</h3><p>Lowest posterior-predictive probability "
                 "(highest surprisal), with the text around them.</p>")
    parts.append(_table(["#", "text (token marked)", "surprisal bits", "entropy bits", "epistemic bits", "sentence:index"],
                        rows, cls="text"))
    rows = [[str(i + 1), _e(" ".join(c["context"])), _num(c["occurrences"]), _num(c["epistemic_bits"], 3),
             _num(c["aleatoric_bits"], 3), _context_html(c["example"])] for i, c in enumerate(ent["most_uncertain_contexts"])]
    parts.append(f"<h3>The {len(rows)} most uncertain contexts</h3><p>Contexts with the highest mutual information "
                 "(epistemic entropy) among those in the held-out text, with their first occurrence.</p>")
    parts.append(_table(["#", "context", "occurrences", "epistemic bits", "aleatoric bits", "first occurrence"], rows, cls="text"))

    cal = ent["calibration"]
    parts.append("<h3>Calibration</h3>")
    parts.append(f"<p>Confidence is the top-1 posterior-predictive probability at each position; it is correct when "
                 f"that token is the one that came. Expected calibration error (ECE, {cal['n_bins']} equal-width bins, "
                 f"weighted by the positions in each): <b>{_num(cal['ece'])}</b>. Top-1 accuracy "
                 f"{100 * cal['accuracy']:.2f}% against mean confidence {100 * cal['mean_confidence']:.2f}% over "
                 f"{_num(cal['positions'])} positions ({_num(cal['distinct_contexts'])} distinct contexts).</p>")
    parts.append(_figure(lambda: plots.plot_reliability(cal), "reliability diagram",
                         "Bars below the diagonal: over-confident in that range; above: under-confident.", width="520px"))
    return "".join(parts)


def _section_comparison(rep: Report) -> str:
    from bayeslm.report import plots
    cmp_ = rep.data["comparison"]
    rows = []
    for r in cmp_["models"]:
        pp = r["perplexity"]
        rows.append([str(r["rank"]), _e(r["label"]), _e(r["family"]), _e(r["order"]), _num(r["elpd_per_token_nats"]),
                     _num(r["elpd_se_per_token_nats"]), _num(r["elpd_diff_per_token_nats"]),
                     _num(r["elpd_diff_se_per_token_nats"]), _num(r["predictive_perplexity"], 2),
                     f"{_num(pp['mean'], 2)} [{_num(pp['hdi_low'], 2)}, {_num(pp['hdi_high'], 2)}]",
                     _num(r["fit_seconds"], 1)])
    parts = ['<h2 id="comparison">5. Comparison</h2>']
    if len(rows) == 1:
        parts.append("<p>One model was given; pass others with <code>compare=[...]</code> or "
                     "<code>--compare DIR ...</code> to rank them on the same tokens.</p>")
    parts.append(f"<p>Ranked by held-out expected log predictive density per token (elpd, nats; higher is better) on "
                 f"{_num(cmp_['tokens'])} scored positions in {_num(cmp_['sentences'])} sentences. The difference to the "
                 "best and its standard error are paired over sentences: "
                 f"<small>{_e(cmp_['method'])}</small>.</p>")
    parts.append(_table(["rank", "model", "family", "order", "elpd / token", "SE", "diff to best", "SE of diff",
                         "predictive perplexity", "perplexity per draw [HDI]", "fit s"], rows, cls="cmp"))
    if len(rows) > 1:
        parts.append(_figure(lambda: plots.plot_comparison(cmp_), "model comparison",
                             "elpd per token with its standard error (black) and the paired standard error of the "
                             "difference to the best model (red).", width="700px"))
    return "".join(parts)


def _summary_cards(d: dict) -> str:
    dg, ent = d["diagnostics"], d["entropy"]
    ev, cal = ent["evaluation"], ent["calibration"]
    pp = ev["perplexity"]
    n_problems = len(dg["problems"])
    ppc_flags = d["ppc"].get("flagged", []) if d["ppc"].get("available") else []
    trust = "bad" if not dg["ok"] else ("warn" if ppc_flags else "good")
    verdict = {"bad": "No", "warn": "Converged; misfit flagged", "good": "Yes"}[trust]
    trust_text = ("All convergence checks pass." if dg["ok"] else f"{n_problems} failed check(s): see section 2.")
    if d["ppc"].get("available"):
        trust_text += (f" Posterior predictive checks flag {_e(', '.join(ppc_flags))} (section 3)." if ppc_flags
                       else " No posterior predictive check is flagged.")
    per = ent["per_position_bits"]
    return (
        '<div class="cards">'
        f'<div class="card {trust}"><h3>Can I trust the fit?</h3><div class="big">{verdict}</div><p>{trust_text}</p></div>'
        f'<div class="card"><h3>How well does it predict?</h3><div class="big">{_num(ev["predictive_cross_entropy_bits"], 3)} '
        f"bits/token</div><p>perplexity {_num(ev['predictive_perplexity'], 1)} (per draw {100 * pp['hdi_prob']:.0f}% HDI "
        f"[{_num(pp['hdi_low'], 1)}, {_num(pp['hdi_high'], 1)}]); top-1 accuracy {100 * cal['accuracy']:.1f}%, "
        f"ECE {_num(cal['ece'], 3)}</p></div>"
        f'<div class="card"><h3>Where is it unsure?</h3><div class="big">{_num(per["epistemic"]["mean"], 3)} bits</div>'
        f"<p>mean epistemic (mutual information) per position, against {_num(per['aleatoric']['mean'], 3)} bits "
        f"aleatoric; see the most uncertain contexts in section 4.</p></div>"
        "</div>"
    )


_SHADES = ("#ffffff", "#fde0dc", "#f9bdbb", "#f69988", "#f36c60", "#e84e40")  # white .. red


def _section_continuations(d: dict) -> str:
    """Sampled continuations, each token shaded by its mutual information (hover: details)."""
    groups = d.get("continuations") or []
    if not groups:
        return ""
    parts = ['<section id="continuations"><h2>Sampled continuations</h2>',
             "<p>Each continuation holds one posterior draw for its whole length, so their spread "
             "shows the model's epistemic uncertainty. A token's shade is its mutual information "
             "(epistemic entropy) relative to the flag threshold; underlined tokens are above it. "
             "Hover a token for its probabilities, entropy split and the top alternatives.</p>"]
    for group in groups:
        parts.append(f"<h3>Prompt: <q>{_e(group['prompt'])}</q></h3><ol class=\"continuations\">")
        for c in group["continuations"]:
            threshold = c["mi_threshold_bits"]
            scale = threshold if threshold and np.isfinite(threshold) and threshold > 0 else 1.0
            spans = []
            for t in c["tokens"]:
                if t["token"] == "</s>":
                    continue
                level = min(max(t["epistemic_bits"], 0.0) / scale, 1.0)
                shade = _SHADES[int(round(level * (len(_SHADES) - 1)))]
                top = ", ".join(f"{alt['token']} {alt['prob']:.3f}" for alt in t["top"])
                tip = (f"p(draw) {t['prob_draw']:.4f}; p(predictive) {t['prob_predictive']:.4f}; "
                       f"entropy {t['entropy_bits']:.2f} bits = aleatoric {t['aleatoric_bits']:.2f} + "
                       f"epistemic {t['epistemic_bits']:.3f}; top: {top}")
                style = f"background:{shade}" + (";text-decoration:underline" if t["flagged"] else "")
                spans.append(f'<span class="tok" style="{style}" title="{_e(tip)}">{_e(t["token"])}</span>')
            summary = (f"draw {c['draw']}, log p {c['log_prob_nats']:.2f} nats, mean entropy "
                       f"{c['mean_entropy_bits']:.2f} bits, mean MI {c['mean_epistemic_bits']:.3f} bits, "
                       f"{c['flagged_tokens']} flagged ({_e(c['stop_reason'])})")
            parts.append(f"<li><span class=\"prompt\">{_e(group['prompt'])}</span> {' '.join(spans)}"
                         f"<div class=\"sub\">{_e(summary)}</div></li>")
        parts.append("</ol>")
    parts.append("</section>")
    return "".join(parts)


def _render_html(rep: Report) -> str:
    d = rep.data
    card = d["model"]
    title = f"bayeslm report: {card['family']} order {card['order']}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(d["label"])} &middot; held-out text: {_e(", ".join(d["test"]["sources"]))} &middot; '
        f"generated {_e(d['created_at'])}</p>",
        '<nav><a href="#card">Model card</a><a href="#diagnostics">Diagnostics</a><a href="#ppc">Predictive checks</a>'
        '<a href="#entropy">Entropy</a><a href="#comparison">Comparison</a>'
        + ('<a href="#continuations">Continuations</a>' if d.get("continuations") else "") + "</nav>",
        _summary_cards(d),
        _section_card(d),
        _section_diagnostics(rep),
        _section_ppc(rep),
        _section_entropy(rep),
        _section_comparison(rep),
        _section_continuations(d),
        f"<footer>Written by bayeslm {_e(card['versions']['bayeslm'])} (schema {_e(d['schema'])}); every number on this "
        "page is in the JSON file beside it. Units: bits unless marked nats.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
