"""BayesianLastLayer: the output layer softmax(W h + b) of a frozen network, with a posterior.

The PyMC model is softmax regression on the body's features h with a Gaussian prior on
theta = [W, b] centred at the trained (or calibrated) head, whose scale has its own prior;
``method`` chooses the inference (Laplace, ADVI, low-rank ADVI, NUTS, and the MAP,
temperature and MC-dropout baselines). Every method stores draws of W and b, so the
predictive and its entropy split are one code path. docs/transformer.md describes the model
and each method. Imports neither torch nor PyMC at import time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from bayeslm.core.draws import draw_indices
from bayeslm.core.priors import Prior
from bayeslm.core.sampling import prepare_pytensor
from bayeslm.exceptions import BayesLMError, ConfigError, NotFittedError
from bayeslm.neural.last_layer_rule import COVARIANCE_FACTORS, RULE_DRAWS, RULE_POSITIONS, RuleChoice, choose

__all__ = ["BayesianLastLayer", "METHODS", "softmax_regression_model", "SoftmaxObjective", "Curvature",
           "ggn_diagonal_in_basis", "conjugate_gradients", "newton_minimise"]

log = logging.getLogger(__name__)

METHODS = ("laplace", "advi", "advi_lowrank", "nuts", "map", "map_temperature", "mc_dropout")
HESSIANS = ("auto", "full", "kron", "kfac")
PRIOR_MEANS = ("auto", "calibrated_head", "head", "zero")
PRIOR_SCALES = ("auto", "evidence", "integrate")
DEFAULT_PRIORS = {"weight_scale": {"dist": "LogNormal", "kwargs": {"mu": 0.0, "sigma": 2.0}}}
_FLOAT32_FROM = 2e7  # N * V * D above which the big products run in float32
#: rows of the (positions, V) arrays the fit's elementwise steps and reductions take at a time
_CHUNK_ROWS = 4096
#: entries (draws x positions x V) of one block of the predictive's arrays (32 MB in float64)
_PREDICTIVE_ENTRIES = 2**22
BLAS_THREADS = 1  # see _single_blas


def _single_blas(fn):
    """Run ``fn`` with BLAS limited to :data:`BLAS_THREADS` threads.

    OpenBLAS's threads spin while they wait; on a machine whose cores are shared with other
    jobs a (50,000 x 129)^T (50,000 x 83) product took 0.13-1.9 s with two threads and
    0.03 s with one. The last layer's products are small, so one thread loses little on an
    idle machine.
    """
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------- input checks
def _as_features(X, name: str = "features") -> np.ndarray:
    if type(X).__module__.startswith("torch"):  # a tensor: no torch import needed to tell
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=float)
    if X.ndim == 3:
        X = X.reshape(-1, X.shape[-1])
    if X.ndim != 2:
        raise BayesLMError(f"{name} must have shape (positions, dim), got {X.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise BayesLMError(f"{name} contain NaN or infinite values at {rows.size} positions (first: {rows[0]})")
    return X


def _as_targets(y, n: int, V: int | None = None) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if y.size != n:
        raise BayesLMError(f"targets: {y.size} values for {n} positions")
    if y.size and (not np.issubdtype(y.dtype, np.integer)):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise BayesLMError("targets must be whole numbers (token ids)")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise BayesLMError("targets must be >= 0")
    if V is not None and y.size and y.max() >= V:
        raise BayesLMError(f"target id {int(y.max())} outside the {V} classes of the layer")
    return y


def _augment(X: np.ndarray) -> np.ndarray:
    """[h, 1]: the bias is the weight of a constant feature."""
    return np.hstack([X, np.ones((X.shape[0], 1))])


# --------------------------------------------------------------- softmax regression
def _row_chunks(n: int, chunk: int | None = None):
    """Slices of ``chunk`` rows (default :data:`_CHUNK_ROWS`) covering n rows in order."""
    chunk = chunk or _CHUNK_ROWS
    return (slice(start, min(start + chunk, n)) for start in range(0, n, chunk))


def _tmm(A: np.ndarray, B: np.ndarray, chunk: int | None = None, dtype=None) -> np.ndarray:
    """A^T B for tall A (N, k) and B (N, m), summed over row chunks (OpenBLAS is slow on one
    long reduction); with ``dtype``, each chunk is converted to it first (a float32 A summed in
    float64 without a float64 copy of A)."""
    out = np.zeros((A.shape[1], B.shape[1]), dtype=dtype or np.result_type(A, B))
    for sl in _row_chunks(A.shape[0], chunk):
        a, b = A[sl], B[sl]
        if dtype is not None:
            a, b = a.astype(dtype, copy=False), (a if B is A else b.astype(dtype, copy=False))
        out += a.T @ b
    return out


class _Softmax:
    """Negative log posterior of softmax regression at prior precision alpha: value, gradient,
    p, and products with the GGN. Large problems run their products in float32.

    Memory: the probabilities p (N, V) are the one array of the problem's size the fit holds;
    they are kept in the problem's dtype, and the elementwise steps on them (the gradient's
    residual, the GGN product, EKFAC's diagonal) run over chunks of :data:`_CHUNK_ROWS` rows,
    summed in the chunks' order as :func:`_tmm` sums."""

    def __init__(self, X: np.ndarray, y: np.ndarray, V: int, mu: np.ndarray | None = None):
        self.X = X  # (N, D) with the constant column
        self.mu = np.zeros((V, X.shape[1])) if mu is None else mu  # the prior mean of theta
        self.y = y
        self.V = V
        self.N, self.D = X.shape
        self.dtype = np.float32 if self.N * V * self.D > _FLOAT32_FROM else np.float64
        self.Xc = np.ascontiguousarray(X, dtype=self.dtype)
        self._rows = np.arange(self.N)
        self.evaluations = 0
        self.products = 0
        self._B_eig = None

    @property
    def B_eig(self):
        """Eigendecomposition of sum_n x_n x_n^T (the features' factor of the Kronecker GGN)."""
        if self._B_eig is None:
            self._B_eig = np.linalg.eigh(_tmm(self.X, self.X))
        return self._B_eig

    def _probs(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """softmax(X theta^T) in the problem's dtype (one exp per entry, in place; sums in
        float64) and the log-likelihood of each position (float64)."""
        Z = self.Xc @ theta.T.astype(self.dtype)
        Z -= Z.max(axis=1, keepdims=True)
        z_y = Z[self._rows, self.y].astype(np.float64)
        E = np.exp(Z, out=Z)
        total = E.sum(axis=1, dtype=np.float64)
        ll = z_y - np.log(total)
        E /= total.astype(self.dtype)[:, None]
        return E, ll

    def probs(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """softmax(X theta^T) (N, V) and the log-likelihood of each position (float64)."""
        P, ll = self._probs(theta)
        return P.astype(np.float64), ll

    def value_grad(self, theta: np.ndarray, alpha: float):
        """(value, gradient (V, D) float64, p (N, V) in the problem's dtype) at theta."""
        self.evaluations += 1
        P, ll = self._probs(theta)
        dev = theta - self.mu
        G = np.zeros((self.V, self.D), dtype=self.dtype)
        for sl in _row_chunks(self.N):  # (p_n - e_{y_n}) x_n^T, a chunk's residual at a time
            R = P[sl].copy()
            R[np.arange(R.shape[0]), self.y[sl]] -= 1.0
            G += R.T @ self.Xc[sl]
        G = G.astype(np.float64) + alpha * dev
        f = -ll.sum() + 0.5 * alpha * float((dev * dev).sum())
        return f, G, P

    def ggn_product(self, P: np.ndarray, S: np.ndarray, alpha: float) -> np.ndarray:
        """(GGN + alpha I) S for S of shape (V, D): sum_n (A_n X_n S^T ...) without forming the GGN.

        Every elementwise step runs in the problem's dtype (float32 for large problems; a P
        of another dtype is converted a chunk of rows at a time), over chunks of rows."""
        self.products += 1
        St = S.T.astype(self.dtype)
        out = np.zeros((self.V, self.D), dtype=self.dtype)
        for sl in _row_chunks(self.N):
            Pc = P[sl].astype(self.dtype, copy=False)
            PZ = self.Xc[sl] @ St
            PZ *= Pc
            PZ -= Pc * PZ.sum(axis=1, keepdims=True)  # (diag p_n - p_n p_n^T) z_n
            out += PZ.T @ self.Xc[sl]
        return out.astype(np.float64) + alpha * S


class _Curvature:
    """Eigendecomposition of the GGN (exact, or Kronecker-factored) at a mode.

    The posterior precision is ``U diag(lam + alpha) U^T``; for the Kronecker kinds
    U = U_A (x) U_B and ``lam`` has shape (V, D).
    """

    def __init__(self, kind: str, lam: np.ndarray, U=None, UA=None, UB=None):
        self.kind, self.lam, self.U, self.UA, self.UB = kind, np.maximum(lam, 0.0), U, UA, UB

    @classmethod
    def at(cls, kind: str, sm: _Softmax, P: np.ndarray) -> "_Curvature":
        X, N, D = sm.X, sm.N, sm.D
        V = P.shape[1]
        if kind == "full":
            # sum_n (diag p_n) (x) x_n x_n^T  -  sum_n (p_n (x) x_n)(p_n (x) x_n)^T
            H = np.zeros((V * D, V * D))
            for v in range(V):
                H[v * D:(v + 1) * D, v * D:(v + 1) * D] = _tmm(X * P[:, v:v + 1], X)
            for start in range(0, N, 1024):
                J = (P[start:start + 1024, :, None] * X[start:start + 1024, None, :]).reshape(-1, V * D)
                H -= J.T @ J
            lam, U = np.linalg.eigh(0.5 * (H + H.T))
            return cls("full", lam, U=U)
        # in float64 whatever P's dtype (a chunk of rows converted at a time)
        A = (np.diag(P.sum(axis=0, dtype=np.float64)) - _tmm(P, P, dtype=np.float64)) / N
        a, UA = np.linalg.eigh(A)
        b, UB = sm.B_eig
        if kind == "kfac":
            return cls("kfac", np.outer(np.maximum(a, 0), np.maximum(b, 0)), UA=UA, UB=UB)
        return cls("kron", ggn_diagonal_in_basis(sm, P, UA, UB), UA=UA, UB=UB)

    def logdet(self, alpha: float) -> float:
        return float(np.log(self.lam + alpha).sum())

    def gamma(self, alpha: float) -> float:
        """Effective number of parameters determined by the data: sum lam / (lam + alpha)."""
        return float((self.lam / (self.lam + alpha)).sum())

    def coordinates(self, G: np.ndarray) -> np.ndarray:
        """G (V, D) in the eigenbasis, shaped like ``lam``."""
        if self.kind == "full":
            return self.U.T @ G.ravel()
        return self.UA.T @ G @ self.UB

    def solve(self, G: np.ndarray, alpha: float) -> np.ndarray:
        """(GGN + alpha I)^-1 applied to G (V, D)."""
        if self.kind == "full":
            return (self.U @ ((self.U.T @ G.ravel()) / (self.lam + alpha))).reshape(G.shape)
        return self.UA @ ((self.UA.T @ G @ self.UB) / (self.lam + alpha)) @ self.UB.T

    def variance(self, alpha: float, shape) -> np.ndarray:
        """Marginal posterior variances of theta, shape (V, D)."""
        inv = 1.0 / (self.lam + alpha)
        if self.kind == "full":
            return ((self.U * self.U) @ inv).reshape(shape)
        return (self.UA * self.UA) @ inv @ (self.UB * self.UB).T

    def sample(self, n: int, alpha: float, rng: np.random.Generator, shape) -> np.ndarray:
        """n deviations from the mode, shape (n, V, D)."""
        inv_sd = 1.0 / np.sqrt(self.lam + alpha)
        if self.kind == "full":
            z = rng.standard_normal((n, self.lam.size)) * inv_sd
            return (z @ self.U.T).reshape((n, *shape))
        # a batch of draws at a time (the same normal deviates, drawn in order): the (n, V, D) result
        # and a batch's temporaries, not the rotation's three (n, V, D) temporaries
        out = np.empty((n, *shape))
        batch = max(1, _PREDICTIVE_ENTRIES // self.lam.size)
        for start in range(0, n, batch):
            z = rng.standard_normal((min(batch, n - start), *self.lam.shape))
            z *= inv_sd
            out[start:start + batch] = np.einsum("vi,sij,dj->svd", self.UA, z, self.UB, optimize=True)
        return out


#: the softmax objective and the curvature, also used by bayeslm.neural.domain_head (a domain's last layer)
SoftmaxObjective = _Softmax
Curvature = _Curvature


def ggn_diagonal_in_basis(sm: _Softmax, P: np.ndarray, UA: np.ndarray, UB: np.ndarray) -> np.ndarray:
    """The exact GGN's diagonal in the Kronecker basis UA (x) UB, shape (V, D) (EKFAC's eigenvalues):
    (u_i (x) v_j)^T GGN (u_i (x) v_j) = sum_n (u_i^T A_n u_i) (v_j^T x_n)^2, A_n = diag p_n - p_n p_n^T.
    In the problem's dtype, over chunks of rows."""
    UA2, UAc, UBc = (UA * UA).astype(sm.dtype), UA.astype(sm.dtype), UB.astype(sm.dtype)
    out = np.zeros((UA.shape[1], UB.shape[1]), dtype=sm.dtype)
    for sl in _row_chunks(P.shape[0]):
        Pc = P[sl].astype(sm.dtype, copy=False)
        a_n = Pc @ UA2
        a_n -= (Pc @ UAc) ** 2  # u_i^T A_n u_i, (chunk, V)
        c_n = (sm.Xc[sl] @ UBc) ** 2  # (chunk, D)
        out += a_n.T @ c_n
    return out.astype(np.float64)


def conjugate_gradients(product, precondition, G: np.ndarray, rtol: float, max_iter: int = 200) -> np.ndarray:
    """M^-1 G by preconditioned conjugate gradients: ``product(S)`` is M S, ``precondition(R)`` an
    approximation of M^-1 R; stops when the residual's norm is below ``rtol`` times G's."""
    gnorm = float(np.sqrt((G * G).sum()))
    s = np.zeros_like(G)
    r = G.copy()
    z = precondition(r)
    d = z.copy()
    rz = float((r * z).sum())
    for _ in range(max_iter):
        Hd = product(d)
        step = rz / float((d * Hd).sum())
        s += step * d
        r -= step * Hd
        if np.sqrt((r * r).sum()) < rtol * gnorm:
            break
        z = precondition(r)
        rz_new = float((r * z).sum())
        d = z + (rz_new / rz) * d
        rz = rz_new
    return s


def _newton_step(sm: _Softmax, P, G, alpha: float) -> np.ndarray:
    """(GGN + alpha I)^-1 G by conjugate gradients on exact GGN products, preconditioned by
    the Kronecker factorisation (truncated Newton: to half the gradient's norm on large
    problems, to round-off on small ones)."""
    rtol = 0.5 if sm.N * sm.D * sm.V > _FLOAT32_FROM else 1e-8
    pre = _Curvature.at("kfac", sm, P)
    P = P.astype(sm.dtype, copy=False)  # once, for every product (value_grad's p is in it already)
    return conjugate_gradients(lambda d: sm.ggn_product(P, d, alpha), lambda r: pre.solve(r, alpha), G, rtol)


def newton_minimise(value_grad, newton_step, theta: np.ndarray, *, tol: float, max_iter: int = 50):
    """Minimum of a convex objective by Newton's method with a backtracking line search; stops when
    half the Newton decrement (the predicted decrease) is below ``tol`` nats.

    ``value_grad(theta)`` gives (value, gradient, p) with p the softmax probabilities there;
    ``newton_step(p, gradient)`` the curvature's inverse applied to the gradient. Returns
    (theta, value, p) at the minimum.

    One p (N, V) is held at a time: the current point's is dropped once its step is computed,
    and a rejected trial's before the next trial; if the line search fails, p at the current
    point is evaluated again (one more ``value_grad`` call, same values)."""
    f, G, P = value_grad(theta)
    for _ in range(max_iter):
        step = newton_step(P, G)
        decrement = float((G * step).sum())
        if decrement < 2 * tol:
            break
        P = None
        t = 1.0
        while True:
            new = theta - t * step
            P_new = None
            f_new, G_new, P_new = value_grad(new)
            if f_new <= f - 1e-4 * t * decrement or t < 1e-8:
                break
            t *= 0.5
        if t < 1e-8:
            P_new = None
            f, G, P = value_grad(theta)
            break
        theta, f, G, P = new, f_new, G_new, P_new
    return theta, f, P


def _newton(sm: _Softmax, theta: np.ndarray, alpha: float, *, tol: float, max_iter: int = 50):
    """Mode of the negative log posterior at prior precision alpha (:func:`newton_minimise`)."""
    return newton_minimise(lambda th: sm.value_grad(th, alpha), lambda P, G: _newton_step(sm, P, G, alpha), theta,
                           tol=tol, max_iter=max_iter)


def _predicted_mode(theta, g, mu, curv: "_Curvature", a: float) -> np.ndarray:
    """The mode at prior precision ``a`` predicted by one Newton step from ``theta`` with the
    curvature held: theta - (GGN + a I)^-1 (g + a (theta - mu)), g the likelihood's gradient."""
    return theta - curv.solve(g + a * (theta - mu), a)


def _start_alpha(sm: _Softmax, theta: np.ndarray, alpha: float, kind: str, hyper) -> tuple[float, "_Curvature", np.ndarray]:
    """The prior precision maximising evidence x hyperprior for a quadratic model of the likelihood
    at ``theta``, the prior mean, but not below ``alpha``; with the curvature and the likelihood's
    gradient g there (also returned).

    With g in the curvature's eigenbasis, log evidence = const + sum g^2 / (lam + a) / 2 +
    P log(a) / 2 - sum log(lam + a) / 2; its maximum over log a is taken on a grid of steps of 0.05
    from ``alpha`` to ``alpha`` x e^20 (bounded: where the data agree with the prior mean the
    evidence grows towards a = infinity until the hyperprior stops it). Below ``alpha`` (the
    head's own scale) the mode is far from ``theta``, where the quadratic model does not hold:
    a tiny GPT's head wanted 1e-4 x its scale there, and Newton from such a start diverged."""
    _, G, P = sm.value_grad(theta, alpha)
    curv = _Curvature.at(kind, sm, P)
    g = G - alpha * (theta - sm.mu)
    g2, lam = (curv.coordinates(g) ** 2).ravel(), curv.lam.ravel()
    logs = np.log(alpha) + np.arange(0.0, 20.0 + 1e-9, 0.05)
    a = np.exp(logs)[:, None]
    quad, logdet = np.empty(logs.size), np.empty(logs.size)
    step = max(1, _PREDICTIVE_ENTRIES // lam.size)  # grid rows x parameters at a time, not all 401 at once
    for start in range(0, logs.size, step):
        shifted = lam + a[start:start + step]
        quad[start:start + step] = (g2 / shifted).sum(axis=1)
        logdet[start:start + step] = np.log(shifted).sum(axis=1)
    log_evidence = (0.5 * quad + 0.5 * lam.size * logs - 0.5 * logdet + np.array([hyper(l) for l in logs]))
    return float(np.exp(logs[int(np.argmax(log_evidence))])), curv, g


def _fixed_point(theta, g, mu, curv: "_Curvature", a: float, hyper, max_iter: int = 100) -> float:
    """MacKay's fixed point a = (gamma(a) + 2 h'(log a)) / ||theta(a) - mu||^2 with the curvature
    held and theta(a) the mode predicted from ``theta`` (:func:`_predicted_mode`)."""
    for _ in range(max_iter):
        th = _predicted_mode(theta, g, mu, curv, a) - mu
        l = np.log(a)
        dh = (hyper(l + 1e-4) - hyper(l - 1e-4)) / 2e-4
        new = max(curv.gamma(a) + 2 * dh, 1e-3) / max(float((th * th).sum()), 1e-300)
        if abs(np.log(new) - l) < 1e-5:
            return float(new)
        a = new
    return float(a)


# ------------------------------------------------------------------------ results
@dataclass
class LaplaceFit:
    """A Laplace approximation: mode, curvature and prior precision (with its evidence)."""

    theta: np.ndarray  # (V, D) mode
    alpha: float  # prior precision 1 / weight_scale^2
    curvature: _Curvature
    log_evidence: float  # log p(data | alpha) + log p(alpha), Laplace approximation
    neg_log_post: float
    covariance_alpha: float | None = None  # the covariance's prior precision, if the rule broadened it

    @property
    def sample_alpha(self) -> float:
        """The prior precision of the posterior covariance the draws come from."""
        return self.alpha if self.covariance_alpha is None else self.covariance_alpha


class BayesianLastLayer:
    """The output layer softmax(W h + b) as a PyMC model, with a posterior over W and b.

    Parameters
    ----------
    body : torch module, optional
        Computes features from inputs: ``body.features(x)`` if it has that method, else
        ``body(x)``. Without a body, :meth:`fit` and the predictive take feature arrays.
    method : str
        One of :data:`METHODS` (see the module docstring).
    hessian : {"auto", "full", "kron", "kfac"}
        Curvature of the Laplace approximation; ``auto`` is ``full`` up to ``full_max``
        parameters, ``kron`` (eigenvalue-corrected Kronecker) above.
    prior_scale : {"auto", "evidence", "integrate"}
        The prior scale at the maximum of evidence x hyperprior, or integrated over.
        ``auto`` (the default): with ``method="laplace"`` and validation positions, the
        selection rule of :mod:`bayeslm.neural.last_layer_rule` (the evidence's mode and
        prior precision, the covariance's prior precision chosen by validation NLL; the choice
        in ``rule_`` and ``info_``); else ``evidence``.
    prior_mean : {"auto", "calibrated_head", "head", "zero"}
        Where the Gaussian prior of W and b is centred: at the trained head given as
        ``init`` (what pre-training learned about W: the posterior then updates it); at
        that head calibrated on the validation positions ``valid`` (divided by the
        temperature minimising their NLL: what pre-training learned, with the confidence
        it has on text like the text to be predicted, which the fitting positions, drawn
        from the training text, cannot tell); or at 0 (the head is forgotten; with tens of
        thousands of positions for thousands of weights the refitted head is then worse
        than the pre-trained one). ``auto``: the calibrated head if a head and validation
        positions are given, the head if only a head is, else 0.
    draws : int
        Posterior draws kept (ignored by ``map`` and ``map_temperature``: one draw).
    model_config : dict
        ``{"weight_scale": Prior}``: the hyperprior of the prior scale.
    labels : list of str, optional
        Names of the classes (tokens), the ``token`` coordinate.
    advi_steps, advi_batch, advi_rank, advi_learning_rate
        ADVI settings (steps of stochastic gradient, minibatch size, rank of the low-rank
        covariance, Adam's step size).
    sampler_config : dict
        ``pm.sample`` settings for ``method="nuts"`` (tune, chains, target_accept, cores,
        nuts_sampler).
    random_seed : int, optional
    """

    def __init__(self, body=None, *, method: str = "laplace", hessian: str = "auto",
                 prior_scale: str = "auto", prior_mean: str = "auto", draws: int = 200,
                 model_config: dict | None = None,
                 labels=None, full_max: int = 1500, dropout_rates=(0.02, 0.05, 0.1, 0.2, 0.3),
                 advi_steps: int = 10000, advi_batch: int = 512, advi_rank: int = 10,
                 advi_learning_rate: float = 3e-3, sampler_config: dict | None = None,
                 random_seed=None, progressbar: bool = False):
        if method not in METHODS:
            raise ConfigError(f"method must be one of {list(METHODS)}, got {method!r}")
        if hessian not in HESSIANS:
            raise ConfigError(f"hessian must be one of {list(HESSIANS)}, got {hessian!r}")
        if prior_scale not in PRIOR_SCALES:
            raise ConfigError(f"prior_scale must be one of {list(PRIOR_SCALES)}, got {prior_scale!r}")
        if prior_mean not in PRIOR_MEANS:
            raise ConfigError(f"prior_mean must be one of {list(PRIOR_MEANS)}, got {prior_mean!r}")
        if int(draws) < 1:
            raise ConfigError(f"draws must be at least 1, got {draws}")
        self.body = body
        self.method = method
        self.hessian = hessian
        self.prior_scale = prior_scale
        self.prior_mean = prior_mean
        self.draws = int(draws)
        priors = {**DEFAULT_PRIORS, **(model_config or {})}
        unknown = set(priors) - set(DEFAULT_PRIORS)
        if unknown:
            raise ConfigError(f"unknown prior(s) {sorted(unknown)}; the last layer has {sorted(DEFAULT_PRIORS)}")
        self.model_config = {k: v if isinstance(v, Prior) else Prior.from_dict(v) for k, v in priors.items()}
        self.labels = None if labels is None else [str(t) for t in labels]
        self.full_max = int(full_max)
        self.dropout_rates = tuple(float(r) for r in dropout_rates)
        self.advi_steps, self.advi_batch, self.advi_rank = int(advi_steps), int(advi_batch), int(advi_rank)
        self.advi_learning_rate = float(advi_learning_rate)
        self.sampler_config = {"tune": 500, "chains": 2, "target_accept": 0.9, "cores": 1,
                               "nuts_sampler": "pymc", **(sampler_config or {})}
        self.random_seed = random_seed
        self.progressbar = bool(progressbar)
        self.idata = None
        self.laplace_: LaplaceFit | None = None
        self.theta_map_: np.ndarray | None = None  # the point estimate the baselines start from
        self.prior_mean_: np.ndarray | None = None
        self.temperature_: float | None = None
        self.dropout_rate_: float | None = None
        self.fit_seconds_: float | None = None
        self.rule_: RuleChoice | None = None  # what the selection rule chose, and why
        self.info_: dict = {}
        self._draw_cache = None

    # -- data ------------------------------------------------------------------------
    def features(self, X, batch_size: int = 64) -> np.ndarray:
        """Features of inputs: the body's (computed once, without gradients) or ``X`` itself."""
        if self.body is None:
            return _as_features(X)
        import torch

        was = self.body.training
        self.body.eval()
        fn = self.body.features if hasattr(self.body, "features") else self.body
        X = torch.as_tensor(X)
        outs = []
        with torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                outs.append(fn(X[start:start + batch_size]).float().cpu().numpy())
        self.body.train(was)
        return _as_features(np.concatenate(outs, axis=0))

    @property
    def n_classes(self) -> int:
        self._check_fitted()
        return int(self.idata["posterior"].sizes["token"])

    def _check_fitted(self):
        if self.idata is None:
            raise NotFittedError(self, "this method")

    # -- the PyMC model --------------------------------------------------------------------
    def build_model(self, features, targets, n_classes: int | None = None, *, batch_size: int | None = None):
        """The PyMC model of the last layer on these positions (see the module docstring).

        With ``batch_size`` the likelihood reads minibatches (``pm.Minibatch``, int32
        labels) scaled to the full data (``total_size``), as ADVI wants.
        """
        X = _as_features(features)
        V = int(n_classes or (self.n_classes if self.idata is not None else int(np.max(targets)) + 1))
        y = _as_targets(targets, X.shape[0], V)
        mean = getattr(self, "prior_mean_", None)
        if mean is not None and mean.shape != (V, X.shape[1] + 1):
            mean = None
        return softmax_regression_model(X, y, V, self.model_config["weight_scale"], labels=self._labels(V),
                                        batch_size=batch_size, mean=mean)

    def _labels(self, V: int) -> list[str]:
        if self.labels is not None:
            if len(self.labels) != V:
                raise BayesLMError(f"{len(self.labels)} labels for {V} classes")
            return self.labels
        return [str(i) for i in range(V)]

    # -- fitting ---------------------------------------------------------------------------
    @_single_blas
    def fit(self, X, y, *, n_classes: int | None = None, valid=None, init=None, random_seed=None):
        """Fit the posterior of the last layer; returns (and keeps as ``.idata``) the InferenceData.

        Parameters
        ----------
        X : array (positions, dim), or inputs of the body
        y : int array (positions,)
            The class (next token) at each position.
        n_classes : int, optional
            Number of classes (default: from ``init`` or ``labels``, else ``max(y) + 1``).
        valid : (X, y), optional
            Validation positions: the temperature of ``map_temperature`` and the rate of
            ``mc_dropout`` are chosen on them.
        init : (W, b) or torch.nn.Linear, optional
            A trained head (copied, never shared): the point of the MAP baselines and where
            the search for the mode starts. A tied output layer is copied untied.
        """
        start = time.perf_counter()
        prepare_pytensor()
        for name, prior in self.model_config.items():  # against PyMC, before any work (Prior.validate)
            prior.validate(f"prior.{name}")
        seed = self.random_seed if random_seed is None else random_seed
        rng = np.random.default_rng(seed)
        X = self.features(X)
        W0, b0 = _head(init, X.shape[1]) if init is not None else (None, None)
        V = n_classes or (W0.shape[0] if W0 is not None else (len(self.labels) if self.labels else int(np.max(y)) + 1))
        y = _as_targets(y, X.shape[0], V)
        Xa = _augment(X)
        theta0 = np.hstack([W0, b0[:, None]]) if W0 is not None else np.zeros((V, Xa.shape[1]))
        self.theta_map_ = theta0.copy() if W0 is not None else None
        self._check_fit_inputs(has_head=W0 is not None, has_valid=valid is not None)
        valid = self._validation_positions(valid, X.shape[1], V)
        prior_mean = self.prior_mean
        if prior_mean == "auto":
            prior_mean = "zero" if W0 is None else ("calibrated_head" if valid is not None else "head")
        self.laplace_ = None
        self.temperature_ = self.dropout_rate_ = None
        self.info_ = {"method": self.method, "positions": int(X.shape[0]), "classes": int(V),
                      "features": int(X.shape[1]), "prior_mean": prior_mean}
        self.rule_ = None
        if self.method == "laplace" and self.prior_scale == "auto" and valid is not None:
            self.laplace_ = self._laplace_by_rule(Xa, y, V, theta0, valid, prior_mean, seed)
        else:
            theta0 = self._set_prior_mean(prior_mean, theta0, valid)
            if self.method in ("laplace", "advi", "advi_lowrank", "nuts") or W0 is None:
                self.laplace_ = self._laplace(Xa, y, V, theta0)
        if self.laplace_ is not None and self.theta_map_ is None:
            self.theta_map_ = self.laplace_.theta.copy()
        thetas, scales = self._posterior_draws(X, y, V, valid, seed, rng)
        self.idata = self._to_idata(thetas, scales, V, X.shape[1])
        self.fit_seconds_ = time.perf_counter() - start
        self.info_["fit_seconds"] = self.fit_seconds_
        return self.idata

    def _check_fit_inputs(self, *, has_head: bool, has_valid: bool) -> None:
        """Refuse a method or prior mean that needs the trained head or validation positions when they are missing."""
        if self.method in ("map_temperature", "mc_dropout") and not has_valid:
            raise ConfigError(f"method {self.method!r} needs validation positions (valid=(X, y))")
        if self.prior_mean in ("head", "calibrated_head") and not has_head:
            raise ConfigError(f"prior_mean={self.prior_mean!r} needs the trained head as init=")
        if self.prior_mean == "calibrated_head" and not has_valid:
            raise ConfigError("prior_mean='calibrated_head' needs validation positions (valid=(X, y))")

    def _validation_positions(self, valid, dim: int, V: int):
        """``(features with the constant column (n, dim + 1), targets (n,))`` of ``valid = (X, y)``, or None."""
        if valid is None:
            return None
        Xv = self.features(valid[0])
        if Xv.shape[1] != dim:
            raise BayesLMError(f"validation features have {Xv.shape[1]} dimensions, the fitting ones {dim}")
        return _augment(Xv), _as_targets(valid[1], Xv.shape[0], V)

    def _set_prior_mean(self, prior_mean: str, theta0: np.ndarray, valid) -> np.ndarray:
        """Set ``prior_mean_`` (V, D) for ``prior_mean`` (resolved, not "auto"); returns where the mode search starts."""
        if prior_mean == "zero":
            self.prior_mean_ = np.zeros_like(theta0)
        elif prior_mean == "head":
            self.prior_mean_ = theta0.copy()
        else:  # the head's logits divided by the temperature that fits the validation positions
            self.temperature_ = _fit_temperature(*valid, self.theta_map_)
            self.info_["prior_temperature"] = self.temperature_
            self.prior_mean_ = theta0 / self.temperature_
            theta0 = self.prior_mean_.copy()  # the search for the mode starts there
        return theta0

    def _laplace_by_rule(self, Xa, y, V, theta_head, valid, prior_mean: str, seed) -> LaplaceFit:
        """The selection rule (:mod:`bayeslm.neural.last_layer_rule`): the Laplace fit at ``prior_mean``,
        its covariance scored with every factor by the validation NLL of its predictive; sets
        ``prior_mean_``, ``temperature_``, ``info_`` and ``rule_`` and returns the fit."""
        Xv, yv = valid
        rows = np.random.default_rng(seed).permutation(Xv.shape[0])[:RULE_POSITIONS]
        Xs, ys = Xv[rows], yv[rows]
        start = time.perf_counter()
        fit = self._laplace(Xa, y, V, self._set_prior_mean(prior_mean, theta_head, valid))
        fit_seconds, start = time.perf_counter() - start, time.perf_counter()
        nll = {}
        for factor in COVARIANCE_FACTORS:  # the same normal deviates for every candidate
            thetas = fit.theta + fit.curvature.sample(RULE_DRAWS, fit.alpha * factor, np.random.default_rng(seed),
                                                      fit.theta.shape)
            nll[factor] = float(-_predictive_log_prob(Xs, ys, thetas).mean() / np.log(2))
        self.rule_ = choose(prior_mean, nll)
        fit.covariance_alpha = fit.alpha * self.rule_.covariance_factor
        self.info_.update(covariance_prior_precision=fit.sample_alpha,
                          rule_covariance_factor=self.rule_.covariance_factor, rule_reason=self.rule_.reason,
                          rule_fit_seconds=fit_seconds, rule_score_seconds=time.perf_counter() - start)
        return fit

    def _posterior_draws(self, X, y, V: int, valid, seed, rng) -> tuple[np.ndarray, np.ndarray | None]:
        """Draws of theta (samples, V, D) by ``self.method`` and of weight_scale (samples,), None for the baselines."""
        method = self.method
        if method == "laplace":
            return self._laplace_draws(rng)
        if method == "map":
            return self.theta_map_[None], None
        if method == "map_temperature":
            if self.temperature_ is None:
                self.temperature_ = _fit_temperature(*valid, self.theta_map_)
            self.info_["temperature"] = self.temperature_
            return (self.theta_map_ / self.temperature_)[None], None
        if method == "mc_dropout":
            self.dropout_rate_ = self._choose_dropout(*valid, seed)
            self.info_["dropout_rate"] = self.dropout_rate_
            return _dropout_draws(self.theta_map_, self.dropout_rate_, self.draws, rng), None
        if method == "nuts":
            return self._nuts(X, y, V, seed)
        return self._advi(X, y, V, seed, lowrank=method == "advi_lowrank")

    def _hessian_kind(self, P: int) -> str:
        if self.hessian == "auto":
            return "full" if P <= self.full_max else "kron"
        return self.hessian

    def _hyper_logp(self):
        """h(l) = log density of l = log alpha under the hyperprior of weight_scale = exp(-l / 2)."""
        import pymc as pm
        import pytensor
        import pytensor.tensor as pt

        prior = self.model_config["weight_scale"]
        par = prior.parameters
        if prior.distribution == "LogNormal" and set(par) <= {"mu", "sigma"}:
            # the default, in closed form (compiling PyTensor's took 1.5 s of a 5-second fit)
            m, s = par.get("mu", 0.0), par.get("sigma", 1.0)
            # log sigma = -l / 2 is Normal(m, s); the density of l is that times |d log sigma / dl| = 1/2
            return lambda l: float(-0.5 * ((-0.5 * l - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)) + np.log(0.5)
        value = pt.dscalar("sigma")
        fn = pytensor.function([value], pm.logp(prior._pymc_class().dist(**prior.parameters), value))
        return lambda l: float(fn(np.exp(-0.5 * l))) - 0.5 * l + np.log(0.5)

    def _laplace(self, Xa, y, V, theta0) -> LaplaceFit:
        """Mode and curvature at the prior precision maximising evidence x hyperprior."""
        sm = _Softmax(Xa, y, V, self.prior_mean_)
        P = V * Xa.shape[1]
        kind = self._hessian_kind(P)
        full = kind == "full"
        hyper = self._hyper_logp()
        # Newton stops when half its decrement (about the distance to the minimum) is below
        # tol nats: 1e-4 nats per position on large problems, against differences of 1e-3
        # bits between methods
        tol = 1e-9 * max(1.0, sm.N) if full else 1e-4 * sm.N
        # Rounds of: the mode at alpha (Newton; from the second round on started at the mode
        # predicted for alpha by one Newton step with the last round's curvature), its
        # curvature, and MacKay's fixed point with that curvature held, the outer iteration
        # accelerated by secant steps on log alpha. The evidence is flat near its optimum:
        # large problems stop when the fixed point moves alpha by less than 5% (a trial on
        # 50,000 positions: log evidence within 3 nats and test NLL at the mode within 0.001
        # bits of a 1% stop with a 10x tighter Newton tolerance), small ones at 1%.
        outer_tol = 1e-2 if full else 0.05
        theta, g, curv = theta0.copy(), None, None
        sq = float(((theta0 - sm.mu) ** 2).sum())
        if sq > 0:
            # a prior scale of the start's distance from the prior mean (the head's typical
            # weight for a zero mean): far larger alpha (a tenth of it) made the fixed point
            # jump to a far smaller alpha whose mode, far from the head and ill-conditioned,
            # cost 10x more Newton-CG products
            alpha = P / sq
        else:
            # the start is the prior mean (the head, calibrated or not): the first alpha is the
            # evidence's maximum for the likelihood's quadratic model there, without a Newton
            # solve (a solve at the head's scale, ~100x below the optimum's alpha, cost half of
            # a 5-second fit)
            scale = float((theta0 * theta0).sum())
            alpha, curv, g = _start_alpha(sm, theta0, P / scale if scale > 0 else 1.0, kind, hyper)
        history = []  # (log alpha, log F(alpha) - log alpha)
        for k in range(20):
            start = theta if curv is None else _predicted_mode(theta, g, sm.mu, curv, alpha)
            theta, f, Pm = _newton(sm, start, alpha, tol=tol)
            g = -alpha * (theta - sm.mu)  # at the mode the likelihood's gradient balances the prior's
            curv = _Curvature.at(kind, sm, Pm)
            del Pm  # not held through the next solve
            a = _fixed_point(theta, g, sm.mu, curv, alpha, hyper)
            l, r = np.log(alpha), np.log(a) - np.log(alpha)
            if abs(r) < outer_tol:
                break
            history.append((l, r))
            step = r
            if len(history) >= 2:  # secant on r(l) = log F(e^l) - l, on r's side, between 0.1 r and 4 r
                (l1, r1), (l2, r2) = history[-2:]
                slope = (r2 - r1) / (l2 - l1) if l2 != l1 else 0.0
                if slope < 0:
                    step = float(np.clip(-r2 / slope, min(0.1 * r2, 4 * r2), max(0.1 * r2, 4 * r2)))
            alpha = float(np.exp(l + step))
        else:  # no fixed point within 20 rounds: the mode and curvature at the last alpha
            theta, f, Pm = _newton(sm, _predicted_mode(theta, g, sm.mu, curv, alpha), alpha, tol=tol)
            curv = _Curvature.at(kind, sm, Pm)
        l = np.log(alpha)
        fit = LaplaceFit(theta, alpha, curv, -f + 0.5 * P * l - 0.5 * curv.logdet(alpha) + hyper(l), f)
        self.info_.update(hessian=kind, prior_precision=fit.alpha, weight_scale=float(fit.alpha ** -0.5),
                          log_evidence=fit.log_evidence, effective_parameters=fit.curvature.gamma(fit.alpha),
                          gradient_evaluations=sm.evaluations, ggn_products=sm.products)
        if self.prior_scale == "integrate":
            self._integrate_scale(sm, fit, kind, hyper, tol)
        return fit

    def _integrate_scale(self, sm, fit: LaplaceFit, kind, hyper, tol, n_grid: int = 7) -> None:
        """A grid over log alpha around the optimum, weighted by evidence x hyperprior."""
        P = fit.theta.size
        g = -fit.alpha * (fit.theta - sm.mu)  # the likelihood's gradient at the mode

        def at(l, theta):
            a = float(np.exp(l))
            start = _predicted_mode(fit.theta, g, sm.mu, fit.curvature, a)  # one Newton step from the optimum's mode
            theta, f, Pm = _newton(sm, start, a, tol=tol)
            curv = _Curvature.at(kind, sm, Pm)
            return LaplaceFit(theta, a, curv, -f + 0.5 * P * l - 0.5 * curv.logdet(a) + hyper(l), f)

        l0, h = np.log(fit.alpha), 0.25
        up, down = at(l0 + h, fit.theta), at(l0 - h, fit.theta)
        second = (up.log_evidence - 2 * fit.log_evidence + down.log_evidence) / h**2
        sd = 1.0 / np.sqrt(-second) if second < 0 else 1.0
        grid = l0 + sd * np.linspace(-3, 3, n_grid)
        comps = [at(l, fit.theta) for l in grid]
        logw = np.array([c.log_evidence for c in comps])
        self._components = comps
        self._weights = np.exp(logw - logsumexp(logw))
        self.info_.update(log_alpha_grid=grid.tolist(), log_alpha_weights=self._weights.tolist(),
                          gradient_evaluations=sm.evaluations)

    def _laplace_draws(self, rng, n: int | None = None, scale: float = 1.0):
        n = self.draws if n is None else int(n)
        fit = self.laplace_
        shape = fit.theta.shape
        if self.prior_scale == "integrate" and getattr(self, "_components", None):
            which = np.sort(rng.choice(len(self._components), size=n, p=self._weights))
            thetas = np.empty((n, *shape))
            for k in np.unique(which):
                c = self._components[k]
                sel = which == k
                thetas[sel] = c.theta + scale * c.curvature.sample(int(sel.sum()), c.alpha, rng, shape)
            scales = np.array([self._components[k].alpha ** -0.5 for k in which])
            return thetas, scales
        thetas = fit.curvature.sample(n, fit.sample_alpha, rng, shape)
        thetas *= scale  # in place: fit.theta + scale * deviations without two more (n, V, D) arrays
        thetas += fit.theta
        return thetas, np.full(n, fit.sample_alpha ** -0.5)

    @_single_blas
    def resample(self, draws: int | None = None, *, scale: float = 1.0, random_seed=None):
        """New draws of a Laplace posterior, with its covariance scaled by ``scale**2``.

        ``scale=0`` puts every draw at the mode (the predictive is then the softmax at the mode).
        """
        self._check_fitted()
        if self.method != "laplace":
            raise BayesLMError("resample needs method='laplace'")
        thetas, scales = self._laplace_draws(np.random.default_rng(random_seed), draws, scale)
        V, D = thetas.shape[1:]
        self.idata = self._to_idata(thetas, scales, V, D - 1, attrs=dict(self.idata["posterior"].attrs))
        return self.idata

    def _choose_dropout(self, Xv, yv, seed) -> float:
        best = None
        for rate in self.dropout_rates:
            thetas = _dropout_draws(self.theta_map_, rate, min(self.draws, 50), np.random.default_rng(seed))
            nll = -_predictive_log_prob(Xv, yv, thetas).mean()
            if best is None or nll < best[0]:
                best = (nll, rate)
        return best[1]

    def _nuts(self, X, y, V, seed):
        import pymc as pm

        model = self.build_model(X, y, V)
        theta = self.laplace_.theta
        cfg = self.sampler_config
        with model:
            idata = pm.sample(draws=self.draws, tune=int(cfg["tune"]), chains=int(cfg["chains"]),
                              cores=int(cfg.get("cores") or 1), target_accept=float(cfg["target_accept"]),
                              nuts_sampler=cfg.get("nuts_sampler", "pymc"), random_seed=seed,
                              initvals={"W": theta[:, :-1], "b": theta[:, -1], "weight_scale": self.laplace_.alpha ** -0.5},
                              progressbar=self.progressbar, compute_convergence_checks=False)
        self._nuts_idata = idata
        post = idata["posterior"]
        chains, draws = post.sizes["chain"], post.sizes["draw"]
        W = post["W"].transpose("chain", "draw", "token", "feature").values.reshape(chains * draws, V, -1)
        b = post["b"].transpose("chain", "draw", "token").values.reshape(chains * draws, V)
        scales = post["weight_scale"].values.reshape(-1)
        self.info_["nuts_divergences"] = int(idata["sample_stats"]["diverging"].sum())
        self._chains = chains
        return np.concatenate([W, b[:, :, None]], axis=2), scales

    def _advi(self, X, y, V, seed, lowrank: bool):
        import pymc as pm

        fit = self.laplace_
        theta = fit.theta
        sd = np.sqrt(fit.curvature.variance(fit.alpha, theta.shape))
        batch = min(self.advi_batch, X.shape[0])
        start = {"W": theta[:, :-1], "b": theta[:, -1], "weight_scale": fit.alpha ** -0.5}
        if lowrank:
            thetas, scales, hist = _lowrank_advi(X, y, V, self.model_config["weight_scale"], self._labels(V), start, sd,
                                                 self.advi_rank, self.advi_steps, batch, self.advi_learning_rate,
                                                 self.draws, seed, mean=self.prior_mean_)
        else:
            model = self.build_model(X, y, V, batch_size=batch if batch < X.shape[0] else None)
            with model:
                inference = pm.ADVI(start=start, random_seed=seed,
                                    start_sigma={"W": sd[:, :-1].ravel(), "b": sd[:, -1],
                                                 "weight_scale_log__": np.array([0.05])})
                # Adam with the step size falling in three stages (1, 1/4, 1/16): the last
                # iterate is the answer, so its gradient noise must die down
                hist = []
                for k, share in enumerate((0.5, 0.3, 0.2)):
                    approx = inference.fit(max(1, int(share * self.advi_steps)), progressbar=self.progressbar,
                                           obj_optimizer=pm.adam(learning_rate=self.advi_learning_rate / 4**k))
                hist = np.asarray(inference.hist)
                sample = approx.sample(self.draws, random_seed=seed)
            post = sample["posterior"]
            W = post["W"].transpose("chain", "draw", "token", "feature").values.reshape(self.draws, V, -1)
            b = post["b"].values.reshape(self.draws, V)
            thetas = np.concatenate([W, b[:, :, None]], axis=2)
            scales = post["weight_scale"].values.reshape(-1)
        tail = hist[-max(1, len(hist) // 10):]
        self.info_["advi_final_loss"] = float(np.mean(tail)) if len(tail) else float("nan")
        return thetas, scales

    def _to_idata(self, thetas, scales, V, d, attrs=None):
        import arviz as az

        chains = getattr(self, "_chains", 1) if self.method == "nuts" else 1
        S = thetas.shape[0]
        draws = S // chains
        W = thetas[:, :, :d].reshape(chains, draws, V, d)
        b = thetas[:, :, d].reshape(chains, draws, V)
        data = {"W": W, "b": b}
        if scales is not None:
            data["weight_scale"] = np.asarray(scales, dtype=float).reshape(chains, draws)
        idata = az.from_dict(posterior=data, coords={"token": self._labels(V), "feature": np.arange(d)},
                             dims={"W": ["token", "feature"], "b": ["token"]})
        info = {k: v for k, v in self.info_.items() if isinstance(v, (int, float, str))}
        idata["posterior"].attrs.update(attrs or {"last_layer_method": self.method, **{f"bll_{k}": v for k, v in info.items()}})
        self._draw_cache = None
        return idata

    # -- draws and the predictive ---------------------------------------------------------
    def theta_draws(self, draws=None) -> np.ndarray:
        """[W, b] per posterior draw, shape (samples, V, D); ``draws`` as in :meth:`select`."""
        self._check_fitted()
        if self._draw_cache is None:
            post = self.idata["posterior"]
            W = post["W"].transpose("chain", "draw", "token", "feature").values
            b = post["b"].transpose("chain", "draw", "token").values
            S = W.shape[0] * W.shape[1]
            self._draw_cache = np.concatenate([W.reshape(S, *W.shape[2:]), b.reshape(S, -1, 1)], axis=2)
        return _select(self._draw_cache, draws)

    @_single_blas
    def prob_draws(self, X, draws=None) -> np.ndarray:
        """softmax(W_s h + b_s) for every draw: shape (samples, positions, V)."""
        Xa = _augment(self.features(X))
        thetas = self.theta_draws(draws)
        out = np.empty((thetas.shape[0], Xa.shape[0], thetas.shape[1]))
        for sl, groups in _blocks(Xa.shape[0], *thetas.shape[:2]):
            for g in groups:
                out[g, sl] = _probs(Xa[sl], thetas[g])
        return out

    @_single_blas
    def predict_proba(self, X, chunk: int = 1024) -> np.ndarray:
        """Posterior-predictive probabilities, shape (positions, V)."""
        Xa = _augment(self.features(X))
        thetas = self.theta_draws()
        out = np.zeros((Xa.shape[0], thetas.shape[1]))
        for sl, groups in _blocks(Xa.shape[0], *thetas.shape[:2], chunk):
            for g in groups:
                out[sl] += _probs(Xa[sl], thetas[g]).sum(axis=0)
        out /= thetas.shape[0]
        return out

    def log_prob_draws(self, X, y, chunk: int = 1024):
        """Chunks ``(slice, log p(y | h, draw))`` of shape (samples, positions of the slice), nats;
        a slice holds at most ``chunk`` positions (fewer when draws x positions x V would exceed
        :data:`_PREDICTIVE_ENTRIES`)."""
        Xa = _augment(self.features(X))
        thetas = self.theta_draws()
        y = _as_targets(y, Xa.shape[0], thetas.shape[1])
        for sl, groups in _blocks(Xa.shape[0], *thetas.shape[:2], chunk):
            yield sl, _log_probs_of_blocks(Xa[sl], y[sl], thetas, groups)

    @_single_blas
    def predictive_log_prob(self, X, y, chunk: int = 1024) -> np.ndarray:
        """log of the posterior-predictive probability of each target, shape (positions,), nats."""
        Xa = _augment(self.features(X))
        thetas = self.theta_draws()
        y = _as_targets(y, Xa.shape[0], thetas.shape[1])
        return _predictive_log_prob(Xa, y, thetas, chunk)

    @_single_blas
    def entropy_split(self, X, chunk: int = 1024) -> pd.DataFrame:
        """Per position: predictive entropy ``total``, expected entropy ``aleatoric``, mutual
        information ``epistemic`` (nats). With one draw the mutual information is 0."""
        Xa = _augment(self.features(X))
        return pd.DataFrame(_split(Xa, self.theta_draws(), chunk))

    def evaluate(self, X, y) -> dict:
        """Mean negative log predictive probability (nats, bits) and 15-bin ECE on these positions."""
        from bayeslm.stats.calibration import expected_calibration_error

        p = self.predict_proba(X)
        y = _as_targets(y, p.shape[0], p.shape[1])
        nll = -np.log(np.maximum(p[np.arange(y.size), y], 1e-300))
        top = p.argmax(axis=1)
        return {"nll_nats": float(nll.mean()), "nll_bits": float(nll.mean() / np.log(2)),
                "ece": expected_calibration_error(p.max(axis=1), top == y), "accuracy": float((top == y).mean())}


# ----------------------------------------------------------------------- kernels
def _select(thetas: np.ndarray, draws) -> np.ndarray:
    return thetas if draws is None else thetas[draw_indices(thetas.shape[0], draws)]


def _blocks(n: int, S: int, V: int, chunk: int = 1024):
    """(slice of positions, [slices of draws]) covering n positions x S draws: at most ``chunk``
    positions, and at most :data:`_PREDICTIVE_ENTRIES` entries of draws x positions x V per block
    (the predictive's arrays are (draws, positions, V); with 200 draws of 2,000 tokens a chunk
    of 1,024 positions would hold 3.3 GB in float64 per array)."""
    rows = max(1, min(chunk, _PREDICTIVE_ENTRIES // max(V, 1)))
    per = max(1, min(S, _PREDICTIVE_ENTRIES // (rows * max(V, 1))))
    draw_slices = [slice(s, min(s + per, S)) for s in range(0, S, per)]
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n)), draw_slices


def _logits(Xa: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """(samples, n, V) logits of n positions under every draw: one matrix product."""
    S, V, D = thetas.shape
    Z = (Xa.astype(np.float32) @ thetas.reshape(S * V, D).T.astype(np.float32)).reshape(Xa.shape[0], S, V)
    return Z.transpose(1, 0, 2).astype(np.float64)


def _log_softmax(Z: np.ndarray) -> np.ndarray:
    Z = Z - Z.max(axis=-1, keepdims=True)
    Z -= np.log(np.exp(Z).sum(axis=-1, keepdims=True))
    return Z


def _probs(Xa, thetas) -> np.ndarray:
    return np.exp(_log_softmax(_logits(Xa, thetas)))


def _log_probs_of(Xa, y, thetas) -> np.ndarray:
    L = _log_softmax(_logits(Xa, thetas))
    return L[:, np.arange(y.size), y]


def _log_probs_of_blocks(Xa, y, thetas, groups) -> np.ndarray:
    """:func:`_log_probs_of` (samples, n), computed for one group of draws at a time."""
    out = np.empty((thetas.shape[0], y.size))
    for g in groups:
        out[g] = _log_probs_of(Xa, y, thetas[g])
    return out


def _predictive_log_prob(Xa, y, thetas, chunk: int = 1024) -> np.ndarray:
    out = np.empty(Xa.shape[0])
    for sl, groups in _blocks(Xa.shape[0], *thetas.shape[:2], chunk):
        lp = _log_probs_of_blocks(Xa[sl], y[sl], thetas, groups)
        out[sl] = logsumexp(lp, axis=0) - np.log(thetas.shape[0])
    return out


def _split(Xa, thetas, chunk: int = 1024) -> dict:
    n = Xa.shape[0]
    S = thetas.shape[0]
    total, aleatoric = np.empty(n), np.empty(n)
    for sl, groups in _blocks(n, *thetas.shape[:2], chunk):
        p_sum = np.zeros((sl.stop - sl.start, thetas.shape[1]))
        plogp_sum = np.zeros(sl.stop - sl.start)
        for g in groups:
            L = _log_softmax(_logits(Xa[sl], thetas[g]))  # (draws of the group, positions, V)
            p = np.exp(L)
            p_sum += p.sum(axis=0)
            L *= p
            plogp_sum += L.sum(axis=-1).sum(axis=0)
        aleatoric[sl] = -plogp_sum / S
        pbar = p_sum / S
        total[sl] = -(pbar * np.log(np.maximum(pbar, 1e-300))).sum(axis=-1)
    epistemic = total - aleatoric
    if thetas.shape[0] == 1:
        epistemic = np.zeros(n)
    return {"total": total, "aleatoric": aleatoric, "epistemic": np.maximum(epistemic, 0.0)}


def _head(init, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) as float64 copies from a pair of arrays or a torch Linear layer."""
    if hasattr(init, "weight"):
        W = init.weight.detach().cpu().numpy().astype(float).copy()
        b = init.bias.detach().cpu().numpy().astype(float).copy() if getattr(init, "bias", None) is not None else None
    else:
        W, b = init
        W = np.array(W, dtype=float)
        b = None if b is None else np.array(b, dtype=float)
    if b is None:
        b = np.zeros(W.shape[0])
    if W.ndim != 2 or W.shape[1] != d or b.shape != (W.shape[0],):
        raise BayesLMError(f"init: W must be (classes, {d}) and b (classes,), got {W.shape} and {b.shape}")
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        raise BayesLMError("init: the head holds NaN or infinite weights")
    return W, b


def _fit_temperature(Xa, y, theta) -> float:
    """The temperature T minimising the validation NLL of softmax(X theta^T / T)."""
    from scipy.optimize import minimize_scalar

    Z = Xa @ theta.T
    blocks = [sl for sl, _ in _blocks(y.size, 1, Z.shape[1])]
    ll = np.empty(y.size)

    def nll(log_t):
        t = np.exp(log_t)
        for sl in blocks:  # a block of positions at a time: no (positions, V) temporaries
            L = _log_softmax(Z[sl] / t)
            ll[sl] = L[np.arange(L.shape[0]), y[sl]]
        return -ll.mean()

    res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))


def _dropout_draws(theta, rate: float, n: int, rng) -> np.ndarray:
    """Draws of [W, b] with feature columns dropped at ``rate`` and the rest scaled by 1 / (1 - rate)."""
    V, D = theta.shape
    keep = rng.random((n, 1, D - 1)) >= rate
    scale = np.concatenate([keep / (1.0 - rate), np.ones((n, 1, 1))], axis=2)
    return theta[None] * scale


# ------------------------------------------------------------------------- the model
def softmax_regression_model(X, y, V: int, scale_prior: Prior, *, labels=None, batch_size: int | None = None,
                             total_size: int | None = None, mean: np.ndarray | None = None):
    """``pm.Model``: weight_scale ~ prior; W, b ~ Normal(mean, weight_scale); y ~ Categorical(softmax(X W^T + b)).

    ``mean``: the prior mean of [W, b], shape (V, d + 1) (default 0).

    ``batch_size``: the likelihood reads random minibatches of the positions
    (``pm.Minibatch``), scaled to all of them. ``total_size``: ``X`` and ``y`` are one
    minibatch of that many positions, held in ``pm.Data`` containers (``features``,
    ``next_token``) the caller refills.
    """
    import pymc as pm

    N, d = X.shape
    coords = {"token": labels if labels is not None else [str(i) for i in range(V)], "feature": np.arange(d)}
    with pm.Model(coords=coords) as model:
        if batch_size is not None:
            Xd, yd = pm.Minibatch(X.astype(float), y.astype(np.int32), batch_size=int(batch_size))
            total_size = N
        else:
            Xd = pm.Data("features", X.astype(float))
            yd = pm.Data("next_token", y.astype(np.int32))
        scale = scale_prior.create_variable("weight_scale")
        mean = np.zeros((V, d + 1)) if mean is None else np.asarray(mean, dtype=float)
        W = pm.Normal("W", mean[:, :-1], scale, dims=("token", "feature"))
        b = pm.Normal("b", mean[:, -1], scale, dims="token")
        logits = Xd @ W.T + b
        pm.Categorical("y", logit_p=logits, observed=yd, total_size=total_size)
    return model


def _lowrank_advi(X, y, V, prior, labels, start, sd, rank, steps, batch, lr, n_draws, seed, mean=None):
    """Gaussian VI with covariance diag(s^2) + U U^T over the model's unconstrained parameters.

    Reparameterised gradients of the ELBO (one Monte Carlo draw per step) from the PyMC
    model's compiled log density on a random minibatch per step, scaled to all positions;
    the entropy 1/2 log det(diag(s^2) + U U^T) and its gradient in closed form (matrix
    determinant lemma, Woodbury); Adam with a cosine-decaying step size.
    Returns draws of theta (samples, V, D), of weight_scale, and the negative ELBO per step.
    """
    from pymc.blocking import DictToArrayBijection

    rng = np.random.default_rng(seed)
    N = X.shape[0]
    batch = min(batch, N)
    model = softmax_regression_model(X[:batch], y[:batch], V, prior, labels=labels, total_size=N, mean=mean)
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    names = [v.name for v in fn._grad_vars]
    point = {"W": start["W"], "b": start["b"], "weight_scale_log__": np.log(start["weight_scale"])}
    raveled = DictToArrayBijection.map({k: np.asarray(point[k], dtype=float) for k in names})
    mu = raveled.data.copy()
    sd_point = {"W": sd[:, :-1], "b": sd[:, -1], "weight_scale_log__": np.array(0.05)}
    log_s = np.log(DictToArrayBijection.map({k: np.asarray(sd_point[k], dtype=float) for k in names}).data)
    P = mu.size
    U = 0.01 * np.exp(log_s)[:, None] * rng.standard_normal((P, rank)) / np.sqrt(rank)
    params = [mu, log_s, U]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    Xs, ys = model["features"], model["next_token"]
    hist = np.empty(steps)
    for t in range(steps):
        idx = rng.integers(0, N, size=batch)
        Xs.set_value(X[idx].astype(float))
        ys.set_value(y[idx].astype(np.int32))
        s = np.exp(log_s)
        e1, e2 = rng.standard_normal(P), rng.standard_normal(rank)
        z = mu + s * e1 + U @ e2
        logp, g = fn(z)
        # entropy terms: Sigma = D + U U^T, D = diag(s^2); M = I + U^T D^-1 U
        DiU = U / (s * s)[:, None]
        M = np.eye(rank) + U.T @ DiU
        Minv = np.linalg.inv(M)
        SiU = DiU @ Minv  # Sigma^-1 U
        diag_si = 1.0 / (s * s) - (SiU * DiU).sum(axis=1)
        entropy = float(np.log(s).sum() + 0.5 * np.linalg.slogdet(M)[1]) + 0.5 * P * (1 + np.log(2 * np.pi))
        hist[t] = -(float(logp) + entropy)
        grads = [g, g * e1 * s + diag_si * s * s, np.outer(g, e2) + SiU]  # ascent directions
        rate = lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t / steps)))
        for k, (p, gk) in enumerate(zip(params, grads)):
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk * gk
            p += rate * (m[k] / (1 - b1 ** (t + 1))) / (np.sqrt(v[k] / (1 - b2 ** (t + 1))) + eps)
    s = np.exp(log_s)
    Z = mu + rng.standard_normal((n_draws, P)) * s + rng.standard_normal((n_draws, rank)) @ U.T
    W, b, scale = [], [], []
    for z in Z:
        d = DictToArrayBijection.rmap(raveled._replace(data=z))
        W.append(d["W"])
        b.append(d["b"])
        scale.append(float(np.exp(d["weight_scale_log__"])))
    thetas = np.concatenate([np.array(W), np.array(b)[:, :, None]], axis=2)
    return thetas, np.array(scale), hist
