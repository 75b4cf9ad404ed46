# %% [markdown]
# # 1. MLE vs MAP: from a normal mean to next-token probabilities
#
# *Textbook chapter 3.3 (maximum likelihood and maximum a posteriori estimation).*
#
# An estimator turns data into a number. This notebook compares three of them twice:
# first for the mean and variance of a normal distribution, where everything has a closed
# form, then for the next-token probabilities of an n-gram language model, where the
# differences decide whether held-out perplexity is finite.
#
# | estimate | maximises / computes | uses the prior? |
# |---|---|---|
# | MLE | $\hat\theta_{\rm MLE} = \arg\max_\theta p(x \mid \theta)$ | no |
# | MAP | $\hat\theta_{\rm MAP} = \arg\max_\theta p(x \mid \theta)\,p(\theta)$ | yes, through its density at one point |
# | posterior mean | $\mathbb E[\theta \mid x] = \int \theta\, p(\theta \mid x)\, d\theta$ | yes, the whole posterior |
#
# **Where the textbook is wrong.** The chapter's "MAP" code defines a normal prior on the
# mean and then sets `mu_MAP = np.mean(data)`, the MLE: the prior is never used. Its
# likelihood function, `np.prod(norm.pdf(data, mu, sigma))` over 1000 points, underflows
# to exactly 0 in double precision. Both are corrected below. (Its formula for
# $\hat\sigma^2$ also writes $\mu$ where the estimate $\hat\mu$ belongs.)
#
# Every random step is seeded; the notebook runs in about a minute on two cores.

# %%
import logging
import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
from scipy import optimize, stats

import bayeslm as blm

warnings.filterwarnings("ignore", category=FutureWarning)
logging.getLogger("pymc").setLevel(logging.ERROR)
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (7, 3.6), "axes.grid": True, "grid.alpha": 0.3})
SAMPLER = dict(draws=300, tune=300, chains=2, progressbar=False)  # small settings: seconds per fit

# %% [markdown]
# ## 1.1 The normal model and its MLE
#
# For $x_1, \dots, x_n \sim \mathcal N(\mu, \sigma^2)$ the log-likelihood is
#
# $$\ell(\mu, \sigma^2) = -\frac n2 \log(2\pi\sigma^2) - \frac{1}{2\sigma^2}\sum_{i=1}^n (x_i - \mu)^2 ,$$
#
# maximised by $\hat\mu = \bar x$ and $\hat\sigma^2 = \frac1n \sum_i (x_i - \bar x)^2$
# (`np.var` with its default `ddof=0`). We take only $n = 8$ points, so that the prior
# has something to say.

# %%
rng = np.random.default_rng(0)
mu_true, sigma_true, n = 2.0, 1.5, 8
x = rng.normal(mu_true, sigma_true, size=n)
xbar, ss = x.mean(), ((x - x.mean()) ** 2).sum()
mle = {"mu": xbar, "sigma2": ss / n}
print(f"data: {np.round(x, 2)}")
print(f"MLE: mu = {mle['mu']:.4f}, sigma^2 = {mle['sigma2']:.4f}   (truth: {mu_true}, {sigma_true**2})")

# %% [markdown]
# ## 1.2 MAP under the conjugate normal-inverse-gamma prior
#
# The chapter puts a normal prior on $\mu$ and an inverse-gamma prior on $\sigma^2$. With
# the prior on $\mu$ scaled by $\sigma^2$ the pair is *conjugate*:
#
# $$\sigma^2 \sim \text{Inv-Gamma}(\alpha_0, \beta_0), \qquad \mu \mid \sigma^2 \sim \mathcal N(\mu_0, \sigma^2/\kappa_0),$$
#
# and the posterior is again normal-inverse-gamma with
#
# $$\kappa_n = \kappa_0 + n,\quad \mu_n = \frac{\kappa_0\mu_0 + n\bar x}{\kappa_n},\quad
# \alpha_n = \alpha_0 + \frac n2,\quad \beta_n = \beta_0 + \frac12\sum_i (x_i-\bar x)^2 + \frac{\kappa_0 n (\bar x-\mu_0)^2}{2\kappa_n}.$$
#
# Its density is proportional to
# $(\sigma^2)^{-(\alpha_n + 3/2)} \exp\!\big(-[\beta_n + \tfrac{\kappa_n}{2}(\mu-\mu_n)^2]/\sigma^2\big)$.
# Setting both partial derivatives to zero gives the **joint mode in $(\mu, \sigma^2)$**:
#
# $$\hat\mu_{\rm MAP} = \mu_n, \qquad \hat\sigma^2_{\rm MAP} = \frac{\beta_n}{\alpha_n + 3/2}.$$
#
# The mean is pulled from $\bar x$ toward $\mu_0$ with weight $\kappa_0 / (\kappa_0 + n)$:
# the prior acts like $\kappa_0$ extra observations at $\mu_0$. Our prior: $\mu_0 = 0$,
# $\kappa_0 = 2$, $\alpha_0 = 3$, $\beta_0 = 4$ (prior mean of $\sigma^2$ is
# $\beta_0/(\alpha_0-1) = 2$).

# %%
mu0, kappa0, alpha0, beta0 = 0.0, 2.0, 3.0, 4.0


def nig_posterior(x, mu0=mu0, kappa0=kappa0, alpha0=alpha0, beta0=beta0):
    """Parameters (mu_n, kappa_n, alpha_n, beta_n) of the normal-inverse-gamma posterior."""
    n, xbar = len(x), np.mean(x)
    kappa_n = kappa0 + n
    mu_n = (kappa0 * mu0 + n * xbar) / kappa_n
    alpha_n = alpha0 + n / 2
    beta_n = beta0 + 0.5 * ((x - xbar) ** 2).sum() + kappa0 * n * (xbar - mu0) ** 2 / (2 * kappa_n)
    return mu_n, kappa_n, alpha_n, beta_n


mu_n, kappa_n, alpha_n, beta_n = nig_posterior(x)
map_closed = {"mu": mu_n, "sigma2": beta_n / (alpha_n + 1.5)}
print(f"MAP (closed form): mu = {map_closed['mu']:.4f}, sigma^2 = {map_closed['sigma2']:.4f}")

# %% [markdown]
# **Check against PyMC.** `pm.find_MAP` maximises the model's log density in the
# variables as written (it drops the Jacobian of PyMC's internal log transform), so a model
# with a variable `sigma2` has its mode in $(\mu, \sigma^2)$, the same point as the formula.
# A mode depends on the parameterisation: written in $\sigma$ or $\log\sigma$ the same
# posterior peaks elsewhere, which is one reason to prefer posterior summaries that do not.

# %%
with pm.Model() as normal_model:
    sigma2 = pm.InverseGamma("sigma2", alpha=alpha0, beta=beta0)
    mu = pm.Normal("mu", mu=mu0, sigma=pm.math.sqrt(sigma2 / kappa0))
    pm.Normal("x", mu=mu, sigma=pm.math.sqrt(sigma2), observed=x)
    map_pymc = pm.find_MAP(progressbar=False, seed=0)

print(f"MAP (pm.find_MAP): mu = {float(map_pymc['mu']):.4f}, sigma^2 = {float(map_pymc['sigma2']):.4f}")
assert np.isclose(float(map_pymc["mu"]), map_closed["mu"], rtol=1e-4)
assert np.isclose(float(map_pymc["sigma2"]), map_closed["sigma2"], rtol=1e-4)

# %% [markdown]
# ## 1.3 The full posterior
#
# A point estimate forgets how sure we are. Here the posterior is known exactly:
# $\sigma^2 \mid x \sim \text{Inv-Gamma}(\alpha_n, \beta_n)$ and, integrating $\sigma^2$ out,
# $\mu \mid x \sim t_{2\alpha_n}\big(\mu_n, \beta_n / (\alpha_n\kappa_n)\big)$. Its mean is
# $(\mu_n, \beta_n/(\alpha_n - 1))$, a third estimate. We also draw from it with NUTS and
# compare.

# %%
with normal_model:
    idata_normal = pm.sample(draws=1000, tune=1000, chains=2, random_seed=2, progressbar=False)

post_mean = {"mu": mu_n, "sigma2": beta_n / (alpha_n - 1)}
mu_marginal = stats.t(df=2 * alpha_n, loc=mu_n, scale=np.sqrt(beta_n / (alpha_n * kappa_n)))
table = pd.DataFrame(
    {
        "MLE": mle,
        "MAP": map_closed,
        "posterior mean (exact)": post_mean,
        "posterior mean (NUTS)": {v: float(idata_normal.posterior[v].mean()) for v in ("mu", "sigma2")},
        "truth": {"mu": mu_true, "sigma2": sigma_true**2},
    }
).T
print(table.round(3))
print("94% interval of mu (exact):", np.round(mu_marginal.ppf([0.03, 0.97]), 3))
print("94% HDI of mu (NUTS):      ", np.round(az.hdi(idata_normal, hdi_prob=0.94)["mu"].values, 3))

# %%
mus = np.linspace(-1.5, 5, 300)
s2s = np.linspace(0.05, 8, 300)
M, S2 = np.meshgrid(mus, s2s)
log_post = stats.invgamma.logpdf(S2, alpha_n, scale=beta_n) + stats.norm.logpdf(M, mu_n, np.sqrt(S2 / kappa_n))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.contour(M, S2, np.exp(log_post - log_post.max()), levels=[0.05, 0.2, 0.5, 0.8], colors="0.4")
samples = idata_normal.posterior.stack(s=("chain", "draw"))
ax1.scatter(samples["mu"][::4], samples["sigma2"][::4], s=3, alpha=0.3, color="C0", label="NUTS draws")
for name, est, marker in [("MLE", mle, "s"), ("MAP", map_closed, "o"), ("posterior mean", post_mean, "^")]:
    ax1.plot(est["mu"], est["sigma2"], marker, ms=9, label=name)
ax1.plot(mu0, beta0 / (alpha0 - 1), "kx", ms=9, label="prior mean")
ax1.set(xlabel=r"$\mu$", ylabel=r"$\sigma^2$", title="joint posterior (contours: exact)", ylim=(0, 8))
ax1.legend(fontsize=8)
ax2.hist(samples["mu"], bins=50, density=True, alpha=0.5, label="NUTS")
ax2.plot(mus, mu_marginal.pdf(mus), "k", label=r"exact $t_{2\alpha_n}$")
ax2.axvline(xbar, color="C1", ls="--", label=r"MLE $\bar x$")
ax2.axvline(mu_true, color="C3", ls=":", label="truth")
ax2.set(xlabel=r"$\mu$", title=r"marginal posterior of $\mu$")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The MAP sits at the peak of the joint density, where $\sigma^2$ is smaller than its
# posterior mean: the inverse-gamma is right-skewed, so its mode lies below its mean.
# The MLE of $\sigma^2$ is the smallest: dividing by $n$ biases it low, and these eight
# points happen to be close together; the prior pulls the MAP toward its mean of 2.
# The MAP of $\mu$ sits between $\bar x$ and $\mu_0 = 0$, closer to the truth here.
#
# ## 1.4 The chapter's code, corrected
#
# The chapter draws 1000 points from $\mathcal N(0, 1)$, puts the prior
# $\mu \sim \mathcal N(0, 1)$ on the mean and treats $\sigma$ as known. Two problems:

# %%
rng = np.random.default_rng(3)
data = rng.normal(0, 1, 1000)
print("np.prod(norm.pdf(data)) =", np.prod(stats.norm.pdf(data, 0, 1)), "(underflow: the likelihood is ~ e^-1400)")
print("sum of norm.logpdf(data) =", stats.norm.logpdf(data, 0, 1).sum().round(2))


def neg_log_posterior(mu, data, prior_mu=0.0, prior_sd=1.0, sigma=1.0):
    return -(stats.norm.logpdf(data, mu, sigma).sum() + stats.norm.logpdf(mu, prior_mu, prior_sd))


for n_small in (5, 1000):
    d = data[:n_small]
    numeric = optimize.minimize_scalar(neg_log_posterior, args=(d,)).x
    closed = d.sum() / (n_small + 1)  # (n xbar / sigma^2 + mu0 / tau^2) / (n / sigma^2 + 1 / tau^2)
    print(f"n = {n_small:4d}: MLE {d.mean():+.5f}   MAP {numeric:+.5f} (closed form {closed:+.5f})")

# %% [markdown]
# Work with log densities. With a known $\sigma$ and prior $\mathcal N(\mu_0, \tau^2)$ the
# MAP is the precision-weighted average
# $\hat\mu_{\rm MAP} = (n\bar x/\sigma^2 + \mu_0/\tau^2)/(n/\sigma^2 + 1/\tau^2)$: it
# differs from the MLE, a lot with 5 points and hardly with 1000.
#
# ## 1.5 The prior matters less as data grow
#
# Keep drawing from the same normal and watch the estimates of $\mu$. The MAP's weight on
# the prior, $\kappa_0/(\kappa_0 + n)$, falls like $1/n$, while the posterior's width falls
# like $1/\sqrt n$: the data overwhelm the prior long before they remove the uncertainty.

# %%
rng = np.random.default_rng(4)
stream = rng.normal(mu_true, sigma_true, size=2000)
ns = np.unique(np.geomspace(1, stream.size, 60).astype(int))
rows = []
for k in ns:
    m_n, k_n, a_n, b_n = nig_posterior(stream[:k])
    lo, hi = stats.t(df=2 * a_n, loc=m_n, scale=np.sqrt(b_n / (a_n * k_n))).ppf([0.03, 0.97])
    rows.append({"n": k, "MLE": stream[:k].mean(), "MAP": m_n, "lo": lo, "hi": hi, "prior weight": kappa0 / (kappa0 + k)})
growth = pd.DataFrame(rows)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.fill_between(growth["n"], growth["lo"], growth["hi"], alpha=0.2, label="94% posterior interval")
ax1.plot(growth["n"], growth["MLE"], label="MLE")
ax1.plot(growth["n"], growth["MAP"], label="MAP = posterior mean")
ax1.axhline(mu_true, color="k", ls=":", label="truth")
ax1.set(xscale="log", xlabel="n", ylabel=r"estimate of $\mu$", ylim=(-2, 5))
ax1.legend(fontsize=8)
ax2.loglog(growth["n"], np.abs(growth["MAP"] - growth["MLE"]), label="|MAP - MLE|")
ax2.loglog(growth["n"], growth["hi"] - growth["lo"], label="interval width")
ax2.loglog(growth["n"], growth["prior weight"], "--", label=r"$\kappa_0/(\kappa_0+n)$")
ax2.set(xlabel="n")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 1.6 Next-token probabilities: the MLE
#
# An n-gram model predicts token $w$ after context $u$ (the previous $n-1$ tokens). With
# $c_{uw}$ the number of times $w$ followed $u$ in training and $c_u = \sum_w c_{uw}$,
# the multinomial likelihood $\prod_{u,w} p(w\mid u)^{c_{uw}}$ is maximised by the
# relative frequency
#
# $$\hat p_{\rm MLE}(w \mid u) = \frac{c_{uw}}{c_u}.$$
#
# We use bayeslm's demo corpus (the Python documentation topics that ship with every
# Python, one sentence per line, words seen once become `<unk>`) and a bigram model.

# %%
train, test = blm.demo_corpus().split(0.9, random_seed=0)
print("train:", train, "\ntest: ", test)
bigram = blm.DirichletLM(order=2, min_count=2, sampler_config=SAMPLER)
bigram.fit(train, random_seed=1)
V_pred = len(bigram.vocabulary) - 1  # V': every token but <s> can be predicted
print(bigram, f"V' = {V_pred}")

# %% [markdown]
# `lm.estimate(token, context, kind=...)` gives one probability; to score a whole text we
# read the counts $c_{uw}$ and $c_u$ at every held-out position from the fitted model's
# sparse counts (`lm.counts_`).

# %%
def position_counts(lm, corpus):
    """Per scored position: context, token, c_uw and c_u of the model's highest order."""
    enc = lm.encode(corpus)
    stream, targets = enc.padded(lm.order)
    k = lm.order
    contexts = np.stack([stream[targets - (k - 1) + j] for j in range(k - 1)], axis=1)
    ctx_id = lm.counts_.context_ids(contexts)[k - 1]  # -1: context never seen
    top = lm.counts_[k]
    tokens = np.asarray(lm.vocabulary.tokens, dtype=object)
    return pd.DataFrame({
        "context": [" ".join(row) for row in tokens[contexts]],
        "token": tokens[stream[targets]],
        "c_uw": top.counts_of(ctx_id, stream[targets]).astype(float),
        "c_u": np.where(ctx_id >= 0, top.context_total[np.maximum(ctx_id, 0)], 0).astype(float),
    })


pos = position_counts(bigram, test)
c_uw, c_u = pos["c_uw"].to_numpy(), pos["c_u"].to_numpy()
print(f"held-out positions: {len(pos)}; context never seen: {(c_u == 0).sum()}; "
      f"token never seen after its context: {(c_uw == 0).sum()} ({(c_uw == 0).mean():.1%})")
with np.errstate(divide="ignore", invalid="ignore"):
    mle_bits = -np.log2(c_uw / c_u)
print("MLE held-out cross-entropy:", mle_bits.mean(), "bits/token -> perplexity", 2 ** mle_bits.mean())
# the same numbers from lm.estimate, position by position
for row in pos.head(4).itertuples():
    assert np.isclose(bigram.estimate(row.token, row.context.split(), kind="mle"), row.c_uw / row.c_u)
pos[pos["c_uw"] == 0].head(5)

# %% [markdown]
# One held-out bigram the training text never contained gets probability 0, so the
# whole test text gets probability 0 and the cross-entropy
# $-\frac1T\sum_t \log_2 \hat p(w_t\mid u_t)$ is infinite. Here more than 8% of positions
# are such zeros. The MLE is not wrong as an estimate of what happened; it is useless as
# a prediction of what happens next.
#
# ## 1.7 The add-k MAP
#
# Put a symmetric Dirichlet prior on each next-token distribution,
# $p(\cdot\mid u) \sim \text{Dirichlet}(k, \dots, k)$ over the $V'$ predictable tokens.
# The posterior is $\text{Dirichlet}(c_{uw} + k)$ and, for $k \ge 1$, its mode is
#
# $$\hat p_{\rm MAP}(w\mid u) = \frac{c_{uw} + k - 1}{c_u + V'(k-1)},$$
#
# "add-$(k-1)$" smoothing: $k = 2$ is Laplace's add-one. (bayeslm's
# `estimate(..., kind="map", add_k=k)` takes the Dirichlet parameter $k$, so `add_k=2`
# adds **one** pseudo-count.) Every token now has a positive probability and the
# perplexity is finite, but how finite depends on the pseudo-count $\delta = k - 1$:

# %%
deltas = np.geomspace(1e-4, 3, 40)
ppl = [2 ** -np.log2((c_uw + d) / (c_u + V_pred * d)).mean() for d in deltas]
evaluation = bigram.evaluate(test)
for row in pos.head(4).itertuples():  # the vectorised add-one agrees with lm.estimate
    assert np.isclose(bigram.estimate(row.token, row.context.split(), kind="map", add_k=2),
                      (row.c_uw + 1) / (row.c_u + V_pred))

fig, ax = plt.subplots()
ax.loglog(deltas, ppl, label=r"add-$\delta$ MAP")
ax.axhline(evaluation.predictive_perplexity, color="C2", label="posterior mean, hierarchical prior")
ax.axvline(1, color="0.5", ls=":", label="add-one (Laplace)")
ax.set(xlabel=r"pseudo-count $\delta = k - 1$", ylabel="held-out perplexity", title="bigram on the demo corpus",
       ylim=(30, 300))
ax.legend(fontsize=8)
plt.show()
best = deltas[int(np.argmin(ppl))]
print(f"add-one: {ppl[int(np.argmin(np.abs(deltas - 1)))]:.1f}; best delta {best:.4f}: {min(ppl):.1f}; "
      f"hierarchical posterior mean: {evaluation.predictive_perplexity:.1f}")

# %% [markdown]
# Add-one gives every one of the $V' \approx 2300$ tokens a pseudo-count after every
# context: after a context seen 50 times, about 97% of the mass goes to tokens that never
# followed it. The best $\delta$ is tiny, and still worse than the hierarchical model
# below: a uniform prior is the wrong shape, not just the wrong size.
#
# ## 1.8 The hierarchical prior: no interior mode, use the posterior mean
#
# bayeslm's Dirichlet LM centres each context's prior on the lower-order model:
# $p(\cdot\mid u) \sim \text{Dirichlet}(a\, m_u)$ where $m_u$ is the (fitted) unigram
# distribution for a bigram, and the concentration $a$ gets its own prior and posterior.
# Given $a$, the posterior of $p(\cdot \mid u)$ is $\text{Dirichlet}(A_w)$ with
# $A_w = c_{uw} + a\,m_{uw}$, and its mean is
#
# $$\mathbb E[p(w\mid u)] = \frac{c_{uw} + a\, m_{uw}}{c_u + a} = \lambda_u\,\frac{c_{uw}}{c_u} + (1-\lambda_u)\, m_{uw},
# \qquad \lambda_u = \frac{c_u}{c_u + a},$$
#
# averaged over the posterior draws of $a$: the MLE shrunk toward the lower order.
# A Dirichlet's density is $\propto \prod_w p_w^{A_w - 1}$. For every token that never
# followed $u$, $A_w = a\,m_{uw} \ll 1$, so the density grows without bound as $p_w \to 0$:
# the mode lies on the boundary of the simplex, and the formula
# $(A_w - 1)/(A - V')$ would give negative "probabilities". bayeslm refuses:

# %%
print(f"posterior mean of the bigram concentration a: {float(bigram.idata.posterior['concentration'].sel(order=2).mean()):.2f}")
the = np.array([[bigram.vocabulary.id("the")]])
A = bigram.dirichlet_parameters(the, draws=1)[0, 0]
A = np.delete(A, bigram.vocabulary.bos_id)
print(f"after 'the': {np.sum(A <= 1)} of {A.size} parameters A_w are <= 1; smallest {A.min():.2e}")
try:
    bigram.estimate("same", ["the"], kind="map")
except blm.BayesLMError as err:
    print("estimate(kind='map'):", err)

# %%
vocab = bigram.vocabulary
# the most frequent words that never followed "the" in training
never_after_the = [w for w in vocab.tokens[3:300] if w.isalpha() and bigram.estimate(w, ["the"], kind="mle") == 0]
print("never seen after 'the':", never_after_the[:8])
w_unseen = never_after_the[0]
rows = []
for w in ["same", "following", "current", "documentation", w_unseen, "xyz"]:
    cell = {"token": w}
    for kind, kw in [("mle", {}), ("map", {"add_k": 2}), ("mean", {})]:
        cell[kind if kind != "map" else "add-one MAP"] = bigram.estimate(w, ["the"], kind=kind, **kw)
    p = bigram.prob(w, ["the"])
    cell.update({"token in vocab": p["token"], "94% low": p["low"], "94% high": p["high"]})
    rows.append(cell)
print("p(w | the):")
print(pd.DataFrame(rows).set_index("token").to_string(float_format=lambda v: f"{v:.2e}"))

# %% [markdown]
# (`xyz` is not in the vocabulary, so bayeslm reads it as `<unk>`: the row is
# p(`<unk>` | the).) After "the", the add-one MAP takes a third of the mass of
# every frequent continuation and spreads it over the $V'$ tokens. For a token never seen after a context the
# marginal posterior of its probability is $\text{Beta}(A_w, A - A_w)$ with $A_w \ll 1$:
# its density is infinite at 0 (the "mode"), yet its mean $A_w/A$ is a sensible small
# number and its 94% interval says how small.

# %%
A_full = bigram.dirichlet_parameters(the, draws=1)[0, 0]
Aw, Atot = A_full[vocab.id(w_unseen)], A_full.sum()
beta = stats.beta(Aw, Atot - Aw)
grid = np.geomspace(1e-12, 1e-2, 400)
fig, ax = plt.subplots()
ax.loglog(grid, beta.pdf(grid), label=rf"Beta($A_w$={Aw:.3f}, $A-A_w$={Atot - Aw:.0f})")
ax.axvline(beta.mean(), color="C2", label=f"posterior mean {beta.mean():.1e}")
ax.axvline(beta.ppf(0.97), color="C2", ls=":", label="97% quantile")
ax.set(xlabel=f"p({w_unseen} | the)", ylabel="density", title="posterior of an unseen continuation")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 1.9 As data grow, the estimates agree
#
# Fit the bigram model on growing parts of the training text. The weight of the prior,
# $1-\lambda_u = a/(c_u + a)$, shrinks as the context count $c_u$ grows, so for a frequent
# context the three estimates meet, and the average weight of the prior at the held-out
# positions falls; the MLE's zeros become rarer but never disappear (new text always
# holds new bigrams). The add-one MAP stays biased: its prior grows with the vocabulary.
# (Each model builds its vocabulary from its own training part, and held-out words
# outside it count as `<unk>`, so we do not compare perplexities across sizes.)

# %%
rng = np.random.default_rng(5)
order_of_sentences = rng.permutation(train.n_sentences)
rows = []
for size in (250, 1000, 3000, train.n_sentences):
    part = train.select(np.sort(order_of_sentences[:size]))
    lm = blm.DirichletLM(order=2, min_count=2, sampler_config=SAMPLER)
    lm.fit(part, random_seed=1)
    counts_test = position_counts(lm, test)
    cw, cu = counts_test["c_uw"].to_numpy(), counts_test["c_u"].to_numpy()
    v = len(lm.vocabulary) - 1
    a = float(lm.idata.posterior["concentration"].sel(order=2).mean())
    rows.append({
        "sentences": size,
        "tokens": part.n_tokens,
        "V'": v,
        "a (posterior mean)": a,
        "prior weight a/(c_u+a) at test positions": float(np.mean(a / (cu + a))),
        "MLE zeros": float((cw == 0).mean()),
        "MLE p(same|the)": lm.estimate("same", ["the"], kind="mle"),
        "add-one p(same|the)": lm.estimate("same", ["the"], kind="map", add_k=2),
        "mean p(same|the)": lm.estimate("same", ["the"], kind="mean"),
    })
sizes = pd.DataFrame(rows).set_index("sentences")
print(sizes.round(4).to_string())

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
for col in ("MLE p(same|the)", "add-one p(same|the)", "mean p(same|the)"):
    ax1.plot(sizes["tokens"], sizes[col], "o-", label=col.split(" ")[0])
ax1.set(xscale="log", xlabel="training tokens", ylabel="p(same | the)")
ax1.legend(fontsize=8)
cu_all = bigram.counts_[2].context_total
a_mean = float(bigram.idata.posterior["concentration"].sel(order=2).mean())
ax2.scatter(cu_all, a_mean / (cu_all + a_mean), s=4, alpha=0.4)
ax2.set(xscale="log", xlabel="context count $c_u$ (full training text)", ylabel=r"prior weight $a/(c_u+a)$")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Summary.**
#
# - MLE: the relative frequency; for language it assigns zero to every unseen
#   continuation, so held-out perplexity is infinite.
# - MAP with a symmetric Dirichlet: add-$\delta$ smoothing; finite but badly shaped, and
#   its quality hinges on $\delta$.
# - Hierarchical Dirichlet prior: most posterior parameters are below 1, there is no
#   interior mode, and the posterior mean (with its credible interval) is the estimate to
#   use. It also gives the lowest held-out perplexity here.
# - With more data every estimate moves toward the MLE for frequent contexts; rare
#   contexts, and there are always many, keep needing the prior.
