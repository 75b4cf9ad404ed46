# %% [markdown]
# # 6. Uncertain continuations
#
# *Builds on textbook chapter 8.1 (the chain rule of an autoregressive model and how it
# generates text) and on notebooks 2 and 3 (the posterior, and the split of entropy into
# aleatoric and epistemic parts).*
#
# A language model generates by the chain rule,
#
# $$p(w_1, \dots, w_T) = \prod_{t=1}^T p(w_t \mid w_1, \dots, w_{t-1}),$$
#
# sampling one token at a time and appending it to the context (an n-gram model looks
# only at the last $n-1$ tokens). A Bayesian model is unsure of its own
# $p(\cdot\mid\text{context})$; this notebook generates text that carries that
# uncertainty along, shows for every token how unsure the model was, and explains where
# the uncertainty comes from.

# %%
import logging
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc  # noqa: F401  (imported first: it sets its logger's level on import)

import bayeslm as blm
from bayeslm.core.generation import format_terminal, transform_probs

warnings.filterwarnings("ignore", category=FutureWarning)
logging.getLogger("pymc").setLevel(logging.ERROR)
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (7, 3.6), "axes.grid": True, "grid.alpha": 0.3})
SAMPLER = dict(draws=300, tune=300, chains=2, progressbar=False)  # small settings: seconds per fit

# %% [markdown]
# A trigram model on the demo corpus (the Python documentation topics). A validation
# part of the training text is passed to `fit`: the model stores the 90th percentile of
# the per-token mutual information on it, the threshold above which generated tokens
# are flagged as uncertain.

# %%
train, test = blm.demo_corpus().split(0.9, random_seed=0)
train, valid = train.split(0.9, random_seed=1)
lm = blm.DirichletLM(order=3, min_count=2, sampler_config=SAMPLER)
lm.fit(train, valid=valid, random_seed=1)
vocab = lm.vocabulary
print(lm, "| flag threshold:", lm.idata.posterior.attrs["mi_threshold_source"],
      f"= {lm.idata.posterior.attrs['mi_threshold_nats'] / np.log(2):.3f} bits")

# %% [markdown]
# ## 6.1 Two ways to sample with a posterior
#
# - **Predictive**: at every step sample from the posterior predictive
#   $\bar p(w\mid u) = \mathbb E_\theta[p_\theta(w\mid u)]$ (`mode="predictive"`).
# - **One draw per continuation** (`mode="draw"`, the default): draw the parameters
#   $\theta \sim p(\theta\mid X)$ once and generate the whole continuation from
#   $p_\theta$. For the Dirichlet LM a draw is a concentration $a$ and, the first time the
#   continuation meets a context $u$, a whole distribution
#   $p(\cdot\mid u) \sim \text{Dirichlet}(c_{u\cdot} + a\,m_u)$, reused whenever $u$ recurs.
#
# Only the second samples exactly from the posterior predictive of the *whole* text,
# $p(w_{1:T}\mid X) = \int \prod_t p_\theta(w_t\mid w_{<t})\,p(\theta\mid X)\,d\theta$. The
# product of per-step predictives forgets that two visits to the same context share one
# unknown distribution. The difference is visible in the chance that two visits to a
# context pick the same next token: $\mathbb E_\theta \sum_w p_\theta(w\mid u)^2$ under a
# held draw, $\sum_w \bar p(w\mid u)^2$ step by step. For $\text{Dirichlet}(A_w)$,
# $\mathbb E\, p_w^2 = A_w(A_w+1)/(A(A+1))$.

# %%
def ids_of(context):
    return np.array([[vocab.id(t) for t in context]])


def context_count(context):
    ctx_id = lm.counts_.context_ids(ids_of(context))[lm.order - 1][0]
    return int(lm.counts_[lm.order].context_total[ctx_id]) if ctx_id >= 0 else 0


# contexts seen often, rarely, and never (as trigrams; their words are known)
freq_ctx = ["of", "the"]
tokens3 = lm.counts_.context_tokens(3)
totals3 = lm.counts_[3].context_total
rare_ctx = next([vocab.tokens[i] for i in row] for row, c in zip(tokens3, totals3)
                if c == 3 and all(vocab.tokens[i].isalpha() for i in row))
unseen_ctx = ["dictionary", "the"]
contexts = {"frequent": freq_ctx, "rare": rare_ctx, "unseen": unseen_ctx}

rows = []
for name, ctx in contexts.items():
    A = lm.dirichlet_parameters(ids_of(ctx), draws=50)[:, 0, :]  # (draw, token)
    A_tot = A.sum(axis=1, keepdims=True)
    repeat_draw = float((A * (A + 1) / (A_tot * (A_tot + 1))).sum(axis=1).mean())
    repeat_step = float((lm.predictive_probs(ids_of(ctx))[0] ** 2).sum())
    rows.append({"context": " ".join(ctx), "kind": name, "c_u": context_count(ctx),
                 "P(same token twice), held draw": repeat_draw, "P(same token twice), step by step": repeat_step})
pd.DataFrame(rows).set_index("context").round(4)

# %% [markdown]
# After a frequent context the two agree: its distribution is known. After a rare or
# unseen one the held draw repeats itself much more often: the draw has committed to
# a few continuations the data could not rule out.
#
# ## 6.2 Continuations
#
# `lm.generate(prompt, n, max_tokens, random_seed)` returns `Continuation` objects; each
# token carries its probability under the held draw and under the predictive, and the
# entropy of the predictive split into aleatoric and epistemic (mutual information)
# parts. `format_terminal` prints them; in a terminal the background of each token shades
# from white to red with its mutual information.

# %%
prompt = "the default value of"
continuations = lm.generate(prompt, n=6, max_tokens=25, random_seed=0)
print(format_terminal(continuations, color=False))

# %%
predictive = lm.generate(prompt, n=6, max_tokens=25, random_seed=0, mode="predictive")
print(format_terminal(predictive, color=False))

# %% [markdown]
# The header of each continuation gives the draw held, the continuation's log
# probability under the predictive, and its mean entropy and mutual information per
# token. (The demo corpus is hard-wrapped documentation with one "sentence" per line, so
# `</s>` often comes mid-phrase, e.g. right after "the"; `<unk>` stands for any word seen
# once in training.) One continuation in detail:

# %%
c = max(continuations, key=lambda c: len(c.tokens))
detail = pd.DataFrame([{
    "token": t.token, "p (held draw)": t.prob_draw, "p (predictive)": t.prob_predictive,
    "entropy": t.entropy_bits, "aleatoric": t.aleatoric_bits, "epistemic": t.epistemic_bits,
    "flagged": t.flagged, "predictive top 3": ", ".join(w for w, _ in t.top[:3]),
} for t in c.tokens])
print(detail.round(3).to_string(index=False))

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 4.6), sharex=True, height_ratios=[2, 1])
x = np.arange(len(detail))
ax1.bar(x, detail["aleatoric"], label="aleatoric")
ax1.bar(x, detail["epistemic"], bottom=detail["aleatoric"], label="epistemic (mutual information)")
ax1.set(ylabel="entropy (bits)", title=f"'{prompt} ...': uncertainty before each token")
ax1.legend(fontsize=8)
ax2.bar(x, detail["epistemic"], color=np.where(detail["flagged"], "C3", "C1"))
ax2.axhline(c.mi_threshold_bits, color="C3", ls=":", label="flag threshold")
ax2.set(ylabel="epistemic (bits)")
ax2.legend(fontsize=8)
ax2.set_xticks(x, detail["token"], rotation=45, ha="right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6.3 Where the model is unsure, and why
#
# Given $a$, the posterior of $p(\cdot\mid u)$ is $\text{Dirichlet}(c_{uw} + a\,m_{uw})$
# with total $A = c_u + a$. Everything hinges on the context count $c_u$:
#
# - **frequent context** ($c_u \gg a$): draws of $p(\cdot\mid u)$ barely differ;
#   the remaining uncertainty is aleatoric, the language's own choice among many words;
# - **rare context**: a few counts and $a$ pseudo-counts spread thinly over the base
#   $m_u$ (thousands of tokens with tiny parameters). Each draw concentrates that mass on
#   a few tokens, a different few each time: large mutual information;
# - **unseen context**: the prediction is the lower-order base alone, backed by only
#   $a \approx 7$ pseudo-counts.
#
# Forty posterior draws of $p(w\mid u)$ for the predictive's top tokens show it:

# %%
rng = np.random.default_rng(3)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
split_rows = []
for ax, (name, ctx) in zip(axes, contexts.items()):
    ids = ids_of(ctx)
    mean = lm.predictive_probs(ids)[0]
    top = np.argsort(-mean)[:8]
    draws = np.array([lm.sample_distribution(ids, int(d), rng)[0] for d in rng.integers(lm.n_samples, size=40)])
    for j, w in enumerate(top):
        ax.scatter(np.full(40, j) + rng.uniform(-0.15, 0.15, 40), draws[:, w], s=8, alpha=0.5, color="C0")
        ax.plot([j - 0.3, j + 0.3], [mean[w], mean[w]], "k")
    ax.set_xticks(range(8), [vocab.tokens[w] for w in top], rotation=45, ha="right")
    split = lm.context_entropy_split(ids).iloc[0] / np.log(2)
    split_rows.append({"context": " ".join(ctx), "c_u": context_count(ctx), **split.round(3).to_dict()})
    ax.set(title=f"'{' '.join(ctx)}' (c_u = {context_count(ctx)}): MI {split['epistemic']:.2f} bits")
axes[0].set(ylabel="p(w | u) per posterior draw")
fig.tight_layout()
plt.show()
pd.DataFrame(split_rows).set_index("context")

# %% [markdown]
# (The black bars are the predictive means; a dot is one draw.) Note what the spread is
# *not* about: the concentration $a$ itself. Its posterior is narrow (notebook 2), and
# moving $a$ across its whole 94% interval changes the predictive after the rare
# context by far less than the spread between draws above:

# %%
a_draws = lm.idata.posterior["concentration"].sel(order=3).values.ravel()
lo, hi = np.quantile(a_draws, [0.03, 0.97])
order_a = np.argsort(a_draws)
p_lo = lm.next_token_probs(ids_of(rare_ctx), draws=[order_a[int(0.03 * a_draws.size)]])[0, 0]
p_hi = lm.next_token_probs(ids_of(rare_ctx), draws=[order_a[int(0.97 * a_draws.size)]])[0, 0]
print(f"a_3 94% interval [{lo:.2f}, {hi:.2f}]; largest change of p(w | {' '.join(rare_ctx)}) across it: "
      f"{np.abs(p_hi - p_lo).max():.4f}")

# %% [markdown]
# ## 6.4 Uncertainty along generated text
#
# How often is a generated token flagged? The threshold is the 90th percentile of mutual
# information over validation positions, so real text is flagged 10% of the time by
# construction. Text the model generates itself visits its contexts in proportion to its
# own probabilities:

# %%
many = lm.generate("", n=60, max_tokens=30, random_seed=4)
gen_mi = np.array([t.epistemic_bits for c in many for t in c.tokens])
test_mi = lm.entropy_split(test)["epistemic"].to_numpy() / np.log(2)
threshold = many[0].mi_threshold_bits
print(f"flagged: generated text {np.mean(gen_mi > threshold):.1%} of {gen_mi.size} tokens; "
      f"held-out text {np.mean(test_mi > threshold):.1%} of {test_mi.size} positions")
fig, ax = plt.subplots(figsize=(6.5, 3))
bins = np.linspace(0, 4.5, 46)
ax.hist(test_mi, bins=bins, density=True, alpha=0.5, label="held-out text")
ax.hist(gen_mi, bins=bins, density=True, alpha=0.5, label="generated text")
ax.axvline(threshold, color="r", ls=":", label="flag threshold")
ax.set(xlabel="mutual information before the token (bits)", ylabel="density")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Generated text is flagged less often than real text: sampling from itself, the model
# keeps to paths it knows (sentence starts, frequent phrases, the spike at 0), whereas
# real text leads it into rare contexts more often. A flagged token is therefore worth a
# look: the model continued from a context its training data said little about.
#
# ## 6.5 Temperature, top-k and top-p
#
# The usual decoding knobs reshape the distribution a token is drawn from: temperature
# $T$ replaces $p$ by $p^{1/T}$ (renormalised); top-$k$ keeps the $k$ most probable
# tokens; top-$p$ keeps the smallest set reaching probability $p$. They trade diversity
# for safety, and they make the sample no longer a draw from the posterior. bayeslm
# applies them to the held draw (or the predictive) and reports every token's
# probabilities and entropies *before* the change.

# %%
p = lm.predictive_probs(ids_of(freq_ctx))[0]
settings = {"T = 1": {}, "T = 0.5": {"temperature": 0.5}, "T = 1.5": {"temperature": 1.5},
            "top-k = 10": {"top_k": 10}, "top-p = 0.9": {"top_p": 0.9}}
rows = []
for name, kw in settings.items():
    q = transform_probs(p, **kw)
    rows.append({"setting": name, "tokens kept": int((q > 0).sum()), "entropy (bits)": float(blm.entropy(q, units="bits")),
                 "p(most likely)": float(q.max())})
print(f"after '{' '.join(freq_ctx)}':")
print(pd.DataFrame(rows).set_index("setting").round(3).to_string())
for c in lm.generate(prompt, n=3, max_tokens=20, random_seed=0, temperature=0.5):
    print("T=0.5:", prompt, c.text)

# %% [markdown]
# ## 6.6 Words the model has never seen
#
# A prompt word outside the vocabulary is read as `<unk>` and reported; the model then
# continues from a context it knows only as "some rare word".

# %%
odd = lm.generate("the quixotic", n=3, max_tokens=15, random_seed=5)
print(format_terminal(odd, color=False))

# %% [markdown]
# **Summary.** Holding one posterior draw per continuation samples whole texts from the
# posterior predictive; spread between continuations is the model's epistemic
# uncertainty. Per token, the mutual information says how much of the predictive
# entropy is the model's ignorance rather than the language's freedom; it is large after
# contexts seen a few times or never, and negligible after frequent ones.
