"""Priors as data: a PyMC distribution name, its parameters and dims.

A :class:`Prior` is what every ``model_config`` value holds. Made, it checks its form
(:class:`bayeslm.core.settings.PriorSettings`: a name, finite numbers) without importing
PyMC, so that constructing a model stays quick; :meth:`Prior.validate` checks it against the
PyMC distribution (a distribution, parameters of its signature, a finite log density at a
point of its support), which ``fit`` does before any work. It creates the random variable
inside a model context, and round-trips through JSON (``to_dict`` / ``from_dict``), so a
fitted model's priors are stored in its netCDF attrs. A few distributions also have their
log density in numpy (:meth:`Prior.numpy_logp`), for fits that need no PyMC model.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

from bayeslm.core.settings import PriorSettings, validate_section
from bayeslm.exceptions import ConfigError

__all__ = ["CLOSED_FORMS", "Prior"]


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
        The distribution's parameters, as PyMC names them: finite numbers.
    """

    distribution: str
    parameters: dict[str, float] = field(default_factory=dict)
    dims: tuple[str, ...] = ()

    def __init__(self, distribution: str, *, dims=(), **parameters: Any):
        checked = validate_section(PriorSettings, {"dist": distribution, "kwargs": parameters, "dims": list(dims)},
                                   "prior")
        object.__setattr__(self, "distribution", checked.dist)
        object.__setattr__(self, "parameters", dict(checked.kwargs))
        object.__setattr__(self, "dims", tuple(checked.dims))

    def _pymc_class(self):
        import pymc as pm

        cls = getattr(pm, self.distribution, None)
        if not (isinstance(cls, type) and issubclass(cls, pm.Distribution)):
            raise ConfigError(f"{self.distribution!r} is not a PyMC distribution")
        return cls

    def validate(self, section: str = "prior") -> None:
        """Check the prior against its PyMC distribution (imports PyMC); ConfigError naming ``section``.

        The name must be a PyMC distribution, every parameter one of its signature, and
        the log density finite at a point of its support (PyMC's own parameter checks,
        e.g. ``sigma > 0``, run there). Nothing is sampled; the answer is cached.
        """
        problem = _problem(self.distribution, tuple(sorted(self.parameters.items())))
        if problem is not None:
            raise ConfigError(f"{section}{problem}")

    def numpy_logp(self):
        """The log density as a numpy function (values in, log densities out, -inf off the support),
        or None where no closed form is written here or the parameters are not valid (then
        :meth:`validate` says why). Closed forms: :data:`CLOSED_FORMS`."""
        form = CLOSED_FORMS.get((self.distribution, tuple(sorted(self.parameters))))
        if form is None or not form[0](**self.parameters):
            return None
        return functools.partial(_off_support, form[1], self.parameters)

    def create_variable(self, name: str, dims=None, **kwargs):
        """Create the random variable in the current ``pm.Model`` context."""
        self.validate(f"prior.{name}")
        cls = self._pymc_class()
        return cls(name, **self.parameters, dims=dims if dims is not None else (self.dims or None), **kwargs)

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"dist": self.distribution, "kwargs": dict(self.parameters)}
        if self.dims:
            data["dims"] = list(self.dims)
        return data

    @classmethod
    def from_dict(cls, data: dict, *, section: str = "prior") -> "Prior":
        """Inverse of :meth:`to_dict`; ``section`` names the prior in errors (``prior.concentration``)."""
        checked = validate_section(PriorSettings, data, section)
        return cls(checked.dist, dims=tuple(checked.dims), **checked.kwargs)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.parameters.items())
        return f"{self.distribution}({args})"


def _off_support(density, parameters: dict, x):
    import numpy as np

    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, density(np.where(x > 0, x, 1.0), **parameters), -np.inf)


def _lognormal(x, mu, sigma):
    import numpy as np

    return -np.log(x * sigma) - 0.5 * np.log(2 * np.pi) - (np.log(x) - mu) ** 2 / (2 * sigma**2)


def _gamma(x, alpha, beta):
    import numpy as np
    from scipy.special import gammaln

    return alpha * np.log(beta) - gammaln(alpha) + (alpha - 1) * np.log(x) - beta * x


def _exponential(x, lam):
    import numpy as np

    return np.log(lam) - lam * x


def _half_normal(x, sigma):
    import numpy as np

    return 0.5 * np.log(2 / np.pi) - np.log(sigma) - x**2 / (2 * sigma**2)


#: (distribution, sorted parameter names) -> (parameters valid?, log density on x > 0), as PyMC parametrises them
CLOSED_FORMS = {
    ("LogNormal", ("mu", "sigma")): (lambda mu, sigma: sigma > 0, _lognormal),
    ("Gamma", ("alpha", "beta")): (lambda alpha, beta: alpha > 0 and beta > 0, _gamma),
    ("Exponential", ("lam",)): (lambda lam: lam > 0, _exponential),
    ("HalfNormal", ("sigma",)): (lambda sigma: sigma > 0, _half_normal),
}


@functools.lru_cache(maxsize=256)
def _problem(distribution: str, parameters: tuple[tuple[str, float], ...]) -> str | None:
    """What is wrong with the prior, or None: the end of a message that starts with its section
    (``.dist must be ...``, ``.kwargs: ...``, ``: ...``); see :meth:`Prior.validate`."""
    prior = Prior(distribution, **dict(parameters))
    try:
        cls = prior._pymc_class()
    except ConfigError:
        near = difflib.get_close_matches(distribution, _distribution_names(), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f".dist must be a PyMC distribution (got {distribution!r}){hint}"
    names = _parameter_names(cls)
    unknown = sorted(set(prior.parameters) - set(names)) if names else []
    if unknown:
        return f".kwargs: {distribution} has no parameter {', '.join(unknown)}; its parameters: {', '.join(names)}"
    return _density_problem(prior, cls)


def _distribution_names() -> list[str]:
    import pymc as pm

    classes = {name: getattr(pm, name) for name in dir(pm)}
    return [name for name, cls in classes.items() if isinstance(cls, type) and issubclass(cls, pm.Distribution)]


def _parameter_names(cls) -> list[str]:
    """The named parameters of ``cls.dist`` (empty for a distribution that takes only ``*args, **kwargs``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [name for name, p in inspect.signature(cls.dist).parameters.items() if p.kind in kinds and name != "cls"]


def _density_problem(prior: Prior, cls) -> str | None:
    """None if the log density is finite at the distribution's support point, else why not."""
    import numpy as np
    import pymc as pm
    from pymc.distributions.distribution import support_point
    from pymc.logprob.utils import ParameterValueError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            variable = cls.dist(**prior.parameters)
            point = support_point(variable)
            value = float(np.sum(pm.logp(variable, point).eval(mode="FAST_COMPILE")))
        except ParameterValueError as err:  # PyMC's parameter checks: the first line states the constraint
            return f": {prior} is not a valid distribution: it needs {str(err).splitlines()[0]}"
        except Exception as err:  # PyMC raises TypeError, ValueError, ... for parameters it cannot use
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return f": {prior} is not a valid distribution: {reason}"
    if not np.isfinite(value):
        return f": {prior} is not a valid distribution: its log density is {value} at its support point"
    return None
