"""The model card: what was fitted, on what, how, and with which versions."""

from __future__ import annotations

import json

from bayeslm.core.generation import model_mi_threshold_bits

__all__ = ["model_card"]


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _fit_config(model, attrs: dict) -> dict:
    """The configuration stored at fit time (the posterior's ``config`` attr), else the model's."""
    try:
        return json.loads(attrs["config"]) if "config" in attrs else model.get_config()
    except (TypeError, json.JSONDecodeError):
        return model.get_config()


def model_card(model, report_seed) -> dict:
    """Family, configuration, training size, posterior size, fit time and versions of ``model``."""
    from bayeslm.version import __version__

    post = model.idata["posterior"]
    attrs = dict(post.attrs)
    config = _fit_config(model, attrs)
    stats_attrs = dict(model.idata["sample_stats"].attrs) if "sample_stats" in model.idata.groups() else {}
    card = {
        "family": model.family,
        "class": type(model).__name__,
        "order": model.order,
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
    if "mi_threshold_nats" in attrs:  # stored in nats (Python-API state); people read bits
        card["mi_threshold_bits"] = model_mi_threshold_bits(model)
    return card
