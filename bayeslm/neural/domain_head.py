"""A domain's last layer whose prior is a general last layer's Laplace posterior, tempered by a power.

:class:`LaplacePosterior` is a fitted last layer's Laplace posterior N(theta_G, Lambda^-1) in the
factored form the last layer keeps (the eigendecomposition of the full GGN, or eigenvalues in a
Kronecker eigenbasis UA (x) UB); :func:`fit_adapted_head` fits the last layer of domain features
with the prior N(theta_G, (lam Lambda)^-1), the power lam chosen by evidence (or given), and
:func:`fit_finetuned_head` is plain fine-tuning of the head (MAP). Shapes: theta (V, D) with
D = features + 1 (the bias is the weight of a constant feature). docs/domain.md ("GPT") gives
the model and the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayeslm.exceptions import ModelFileError
from bayeslm.neural.last_layer import (
    Curvature,
    LaplaceFit,
    SoftmaxObjective,
    conjugate_gradients,
    ggn_diagonal_in_basis,
    newton_minimise,
)

__all__ = ["LaplacePosterior", "DomainPosterior", "AdaptedHead", "fit_adapted_head", "fit_finetuned_head",
           "domain_share", "LOG_POWER_RANGE"]

#: the power's search range in log lam: e^-20 (the domain text alone) .. e^20 (the general model)
LOG_POWER_RANGE = (-20.0, 20.0)
_ARRAYS = ("theta", "precision", "U", "UA", "UB")


def _augmented(X: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(X, dtype=float), np.ones((len(X), 1))])


@dataclass
class LaplacePosterior:
    """N(theta, Lambda^-1) with Lambda = U diag(precision) U^T, in the last layer's factored form.

    ``kind`` "full": ``precision`` (P,) and ``U`` (P, P) orthogonal, P = V D, theta raveled
    token-major; "kron": ``precision`` (V, D) and U = UA (x) UB (``UA`` (V, V), ``UB`` (D, D)):
    the eigenbasis of the Kronecker-factored GGN, in which EKFAC and KFAC keep their
    eigenvalues. ``precision`` is the GGN's eigenvalues plus the prior precision alpha, so
    Lambda is the last layer's posterior precision exactly as it sampled from it.
    """

    kind: str
    theta: np.ndarray
    precision: np.ndarray
    U: np.ndarray | None = None
    UA: np.ndarray | None = None
    UB: np.ndarray | None = None

    @classmethod
    def from_laplace(cls, fit: LaplaceFit) -> "LaplacePosterior":
        """The posterior of a :class:`~bayeslm.neural.last_layer.LaplaceFit`: its mode, curvature and the
        prior precision its draws use (``sample_alpha``: the evidence's alpha, or the broader one the
        validation rule chose for the covariance), so the prior is the posterior the general model reports."""
        c = fit.curvature
        kind = "full" if c.kind == "full" else "kron"
        return cls(kind, fit.theta.copy(), c.lam + fit.sample_alpha, c.U, c.UA, c.UB)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {f"{prefix}kind": np.array(self.kind)}
        arrays.update({f"{prefix}{name}": getattr(self, name) for name in _ARRAYS if getattr(self, name) is not None})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str) -> "LaplacePosterior | None":
        """The posterior :meth:`to_arrays` wrote (None if there is none); ModelFileError if it does not fit."""
        if f"{prefix}kind" not in arrays:
            return None
        kind = str(arrays[f"{prefix}kind"])
        parts = {name: np.asarray(arrays[f"{prefix}{name}"], dtype=float) for name in _ARRAYS if f"{prefix}{name}" in arrays}
        post = cls(kind, **parts)
        V, D = post.theta.shape
        shapes = ({"precision": (V * D,), "U": (V * D, V * D)} if kind == "full"
                  else {"precision": (V, D), "UA": (V, V), "UB": (D, D)})
        if kind not in ("full", "kron") or any(getattr(post, k) is None or getattr(post, k).shape != s
                                              for k, s in shapes.items()):
            raise ModelFileError("the last layer's Laplace posterior in arrays.npz is damaged (shapes do not fit)")
        return post

    @property
    def size(self) -> int:
        return int(self.theta.size)

    def rotate(self, S: np.ndarray) -> np.ndarray:
        """Coordinates of S (V, D) in the eigenbasis: U^T vec(S) (P,), or UA^T S UB (V, D)."""
        return self.U.T @ S.ravel() if self.kind == "full" else self.UA.T @ S @ self.UB

    def unrotate(self, C: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`rotate`, shape (V, D)."""
        return (self.U @ C).reshape(self.theta.shape) if self.kind == "full" else self.UA @ C @ self.UB.T

    def matvec(self, S: np.ndarray) -> np.ndarray:
        """Lambda S, shape (V, D)."""
        return self.unrotate(self.precision * self.rotate(S))


class DomainPosterior:
    """The curvature of domain data at a point, in the coordinates whitened by the general posterior.

    With H the domain's GGN there, the posterior precision at power lam is
    ``A(lam) = H + lam Lambda``. "full": H~ = Lambda^-1/2 H Lambda^-1/2 = Q diag(eta) Q^T
    exactly, and ``W = Lambda^-1/2 Q``, so A(lam)^-1 = W diag(1 / (eta + lam)) W^T. "kron": H
    is taken as its diagonal d in the general eigenbasis UA (x) UB (:func:`ggn_diagonal_in_basis`:
    exact diagonal, off-diagonal dropped), eta = d / precision, and
    A(lam) = U diag(precision (eta + lam)) U^T. In both, eta are the domain data's
    eigenvalues in units of the general precision: the domain's information relative to the
    general model's, direction by direction.
    """

    def __init__(self, prior: LaplacePosterior, sm: SoftmaxObjective, P: np.ndarray):
        self.prior = prior
        if prior.kind == "full":
            H = Curvature.at("full", sm, P)  # the domain's GGN, eigendecomposed
            half = (prior.U / np.sqrt(prior.precision)) @ prior.U.T  # Lambda^-1/2
            eta, Q = np.linalg.eigh(half @ ((H.U * H.lam) @ H.U.T) @ half)
            self.eta, self.W = np.maximum(eta, 0.0), half @ Q
        else:
            self.eta = ggn_diagonal_in_basis(sm, P, prior.UA, prior.UB) / prior.precision
            self.W = None

    def solve(self, G: np.ndarray, lam: float) -> np.ndarray:
        """A(lam)^-1 G, shape (V, D)."""
        if self.W is not None:
            return (self.W @ ((self.W.T @ G.ravel()) / (self.eta + lam))).reshape(G.shape)
        return self.prior.unrotate(self.prior.rotate(G) / (self.prior.precision * (self.eta + lam)))

    def sample(self, n: int, lam: float, rng: np.random.Generator) -> np.ndarray:
        """n deviations from the mode drawn from N(0, A(lam)^-1), shape (n, V, D)."""
        shape = self.prior.theta.shape
        if self.W is not None:
            z = rng.standard_normal((n, self.eta.size)) / np.sqrt(self.eta + lam)
            return (z @ self.W.T).reshape((n, *shape))
        z = rng.standard_normal((n, *shape)) / np.sqrt(self.prior.precision * (self.eta + lam))
        return np.einsum("vi,sij,dj->svd", self.prior.UA, z, self.prior.UB, optimize=True)

    def gamma(self, lam: float) -> float:
        """Parameters determined by the domain data rather than the prior: sum eta / (eta + lam)."""
        return float((self.eta / (self.eta + lam)).sum())

    def half_log_det_ratio(self, lam: float) -> float:
        """1/2 log det(lam Lambda) - 1/2 log det(A(lam)) (the Occam factor of the Laplace evidence)."""
        return 0.5 * float(np.log(lam / (self.eta + lam)).sum())

    def block_sums(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """(B_domain, B_total), (D, D): for M = Sigma H Sigma and M = Sigma = A(lam)^-1, with M_vw the
        (D, D) block of tokens v, w, ``sum_v M_vv - (1/V) sum_vw M_vw``: x~^T B x~ is the summed
        variance of the logits centred over the tokens (see :func:`domain_share`)."""
        total = 1.0 / (self.eta + lam)
        domain = self.eta * total**2
        V, D = self.prior.theta.shape
        if self.W is not None:
            Wb = self.W.reshape(V, D, -1)
            Ws = Wb.sum(axis=0)
            return tuple(np.einsum("vdk,k,vek->de", Wb, c, Wb, optimize=True) - (Ws * c) @ Ws.T / V
                         for c in (domain, total))
        p, UA, UB = self.prior.precision, self.prior.UA, self.prior.UB
        centred = (1.0 - UA.sum(axis=0) ** 2 / V)[:, None]  # per token eigenvector: 1 - (1^T u_i)^2 / V
        return tuple((UB * (centred * c / p).sum(axis=0)) @ UB.T for c in (domain, total))


@dataclass
class AdaptedHead:
    """The fitted domain head: its mode (V, D) and draws of theta (S, V, D), the power (its value and
    draws), the matrices of :func:`domain_share` and a record of the fit."""

    mode: np.ndarray
    thetas: np.ndarray
    power: float
    power_draws: np.ndarray
    B_domain: np.ndarray
    B_total: np.ndarray
    info: dict


def _newton_tol(sm: SoftmaxObjective) -> float:
    """Newton's stop, in nats: to round-off on problems held in float64, 1e-4 nats a position on large ones
    (float32), as the last layer's own fit (bayeslm.neural.last_layer)."""
    return 1e-9 * max(1.0, sm.N) if sm.dtype == np.float64 else 1e-4 * sm.N


def _cg_rtol(sm: SoftmaxObjective) -> float:
    """Conjugate gradients' stop: to round-off on small problems, half the gradient on large ones (truncated Newton)."""
    return 1e-8 if sm.dtype == np.float64 else 0.5


def _adapted_mode(sm, prior: LaplacePosterior, lam: float, theta: np.ndarray, tol: float):
    """The mode of NLL(theta) + lam/2 (theta - theta_G)^T Lambda (theta - theta_G), by Newton from ``theta``."""
    def value_grad(th):
        f, G, P = sm.value_grad(th, 0.0)
        dev = th - prior.theta
        pull = lam * prior.matvec(dev)
        return f + 0.5 * float((dev * pull).sum()), G + pull, P

    def step(P, G):
        if not np.any(G):  # at the mode already (the general one, without domain positions)
            return np.zeros_like(G)
        pre = DomainPosterior(prior, sm, P)
        Pc = P.astype(sm.dtype, copy=False)  # value_grad's p is in the problem's dtype already: no copy
        return conjugate_gradients(lambda S: sm.ggn_product(Pc, S, 0.0) + lam * prior.matvec(S),
                                   lambda R: pre.solve(R, lam), G, _cg_rtol(sm))

    return newton_minimise(value_grad, step, theta, tol=tol)


def _log_power_posterior(sm, prior, curv: DomainPosterior, theta, lam_hat, log_lam: float, hyper) -> float:
    """log p(lam | domain) + const at lam = e^log_lam (Laplace evidence, with the mode predicted
    by one Newton step from ``theta``, the mode at ``lam_hat``, and the curvature held), in log lam."""
    lam = float(np.exp(log_lam))
    grad_nll = -lam_hat * prior.matvec(theta - prior.theta)  # at the mode the likelihood balances the prior
    th = theta - curv.solve(grad_nll + lam * prior.matvec(theta - prior.theta), lam)
    f = sm.value_grad(th, 0.0)[0]
    dev = th - prior.theta
    return -f - 0.5 * lam * float((dev * prior.matvec(dev)).sum()) + curv.half_log_det_ratio(lam) + hyper(log_lam)


def _evidence_power(sm, prior, hyper, tol, rounds: int = 30) -> tuple[float, np.ndarray, np.ndarray, DomainPosterior]:
    """The power at the maximum of evidence x hyperprior (MacKay's fixed point lam = (gamma + 2 h') / q,
    q = (theta - theta_G)^T Lambda (theta - theta_G), with the mode and curvature recomputed each round)."""
    lam, theta = 1.0, prior.theta.copy()
    lo, hi = LOG_POWER_RANGE
    for _ in range(rounds):
        theta, f, P = _adapted_mode(sm, prior, lam, theta, tol)
        curv = DomainPosterior(prior, sm, P)
        dev = theta - prior.theta
        q = float((dev * prior.matvec(dev)).sum())
        slope = (hyper(np.log(lam) + 1e-4) - hyper(np.log(lam) - 1e-4)) / 2e-4
        new = float(np.exp(np.clip(np.log(max(curv.gamma(lam) + 2 * slope, 1e-12) / max(q, 1e-300)), lo, hi)))
        if abs(np.log(new / lam)) < 1e-2:
            return lam, theta, P, curv
        lam, P = new, None  # p (positions, V) not held through the next mode's search
    theta, f, P = _adapted_mode(sm, prior, lam, theta, tol)  # no fixed point within the rounds: the last lam
    return lam, theta, P, DomainPosterior(prior, sm, P)


def _validation_power(sm, prior, hyper, tol, valid, draws: int = 32) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The power maximising the validation positions' log posterior-predictive probability times lam's
    prior, in log lam: a grid of step 2 over log lam in [-8, 8], then Brent's bounded search around
    its best point (to 0.02). The predictive is the Laplace posterior's at each lam, by ``draws``
    draws with common random numbers (the same standard normals at every lam, so the objective is
    smooth in lam). Returns (lam, sd of log lam from the objective's curvature there, the mode, p at it).
    Each lam's mode is kept, not its p (positions, V): p at the chosen mode is computed again."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax, logsumexp

    Xv, yv = valid
    Xa, yv = _augmented(Xv), np.asarray(yv, dtype=np.int64)
    rows = np.arange(yv.size)
    modes = {}

    def objective(l: float) -> float:  # - (validation log predictive + log prior of log lam)
        lam = float(np.exp(l))
        start = modes[min(modes, key=lambda k: abs(k - l))] if modes else prior.theta.copy()
        theta, _, P = _adapted_mode(sm, prior, lam, start, tol)
        modes[l] = theta
        thetas = theta + DomainPosterior(prior, sm, P).sample(draws, lam, np.random.default_rng(0))
        log_probs = np.stack([log_softmax(Xa @ t.T, axis=1)[rows, yv] for t in thetas])
        return -float((logsumexp(log_probs, axis=0) - np.log(draws)).sum()) - hyper(l)

    grid = np.arange(-8.0, 8.01, 2.0)
    best = float(grid[int(np.argmin([objective(float(l)) for l in grid]))])
    l0 = float(minimize_scalar(objective, bounds=(best - 2.0, best + 2.0), method="bounded",
                               options={"xatol": 0.02}).x)
    h = 0.25
    second = -(objective(l0 + h) - 2 * objective(l0) + objective(l0 - h)) / h**2
    theta = modes[l0]
    P = sm.value_grad(theta, 0.0)[2]  # p at the mode, as its Newton search left it
    return float(np.exp(l0)), 1.0 / np.sqrt(-second) if second < 0 else 1.0, theta, P


def fit_adapted_head(X, y, prior: LaplacePosterior, *, power: float | None, power_logp, draws: int,
                     rng: np.random.Generator, valid=None) -> AdaptedHead:
    """The last layer of domain positions (features X (N, d), next tokens y (N,)) under the prior
    N(theta_G, (lam Lambda)^-1), ``prior`` = N(theta_G, Lambda^-1) the general posterior.

    ``power``: lam, or None to choose it: with validation positions ``valid`` = (features,
    next tokens) at the maximum of their log posterior-predictive probability times lam's prior
    (:func:`_validation_power`), else at the maximum of the Laplace evidence
    times lam's prior (``power_logp``: log density of lam, numpy). The posterior of theta is the
    Laplace approximation at that lam (``draws`` draws); the power's posterior is the Laplace
    approximation of log lam's (the chosen objective's curvature in log lam), whose draws are
    reported (``power_draws``) but not mixed into theta's (as the general model's alpha).
    """
    V, D = prior.theta.shape
    sm = SoftmaxObjective(_augmented(X), np.asarray(y, dtype=np.int64), V)
    tol = _newton_tol(sm)
    hyper = lambda l: float(power_logp(np.array([np.exp(l)]))[0]) + l  # density of log lam
    chosen_by = "given"
    if power is None and valid is not None:
        lam, sd, theta, P = _validation_power(sm, prior, hyper, tol, valid)
        curv, chosen_by = DomainPosterior(prior, sm, P), "validation"
        power_draws = np.exp(np.log(lam) + sd * rng.standard_normal(draws))
    elif power is None:
        lam, theta, P, curv = _evidence_power(sm, prior, hyper, tol)
        h = 0.25
        at = lambda l: _log_power_posterior(sm, prior, curv, theta, lam, l, hyper)
        l0 = float(np.log(lam))
        second = (at(l0 + h) - 2 * at(l0) + at(l0 - h)) / h**2
        sd = 1.0 / np.sqrt(-second) if second < 0 else 1.0
        power_draws, chosen_by = np.exp(l0 + sd * rng.standard_normal(draws)), "evidence"
    else:
        lam = float(power)
        theta, _, P = _adapted_mode(sm, prior, lam, prior.theta.copy(), tol)
        curv = DomainPosterior(prior, sm, P)
        power_draws, sd = np.full(draws, lam), 0.0
    thetas = theta + curv.sample(draws, lam, rng)
    B_domain, B_total = curv.block_sums(lam)
    info = {"power": lam, "log_power_sd": sd, "power_chosen_by": chosen_by, "positions": int(sm.N),
            "hessian": prior.kind, "effective_parameters": curv.gamma(lam), "parameters": int(prior.size)}
    return AdaptedHead(theta, thetas, lam, power_draws, B_domain, B_total, info)


def fit_finetuned_head(X, y, start: np.ndarray, alpha: float) -> np.ndarray:
    """Plain fine-tuning of the head: the mode of NLL(theta) + alpha/2 ||theta||^2 on the domain
    positions, by Newton from ``start`` (the general head), shape (V, D)."""
    V = start.shape[0]
    sm = SoftmaxObjective(_augmented(X), np.asarray(y, dtype=np.int64), V)

    def step(P, G):
        pre = Curvature.at("kfac", sm, P)
        Pc = P.astype(sm.dtype, copy=False)
        return conjugate_gradients(lambda S: sm.ggn_product(Pc, S, alpha), lambda R: pre.solve(R, alpha), G,
                                   _cg_rtol(sm))

    return newton_minimise(lambda th: sm.value_grad(th, alpha), step, start.copy(), tol=_newton_tol(sm))[0]


def domain_share(X, B_domain: np.ndarray, B_total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position (features X (n, d)): the domain share s and the logits' total posterior variance.

    The posterior covariance Sigma = A^-1 = (H + lam Lambda)^-1 splits exactly as
    Sigma = Sigma H Sigma + lam Sigma Lambda Sigma. The logits z = theta x~ (x~ = [x, 1]),
    centred over the tokens (adding one number to every logit changes no probability), have
    summed posterior variance sum_v Var(z_v - mean_w z_w) = x~^T B_total x~, of which
    x~^T B_domain x~ is the first part's: s = x~^T B_domain x~ / x~^T B_total x~, in [0, 1].
    Returns (s, variance), (n,) each.
    """
    Xa = _augmented(X)
    total = np.einsum("nd,de,ne->n", Xa, B_total, Xa, optimize=True)
    domain = np.einsum("nd,de,ne->n", Xa, B_domain, Xa, optimize=True)
    return np.clip(domain / np.maximum(total, 1e-300), 0.0, 1.0), total
