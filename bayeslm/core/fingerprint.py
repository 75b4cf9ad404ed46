"""What a fitted model's id is made of: fingerprints of its training data and of its posterior.

``BayesianLM.id`` of a fitted model is the short sha256 (:func:`model_id`) of three
fingerprints kept in the posterior attrs beside it: ``config_id`` (configuration, format
version, family: :func:`bayeslm.core.storage.config_id`), ``data_fingerprint`` (the training
data with its vocabulary: :func:`data_fingerprint`) and ``posterior_fingerprint`` (the
inferred values and the family's arrays: :func:`posterior_fingerprint`). Arrays are hashed by
value (whole numbers as int64, floats as float64, little-endian; strings as JSON), so the
files of a model directory give the fingerprints of the model that wrote them.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from bayeslm.core.idata import inferred_groups

__all__ = ["digest_arrays", "data_fingerprint", "posterior_fingerprint", "model_id"]

ID_HEX_DIGITS = 16


def _add_array(hasher, name: str, values, dims=()) -> None:
    array = np.asarray(values)
    if array.dtype.kind in "biu":
        kind, payload = "int", np.ascontiguousarray(array, dtype="<i8").tobytes()
    elif array.dtype.kind == "f":
        kind, payload = "float", np.ascontiguousarray(array, dtype="<f8").tobytes()
    else:  # strings (and anything else) by their JSON text
        kind, payload = "json", json.dumps(array.tolist(), default=str).encode("utf-8")
    hasher.update(json.dumps([name, list(dims), list(array.shape), kind]).encode("utf-8"))
    hasher.update(payload)


def digest_arrays(arrays: dict, *, label: str = "") -> str:
    """sha256 (hex) of named arrays by value, in name order, after ``label``."""
    hasher = hashlib.sha256(label.encode("utf-8"))
    for name in sorted(arrays):
        _add_array(hasher, name, arrays[name])
    return hasher.hexdigest()


def data_fingerprint(vocab_fingerprint: str, arrays: dict) -> str:
    """The training data's fingerprint: ``arrays`` (its counts, or ids and offsets) in that vocabulary."""
    return digest_arrays(arrays, label=f"training data in vocabulary {vocab_fingerprint}")


def posterior_fingerprint(idata, family_arrays: dict) -> str:
    """sha256 (hex) of what the fit inferred: every InferenceData group but the sampler
    statistics (values of its data variables, with their dims), and the family's arrays."""
    hasher = hashlib.sha256(b"posterior")
    for group, dataset in sorted(inferred_groups(idata).items()):
        for name in sorted(dataset.data_vars):
            variable = dataset[name]
            _add_array(hasher, f"{group}/{name}", variable.values, variable.dims)
    hasher.update(digest_arrays(family_arrays, label="family arrays").encode("ascii"))
    return hasher.hexdigest()


def model_id(config_id: str, data_fingerprint: str, posterior_fingerprint: str) -> str:
    """The fitted model's id: short sha256 of its configuration id and its two fingerprints."""
    text = json.dumps([config_id, data_fingerprint, posterior_fingerprint])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_HEX_DIGITS]
