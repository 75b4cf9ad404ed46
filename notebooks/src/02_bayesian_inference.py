# %% [markdown]
# # 2. Bayesian inference for a language model
#
# *Textbook chapter 3.4 (Bayesian inference in LLMs).*
#
# Bayes' rule, $p(\theta\mid X) = p(X\mid\theta)\,p(\theta)/p(X)$, names four objects:
# prior, likelihood, posterior and evidence. This notebook finds each of them in a real
# language model, bayeslm's Dirichlet-smoothed n-gram model, and uses them:
#
# 1. the four objects, exactly, on a toy example and then on the model;
# 2. comparing n-gram orders by marginal likelihood, and why held-out text still decides;
# 3. credible intervals on next-token probabilities;
# 4. posterior predictive checks: what the fitted model gets wrong;
# 5. why the GANs the chapter mentions are not a language-model family here.
#
# **Where the textbook is wrong.** The chapter's code (3.4.5) repeats chapter 3.3's
# mistake: it defines a prior and a posterior and then reports `np.mean(data)` as the MAP,
# ignoring the prior; and its "word-frequency data" are draws from a normal distribution,
# which is not a model of text. See notebook 1 for the corrected MAP.

# %%
import logging
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc  # noqa: F401  (imported first: it sets its logger's level on import)
from scipy import stats
from scipy.special import logsumexp

import bayeslm as blm
from bayeslm.stats.diagnostics import summary
from bayeslm.ngram.dirichlet import dirichlet_multinomial_evidence

warnings.filterwarnings("ignore", category=FutureWarning)
logging.getLogger("pymc").setLevel(logging.ERROR)
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (7, 3.6), "axes.grid": True, "grid.alpha": 0.3})
SAMPLER = dict(draws=300, tune=300, chains=2, progressbar=False)  # small settings: seconds per fit

# %% [markdown]
# ## 2.1 The four objects
#
# For an n-gram model of order $n$ a context $u$ is the previous $n-1$ tokens and
# $p(\cdot\mid u)$ is a distribution over the next token. bayeslm's Dirichlet LM says,
# for each order $k$,
#
# | object | here |
# |---|---|
# | prior | $a_k \sim \text{LogNormal}(2, 3)$, $\quad p(\cdot\mid u) \mid a_k \sim \text{Dirichlet}(a_k\, m_u)$, with $m_u$ the order $k-1$ predictive |
# | likelihood | $p(X \mid p) = \prod_u \prod_w p(w\mid u)^{c_{uw}}$ (each token given its context) |
# | posterior | $p(\cdot\mid u) \mid a_k, X \sim \text{Dirichlet}(c_{uw} + a_k m_{uw})$ (conjugate), $\quad p(a_k\mid X) \propto p(X\mid a_k)\,p(a_k)$ |
# | evidence | $p(X \mid a_k) = \prod_u \frac{\Gamma(a_k)}{\Gamma(a_k + c_u)}\prod_w \frac{\Gamma(a_k m_{uw} + c_{uw})}{\Gamma(a_k m_{uw})}$, $\quad p(X) = \int p(X\mid a)\,p(a)\,da$ |
#
# The per-context distributions are integrated out exactly; what NUTS samples is the
# concentration $a_k$, one number per order, whose likelihood is the evidence
# $p(X\mid a_k)$ (the Dirichlet-multinomial probability of the token sequence).
#
# **A toy check.** One context, four token types, base $m = (0.4, 0.3, 0.2, 0.1)$, $a = 2$.
# The evidence can be computed three ways: the Gamma-function formula; Bayes' rule
# rearranged, $p(X) = p(X\mid p)\,p(p)/p(p\mid X)$ at *any* $p$; and token by token, as the
# product of the predictive probabilities of each token given the ones before it (the
# Pólya urn: $p(x_t = w \mid x_{<t}) = (c_{w,<t} + a m_w)/(t - 1 + a)$).

# %%
rng = np.random.default_rng(0)
m, a = np.array([0.4, 0.3, 0.2, 0.1]), 2.0
seq = rng.choice(4, size=12, p=[0.1, 0.2, 0.3, 0.4])
counts = np.bincount(seq, minlength=4)

by_formula = dirichlet_multinomial_evidence(counts[None], (a * m)[None])
p_any = np.array([0.25, 0.25, 0.25, 0.25])
by_bayes = (counts * np.log(p_any)).sum() + stats.dirichlet.logpdf(p_any, a * m) - stats.dirichlet.logpdf(p_any, counts + a * m)
seen, by_sequence = np.zeros(4), 0.0
for t, w in enumerate(seq):
    by_sequence += np.log((seen[w] + a * m[w]) / (t + a))
    seen[w] += 1
print(f"sequence {seq}, counts {counts}")
print(f"log evidence: formula {by_formula:.6f}, Bayes' rule {by_bayes:.6f}, token by token {by_sequence:.6f}")

# %% [markdown]
# The third way matters below: **the evidence scores every token before the model has
# counted it**, so it behaves like a held-out score computed on the training text.
#
# ## 2.2 Fitting the model
#
# We fit unigram, bigram and trigram models on 90% of the demo corpus (the Python
# documentation topics shipped with Python). Orders are fitted bottom up: order $k$'s base
# $m_u$ is the fitted order $k-1$ model, held fixed at its posterior mode ("stagewise
# empirical Bayes"). So the trigram model contains all three concentrations.

# %%
train, test = blm.demo_corpus().split(0.9, random_seed=0)
models = {}
for order in (1, 2, 3):
    models[order] = blm.DirichletLM(order=order, min_count=2, sampler_config=SAMPLER)
    models[order].fit(train, random_seed=1)
trigram = models[3]
print(trigram, f"fitted in {trigram.fit_seconds_:.1f} s")
summary(trigram.idata, var_names=["concentration"])

# %% [markdown]
# With 300 draws per chain some effective sample sizes fall short of the 400 that
# `bayeslm.diagnostics` asks for (`ok` is False): fine for teaching, not for a report;
# the command line's defaults are 1000 draws and 1000 tuning steps.
#
# ## 2.3 Prior, likelihood and posterior of the concentration
#
# `lm.log_evidence(k, a)` evaluates $\log p(X\mid a_k)$ for any $a$, so the posterior of
# $\log a_k$ can be computed on a grid (prior density of $\log a$ times evidence,
# normalised) and compared with the NUTS draws. The prior spans five decades; the
# evidence of 100,000 tokens pins each $a_k$ down to a few percent.

# %%
prior = trigram.model_config["concentration"]
print("prior:", prior)
log_a = np.linspace(-9, 16, 5001)
step = log_a[1] - log_a[0]
log_prior = stats.norm(prior.parameters["mu"], prior.parameters["sigma"]).logpdf(log_a)  # density of log a
grids = {}
for k in (1, 2, 3):
    log_lik = trigram.log_evidence(k, np.exp(log_a))
    log_joint = log_lik + log_prior
    grids[k] = {"log_lik": log_lik, "log_post": log_joint - logsumexp(log_joint) - np.log(step),
                "log_marginal": logsumexp(log_joint) + np.log(step)}

fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
ax = axes[0]
ax.plot(log_a, np.exp(log_prior), "k", label="prior")
for k in (1, 2, 3):
    ax.plot(log_a, np.exp(grids[k]["log_post"]) / np.exp(grids[k]["log_post"]).max() * 0.15, label=f"posterior, order {k} (scaled)")
ax.set(xlabel=r"$\log a$", title="prior vs posterior")
ax.legend(fontsize=7)
for ax, k in zip(axes[1:], (1, 2, 3)):
    draws = np.log(trigram.idata.posterior["concentration"].sel(order=k).values.ravel())
    lo, hi = draws.min() - 0.05, draws.max() + 0.05
    sel = (log_a > lo) & (log_a < hi)
    ax.hist(draws, bins=30, density=True, alpha=0.5, label="NUTS")
    ax.plot(log_a[sel], np.exp(grids[k]["log_post"][sel]), "k", label="grid")
    ax.set(xlabel=rf"$\log a_{k}$", title=f"order {k}: posterior")
    ax.legend(fontsize=7)
fig.tight_layout()
plt.show()
post = trigram.idata.posterior["concentration"]
print("posterior mean of a:", post.mean(("chain", "draw")).values.round(2),
      " sd:", post.std(("chain", "draw")).values.round(3))

# %% [markdown]
# ## 2.4 Comparing orders by marginal likelihood
#
# The **evidence** of a model, $p(X\mid \text{order } k) = \int p(X\mid a)\,p(a)\,da$,
# integrates the likelihood over the prior (here on the grid above). Its ratio between two
# models is the Bayes factor. Per token and in bits it is directly comparable with a
# cross-entropy: by the token-by-token identity above, it is the code length of the
# training text when every token is predicted *before* being counted.

# %%
n_events = trigram.counts_.n_events  # tokens + one </s> per sentence
rows = []
for k in (1, 2, 3):
    rows.append({
        "order": k,
        "log evidence (nats)": grids[k]["log_marginal"],
        "evidence, bits/token": -grids[k]["log_marginal"] / n_events / np.log(2),
        "training text, bits/token": models[k].evaluate(train).predictive_cross_entropy_bits,
        "held-out text, bits/token": models[k].evaluate(test).predictive_cross_entropy_bits,
        "held-out perplexity": models[k].evaluate(test).predictive_perplexity,
    })
orders = pd.DataFrame(rows).set_index("order")
print(orders.round(3).to_string())
print(f"log Bayes factor trigram vs bigram: {grids[3]['log_marginal'] - grids[2]['log_marginal']:.0f} nats")

# %% [markdown]
# All three columns rank the orders the same way, but only two are honest:
#
# - **Training text** (every n-gram already counted) is far too optimistic, and more so
#   for the higher orders, which memorise more.
# - **Evidence** is close to held-out, but not equal, for two opposite reasons. It is
#   *pessimistic* because early tokens are predicted from few counts. It is *optimistic*
#   because the fit is stagewise: order $k$'s base $m_u$ is the lower-order model fitted
#   to the same text, so the data enter order $k$'s evidence once through the counts and
#   again through the fitted base. The evidence is $p(X \mid a_k, \hat m)$ with $\hat m$
#   chosen by looking at $X$, not a fully Bayesian $p(X)$. (The alternative, one joint
#   posterior over all orders, counts the data twice in another way and was measured
#   worse; see `docs/dirichlet.md`.)
#
# So **held-out text has the last word**: the marginal likelihood is a good guide to
# which order to use, and the held-out cross-entropy is the number to report.
#
# ## 2.5 Credible intervals on next-token probabilities
#
# Given $a$, one coordinate of a $\text{Dirichlet}(A)$ is $\text{Beta}(A_w, A - A_w)$;
# over the draws of $a$ it is a mixture of Betas. `lm.prob(token, context)` returns its
# mean and a 94% equal-tailed interval. A context seen hundreds of times gives narrow
# intervals; a context seen a handful of times gives wide ones, and the prior (the lower
# order) decides most of the mass.

# %%
vocab = trigram.vocabulary


def interval_table(lm, context, n_top=10):
    ids = np.array([[vocab.id(t) for t in context]])
    mean = lm.predictive_probs(ids)[0]
    rows = [lm.prob(vocab.tokens[w], context) for w in np.argsort(-mean)[:n_top]]
    return pd.DataFrame(rows).set_index("token")[["mean", "low", "high"]]


def context_count(lm, context):
    ids = lm.counts_.context_ids(np.array([[vocab.id(t) for t in context]]))[lm.order - 1]
    return int(lm.counts_[lm.order].context_total[ids[0]]) if ids[0] >= 0 else 0


contexts = [["of", "the"], ["the", "mapping"]]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for ax, ctx in zip(axes, contexts):
    tab = interval_table(trigram, ctx)
    y = np.arange(len(tab))[::-1]
    ax.errorbar(tab["mean"], y, xerr=[tab["mean"] - tab["low"], tab["high"] - tab["mean"]], fmt="o", capsize=3)
    ax.set_yticks(y, tab.index)
    ax.set(xlabel="p(w | context)", title=f"after '{' '.join(ctx)}' (seen {context_count(trigram, ctx)} times)")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Check by simulation.** `lm.sample_distribution(context, draw, rng)` draws one
# $p(\cdot\mid u)$ from its posterior Dirichlet (for posterior draw `draw` of $a$).
# Quantiles of many such draws should match `lm.prob`'s closed-form interval.

# %%
rng = np.random.default_rng(1)
ctx = contexts[1]
ids = np.array([[vocab.id(t) for t in ctx]])
sims = np.array([trigram.sample_distribution(ids, int(d), rng)[0] for d in rng.integers(trigram.n_samples, size=3000)])
check = interval_table(trigram, ctx, n_top=5)
check["simulated low"] = [np.quantile(sims[:, vocab.id(w)], 0.03) for w in check.index]
check["simulated high"] = [np.quantile(sims[:, vocab.id(w)], 0.97) for w in check.index]
check.round(4)

# %% [markdown]
# ## 2.6 Posterior predictive checks
#
# A posterior predictive check asks: if the fitted model had generated the training
# text, would it look like the real one? Draw replicated corpora
# $X^{\rm rep} \sim p(X^{\rm rep}\mid X)$ (`lm.sample_sentences`, each call one posterior
# draw of $a$ and as many sentences as the training text), compute a statistic $T$ on
# each, and compare with $T(X)$. The posterior predictive p-value
# $\Pr(T(X^{\rm rep}) \ge T(X))$ near 0 or 1 flags a misfit.
#
# Four statistics: the shares of the two most common words, "-" and "the" (facts a
# unigram model is fitted to), the mean sentence length, and the share of sentences whose
# parentheses balance (a long-range constraint no n-gram model can track).

# %%
open_id, close_id, the_id, dash_id = vocab.id("("), vocab.id(")"), vocab.id("the"), vocab.id("-")


def statistics(corpus):
    sentence = np.repeat(np.arange(corpus.n_sentences), corpus.sentence_lengths)
    opens = np.bincount(sentence, weights=corpus.ids == open_id, minlength=corpus.n_sentences)
    closes = np.bincount(sentence, weights=corpus.ids == close_id, minlength=corpus.n_sentences)
    return {
        "share of '-'": float(np.mean(corpus.ids == dash_id)),
        "share of 'the'": float(np.mean(corpus.ids == the_id)),
        "mean sentence length": float(corpus.sentence_lengths.mean()),
        "parentheses balanced": float(np.mean(opens == closes)),
    }


observed = statistics(trigram.encode(train))
replicates = []
for order, lm in models.items():
    for r in range(20):
        rep = lm.sample_sentences(train.n_sentences, random_seed=100 * order + r)
        replicates.append({"order": order, **statistics(rep.with_vocabulary(vocab))})
replicates = pd.DataFrame(replicates)

fig, axes = plt.subplots(1, 4, figsize=(14, 3.3))
rng = np.random.default_rng(2)
for ax, stat in zip(axes, observed):
    for order in (1, 2, 3):
        values = replicates.loc[replicates["order"] == order, stat]
        ax.scatter(order + rng.uniform(-0.12, 0.12, len(values)), values, s=12, alpha=0.6)
    ax.axhline(observed[stat], color="k", ls="--", label="observed")
    ax.set(xticks=[1, 2, 3], xlabel="order", title=stat)
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
p_values = replicates.groupby("order").apply(lambda g: pd.Series({s: np.mean(g[s] >= observed[s]) for s in observed}),
                                             include_groups=False)
print("posterior predictive p-values Pr(T_rep >= T_obs):")
print(p_values.to_string())

# %% [markdown]
# - The unigram model reproduces the word shares it was fitted to (p-values away from
#   0 and 1) and, since its end-of-sentence probability is a share too, the mean length.
# - The bigram and trigram models produce **twice as many "-"** as the real text, and so
#   fewer of every other word, and longer sentences. The corpus has ASCII tables whose
#   borders are long runs of "-" (10% of all tokens). Smoothing gives every context a
#   little probability of its base, in which "-" is the most frequent token; once a
#   replicated sentence steps into "-", the model continues the run the way table
#   borders do, with no memory of how it got there. Each leak costs a long run.
#   (An MLE bigram without smoothing would match the shares exactly; the fix is not to
#   drop the prior but a better base, e.g. continuation counts as in Kneser-Ney.)
# - Balanced parentheses improve with the order (a trigram sees "( )" and "( x )") but
#   stay far below the real text: matching brackets is a long-range dependency.
#
# The spread between replicates here is almost all sampling noise of the text: the
# posterior of $a$ is so narrow that different draws give nearly the same model.
# Checks like these point at what a richer model must add; an attention model (the
# Transformer chapters) addresses exactly the long-range part.
#
# ## 2.7 Why not GANs?
#
# The chapter lists generative adversarial networks among the generative models Bayesian
# inference can be combined with. They are not a language-model family in bayeslm, for
# reasons that follow from the four objects above:
#
# - **No likelihood.** A GAN's generator defines text only implicitly, through sampling;
#   it gives no $p(w_t \mid w_{<t})$, so there is no likelihood to put in Bayes' rule, no
#   evidence, and no cross-entropy or perplexity to report on held-out text.
# - **Discrete tokens.** The discriminator's gradient cannot pass through the sampling of
#   a token; text GANs need policy-gradient or relaxation tricks and have not matched
#   maximum-likelihood language models.
# - **No posterior predictive.** Everything this notebook computed (credible intervals on
#   $p(w\mid u)$, the evidence, replicated data) starts from an explicit likelihood.
#
# bayeslm's families are all explicit autoregressive models,
# $p(w_1,\dots,w_T) = \prod_t p(w_t\mid w_{<t})$, with a prior on their parameters. The
# "Bayesian neural networks" of the chapter enter the same way, as a Bayesian last layer
# on a Transformer (a later chapter, once the Transformer lands).
