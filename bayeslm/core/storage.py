"""Model directories: the family registry, the format version, and saving and loading.

A model directory holds ``model.nc`` (the InferenceData; the ``posterior`` group's attrs
carry ``model_type``, ``format_version``, ``id`` and the configuration as JSON),
``vocab.json``, ``tokenizer.json`` and, for families with arrays, ``arrays.npz`` (read
with ``allow_pickle=False``). Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bayeslm.core.files import atomic_directory
from bayeslm.exceptions import ConfigError, DifferentModelError, ModelFileError
from bayeslm.text.tokenize import tokenizer_from_dict
from bayeslm.text.vocab import Vocabulary

__all__ = ["FORMAT_VERSION", "register_family", "family_class", "known_families", "config_id",
           "save_model", "load_model"]

FORMAT_VERSION = 1
_FAMILIES: dict[str, type] = {}


def register_family(cls: type) -> None:
    """Make ``cls`` the class that loads and builds models of family ``cls.family``."""
    _FAMILIES[cls.family] = cls


def family_class(family: str) -> type:
    """The class of a family name; ConfigError naming the known ones if there is none."""
    try:
        return _FAMILIES[family]
    except KeyError:
        raise ConfigError(f"unknown model family {family!r}; known: {known_families()}") from None


def known_families() -> list[str]:
    return sorted(_FAMILIES)


def config_id(config: dict, family: str) -> str:
    """Short sha256 of a configuration, the format version and the family."""
    text = json.dumps([config, FORMAT_VERSION, family], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_model(model, path: str | Path, *, force: bool = False) -> Path:
    """Write ``model``'s directory at ``path``: under a temporary name, renamed when complete."""
    from bayeslm.core.idata import write_netcdf

    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; choose another directory or pass force=True (--force)")
    with atomic_directory(path, force=force) as tmp:
        write_netcdf(model.idata, tmp / "model.nc")
        model.vocab_.save(tmp / "vocab.json")
        (tmp / "tokenizer.json").write_text(json.dumps(model.tokenizer_.to_dict()), encoding="utf-8")
        arrays = model._family_arrays()
        if arrays:
            np.savez_compressed(tmp / "arrays.npz", **arrays)
    return path


def load_model(path: str | Path, expected: type | None = None):
    """Load a model directory written by :func:`save_model`.

    ``expected``: the class the caller asked for (``DirichletLM.load``); a directory of
    another family raises :class:`DifferentModelError`.
    """
    from bayeslm.core.idata import read_netcdf, root_attrs

    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path}: not a model directory")
    idata = read_netcdf(path / "model.nc")
    attrs = root_attrs(idata)
    target = _target_class(path, attrs, expected)
    try:
        config = json.loads(attrs["config"])
        tokenizer = tokenizer_from_dict(json.loads((path / "tokenizer.json").read_text(encoding="utf-8")))
    except (KeyError, json.JSONDecodeError, OSError, ConfigError) as err:
        raise ModelFileError(f"{path}: missing or corrupt configuration ({err})") from None
    model = target.from_config(config, tokenizer=tokenizer)
    if attrs.get("id") != config_id(config, attrs["model_type"]):  # the stored config, before new defaults
        raise DifferentModelError(f"{path}: the model id does not match its configuration (file altered?)")
    model.vocab_, model.tokenizer_ = Vocabulary.load(path / "vocab.json"), tokenizer
    if attrs.get("vocab_fingerprint") != model.vocab_.fingerprint:
        raise ModelFileError(f"{path}: vocab.json does not belong to this model")
    model.idata = idata
    model.fit_seconds_ = float(attrs.get("fit_seconds", 0.0))
    model._restore_family(_read_arrays(path / "arrays.npz"))
    model.is_fitted_ = True
    return model


def _target_class(path: Path, attrs: dict, expected: type | None) -> type:
    model_type = attrs.get("model_type")
    if model_type is None or "format_version" not in attrs:
        raise ModelFileError(f"{path}: model.nc was not written by bayeslm (no model_type / format_version)")
    version = int(attrs["format_version"])
    if version > FORMAT_VERSION:
        raise DifferentModelError(
            f"{path}: format version {version} is newer than this bayeslm reads ({FORMAT_VERSION}); upgrade bayeslm"
        )
    target = _FAMILIES.get(model_type)
    if target is None:
        raise DifferentModelError(f"{path}: unknown model type {model_type!r}")
    if expected is not None and target is not expected:
        raise DifferentModelError(f"{path}: holds a {model_type!r} model, not a {expected.family!r} model")
    return target


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ModelFileError(f"{path}: corrupt or truncated ({err})") from None
