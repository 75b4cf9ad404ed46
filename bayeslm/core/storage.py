"""Model directories: the family registry, the format version, and saving and loading.

A model directory holds ``model.nc`` (the InferenceData; the ``posterior`` group's attrs
carry ``model_type``, ``format_version``, the configuration as JSON, and ``id`` with what it
is made of: :mod:`bayeslm.core.fingerprint`), ``vocab.json``, ``tokenizer.json``, for
families with arrays ``arrays.npz`` (read with ``allow_pickle=False``), and
``manifest.json`` (family, format version, size and sha256 of every other file). Loading
checks the manifest (a changed, missing or added file raises :class:`ModelFileError`
naming it), the type of every attribute it reads, and that the files agree with each
other, the id included (:func:`_check_fitted_id`); directories written before manifests
existed, and format-1 directories whose id was the configuration's, still load. A
directory is written all-or-nothing, by one process at a time (:mod:`bayeslm.core.files`).
Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from bayeslm.core.files import atomic_directory, atomic_write_bytes, target_lock
from bayeslm.core.fingerprint import model_id, posterior_fingerprint
from bayeslm.exceptions import BayesLMError, ConfigError, DifferentModelError, ModelFileError
from bayeslm.text.tokenize import tokenizer_from_dict
from bayeslm.text.vocab import Vocabulary

__all__ = ["FORMAT_VERSION", "MANIFEST", "MODEL_FILES", "register_family", "family_class", "known_families",
           "config_id", "check_target", "save_model", "load_model", "mark_partial_fit", "partial_fit"]

#: 2: ``id`` identifies the fitted model (configuration, training data, posterior; beside it
#: ``config_id``, ``data_fingerprint``, ``posterior_fingerprint``); 1: ``id`` was ``config_id``
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "bayeslm-model-directory"
MODEL_FILES = ("model.nc", "vocab.json", "tokenizer.json", "arrays.npz")
REQUIRED_FILES = MODEL_FILES[:3]
PARTIAL_FIT_ATTR = "partial_fit"
_FAMILIES: dict[str, type] = {}


def register_family(cls: type) -> None:
    """Make ``cls`` the class that loads and builds models of family ``cls.family``."""
    _FAMILIES[cls.family] = cls


def family_class(family: str) -> type:
    """The class of a family name; ConfigError naming the known ones if there is none."""
    try:
        return _FAMILIES[family]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model family {family!r}; known: {known_families()}") from None


def known_families() -> list[str]:
    return sorted(_FAMILIES)


def config_id(config: dict, family: str, format_version: int = FORMAT_VERSION) -> str:
    """Short sha256 of a configuration, the format version and the family."""
    text = json.dumps([config, format_version, family], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- partial fits ------------------------------------------------------------------------
def mark_partial_fit(idata, **facts) -> None:
    """Record in the model's attrs that its sampling was stopped early (``facts``: JSON-ready)."""
    idata["posterior"].attrs[PARTIAL_FIT_ATTR] = json.dumps(facts)


def partial_fit(model) -> dict | None:
    """What :func:`mark_partial_fit` recorded for this model, or None for a complete fit."""
    text = model.idata["posterior"].attrs.get(PARTIAL_FIT_ATTR) if model.idata is not None else None
    return None if text is None else json.loads(text)


# -- saving ------------------------------------------------------------------------------
def check_target(path: str | Path, force: bool) -> None:
    """Raise ConfigError unless a model directory may be written at ``path``.

    Allowed: nothing at ``path``; with ``force``, an empty folder or a bayeslm model
    directory (which is replaced). Never an ordinary folder or a file.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not force:
        raise ConfigError(f"{path} exists; choose another directory or pass force=True (--force)")
    refuse = "--force replaces only a bayeslm model directory or an empty folder"
    if path.is_symlink() or not path.is_dir():
        raise ConfigError(f"{path} is not a directory; {refuse}")
    entries = sorted(os.listdir(path))
    foreign = [e for e in entries if e not in (*MODEL_FILES, MANIFEST)]
    if entries and (foreign or not {"model.nc", MANIFEST} & set(entries)):
        shown = ", ".join(foreign[:3] or entries[:3]) + (", ..." if len(foreign or entries) > 3 else "")
        raise ConfigError(f"{path} is not a bayeslm model directory (it holds {shown}); {refuse}")


def save_model(model, path: str | Path, *, force: bool = False) -> Path:
    """Write ``model``'s directory at ``path``: all files or none, one writer at a time.

    ``force``: replace an existing model directory (or an empty folder); anything else
    at ``path`` is refused (:func:`check_target`).
    """
    path = Path(path)
    check_target(path, force)
    contents = _directory_contents(model)
    with target_lock(path):
        check_target(path, force)  # again: another process may have written it meanwhile
        with atomic_directory(path, force=force) as tmp:
            for name, data in contents.items():
                atomic_write_bytes(tmp / name, data)
    return path


def _directory_contents(model) -> dict[str, bytes]:
    """Every file of the model directory (name -> bytes), the manifest last."""
    from bayeslm.core.idata import netcdf_bytes

    files = {
        "model.nc": netcdf_bytes(model.idata, posterior_attrs={"manifest_file": MANIFEST}),
        "vocab.json": json.dumps(model.vocab_.to_dict(), ensure_ascii=False).encode("utf-8"),
        "tokenizer.json": json.dumps(model.tokenizer_.to_dict()).encode("utf-8"),
    }
    arrays = model._family_arrays()
    if arrays:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        files["arrays.npz"] = buffer.getvalue()
    # the format of the model.nc written here: a loaded format-1 model keeps its format-1 ids
    version = int(model.idata["posterior"].attrs.get("format_version", FORMAT_VERSION))
    manifest = {
        "format": MANIFEST_FORMAT, "format_version": version, "family": model.family, "id": model.id,
        "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=1) + "\n").encode("utf-8")
    return files


# -- loading -----------------------------------------------------------------------------
def load_model(path: str | Path, expected: type | None = None):
    """Load a model directory written by :func:`save_model` (or a format-1 directory).

    ``expected``: the class the caller asked for (``DirichletLM.load``); a directory of
    another family raises :class:`DifferentModelError`. A damaged, altered or foreign
    directory raises :class:`ModelFileError` naming the file.
    """
    from bayeslm.core.idata import read_netcdf, root_attrs

    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path}: not a model directory")
    manifest = _verified_manifest(path)
    idata = read_netcdf(path / "model.nc")
    attrs = _checked_attrs(path / "model.nc", root_attrs(idata))
    if manifest is None and "manifest_file" in attrs:
        raise ModelFileError(f"{path / MANIFEST}: missing (the model was saved with one)")
    if manifest is not None and manifest.get("family") != attrs["model_type"]:
        raise ModelFileError(f"{path / MANIFEST}: names family {manifest.get('family')!r}, model.nc "
                             f"{attrs['model_type']!r}")
    target = _target_class(path, attrs, expected)
    config = attrs["config"]
    tokenizer = _read_tokenizer(path / "tokenizer.json", config)
    try:
        model = target.from_config(config, tokenizer=tokenizer)
    except (ConfigError, TypeError, ValueError, KeyError, AttributeError) as err:
        raise ModelFileError(f"{path / 'model.nc'}: the stored configuration is invalid ({err})") from None
    _check_config_id(path, attrs)
    model.vocab_, model.tokenizer_ = _read_vocabulary(path / "vocab.json"), tokenizer
    if attrs["vocab_fingerprint"] != model.vocab_.fingerprint:
        raise ModelFileError(f"{path}: vocab.json does not belong to this model")
    model.idata = idata
    model.fit_seconds_ = attrs.get("fit_seconds", 0.0)
    arrays = _read_arrays(path / "arrays.npz")
    _restore_family(model, path / "arrays.npz", arrays)
    _check_fitted_id(path, attrs, idata, arrays)
    model.is_fitted_ = True
    return model


def _check_config_id(path: Path, attrs: dict) -> None:
    """The stored configuration must give the stored id (format 1) or ``config_id`` (later formats)."""
    config, family, version = attrs["config"], attrs["model_type"], attrs["format_version"]
    stored = attrs["id"] if version == 1 else attrs.get("config_id")
    if version > 1 and stored is None:
        raise ModelFileError(f"{path / 'model.nc'}: attribute 'config_id' is missing")
    if stored != config_id(config, family, version):  # the stored config, before new defaults
        raise DifferentModelError(f"{path}: the model id does not match its configuration (file altered?)")


def _check_fitted_id(path: Path, attrs: dict, idata, arrays: dict) -> None:
    """After format 1, the id must be the fitted model's that the directory's contents give.

    :func:`bayeslm.core.fingerprint.model_id` of the configuration id, the recorded
    training-data fingerprint and the posterior as read (its values and the family's
    arrays), so an edited posterior is refused like an edited file.
    """
    if attrs["format_version"] == 1:
        return
    for name in ("data_fingerprint", "posterior_fingerprint"):
        if name not in attrs:
            raise ModelFileError(f"{path / 'model.nc'}: attribute {name!r} is missing")
    if attrs["posterior_fingerprint"] != posterior_fingerprint(idata, arrays):
        raise ModelFileError(f"{path}: the posterior (model.nc, arrays.npz) changed since the model was saved (its "
                             "fingerprint differs from the one its id was made of)")
    if attrs["id"] != model_id(attrs["config_id"], attrs["data_fingerprint"], attrs["posterior_fingerprint"]):
        raise DifferentModelError(f"{path}: the model id does not match its configuration, training data and "
                                  "posterior (file altered?)")


def _verified_manifest(path: Path) -> dict | None:
    """manifest.json checked against the files beside it; None if there is none (format 1)."""
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        return None
    manifest = _read_json(manifest_path)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelFileError(f"{manifest_path}: not a bayeslm manifest")
    for name in MODEL_FILES:
        if name not in files and (name in REQUIRED_FILES or (path / name).exists()):
            raise ModelFileError(f"{path / name}: not listed in {MANIFEST} (the directory was altered)")
    for name, entry in files.items():
        if name not in MODEL_FILES:
            raise ModelFileError(f"{manifest_path}: lists an unknown file {name!r}")
        if not (isinstance(entry, dict) and _is_int(entry.get("bytes")) and isinstance(entry.get("sha256"), str)):
            raise ModelFileError(f"{manifest_path}: the entry of {name} is malformed")
        file = path / name
        if not file.is_file():
            raise ModelFileError(f"{file}: missing ({MANIFEST} lists it)")
        size = file.stat().st_size
        if size < entry["bytes"]:
            raise ModelFileError(f"{file}: corrupt or truncated ({size} bytes; {MANIFEST}: {entry['bytes']})")
        if size != entry["bytes"] or _sha256(file) != entry["sha256"]:
            raise ModelFileError(f"{file}: changed since the model was saved (its sha256 differs from {MANIFEST})")
    return manifest


def _sha256(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read ({err.strerror})") from None


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing (not a complete model directory)") from None
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read ({err.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFileError(f"{path}: corrupt JSON ({err})") from None


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, (float, np.floating))) and math.isfinite(float(value))


def _json_object(value) -> dict | None:
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except (json.JSONDecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


# name -> (check, what it must be, required); the checked value replaces the stored one
_ATTRS = {
    "model_type": (lambda v: v if isinstance(v, str) else None, "a string", True),
    "format_version": (lambda v: int(v) if _is_int(v) and v >= 1 else None, "a whole number >= 1", True),
    "id": (lambda v: v if isinstance(v, str) else None, "a string", True),
    "config_id": (lambda v: v if isinstance(v, str) else None, "a string", False),
    "data_fingerprint": (lambda v: v if isinstance(v, str) else None, "a string", False),
    "posterior_fingerprint": (lambda v: v if isinstance(v, str) else None, "a string", False),
    "config": (lambda v: c if (c := _json_object(v)) is not None and _config_shape_ok(c) else None,
               "a JSON object of configuration sections", True),
    "vocab_fingerprint": (lambda v: v if isinstance(v, str) else None, "a string", True),
    "fit_seconds": (lambda v: float(v) if _is_number(v) and v >= 0 else None, "a number >= 0", False),
    "training_tokens": (lambda v: int(v) if _is_int(v) and v >= 0 else None, "a whole number >= 0", False),
    "training_sentences": (lambda v: int(v) if _is_int(v) and v >= 0 else None, "a whole number >= 0", False),
    "mi_threshold_nats": (lambda v: float(v) if _is_number(v) and v >= 0 else None, "a number >= 0", False),
    PARTIAL_FIT_ATTR: (_json_object, "a JSON object", False),
    "manifest_file": (lambda v: v if v == MANIFEST else None, repr(MANIFEST), False),
}


def _config_shape_ok(config: dict) -> bool:
    return all(isinstance(config.get(section, {}), dict) for section in ("model", "tokenizer", "prior", "sampler"))


def _checked_attrs(nc_path: Path, attrs: dict) -> dict:
    """The attrs load reads, type-checked (ModelFileError naming the attribute otherwise)."""
    checked = {}
    if "model_type" not in attrs or "format_version" not in attrs:
        raise ModelFileError(f"{nc_path}: not written by bayeslm (no model_type / format_version)")
    for name, (check, what, required) in _ATTRS.items():
        if name not in attrs:
            if required:
                raise ModelFileError(f"{nc_path}: attribute {name!r} is missing")
            continue
        value = check(attrs[name])
        if value is None:
            shown = repr(attrs[name])
            raise ModelFileError(f"{nc_path}: attribute {name!r} must be {what}, found "
                                 f"{shown[:60] + '...' if len(shown) > 60 else shown}")
        checked[name] = value
    return checked


def _target_class(path: Path, attrs: dict, expected: type | None) -> type:
    version, model_type = attrs["format_version"], attrs["model_type"]
    if version > FORMAT_VERSION:
        raise DifferentModelError(
            f"{path}: format version {version} is newer than this bayeslm reads ({FORMAT_VERSION}); upgrade bayeslm"
        )
    target = _FAMILIES.get(model_type)
    if target is None:
        raise DifferentModelError(f"{path}: unknown model type {model_type!r}")
    if expected is not None and target is not expected:
        raise DifferentModelError(f"{path}: holds a {model_type!r} model, not a {expected.family!r} model")
    family = attrs["config"].get("model", {}).get("family", model_type)
    if family != model_type:
        raise ModelFileError(f"{path / 'model.nc'}: the configuration names family {family!r}, the model "
                             f"{model_type!r}")
    return target


def _read_tokenizer(path: Path, config: dict):
    """tokenizer.json, which must be the tokenizer the configuration describes."""
    data = _read_json(path)
    try:
        tokenizer = tokenizer_from_dict(data)
    except (ConfigError, TypeError, ValueError, KeyError) as err:
        raise ModelFileError(f"{path}: not a valid tokenizer ({err})") from None
    described = {"kind": "word", **config.get("tokenizer", {})}
    for key in ("min_count", "max_size"):
        described.pop(key, None)
    stored = {k: v for k, v in tokenizer.to_dict().items() if k != "model_json"}
    if stored != described:
        raise ModelFileError(f"{path}: a {stored.get('kind')!r} tokenizer, but the model was configured with "
                             f"{described} (file replaced?)")
    return tokenizer


def _read_vocabulary(path: Path) -> Vocabulary:
    try:
        return Vocabulary.from_dict(_read_json(path))
    except ModelFileError as err:
        raise ModelFileError(str(err) if str(path) in str(err) else f"{path}: {err}") from None


def _restore_family(model, path: Path, arrays: dict) -> None:
    """The family's arrays (read from ``path``, ``arrays.npz``; none if absent) given to ``model._restore_family``.

    The family checks that they fit the model (ids within the vocabulary, shapes); any
    failure of that check is a ModelFileError naming the file.
    """
    try:
        model._restore_family(arrays)
    except ModelFileError as err:
        raise ModelFileError(f"{path}: {err}") from None
    except (BayesLMError, KeyError, IndexError, ValueError, TypeError, OverflowError) as err:
        raise ModelFileError(f"{path}: does not fit the model ({type(err).__name__}: {err})") from None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as err:  # zipfile, zlib, struct and numpy's format parser raise many types
        raise ModelFileError(f"{path}: corrupt or truncated ({type(err).__name__}: {err})") from None
