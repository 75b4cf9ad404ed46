"""Entropy metrics for categorical distributions and posterior draws.

Every public function accepts a numpy array or an :class:`xarray.DataArray`. Given a
DataArray it reduces over a named dimension (``dim``, or ``sample_dims``) and returns a
DataArray keeping the other dimensions, e.g. ``chain`` and ``draw``; given anything else
it converts it with :func:`numpy.asarray` and reduces over ``axis`` (or ``sample_axes``).

All computations use natural logarithms. Functions returning an information quantity
take a keyword-only ``units`` of ``"nats"`` (default) or ``"bits"``; DataArray results
record it in ``attrs["units"]``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.special import digamma, entr, logsumexp

from bayeslm.exceptions import BayesLMError

__all__ = [
    "entropy", "cross_entropy", "perplexity", "to_bits", "to_nats",
    "predictive_log_prob", "dirichlet_expected_entropy", "entropy_decomposition",
]
_LN2 = np.log(2.0)
_TOL = 1e-6  # tolerance of sum(p) == 1 and of log p <= 0
_ROUNDOFF = 1e-12  # negative epistemic entropy above -_ROUNDOFF (nats) is set to 0


# ----------------------------------------------------------------------- helpers
def _check_units(units: str) -> None:
    if units not in ("nats", "bits"):
        raise BayesLMError(f"units must be 'nats' or 'bits', not {units!r}")


def _label(x, units: str):
    """``x`` with ``attrs["units"]`` set if it is a DataArray."""
    return x.assign_attrs(units=units) if isinstance(x, xr.DataArray) else x


def _in_units(nats, units: str):
    """Convert a quantity in nats to ``units``."""
    return to_bits(nats) if units == "bits" else _label(nats, "nats")


def _check_dims(x: xr.DataArray, dims) -> list[str]:
    dims = [dims] if isinstance(dims, str) else list(dims)
    missing = [d for d in dims if d not in x.dims]
    if missing:
        raise BayesLMError(f"DataArray with dims {x.dims} has no dimension(s) {missing}")
    return dims


def _reduce(kernel, x, dims, axis):
    """Apply ``kernel(array, axis=...)`` over named ``dims`` of a DataArray or ``axis``."""
    if isinstance(x, xr.DataArray):
        core = _check_dims(x, dims)
        axes = tuple(range(-len(core), 0))
        return xr.apply_ufunc(kernel, x, input_core_dims=[core], kwargs={"axis": axes})
    return kernel(np.asarray(x, dtype=float), axis=axis)


def _check_probs(p: np.ndarray, axis) -> None:
    if np.isnan(p).any():
        raise BayesLMError("probabilities contain NaN")
    if (p < 0).any():
        raise BayesLMError(f"probabilities contain negative entries (min {p.min():g})")
    err = np.abs(p.sum(axis=axis) - 1.0)
    if (err > _TOL).any():
        raise BayesLMError(f"probabilities do not sum to 1 within {_TOL:g} (error {np.max(err):g})")


# ----------------------------------------------------------------- numpy kernels
def _entropy(p: np.ndarray, axis=-1) -> np.ndarray:
    _check_probs(p, axis)
    return np.sum(entr(p), axis=axis)  # entr(0) = 0


def _cross_entropy(log_prob: np.ndarray, axis=-1) -> np.ndarray:
    if np.isnan(log_prob).any():
        raise BayesLMError("log probabilities contain NaN")
    if (log_prob > _TOL).any():
        raise BayesLMError(
            f"log probabilities must be <= 0 (max {np.max(log_prob):g}); "
            "were probabilities passed instead of log probabilities?"
        )
    return np.mean(-log_prob, axis=axis)


def _predictive_log_prob(log_prob: np.ndarray, axis) -> np.ndarray:
    n = np.prod([log_prob.shape[a] for a in np.atleast_1d(axis)])
    return logsumexp(log_prob, axis=axis) - np.log(n)


def _dirichlet_expected_entropy(alpha: np.ndarray, axis=-1) -> np.ndarray:
    if not np.isfinite(alpha).all() or (alpha <= 0).any():
        raise BayesLMError("Dirichlet concentrations alpha must be finite and > 0")
    weighted = alpha / alpha.sum(axis=axis, keepdims=True) * digamma(alpha + 1)
    return digamma(alpha.sum(axis=axis) + 1) - weighted.sum(axis=axis)


def _decompose(p: np.ndarray, n_sample: int):
    """(total, aleatoric, epistemic) in nats for ``p`` of shape (..., sample_1..k, token)."""
    p = p.reshape(p.shape[: p.ndim - n_sample - 1] + (-1, p.shape[-1]))
    aleatoric = _entropy(p, axis=-1).mean(axis=-1)
    total = _entropy(p.mean(axis=-2), axis=-1)
    epistemic = total - aleatoric
    epistemic = np.where((epistemic < 0) & (epistemic > -_ROUNDOFF), 0.0, epistemic)
    return total, aleatoric, epistemic


# ------------------------------------------------------------------- public API
def entropy(p, *, dim: str = "token", axis: int = -1, units: str = "nats"):
    """Shannon entropy ``H(p) = -sum_w p_w log p_w`` of categorical distributions.

    Parameters
    ----------
    p : numpy.ndarray or xarray.DataArray
        Probabilities, e.g. of shape (chain, draw, token); ``0 log 0`` counts as 0.
        Each distribution must be free of NaN, non-negative and sum to 1 within 1e-6,
        else :class:`~bayeslm.exceptions.BayesLMError` is raised.
    dim, axis
        Dimension (DataArray) or axis (numpy) of the outcomes.
    units : {"nats", "bits"}

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Entropy in ``units``, of ``p``'s shape without the reduced dim/axis.
    """
    _check_units(units)
    return _in_units(_reduce(_entropy, p, [dim], axis), units)


def cross_entropy(log_prob, *, dim: str = "position", axis: int = -1, units: str = "nats"):
    """Cross-entropy: the mean of ``-log_prob`` over positions.

    Parameters
    ----------
    log_prob : numpy.ndarray or xarray.DataArray
        Natural-log probabilities (<= 0) of the observed tokens, e.g. of shape
        (chain, draw, position). ``-inf`` gives an infinite cross-entropy.
    dim, axis
        Dimension (DataArray) or axis (numpy) of the positions.
    units : {"nats", "bits"}

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Cross-entropy in ``units`` per token, e.g. of shape (chain, draw).
    """
    _check_units(units)
    return _in_units(_reduce(_cross_entropy, log_prob, [dim], axis), units)


def perplexity(log_prob, *, dim: str = "position", axis: int = -1):
    """Perplexity ``exp(cross-entropy in nats)``; see :func:`cross_entropy`.

    Returns a unitless array of ``log_prob``'s shape without the positions dim/axis.
    """
    with np.errstate(over="ignore"):
        return np.exp(_reduce(_cross_entropy, log_prob, [dim], axis))


def to_bits(nats):
    """Convert an information quantity (scalar, array or DataArray) from nats to bits."""
    return _label(nats / _LN2, "bits")


def to_nats(bits):
    """Convert an information quantity (scalar, array or DataArray) from bits to nats."""
    return _label(bits * _LN2, "nats")


def predictive_log_prob(log_prob, *, sample_dims=("chain", "draw"), sample_axes=(0, 1)):
    """Posterior-predictive log probability: the log of the mean over draws of ``exp(log_prob)``.

    Computed stably as ``logsumexp(log_prob over samples) - log(n_samples)``.

    Parameters
    ----------
    log_prob : numpy.ndarray or xarray.DataArray
        Natural-log probabilities, e.g. of shape (chain, draw, position).
    sample_dims, sample_axes
        Dimensions (DataArray) or axes (numpy) indexing the posterior draws.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Natural-log probabilities without the sample dims, e.g. of shape (position,).
    """
    return _reduce(_predictive_log_prob, log_prob, sample_dims, tuple(sample_axes))


def dirichlet_expected_entropy(alpha, *, dim: str = "token", axis: int = -1, units: str = "nats"):
    """Expected entropy ``E[H(p)]`` of ``p ~ Dirichlet(alpha)``.

    ``E[H(p)] = digamma(A + 1) - sum_w (alpha_w / A) digamma(alpha_w + 1)`` with
    ``A = sum_w alpha_w``.

    Parameters
    ----------
    alpha : numpy.ndarray or xarray.DataArray
        Concentrations (finite, > 0), e.g. of shape (chain, draw, token).
    dim, axis
        Dimension (DataArray) or axis (numpy) of the categories.
    units : {"nats", "bits"}

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Expected entropy in ``units``, of ``alpha``'s shape without the categories.
    """
    _check_units(units)
    return _in_units(_reduce(_dirichlet_expected_entropy, alpha, [dim], axis), units)


def entropy_decomposition(
    probs, *, sample_dims=("chain", "draw"), dim: str = "token",
    sample_axes=(0, 1), axis: int = -1, units: str = "nats",
):
    """Split predictive uncertainty into aleatoric and epistemic parts.

    ``total = H[mean_s p_s]``, ``aleatoric = mean_s H[p_s]`` and
    ``epistemic = total - aleatoric``, the mutual information between the next token
    and the parameters (>= 0; round-off negatives above -1e-12 nats are set to 0).

    Parameters
    ----------
    probs : numpy.ndarray or xarray.DataArray
        Per-draw categorical distributions, e.g. of shape (chain, draw, context, token).
    sample_dims, dim
        DataArray dimensions of the draws and of the tokens.
    sample_axes, axis
        Numpy axes of the draws and of the tokens.
    units : {"nats", "bits"}

    Returns
    -------
    xarray.Dataset or dict of numpy.ndarray
        ``total``, ``aleatoric`` and ``epistemic`` in ``units``, each of ``probs``'s
        shape without the sample and token dims, e.g. (context,).
    """
    _check_units(units)
    names = ("total", "aleatoric", "epistemic")
    if isinstance(probs, xr.DataArray):
        core = _check_dims(probs, [*sample_dims, dim])
        parts = xr.apply_ufunc(_decompose, probs, input_core_dims=[core],
                               output_core_dims=[[]] * 3, kwargs={"n_sample": len(core) - 1})
        return xr.Dataset({k: _in_units(v, units) for k, v in zip(names, parts)},
                          attrs={"units": units})
    p = np.asarray(probs, dtype=float)
    source = [a % p.ndim for a in (*sample_axes, axis)]
    if len(set(source)) != len(source):
        raise BayesLMError(f"sample_axes {sample_axes} and axis {axis} must be distinct")
    parts = _decompose(np.moveaxis(p, source, range(-len(source), 0)), len(source) - 1)
    return {k: _in_units(v, units) for k, v in zip(names, parts)}
