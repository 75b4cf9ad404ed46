"""BayesianLastLayer (bayeslm/neural/last_layer.py): its posteriors against NUTS, its algebra against
dense matrices, its baselines, and its bad-input errors.

The reference posterior is NUTS on a small synthetic softmax regression (3 classes, 2
features, 1,000 positions; 2 chains x 1,000 draws). Softmax is unchanged when the same
vector is added to every class's weights, so the data determine only the *centred* weights
theta_v - mean_v theta; the direction they leave free follows the prior. Tolerances
(measured in trials, with margin): Laplace means within 0.3 posterior standard deviations
of NUTS's and centred standard deviations within 15%; the prior-scale-integrated Laplace
also matches the raw standard deviations within 15% (the reference's from the scale's
draws, :func:`posterior_raw_sd`); ADVI means within 0.45 sd; low-rank ADVI's centred sds
within 25%, mean-field's within 45% (its independent raw weights distort the centred
spread, by up to 1.4x in trials; and it cannot represent the strong correlation along the
free direction, so its raw sds are far too small: checked to be below NUTS's); predictive
probabilities within 0.02 of NUTS's.
"""

from __future__ import annotations

import numpy as np
import pytest
from sampling import NUTS_REFERENCE

from bayeslm import BayesianLastLayer, Prior
from bayeslm.exceptions import BayesLMError, ConfigError, NotFittedError
from bayeslm.neural.last_layer import _augment, _Curvature, _Softmax, _split
from bayeslm.neural.last_layer_rule import COVARIANCE_FACTORS, choose

N, D_FEAT, V = 1000, 2, 3


def synthetic(seed=0, n=N, temperature=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D_FEAT))
    W = np.array([[1.5, -2.0], [-0.5, 2.2], [0.8, 0.1]])
    b = np.array([0.5, 0.0, -0.5])
    logits = (X @ W.T + b) / temperature
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return X, y, W, b


def centred(theta):
    return theta - theta.mean(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    X, y, W, b = synthetic()
    Xt = np.random.default_rng(5).normal(size=(40, D_FEAT))
    return X, y, Xt


@pytest.fixture(scope="module")
def nuts(data):
    """The reference posterior (inference under test: real NUTS)."""
    X, y, _ = data
    bll = BayesianLastLayer(method="nuts", draws=NUTS_REFERENCE["draws"], random_seed=1,
                            sampler_config={k: v for k, v in NUTS_REFERENCE.items() if k != "draws"})
    bll.fit(X, y)
    return bll


@pytest.fixture(scope="module")
def laplace(data):
    """Its own fit: the Laplace approximation under test, with 4,000 draws for its Monte Carlo figures."""
    X, y, _ = data
    bll = BayesianLastLayer(method="laplace", draws=4000, random_seed=2)
    bll.fit(X, y)
    return bll


def _compare(fit, ref, Xt, mean_tol, sd_tol):
    th, th0 = fit.theta_draws(), ref.theta_draws()
    c, c0 = centred(th), centred(th0)
    sd0 = c0.std(0)
    assert np.max(np.abs(c.mean(0) - c0.mean(0)) / sd0) < mean_tol
    ratio = c.std(0) / sd0
    assert np.all(np.abs(ratio - 1) < sd_tol), ratio
    assert np.max(np.abs(fit.predict_proba(Xt) - ref.predict_proba(Xt))) < 0.02


def posterior_raw_sd(nuts) -> np.ndarray:
    """Posterior sd (V, D) of the raw weights from the NUTS draws, the free direction from the scale's draws.

    Under the zero-mean prior, given the scale s the class mean of each column of theta (the
    direction softmax ignores) is N(0, s^2 / V) and independent of the centred weights, so
    Var(theta) = Var(centred theta) + E[s^2] / V exactly. NUTS explores that direction
    slowly: in blocks of a 4 x 6,000-draw run, the sample sd of 2 x 400 draws was up to 18%
    off (17% of blocks beyond 15%), this estimate up to 8%; with 2 x 1,000 draws, 10% and 5%.
    """
    assert nuts.info_["prior_mean"] == "zero"
    theta = nuts.theta_draws()
    scale_sq = nuts.idata["posterior"]["weight_scale"].values.reshape(-1) ** 2
    return np.sqrt(centred(theta).var(0) + scale_sq.mean() / theta.shape[1])


def test_laplace_agrees_with_nuts(data, nuts, laplace):
    _compare(laplace, nuts, data[2], mean_tol=0.3, sd_tol=0.15)
    assert laplace.info_["hessian"] == "full"  # 9 parameters: the exact GGN


def test_laplace_with_the_prior_scale_integrated_agrees_with_nuts_also_where_the_prior_rules(data, nuts):
    X, y, Xt = data
    bll = BayesianLastLayer(method="laplace", prior_scale="integrate", draws=4000, random_seed=3)
    bll.fit(X, y)
    _compare(bll, nuts, Xt, mean_tol=0.3, sd_tol=0.15)
    ratio = bll.theta_draws().std(0) / posterior_raw_sd(nuts)
    assert np.all(np.abs(ratio - 1) < 0.15), ratio
    assert np.isclose(sum(bll.info_["log_alpha_weights"]), 1.0)


def test_the_default_with_validation_positions_agrees_with_nuts(data, nuts):
    # the selection rule's posterior (prior mean and covariance chosen on validation positions
    # of the same model) is still the Laplace posterior NUTS checks
    X, y, Xt = data
    Xv, yv, _, _ = synthetic(seed=8, n=2000)
    bll = BayesianLastLayer(draws=4000, random_seed=2)
    bll.fit(X, y, valid=(Xv, yv))
    assert bll.rule_ is not None and bll.info_["prior_mean"] == "zero"
    _compare(bll, nuts, Xt, mean_tol=0.3, sd_tol=0.15)


@pytest.mark.parametrize("method, sd_tol", [("advi", 0.45), ("advi_lowrank", 0.25)])
def test_advi_agrees_with_nuts(data, nuts, method, sd_tol):
    X, y, Xt = data
    bll = BayesianLastLayer(method=method, draws=2000, random_seed=4, advi_steps=8000 if method == "advi" else 5000,
                            advi_batch=200, advi_rank=4, advi_learning_rate=3e-3 if method == "advi" else 1e-2)
    bll.fit(X, y)
    _compare(bll, nuts, Xt, mean_tol=0.45, sd_tol=sd_tol)
    assert np.all(bll.theta_draws().std(0) < nuts.theta_draws().std(0))  # the free direction: underestimated


# ------------------------------------------------------------------------ algebra
def test_kronecker_curvatures_against_the_dense_ggn():
    rng = np.random.default_rng(0)
    X = _augment(rng.normal(size=(200, 3)))
    y = rng.integers(0, 4, 200)
    sm = _Softmax(X, y, 4)
    theta = rng.normal(size=(4, 4)) * 0.5
    P, _ = sm.probs(theta)
    H = np.zeros((16, 16))
    for n in range(200):
        A = np.diag(P[n]) - np.outer(P[n], P[n])
        H += np.kron(A, np.outer(X[n], X[n]))
    full = _Curvature.at("full", sm, P)
    assert np.allclose(full.U @ np.diag(full.lam) @ full.U.T, H, atol=1e-8)
    alpha = 0.7
    G = rng.normal(size=(4, 4))
    dense = np.linalg.solve(H + alpha * np.eye(16), G.ravel()).reshape(4, 4)
    assert np.allclose(full.solve(G, alpha), dense)
    assert np.allclose(full.variance(alpha, (4, 4)).ravel(), np.diag(np.linalg.inv(H + alpha * np.eye(16))))
    # the GGN-vector product
    S = rng.normal(size=(4, 4))
    assert np.allclose(sm.ggn_product(P, S, alpha).ravel(), (H + alpha * np.eye(16)) @ S.ravel())
    # EKFAC: exact diagonal of the GGN in the Kronecker eigenbasis
    ek = _Curvature.at("kron", sm, P)
    Q = np.kron(ek.UA, ek.UB)
    assert np.allclose(ek.lam.ravel(), np.diag(Q.T @ H @ Q), atol=1e-8)
    # its solve, variance and samples are those of Q diag(lam + alpha) Q^T
    M = Q @ np.diag(ek.lam.ravel() + alpha) @ Q.T
    assert np.allclose(ek.solve(G, alpha).ravel(), np.linalg.solve(M, G.ravel()))
    assert np.allclose(ek.variance(alpha, (4, 4)).ravel(), np.diag(np.linalg.inv(M)))
    draws = ek.sample(20000, alpha, rng, (4, 4)).reshape(20000, -1)
    assert np.allclose(np.cov(draws.T), np.linalg.inv(M), atol=0.01)
    # KFAC: the plain Kronecker product A (x) B
    kf = _Curvature.at("kfac", sm, P)
    A = (np.diag(P.sum(0)) - P.T @ P) / 200
    assert np.allclose(np.kron(kf.UA, kf.UB) @ np.diag(kf.lam.ravel()) @ np.kron(kf.UA, kf.UB).T,
                       np.kron(A, X.T @ X), atol=1e-8)


def _dense_softmax_problem(seed=3, n=53, d=4, classes=6):
    """A small random softmax regression and its closed forms, in float64 (dense, no chunks)."""
    rng = np.random.default_rng(seed)
    X = _augment(rng.normal(size=(n, d)))
    y = rng.integers(0, classes, n)
    theta, mu = rng.normal(size=(classes, d + 1)) * 0.7, rng.normal(size=(classes, d + 1)) * 0.1
    Z = X @ theta.T
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    H = sum(np.kron(np.diag(P[k]) - np.outer(P[k], P[k]), np.outer(X[k], X[k])) for k in range(n))
    return rng, X, y, theta, mu, P, H


@pytest.mark.parametrize("float32", [False, True])
def test_the_chunked_products_equal_their_closed_forms(monkeypatch, float32):
    """value_grad, the GGN product, EKFAC's diagonal and the Kronecker factor A run over chunks of rows
    (7 here: 53 positions in 8 chunks, the last one short); each equals its dense closed form, so a
    chunk dropped, counted twice or put in the wrong rows fails."""
    import bayeslm.neural.last_layer as ll

    monkeypatch.setattr(ll, "_CHUNK_ROWS", 7)
    if float32:
        monkeypatch.setattr(ll, "_FLOAT32_FROM", 0)
    rng, X, y, theta, mu, P, H = _dense_softmax_problem()
    n, V, D = X.shape[0], theta.shape[0], X.shape[1]
    sm = _Softmax(X, y, V, mu)
    assert sm.dtype == (np.float32 if float32 else np.float64)
    tol = dict(rtol=1e-4, atol=1e-4) if float32 else dict(rtol=1e-10, atol=1e-10)
    alpha = 0.8
    f, G, Pv = sm.value_grad(theta, alpha)
    assert Pv.dtype == sm.dtype  # the probabilities in the problem's dtype, no float64 copy
    np.testing.assert_allclose(Pv, P, **tol)
    onehot = np.eye(V)[y]
    np.testing.assert_allclose(G, (P - onehot).T @ X + alpha * (theta - mu), **tol)
    nll = -np.log(P[np.arange(n), y]).sum()
    np.testing.assert_allclose(f, nll + 0.5 * alpha * ((theta - mu) ** 2).sum(), rtol=1e-6 if float32 else 1e-12)
    S = rng.normal(size=(V, D))
    for probs in (P, Pv):  # float64 probabilities are converted a chunk at a time
        np.testing.assert_allclose(sm.ggn_product(probs, S, alpha).ravel(), (H + alpha * np.eye(V * D)) @ S.ravel(),
                                   **tol)
    UA = np.linalg.qr(rng.normal(size=(V, V)))[0]
    UB = np.linalg.qr(rng.normal(size=(D, D)))[0]
    Q = np.kron(UA, UB)
    np.testing.assert_allclose(ll.ggn_diagonal_in_basis(sm, Pv, UA, UB).ravel(), np.diag(Q.T @ H @ Q), **tol)
    kf = _Curvature.at("kfac", sm, Pv)
    A = (np.diag(P.sum(0)) - P.T @ P) / n
    M = kf.UA.T @ A @ kf.UA  # the chunked factor's eigenbasis diagonalises the dense A, with its eigenvalues
    np.testing.assert_allclose(M - np.diag(np.diag(M)), 0.0, atol=1e-5 if float32 else 1e-12)
    np.testing.assert_allclose(kf.lam, np.outer(np.diag(M).clip(0), np.linalg.eigvalsh(X.T @ X).clip(0)), **tol)
    np.testing.assert_allclose(ll._tmm(Pv, X, dtype=np.float64), Pv.astype(float).T @ X, rtol=1e-12)


@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_chunk_sizes_do_not_change_the_fit(data, monkeypatch, hessian):
    """The same fit (mode, evidence, the rule's choice, covariance, entropy split) with chunks of 4,096 rows
    (one chunk) and of 7, and predictive blocks of 2^22 and of 50 entries: the mode and evidence to
    float64 round-off; the predictive's figures to float32 round-off (its logits are float32 products,
    whose last bit depends on the product's shape)."""
    import bayeslm.neural.last_layer as ll

    X, y, Xt = data
    fits = []
    for rows, entries in ((4096, 2**22), (7, 50)):
        monkeypatch.setattr(ll, "_CHUNK_ROWS", rows)
        monkeypatch.setattr(ll, "_PREDICTIVE_ENTRIES", entries)
        bll = BayesianLastLayer(method="laplace", hessian=hessian, draws=30, random_seed=0)
        bll.fit(X, y, valid=(Xt, np.arange(len(Xt)) % V))
        fit = bll.laplace_  # the covariance, not the draws: the eigenvectors' signs may flip with round-off
        G = np.random.default_rng(1).normal(size=fit.theta.shape)
        fits.append((fit.theta, fit.log_evidence, fit.curvature.solve(G, fit.sample_alpha), bll.entropy_split(Xt),
                     bll.rule_.valid_nll_bits))
    (t0, e0, d0, s0, r0), (t1, e1, d1, s1, r1) = fits
    assert r1.keys() == r0.keys() and all(abs(r1[k] - r0[k]) < 1e-6 for k in r0)
    np.testing.assert_allclose(t1, t0, rtol=1e-9, atol=1e-9)
    assert abs(e1 - e0) < 1e-6
    np.testing.assert_allclose(d1, d0, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(s1.to_numpy(), s0.to_numpy(), rtol=1e-6, atol=1e-7)


def test_the_predictive_in_blocks_equals_its_closed_form(data, laplace, monkeypatch):
    """The predictive's kernels run in blocks of positions x draws (here at most 100 entries of
    draws x positions x V: with chunks of 5 positions, groups of 6 draws, the last of 2; prob_draws:
    33 positions and 1 draw); every output equals the closed form computed from the draws in one piece."""
    import bayeslm.neural.last_layer as ll

    monkeypatch.setattr(ll, "_PREDICTIVE_ENTRIES", 100)
    X, y, Xt = data
    blocks = list(ll._blocks(len(Xt), 200, V, 5))
    assert [sl.stop - sl.start for sl, _ in blocks] == [5] * 8
    assert [g.stop - g.start for g in blocks[0][1]] == [6] * 33 + [2]
    yt = np.random.default_rng(1).integers(0, V, len(Xt))
    thetas = laplace.theta_draws()[:200]
    Z = np.einsum("nd,svd->snv", _augment(Xt), thetas)
    L = Z - Z.max(-1, keepdims=True)
    L -= np.log(np.exp(L).sum(-1, keepdims=True))
    p = np.exp(L)
    laplace._draw_cache = thetas  # its first 200 draws
    try:
        rows = np.arange(len(Xt))
        np.testing.assert_allclose(laplace.prob_draws(Xt), p, atol=1e-6)
        np.testing.assert_allclose(laplace.predict_proba(Xt, chunk=5), p.mean(0), atol=1e-6)
        lp = np.concatenate([chunk for _, chunk in laplace.log_prob_draws(Xt, yt, chunk=5)], axis=1)
        np.testing.assert_allclose(lp, L[:, rows, yt], atol=1e-5)
        np.testing.assert_allclose(laplace.predictive_log_prob(Xt, yt, chunk=5), np.log(p.mean(0)[rows, yt]),
                                   atol=1e-5)
        split = laplace.entropy_split(Xt, chunk=5)
        pbar = p.mean(0)
        np.testing.assert_allclose(split["total"], -(pbar * np.log(pbar)).sum(1), atol=1e-5)
        np.testing.assert_allclose(split["aleatoric"], -(p * L).sum(-1).mean(0), atol=1e-5)
    finally:
        laplace._draw_cache = None


def test_the_prior_precision_maximises_the_laplace_evidence(data):
    X, y, _ = data
    bll = BayesianLastLayer(method="laplace", random_seed=0)
    bll.fit(X, y)
    fit = bll.laplace_
    hyper = bll._hyper_logp()
    sm = _Softmax(_augment(X), y, V)
    from bayeslm.neural.last_layer import _newton

    def log_evidence(alpha):
        theta, f, P = _newton(sm, fit.theta, alpha, tol=1e-9)
        curv = _Curvature.at("full", sm, P)
        return -f + 0.5 * theta.size * np.log(alpha) - 0.5 * curv.logdet(alpha) + hyper(np.log(alpha))

    best = log_evidence(fit.alpha)
    assert np.isclose(best, fit.log_evidence, atol=1e-4)
    for factor in (0.7, 1.4):
        assert log_evidence(fit.alpha * factor) < best


def test_zero_covariance_gives_the_softmax_at_the_mode(data, laplace):
    X, y, Xt = data
    bll = BayesianLastLayer(method="laplace", draws=50, random_seed=2)
    bll.fit(X, y)
    bll.resample(20, scale=0.0)
    theta = bll.laplace_.theta
    logits = _augment(Xt) @ theta.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert np.allclose(bll.predict_proba(Xt), p, atol=1e-6)
    assert np.allclose(bll.entropy_split(Xt)["epistemic"], 0.0, atol=1e-6)
    bll.resample(50, scale=1.0)
    assert bll.entropy_split(Xt)["epistemic"].mean() > 1e-4


def test_one_draw_has_zero_mutual_information(data):
    X, y, Xt = data
    bll = BayesianLastLayer(method="laplace", draws=1, random_seed=0)
    bll.fit(X, y)
    split = bll.entropy_split(Xt)
    assert np.array_equal(split["epistemic"].to_numpy(), np.zeros(len(Xt)))
    assert np.allclose(split["total"], split["aleatoric"])
    thetas = np.random.default_rng(0).normal(size=(1, 3, 3))
    assert np.all(_split(_augment(Xt), thetas)["epistemic"] == 0)


def test_predictive_quantities_agree(data, laplace):
    X, y, Xt = data
    yt = np.random.default_rng(1).integers(0, V, len(Xt))
    p = laplace.prob_draws(Xt)
    assert p.shape == (4000, len(Xt), V)
    assert np.allclose(laplace.predict_proba(Xt), p.mean(0))
    lp = np.concatenate([chunk for _, chunk in laplace.log_prob_draws(Xt, yt, chunk=7)], axis=1)
    assert np.allclose(lp, np.log(p[:, np.arange(len(Xt)), yt]))
    assert np.allclose(laplace.predictive_log_prob(Xt, yt), np.log(p.mean(0)[np.arange(len(Xt)), yt]))
    pbar = p.mean(0)
    split = laplace.entropy_split(Xt)
    assert np.allclose(split["total"], -(pbar * np.log(pbar)).sum(1))
    assert np.allclose(split["aleatoric"], -(p * np.log(p)).sum(-1).mean(0))
    assert laplace.idata["posterior"]["W"].dims == ("chain", "draw", "token", "feature")


# ------------------------------------------------------------------------ baselines
def test_map_keeps_the_given_head_untouched(data):
    X, y, Xt = data
    W0, b0 = np.array([[1.0, -2.0], [0.0, 2.0], [1.0, 0.0]]), np.zeros(3)
    bll = BayesianLastLayer(method="map")
    bll.fit(X, y, init=(W0, b0))
    W0[0, 0] = 99.0  # the layer holds a copy
    assert np.allclose(bll.theta_draws()[0, 0, :2], [1.0, -2.0])
    assert bll.n_classes == 3 and bll.idata["posterior"].sizes["draw"] == 1


def test_the_prior_can_be_centred_at_a_trained_head(data):
    X, y, Xt = data
    W0, b0 = np.array([[1.4, -1.9], [-0.4, 2.1], [0.7, 0.2]]), np.array([0.4, 0.0, -0.4])
    head = BayesianLastLayer(draws=50, random_seed=0)
    head.fit(X[:100], y[:100], init=(W0, b0))
    zero = BayesianLastLayer(draws=50, random_seed=0, prior_mean="zero")
    zero.fit(X[:100], y[:100], init=(W0, b0))
    assert head.info_["prior_mean"] == "head" and zero.info_["prior_mean"] == "zero"
    theta0 = np.hstack([W0, b0[:, None]])
    # centred at a good head, few data leave the mode near it; centred at 0, shrunk toward 0
    assert np.abs(head.laplace_.theta - theta0).max() < np.abs(zero.laplace_.theta - theta0).max()
    model = head.build_model(X[:100], y[:100], 3)
    point = {"weight_scale_log__": np.log(0.5), "W": W0, "b": b0}
    other = {**point, "W": W0 + 0.1}
    logp = model.compile_logp(vars=[model["W"]], jacobian=False)
    assert logp(point) > logp(other)  # the prior density peaks at the head
    with pytest.raises(ConfigError, match="needs the trained head"):
        BayesianLastLayer(prior_mean="head").fit(X, y)


def test_the_calibrated_head_prior_is_the_head_over_the_validation_temperature():
    # the head (W, b) is twice as confident as the text: a few fitting positions cannot tell,
    # 4,000 validation positions can
    X, y, W, b = synthetic(seed=6, n=60, temperature=2.0)
    Xv, yv, _, _ = synthetic(seed=7, n=4000, temperature=2.0)
    theta_true = np.hstack([W, b[:, None]]) / 2.0
    fits = {}
    for mean in ("calibrated_head", "head"):
        bll = BayesianLastLayer(draws=20, random_seed=0, prior_mean=mean)
        bll.fit(X, y, init=(W, b), valid=(Xv, yv))
        fits[mean] = bll
    cal = fits["calibrated_head"]
    assert cal.info_["prior_mean"] == "calibrated_head" and abs(cal.info_["prior_temperature"] - 2.0) < 0.2
    assert np.allclose(cal.prior_mean_, np.hstack([W, b[:, None]]) / cal.info_["prior_temperature"])
    # the same temperature as the map_temperature baseline's
    base = BayesianLastLayer(method="map_temperature")
    base.fit(X, y, init=(W, b), valid=(Xv, yv))
    assert base.temperature_ == pytest.approx(cal.info_["prior_temperature"])
    error = {k: np.abs(centred(f.laplace_.theta) - centred(theta_true)).mean() for k, f in fits.items()}
    assert error["calibrated_head"] < 0.5 * error["head"]
    # "auto" takes the calibrated head when validation positions are given, else the head
    auto = BayesianLastLayer(draws=5, random_seed=0)
    auto.fit(X, y, init=(W, b), valid=(Xv, yv))
    assert auto.info_["prior_mean"] == "calibrated_head"
    assert np.allclose(auto.prior_mean_, cal.prior_mean_)
    auto.fit(X, y, init=(W, b))
    assert auto.info_["prior_mean"] == "head"
    with pytest.raises(ConfigError, match="needs validation positions"):
        BayesianLastLayer(prior_mean="calibrated_head").fit(X, y, init=(W, b))
    with pytest.raises(BayesLMError, match="validation features have 3 dimensions"):
        BayesianLastLayer().fit(X, y, init=(W, b), valid=(np.ones((5, 3)), yv[:5]))


def _rule_problem():
    """A head fitted on 3,000 positions; 300 fitting positions; validation positions whose features are
    spread 3x wider than the fitting ones (text unlike the training text)."""
    X, y, W, b = synthetic(seed=9, n=300)
    Xv, yv, _, _ = synthetic(seed=10, n=3000)
    head = BayesianLastLayer(method="laplace", prior_scale="evidence", draws=1, random_seed=0)
    head.fit(*synthetic(seed=11, n=3000)[:2])
    theta = head.laplace_.theta
    return X, y, (theta[:, :-1], theta[:, -1]), 3.0 * Xv, yv


def test_the_selection_rule_reads_only_fitting_and_validation_positions():
    X, y, head, Xv, yv = _rule_problem()
    fits = []
    for test_seed in (12, 13):  # other test features between fits: the choice and the draws stay
        bll = BayesianLastLayer(draws=30, random_seed=0)
        bll.fit(X, y, init=head, valid=(Xv, yv))
        Xt = synthetic(seed=test_seed, n=500)[0] * test_seed
        bll.evaluate(Xt, synthetic(seed=test_seed, n=500)[1])
        bll.fit(X, y, init=head, valid=(Xv, yv))  # refitted after scoring test features
        fits.append(bll)
    assert fits[0].rule_ == fits[1].rule_
    assert np.array_equal(fits[0].theta_draws(), fits[1].theta_draws())
    rule = fits[0].rule_
    assert rule.prior_mean == fits[0].info_["prior_mean"] == "calibrated_head"
    assert set(rule.valid_nll_bits) == set(COVARIANCE_FACTORS)
    assert rule.valid_nll_bits[rule.covariance_factor] == min(rule.valid_nll_bits.values())
    assert fits[0].info_["rule_reason"] == rule.reason and "valid NLL" in rule.reason
    assert fits[0].idata["posterior"].attrs["bll_rule_reason"] == rule.reason
    # the validation positions are what it reads: other validation text, other scores
    other = BayesianLastLayer(draws=30, random_seed=0)
    other.fit(X, y, init=head, valid=(Xv / 3.0, yv))
    assert all(other.rule_.valid_nll_bits[c] != v for c, v in rule.valid_nll_bits.items())


def test_the_chosen_covariance_is_the_laplace_curvature_at_the_chosen_precision():
    X, y, head, Xv, yv = _rule_problem()
    bll = BayesianLastLayer(draws=30, random_seed=0, prior_mean="calibrated_head")
    bll.fit(X, y, init=head, valid=(Xv, yv))
    plain = BayesianLastLayer(draws=30, random_seed=0, prior_mean="calibrated_head", prior_scale="evidence")
    plain.fit(X, y, init=head, valid=(Xv, yv))
    fit, factor = bll.laplace_, bll.rule_.covariance_factor
    assert bll.rule_.prior_mean == "calibrated_head" and set(bll.rule_.valid_nll_bits) == set(COVARIANCE_FACTORS)
    # the mode and its prior precision are the evidence's; only the covariance's precision moves
    assert np.allclose(fit.theta, plain.laplace_.theta) and fit.alpha == pytest.approx(plain.laplace_.alpha)
    assert fit.sample_alpha == pytest.approx(factor * fit.alpha)
    assert bll.info_["covariance_prior_precision"] == pytest.approx(fit.sample_alpha)
    var = fit.curvature.variance(fit.sample_alpha, fit.theta.shape)
    assert np.allclose(bll.theta_draws().var(0), var, rtol=0.6)
    # without validation positions "auto" is the evidence's posterior, and no rule runs
    alone = BayesianLastLayer(draws=30, random_seed=0)
    alone.fit(X, y, init=head)
    assert alone.rule_ is None and alone.laplace_.sample_alpha == alone.laplace_.alpha


def test_choose_takes_the_lowest_validation_nll_and_ties_to_the_plainer_posterior():
    nll = {1.0: 2.10, 0.3: 2.07, 0.1: 2.05, 0.03: 2.20}
    chosen = choose("calibrated_head", nll)
    assert (chosen.prior_mean, chosen.covariance_factor) == ("calibrated_head", 0.1)
    assert choose("zero", {1.0: 2.0, 0.1: 2.0}).covariance_factor == 1.0
    assert chosen.reason == ("prior mean calibrated_head, covariance at alpha x 0.1: valid NLL 2.0500 bits; "
                             "2.1000 with the evidence's covariance")
    with pytest.raises(BayesLMError, match="at least one candidate"):
        choose("zero", {})


def test_temperature_scaling_recovers_the_temperature(data):
    X, y, W, b = synthetic(seed=3, n=4000, temperature=2.0)
    Xv, yv, _, _ = synthetic(seed=4, n=4000, temperature=2.0)
    bll = BayesianLastLayer(method="map_temperature")
    bll.fit(X, y, init=(W, b), valid=(Xv, yv))
    assert abs(bll.temperature_ - 2.0) < 0.2
    with pytest.raises(ConfigError, match="needs validation positions"):
        BayesianLastLayer(method="map_temperature").fit(X, y, init=(W, b))


def test_mc_dropout_chooses_its_rate_on_validation_and_drops_feature_columns(data):
    X, y, Xt = data
    bll = BayesianLastLayer(method="mc_dropout", draws=30, random_seed=0)
    bll.fit(X, y, valid=(X[:300], y[:300]))
    assert bll.dropout_rate_ in bll.dropout_rates
    th = bll.theta_draws()
    zero_cols = np.all(th[:, :, :2] == 0, axis=1)  # a dropped feature is dropped for every class
    assert zero_cols.any() or bll.dropout_rate_ < 0.05
    assert np.all(th[:, :, 2] == th[0, :, 2])  # the bias is never dropped


def test_a_torch_body_gives_the_features():
    torch = pytest.importorskip("torch")

    class Body(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)

        def features(self, x):
            return torch.tanh(self.lin(x))

    torch.manual_seed(0)
    body = Body()
    inputs = torch.randn(300, 4)
    y = (inputs[:, 0] > 0).long().numpy()
    bll = BayesianLastLayer(body, draws=20, random_seed=0)
    bll.fit(inputs, y)
    with torch.no_grad():
        feats = body.features(inputs).numpy()
    plain = BayesianLastLayer(draws=20, random_seed=0)
    plain.fit(feats, y)
    assert np.allclose(bll.predict_proba(inputs[:5]), plain.predict_proba(feats[:5]), atol=1e-6)
    head = torch.nn.Linear(2, 2)
    BayesianLastLayer(method="map").fit(feats, y, init=head)


# ------------------------------------------------------------------------ bad input
def test_bad_input_gives_clear_errors(data):
    X, y, _ = data
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(BayesLMError, match="NaN or infinite values at 1 positions") as err:
        BayesianLastLayer().fit(bad, y)
    assert "\n" not in str(err.value)
    with pytest.raises(BayesLMError, match="targets: 5 values for 1000 positions"):
        BayesianLastLayer().fit(X, y[:5])
    with pytest.raises(BayesLMError, match="outside the 2 classes"):
        BayesianLastLayer().fit(X, y, n_classes=2)
    with pytest.raises(BayesLMError, match="init: W must be"):
        BayesianLastLayer(method="map").fit(X, y, init=(np.zeros((3, 5)), None))
    with pytest.raises(ConfigError, match="method must be one of"):
        BayesianLastLayer(method="svgd")
    with pytest.raises(ConfigError, match="unknown prior"):
        BayesianLastLayer(model_config={"sigma": Prior("HalfNormal", sigma=1.0)})
    with pytest.raises(NotFittedError, match="call fit"):
        BayesianLastLayer().predict_proba(X)


def test_the_pymc_model_is_softmax_regression(data):
    import pymc as pm

    X, y, _ = data
    bll = BayesianLastLayer()
    model = bll.build_model(X[:50], y[:50], 3)
    assert {v.name for v in model.free_RVs} == {"weight_scale", "W", "b"}
    point = {"weight_scale_log__": np.log(0.8), "W": np.ones((3, 2)) * 0.3, "b": np.array([0.1, 0.0, -0.1])}
    logp = model.compile_logp()(point)
    theta = np.hstack([point["W"], point["b"][:, None]])
    Z = _augment(X[:50]) @ theta.T
    ll = (Z[np.arange(50), y[:50]] - np.log(np.exp(Z).sum(1))).sum()
    from scipy import stats

    prior = stats.norm(0, 0.8).logpdf(theta).sum() + stats.lognorm(s=2.0, scale=1.0).logpdf(0.8) + np.log(0.8)
    assert np.isclose(logp, ll + prior)
    assert pm.Minibatch  # ADVI's minibatch model builds too
    bll.build_model(X, y, 3, batch_size=64)


def test_the_closed_form_hyperprior_equals_pymcs_density():
    import pymc as pm

    for kwargs in ({"mu": 0.0, "sigma": 2.0}, {"mu": -0.7, "sigma": 0.5}):
        bll = BayesianLastLayer(model_config={"weight_scale": {"dist": "LogNormal", "kwargs": kwargs}})
        h = bll._hyper_logp()
        for l in (-4.0, 0.0, 3.0, 9.0):  # l = log alpha, weight_scale = exp(-l / 2)
            sigma = np.exp(-0.5 * l)
            ref = float(pm.logp(pm.LogNormal.dist(**kwargs), sigma).eval()) + np.log(sigma) + np.log(0.5)
            assert np.isclose(h(l), ref, atol=1e-6)
    # another hyperprior goes through PyMC's density
    h = BayesianLastLayer(model_config={"weight_scale": {"dist": "HalfNormal", "kwargs": {"sigma": 1.0}}})._hyper_logp()
    ref = float(pm.logp(pm.HalfNormal.dist(sigma=1.0), np.exp(-1.0)).eval()) + np.log(np.exp(-1.0)) + np.log(0.5)
    assert np.isclose(h(2.0), ref)
