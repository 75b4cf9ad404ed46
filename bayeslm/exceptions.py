"""Exceptions raised by bayeslm.

Every error a user can cause by bad input is a subclass of :class:`BayesLMError`
(itself a ``ValueError``), so the CLI can turn it into one line
(``bayeslm: error: ...``) without a traceback.
"""

__all__ = [
    "BayesLMError",
    "CorpusError",
    "ConfigError",
    "VocabularyMismatchError",
    "ModelFileError",
    "DifferentModelError",
    "NotFittedError",
]


class BayesLMError(ValueError):
    """Base class of every error caused by the user's input."""


class CorpusError(BayesLMError):
    """A corpus is missing, empty, not UTF-8, or otherwise unusable."""


class ConfigError(BayesLMError):
    """A model configuration names an unknown key or holds an invalid value."""


class VocabularyMismatchError(BayesLMError):
    """Text encoded with one vocabulary was given to a model fitted with another."""


class ModelFileError(BayesLMError):
    """A model directory is missing, corrupt, truncated, foreign or too new."""


class DifferentModelError(ModelFileError):
    """A saved model is of another type or a newer format version than this code reads."""


class NotFittedError(BayesLMError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""

    def __init__(self, obj, what: str = "this method"):
        name = type(obj).__name__
        super().__init__(
            f"This {name} instance is not fitted yet: call fit(...) before using {what}."
        )
