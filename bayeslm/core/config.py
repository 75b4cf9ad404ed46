"""Model configurations: TOML files (``models/NAME.toml``) and ``--set`` overrides.

Schema (every section optional; each key's type, range and default: ``docs/config.md``,
checked by :mod:`bayeslm.core.settings` when a model is made from it)::

    # one line saying what this configuration is for
    [model]        family = "dirichlet", order = 3, plus family options
    [tokenizer]    kind = "word" | "whitespace" | "char" | "bpe", min_count, max_size,
                   vocab_size and min_frequency (bpe)
    [prior.NAME]   dist = "<PyMC distribution>", kwargs = { ... }
    [sampler]      draws, tune, chains, target_accept, nuts_sampler, random_seed, cores,
                   progressbar

A value given with ``--set section.key=value`` is parsed as a TOML value (numbers,
booleans, strings, arrays), or taken as a plain string if it is not one.
"""

from __future__ import annotations

import copy
import sys
import tomllib
from pathlib import Path

from bayeslm.exceptions import ConfigError

__all__ = ["load_config", "apply_overrides", "find_config", "list_configs", "SECTIONS"]

SECTIONS = ("model", "tokenizer", "prior", "sampler")


def _search_dirs() -> list[Path]:
    repository = Path(__file__).resolve().parents[2]  # bayeslm/core/config.py -> the checkout
    return [Path.cwd() / "models", repository / "models", Path(sys.prefix) / "share" / "bayeslm" / "models"]


def find_config(name_or_path: str) -> Path:
    """The TOML file of a configuration given by path or by name (a file in ``models/``)."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such configuration file")
        return path
    for directory in _search_dirs():
        candidate = directory / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(list_configs())) or "none found"
    raise ConfigError(f"unknown configuration {name_or_path!r}; known: {known}")


def list_configs() -> dict[str, str]:
    """Names of the configurations in ``models/`` and their one-line descriptions."""
    found: dict[str, str] = {}
    for directory in _search_dirs():
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
            if path.stem not in found:
                found[path.stem] = _description(path)
    return found


def _description(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def load_config(name_or_path: str) -> dict:
    """Read a configuration and check its sections."""
    path = find_config(name_or_path)
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from None
    unknown = set(config) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; known: {list(SECTIONS)}")
    return config


def _parse_value(text: str):
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """A copy of ``config`` with ``section.key=value`` overrides applied."""
    config = copy.deepcopy(config)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set needs section.key=value, got {item!r}")
        if parts[0] not in SECTIONS:
            raise ConfigError(f"--set {item!r}: unknown section {parts[0]!r}; known: {list(SECTIONS)}")
        node = config
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a table")
        node[parts[-1]] = _parse_value(value.strip())
    return config
