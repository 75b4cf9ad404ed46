"""Settings checked by type and range before any work: one pydantic model per configuration section.

``[sampler]`` is :class:`SamplerSettings`, ``[tokenizer]`` :class:`TokenizerSettings`, each
``[prior.NAME]`` :class:`PriorSettings` (its values against the PyMC distribution:
:meth:`bayeslm.core.priors.Prior.validate`), and ``[model]`` a :class:`ModelOptions`
subclass each family declares (``BayesianLM.model_options``). A field's type says its rule
(:func:`whole`, :func:`number`, :func:`choice`, :func:`flag`, :func:`text`), which both the
error messages and the reference table of ``docs/config.md`` (:func:`settings_reference`)
read. :func:`validate_section` turns pydantic's errors into one line:
``sampler.draws must be a whole number >= 1 (got 'abc')``.
"""

import json
from typing import Annotated, Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from bayeslm.exceptions import ConfigError

__all__ = ["Rule", "Invalid", "whole", "number", "choice", "flag", "text", "texts", "Section", "ModelOptions",
           "SamplerSettings", "TokenizerSettings", "PriorSettings", "MAX_SEED", "options_from_defaults",
           "validate_section", "settings_reference"]

#: the largest random seed (PyMC and NumPy take seeds below 2**32)
MAX_SEED = 2**32 - 1
_SHOWN_CHARS = 60


class Rule:
    """What a setting must be, in words (``"a whole number >= 1"``): metadata of its type.

    ``item`` is the rule of each value of a table-valued setting (a prior's ``kwargs``).
    """

    def __init__(self, text: str, item: str | None = None):
        self.text, self.item = text, item

    def __repr__(self) -> str:
        return f"Rule({self.text!r})"


class Invalid(ValueError):
    """A value breaks a rule a type cannot state (raised inside a section's validators).

    ``key``: the setting (None: the one the failing field validator checks); ``rule``: what
    it must be (None: its type's rule); ``why``: a reason added after the value.
    """

    def __init__(self, why: str = "", *, key: str | None = None, rule: str | None = None, value: Any = None):
        super().__init__(why or rule or "invalid")
        self.why, self.key, self.rule, self.value = why, key, rule, value


# -- rule-carrying types -------------------------------------------------------------------
def _typed(inner, rule: str, optional: bool):
    if optional:
        return Annotated[Optional[inner], Rule(f"{rule} or none")]
    return Annotated[inner, Rule(rule)]


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def whole(*, ge: int | None = None, le: int | None = None, optional: bool = False):
    """A whole number (an int; ``2.0`` and ``true`` are refused) in ``ge..le``."""
    if ge is not None and le is not None:
        rule = f"a whole number in {ge}..{le}"
    else:
        rule = "a whole number" + _interval(ge, le, False, False)
    return _typed(Annotated[int, Field(ge=ge, le=le)], rule, optional)


def number(*, gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None,
           optional: bool = False):
    """A finite number (an int or a float; ``true`` is refused) in the interval given."""
    low, high = (gt if gt is not None else ge), (lt if lt is not None else le)
    rule = ("a finite number" if low is None and high is None
            else "a number" + _interval(low, high, gt is not None, lt is not None))
    return _typed(Annotated[float, Field(gt=gt, ge=ge, lt=lt, le=le)], rule, optional)


def choice(*values: str, optional: bool = False):
    """One of the strings ``values``."""
    return _typed(Literal[values], "one of " + ", ".join(repr(v) for v in values), optional)


def flag():
    """``true`` or ``false`` (a bool; ``1`` and ``"yes"`` are refused)."""
    return _typed(bool, "true or false", False)


def text(*, optional: bool = False):
    """A string."""
    return _typed(str, "a string", optional)


def texts():
    """A list of strings."""
    return _typed(list[str], "a list of strings", False)


def _plain(value):
    """NumPy scalars and arrays as Python values, tuples as lists (the sections' input)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.bool_, np.integer, np.floating, np.str_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# -- sections -------------------------------------------------------------------------------
class Section(BaseModel):
    """A configuration section: unknown keys refused, no type conversion (``strict``), numbers finite."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _python_values(cls, data):
        return {k: _plain(v) for k, v in data.items()} if isinstance(data, dict) else data

    @classmethod
    def rule_of(cls, key: str) -> Rule | None:
        """The :class:`Rule` of setting ``key`` (None for a field declared without one)."""
        field = cls.model_fields.get(key)
        rules = [m for m in field.metadata if isinstance(m, Rule)] if field is not None else []
        return rules[-1] if rules else None


class ModelOptions(Section):
    """The ``[model]`` section of a family: ``order`` and the family's options.

    A family declares its options as a subclass (``BayesianLM.model_options``) with one
    field per option, its type made by :func:`whole`, :func:`number`, ... and its default.
    """

    order: whole(ge=1) = Field(3, description="context length + 1 (3: a trigram model)")


class SamplerSettings(Section):
    """``[sampler]``: the ``pm.sample`` settings (a family may change the defaults)."""

    draws: whole(ge=1) = Field(1000, description="posterior draws per chain")
    tune: whole(ge=0) = Field(1000, description="tuning steps per chain, discarded")
    chains: whole(ge=1) = Field(2, description="independent chains")
    target_accept: number(gt=0.0, lt=1.0) = Field(0.9, description="NUTS target acceptance rate")
    nuts_sampler: choice("pymc", "nutpie", "numpyro", "blackjax") = Field(
        "pymc", description="NUTS implementation (nutpie: pip install 'bayeslm[fast]')")
    random_seed: whole(ge=0, le=MAX_SEED, optional=True) = Field(
        None, description="seed of the fit (none: a fresh one each time); --seed")
    cores: whole(ge=1, optional=True) = Field(None, description="processes (none: one per available CPU, up to chains)")
    progressbar: flag() = Field(True, description="draw progress bars (the CLI decides per call)")


#: tokenizer options only a ``bpe`` tokenizer has
_BPE_KEYS = ("vocab_size", "min_frequency")


class TokenizerSettings(Section):
    """``[tokenizer]``: how text becomes tokens, and which tokens the vocabulary keeps."""

    kind: choice("word", "whitespace", "char", "bpe") = Field("word", description="how lines are split into tokens")
    min_count: whole(ge=1) = Field(1, description="training tokens seen fewer times become `<unk>`")
    max_size: whole(ge=4, optional=True) = Field(
        None, description="largest vocabulary, the 3 special tokens included (none: no limit)")
    vocab_size: whole(ge=4) = Field(2000, description="bpe only: merges + base symbols, special tokens included")
    min_frequency: whole(ge=1) = Field(2, description="bpe only: a pair must occur this often to be merged")

    @model_validator(mode="after")
    def _bpe_keys_need_bpe(self):
        for key in _BPE_KEYS:
            if self.kind != "bpe" and key in self.model_fields_set:
                raise Invalid(f"a {self.kind!r} tokenizer has no {key}", key=key, rule="given only with kind = 'bpe'",
                              value=getattr(self, key))
        return self

    def tokenizer_options(self) -> dict:
        """The options of ``make_tokenizer`` (a bpe tokenizer's ``vocab_size`` and ``min_frequency``)."""
        return {key: getattr(self, key) for key in _BPE_KEYS} if self.kind == "bpe" else {}


class PriorSettings(Section):
    """``[prior.NAME]``: a PyMC distribution and its parameters (checked against PyMC at fit)."""

    dist: text() = Field(description="a PyMC distribution (Gamma, LogNormal, Beta, ...)")
    kwargs: Annotated[dict[str, float], Rule("a table of parameter = number", item="a finite number")] = Field(
        {}, description="its parameters, as PyMC names them (finite numbers)")
    dims: Annotated[list[str], Rule("a list of strings")] = Field([], description="dims of the variable (rarely set)")


def options_from_defaults(name: str, defaults: dict) -> type[ModelOptions]:
    """A :class:`ModelOptions` subclass of untyped options (any value) from ``{name: default}``.

    For families that declare ``model_options`` as a plain dict: their option names are
    checked, their values are not (``order`` keeps its rule).
    """
    fields = {key: (Annotated[Any, Rule("any value")], default) for key, default in defaults.items() if key != "order"}
    return create_model(name, __base__=ModelOptions, **fields)


# -- errors in one line ----------------------------------------------------------------------
def validate_section(model: type[Section], data, section: str, *, unknown: str | None = None) -> Section:
    """``data`` checked against ``model``; ConfigError of one line naming ``section.key`` otherwise.

    ``unknown``: how an unknown key is reported, a format string with ``{key}`` and
    ``{known}`` (default: ``"SECTION: unknown key 'k'; known: ..."``).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"[{section}] must be a table of settings (key = value), got {_shown(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_one_line(err, model, data, section, unknown)) from None


def _shown(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS - 3] + "..."


def _one_line(err: ValidationError, model: type[Section], data: dict, section: str, unknown: str | None) -> str:
    """Every problem of ``err`` as ``section.key must be RULE (got VALUE)``, joined by '; '."""
    problems: dict[str, str] = {}
    for error in err.errors():
        loc = [str(part) for part in error["loc"]] or [""]
        cause = (error.get("ctx") or {}).get("error")
        if error["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields)
            template = unknown or f"{section}: unknown key {{key!r}}; known: {{known}}"
            problems.setdefault(loc[0], template.format(key=loc[0], known=known))
        elif isinstance(cause, Invalid):
            key = cause.key or loc[0]
            rule = cause.rule or _rule_text(model, key)
            value = cause.value if cause.key else data.get(key)
            why = f": {cause.why}" if cause.why else ""
            problems.setdefault(key, f"{section}.{key} must be {rule} (got {_shown(value)}){why}")
        else:
            key, rule, value = _located(model, data, loc)
            problems.setdefault(key, f"{section}.{key} must be {rule} (got {_shown(value)})")
    return "; ".join(problems.values())


def _rule_text(model: type[Section], key: str) -> str:
    rule = model.rule_of(key)
    return rule.text if rule is not None else "valid"


def _located(model: type[Section], data: dict, loc: list[str]) -> tuple[str, str, Any]:
    """(key, rule, value) of an error at ``loc``; a value inside a table setting is named ``key.name``."""
    rule = model.rule_of(loc[0])
    value = data.get(loc[0])
    if rule is not None and rule.item is not None and len(loc) >= 2 and isinstance(value, dict) and loc[1] in value:
        return f"{loc[0]}.{loc[1]}", rule.item, value[loc[1]]
    return loc[0], rule.text if rule is not None else "valid", value


# -- the reference table -------------------------------------------------------------------------
def _toml(value) -> str:
    """A value as TOML writes it (JSON's spelling for these), None as ``none`` (the key left out)."""
    return "none" if value is None else json.dumps(value)


def _rows(model: type[Section]) -> list[str]:
    rows = []
    for key, field in model.model_fields.items():
        shown = "required" if field.is_required() else f"`{_toml(field.get_default(call_default_factory=True))}`"
        rows.append(f"| `{key}` | {_rule_text(model, key)} | {shown} | {field.description or ''} |")
    return rows


def settings_reference(families: list[type]) -> str:
    """The Markdown tables of every section's keys: rule (type and range), default, meaning.

    ``families``: the model classes whose ``[model]`` options and sampler defaults to list
    (``docs/config.md`` holds this table for the built-in families; a test keeps it current).
    """
    head = ["| key | must be | default | meaning |", "|---|---|---|---|"]
    parts = []
    for family in families:
        parts += [f"### `[model]` of `family = \"{family.family}\"`", "", *head,
                  *_rows(family.model_options), ""]
    parts += ["### `[tokenizer]`", "", *head, *_rows(TokenizerSettings), ""]
    parts += ["### `[prior.NAME]`", "", *head, *_rows(PriorSettings), ""]
    parts += ["### `[sampler]`", "", *head, *_rows(SamplerSettings), ""]
    changed = [f"`{family.family}`: " + ", ".join(f"{key} = {_toml(value)}" for key, value in sorted(
        family.default_sampler_config.items()) if value != SamplerSettings.model_fields[key].default)
        for family in families]
    parts += ["Sampler defaults a family changes: " + "; ".join(c for c in changed if not c.endswith(": ")) + "."]
    return "\n".join(parts) + "\n"
