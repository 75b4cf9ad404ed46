"""Priors as data: a PyMC distribution name, its parameters and dims.

A :class:`Prior` is what every ``model_config`` value holds. It checks its parameters
against the PyMC distribution when made, creates the random variable inside a model
context, and round-trips through JSON (``to_dict`` / ``from_dict``), so a fitted model's
priors are stored in its netCDF attrs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bayeslm.exceptions import ConfigError

__all__ = ["Prior"]


@dataclass(frozen=True)
class Prior:
    """A prior distribution: ``Prior("Gamma", alpha=2.0, beta=0.5)``.

    Parameters
    ----------
    distribution : str
        Name of a PyMC distribution (``"Gamma"``, ``"LogNormal"``, ``"HalfNormal"``, ...).
    dims : tuple of str
        Dims of the variable, set when the model knows them.
    **parameters : float
        The distribution's parameters, as PyMC names them.
    """

    distribution: str
    parameters: dict[str, float] = field(default_factory=dict)
    dims: tuple[str, ...] = ()

    def __init__(self, distribution: str, *, dims=(), **parameters: Any):
        object.__setattr__(self, "distribution", str(distribution))
        object.__setattr__(self, "parameters", {k: float(v) for k, v in parameters.items()})
        object.__setattr__(self, "dims", tuple(dims))
        self._check()

    def _pymc_class(self):
        import pymc as pm

        cls = getattr(pm, self.distribution, None)
        if not (isinstance(cls, type) and issubclass(cls, pm.Distribution)):
            raise ConfigError(f"{self.distribution!r} is not a PyMC distribution")
        return cls

    def _check(self) -> None:
        import numpy as np

        cls = self._pymc_class()
        try:
            rv = cls.dist(**self.parameters)
            draw = np.asarray(__import__("pymc").draw(rv, random_seed=0))
        except Exception as err:  # PyMC raises TypeError/ValueError for bad parameters
            raise ConfigError(f"invalid prior {self}: {err}") from None
        if not np.all(np.isfinite(draw)):
            raise ConfigError(f"invalid prior {self}: its parameters give non-finite draws")

    def create_variable(self, name: str, dims=None, **kwargs):
        """Create the random variable in the current ``pm.Model`` context."""
        cls = self._pymc_class()
        return cls(name, **self.parameters, dims=dims if dims is not None else (self.dims or None), **kwargs)

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"dist": self.distribution, "kwargs": dict(self.parameters)}
        if self.dims:
            data["dims"] = list(self.dims)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Prior":
        if not isinstance(data, dict) or "dist" not in data:
            raise ConfigError(f"a prior needs a 'dist' name, got {data!r}")
        kwargs = data.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise ConfigError(f"prior parameters must be a table, got {kwargs!r}")
        return cls(data["dist"], dims=tuple(data.get("dims", ())), **kwargs)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.parameters.items())
        return f"{self.distribution}({args})"
