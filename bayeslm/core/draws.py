"""Choosing posterior draws and drawing categorical distributions from Dirichlet posteriors."""

from __future__ import annotations

import numpy as np

__all__ = ["draw_indices", "sample_dirichlet_rows"]


def draw_indices(n: int, draws=None) -> np.ndarray:
    """Indices of the posterior draws a method uses, out of ``n``.

    ``None``: all; an int k: k evenly spaced draws (at most n); a sequence: those indices.
    """
    if draws is None:
        return np.arange(n)
    if np.isscalar(draws):
        return np.linspace(0, n - 1, min(int(draws), n)).round().astype(int)
    return np.asarray(draws, dtype=int)


def sample_dirichlet_rows(A: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw of Dirichlet(A[i]) per row of ``A`` (shape (context, token); zeros stay 0).

    Gamma variates are drawn in log space (log G(A) = log G(A + 1) + log(U) / A), so
    parameters near 1e-3 do not underflow to 0 before normalisation.
    """
    with np.errstate(divide="ignore"):
        log_gamma = np.where(
            A > 0,
            np.log(rng.standard_gamma(A + 1.0)) + np.log(rng.random(A.shape)) / np.where(A > 0, A, 1.0),
            -np.inf,
        )
    log_gamma -= log_gamma.max(axis=1, keepdims=True)
    p = np.exp(log_gamma)
    return p / p.sum(axis=1, keepdims=True)
