"""The domain head's prior is the general last layer's Laplace posterior (bayeslm/neural/domain_head.py,
docs/domain.md "GPT"), checked on features held fixed and tokens simulated from a known softmax head."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from bayeslm.neural.domain_head import LaplacePosterior, domain_share, fit_adapted_head, fit_finetuned_head
from bayeslm.neural.last_layer import BayesianLastLayer

V, d = 4, 3
LOGNORMAL = lambda lam: -0.5 * (np.log(lam) / 2.0) ** 2 - np.log(lam)  # LogNormal(0, 2), up to a constant


def simulate(n: int, head: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n features ~ N(0, I) and next tokens ~ softmax(head [x, 1])."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    p = softmax(np.hstack([X, np.ones((n, 1))]) @ head.T, axis=1)
    return X, np.array([rng.choice(V, p=row) for row in p])


TRUTH = np.random.default_rng(0).normal(0.0, 1.0, (V, d + 1))


def general_posterior(hessian: str, n: int = 2000, seed: int = 1) -> tuple[LaplacePosterior, float]:
    """The Laplace posterior of a last layer fitted on n simulated positions (prior centred at 0), and its alpha."""
    X, y = simulate(n, TRUTH, seed)
    bll = BayesianLastLayer(method="laplace", hessian=hessian, prior_mean="zero", draws=10, random_seed=0)
    bll.fit(X, y, n_classes=V)
    return LaplacePosterior.from_laplace(bll.laplace_), bll.laplace_.alpha


def dense_precision(post: LaplacePosterior) -> np.ndarray:
    """Lambda as a (P, P) matrix, theta raveled token-major."""
    if post.kind == "full":
        return (post.U * post.precision) @ post.U.T
    U = np.kron(post.UA, post.UB)
    return (U * post.precision.ravel()) @ U.T


def nll(theta: np.ndarray, X, y) -> float:
    return -log_softmax(np.hstack([X, np.ones((len(X), 1))]) @ theta.T, axis=1)[np.arange(len(y)), y].sum()


def ggn(theta: np.ndarray, X) -> np.ndarray:
    """sum_n (diag p_n - p_n p_n^T) (x) x_n x_n^T, dense (the Hessian of the softmax NLL)."""
    Xa = np.hstack([X, np.ones((len(X), 1))])
    p = softmax(Xa @ theta.T, axis=1)
    return sum(np.kron(np.diag(pn) - np.outer(pn, pn), np.outer(x, x)) for pn, x in zip(p, Xa))


NO_DATA = (np.zeros((0, d)), np.zeros(0, dtype=np.int64))


@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_without_domain_text_the_adapted_posterior_is_the_general_one(hessian):
    prior, _ = general_posterior(hessian)
    head = fit_adapted_head(*NO_DATA, prior, power=1.0, power_logp=LOGNORMAL, draws=20000,
                            rng=np.random.default_rng(3))
    np.testing.assert_array_equal(head.mode, prior.theta)
    deviations = (head.thetas - head.thetas.mean(axis=0)).reshape(head.thetas.shape[0], -1)
    sigma = np.linalg.inv(dense_precision(prior))
    # the draws' mean and covariance are the general posterior's, to Monte Carlo error
    sd = np.sqrt(np.diag(sigma)).reshape(prior.theta.shape)
    assert np.all(np.abs(head.thetas.mean(axis=0) - prior.theta) < 0.05 * sd)  # 7 standard errors
    np.testing.assert_allclose(np.cov(deviations.T), sigma, atol=0.05 * np.abs(sigma).max())
    # nothing of the spread comes from the domain
    assert np.all(domain_share(np.random.default_rng(4).standard_normal((5, d)), head.B_domain, head.B_total)[0] == 0)


@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_a_power_towards_infinity_gives_the_general_model_at_its_mode(hessian):
    prior, _ = general_posterior(hessian)
    X, y = simulate(300, TRUTH + 1.5, seed=5)  # a domain far from the general model
    head = fit_adapted_head(X, y, prior, power=1e9, power_logp=LOGNORMAL, draws=50, rng=np.random.default_rng(3))
    np.testing.assert_allclose(head.thetas, np.broadcast_to(prior.theta, head.thetas.shape), atol=1e-3)


def test_general_then_domain_is_the_laplace_fit_of_both_texts_together():
    """The posterior of the general data as the prior of the domain's (power 1) against one Laplace fit on
    both data sets with the general fit's prior N(0, 1 / alpha): modes and covariances agree up to the
    quadratic approximation of the general likelihood (here within 2% of a posterior sd, and 3%)."""
    XG, yG = simulate(2000, TRUTH, seed=1)
    prior, alpha = general_posterior("full", seed=1)
    XD, yD = simulate(2000, TRUTH + np.random.default_rng(7).normal(0.0, 0.3, TRUTH.shape), seed=8)
    head = fit_adapted_head(XD, yD, prior, power=1.0, power_logp=LOGNORMAL, draws=10, rng=np.random.default_rng(3))

    def objective(t):  # both data sets, one prior: an independent computation (BFGS from zero, dense Hessian)
        theta = t.reshape(V, d + 1)
        return nll(theta, XG, yG) + nll(theta, XD, yD) + 0.5 * alpha * float(t @ t)

    joint = minimize(objective, np.zeros(V * (d + 1)), method="BFGS", options={"gtol": 1e-8}).x.reshape(V, d + 1)
    sigma = np.linalg.inv(ggn(joint, XG) + ggn(joint, XD) + alpha * np.eye(V * (d + 1)))
    sd = np.sqrt(np.diag(sigma)).reshape(V, d + 1)
    adapted_mode = head.mode
    assert np.abs(adapted_mode - joint).max() < 0.02 * sd.min()
    # the adapted posterior's covariance, from its factors (the draws' own covariance has MC error)
    sequential = np.linalg.inv(ggn(adapted_mode, XD) + dense_precision(prior))
    np.testing.assert_allclose(sequential, sigma, atol=0.03 * np.abs(sigma).max())
    # and the block sums the domain share reads are that covariance's
    np.testing.assert_allclose(head.B_total, _block_sum(sequential), rtol=1e-6, atol=1e-12)


def _block_sum(sigma: np.ndarray) -> np.ndarray:
    """x~^T B x~ = the summed variance of the logits centred over tokens, C (I (x) x~^T) sigma (I (x) x~) C."""
    C = np.eye(V) - 1.0 / V  # centring over tokens
    K = np.kron(C, np.eye(d + 1))
    centred = K @ sigma @ K
    return sum(centred[v * (d + 1):(v + 1) * (d + 1), v * (d + 1):(v + 1) * (d + 1)] for v in range(V))


@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_the_adapted_mode_is_the_exact_mode_of_the_tempered_prior_and_the_domain_likelihood(hessian):
    """In either factored form the prior precision is the general one exactly, and the mode is exact
    (Newton on exact GGN products; only the posterior's curvature is approximated in the Kronecker basis)."""
    prior, _ = general_posterior(hessian)
    XD, yD = simulate(500, TRUTH + 0.5, seed=9)
    lam = 0.3
    head = fit_adapted_head(XD, yD, prior, power=lam, power_logp=LOGNORMAL, draws=4, rng=np.random.default_rng(3))
    Lam = dense_precision(prior)

    def objective(t):
        dev = t - prior.theta.ravel()
        return nll(t.reshape(V, d + 1), XD, yD) + 0.5 * lam * float(dev @ Lam @ dev)

    exact = minimize(objective, prior.theta.ravel(), method="BFGS", options={"gtol": 1e-9}).x.reshape(V, d + 1)
    np.testing.assert_allclose(head.mode, exact, atol=1e-4)


def test_the_domain_share_splits_the_posterior_covariance_exactly():
    """Sigma = Sigma H Sigma + lam Sigma Lambda Sigma: B_domain is the first part's block sum (dense check),
    and the share grows from 0 towards 1 as the domain text grows."""
    prior, _ = general_posterior("full", n=500)
    shares = []
    for n in (50, 500, 20000):
        XD, yD = simulate(n, TRUTH, seed=11)
        head = fit_adapted_head(XD, yD, prior, power=1.0, power_logp=LOGNORMAL, draws=4, rng=np.random.default_rng(3))
        H = ggn(head.mode, XD) if n <= 500 else None
        if H is not None:
            sigma = np.linalg.inv(H + dense_precision(prior))
            np.testing.assert_allclose(head.B_domain, _block_sum(sigma @ H @ sigma), rtol=1e-6, atol=1e-12)
        x = np.random.default_rng(12).standard_normal((200, d))
        share, variance = domain_share(x, head.B_domain, head.B_total)
        assert np.all((0 <= share) & (share <= 1)) and np.all(variance > 0)
        shares.append(share.mean())
    assert shares[0] < shares[1] < shares[2] and shares[2] > 0.9


def test_the_evidence_lets_a_departing_domain_depart():
    """The power chosen by evidence: near or above 1 for a domain drawn from the general truth, far below 1
    for a domain whose head differs; its draws spread around the chosen value."""
    prior, _ = general_posterior("full")
    same = fit_adapted_head(*simulate(2000, TRUTH, seed=13), prior, power=None, power_logp=LOGNORMAL, draws=400,
                            rng=np.random.default_rng(3))
    other = fit_adapted_head(*simulate(2000, -TRUTH, seed=14), prior, power=None, power_logp=LOGNORMAL, draws=400,
                             rng=np.random.default_rng(3))
    assert same.power > 0.3 and other.power < 0.05 * same.power
    for head in (same, other):
        assert np.log(head.power_draws).std() > 0 and abs(np.median(head.power_draws) / head.power - 1) < 0.2


def test_plain_fine_tuning_is_the_penalised_maximum_likelihood_of_the_domain():
    prior, _ = general_posterior("kron")
    XD, yD = simulate(500, TRUTH + 0.5, seed=9)
    theta = fit_finetuned_head(XD, yD, prior.theta, alpha=0.05)
    exact = minimize(lambda t: nll(t.reshape(V, d + 1), XD, yD) + 0.025 * float(t @ t), np.zeros(V * (d + 1)),
                     method="BFGS", options={"gtol": 1e-9}).x.reshape(V, d + 1)
    np.testing.assert_allclose(theta, exact, atol=1e-4)


def test_in_the_kronecker_basis_the_split_uses_the_domain_curvature_s_diagonal_there():
    """kron: A = U diag(d + lam p) U^T with d = diag(U^T H U) (the exact GGN's diagonal in the general
    eigenbasis U = UA (x) UB); the block sums are those of A^-1 and A^-1 U diag(d) U^T A^-1 (dense check)."""
    prior, _ = general_posterior("kron", n=500)
    XD, yD = simulate(400, TRUTH, seed=15)
    lam = 0.7
    head = fit_adapted_head(XD, yD, prior, power=lam, power_logp=LOGNORMAL, draws=4, rng=np.random.default_rng(3))
    U = np.kron(prior.UA, prior.UB)
    dd = np.diag(U.T @ ggn(head.mode, XD) @ U)
    sigma = (U / (dd + lam * prior.precision.ravel())) @ U.T
    np.testing.assert_allclose(head.B_total, _block_sum(sigma), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(head.B_domain, _block_sum(sigma @ (U * dd) @ U.T @ sigma), rtol=1e-6, atol=1e-12)


def test_with_validation_positions_the_power_maximises_their_predictive_probability():
    """The power chosen on validation positions against a brute-force search: on a grid of log lam, the
    mode by BFGS, the covariance (H + lam Lambda)^-1 dense, the validation positions' log predictive
    by 4,000 draws (plus log lam's prior); the chosen power scores within 1 nat (of about 2,000) of the
    grid's best. And the choice follows the domain: large for the general truth, small for a departure."""
    prior, _ = general_posterior("full", n=1000)
    Lam = dense_precision(prior)
    log_prior = lambda l: LOGNORMAL(np.exp(l)) + l
    for truth, expect in ((TRUTH, "large"), (TRUTH + np.random.default_rng(21).normal(0.0, 1.0, TRUTH.shape), "small")):
        XD, yD = simulate(400, truth, seed=22)
        valid = simulate(2000, truth, seed=23)
        head = fit_adapted_head(XD, yD, prior, power=None, power_logp=LOGNORMAL, draws=200,
                                rng=np.random.default_rng(3), valid=valid)
        assert head.info["power_chosen_by"] == "validation"

        def score(l):
            def objective(t):
                dev = t - prior.theta.ravel()
                return nll(t.reshape(V, d + 1), XD, yD) + 0.5 * np.exp(l) * float(dev @ Lam @ dev)
            mode = minimize(objective, prior.theta.ravel(), method="BFGS", options={"gtol": 1e-8}).x
            sigma = np.linalg.inv(ggn(mode.reshape(V, d + 1), XD) + np.exp(l) * Lam)
            draws = np.random.default_rng(5).multivariate_normal(mode, sigma, size=4000).reshape(-1, V, d + 1)
            Xa = np.hstack([valid[0], np.ones((len(valid[1]), 1))])
            log_probs = np.stack([log_softmax(Xa @ t.T, axis=1)[np.arange(len(valid[1])), valid[1]] for t in draws])
            return float((np.logaddexp.reduce(log_probs, axis=0) - np.log(len(draws))).sum()) + log_prior(l)

        grid = np.log(head.power) + np.linspace(-1.5, 1.5, 7)
        scores = [score(l) for l in grid]
        assert scores[3] >= max(scores) - 1.0
        assert (head.power > 0.5) if expect == "large" else (head.power < 0.2)
