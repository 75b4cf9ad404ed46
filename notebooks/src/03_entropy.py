# %% [markdown]
# # 3. Entropy, cross-entropy and perplexity
#
# *Textbook chapter 4.1 (entropy and cross-entropy).*
#
# Entropy measures how unpredictable a distribution is; cross-entropy measures how well a
# model predicts data drawn from another distribution, and it is the loss every language
# model is trained and evaluated with; perplexity is its exponential. This notebook
# works through the chapter's definitions, corrects its log-loss example, reads an entropy
# report of a fitted model, and splits a model's uncertainty into an aleatoric and an
# epistemic part.
#
# **Where the textbook is wrong.**
#
# - 4.1.7: the "cross-entropy" example passes four 0/1 labels and four probabilities to a
#   *binary* log loss while the comments speak of four different words. As written it is
#   four yes/no questions (0.198 nats), not next-word cross-entropy over a vocabulary.
#   Both are computed below.
# - 4.1.5 writes $H(P, Q) = -\sum_{t=1}^T \log P(w_t\mid w_{<t})$: that sum is the
#   negative log-likelihood of one text (it grows with $T$); the cross-entropy per token
#   is its average, $-\frac1T\sum_t \log Q(w_t \mid w_{<t})$, with the *model* $Q$ inside
#   the log.
# - 4.1.1/4.1.2: entropy is the *average* number of bits per outcome under the best code,
#   not the bits of "a specific event" (that is the event's surprisal, $-\log_2 p(x)$), and
#   a language model is trained to lower the *cross-entropy*, not its own entropy: a model
#   that lowered its entropy regardless of the data would just become overconfident.

# %%
import logging
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc  # noqa: F401  (imported first: it sets its logger's level on import)

import bayeslm as blm

warnings.filterwarnings("ignore", category=FutureWarning)
logging.getLogger("pymc").setLevel(logging.ERROR)
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (7, 3.6), "axes.grid": True, "grid.alpha": 0.3})
SAMPLER = dict(draws=300, tune=300, chains=2, progressbar=False)  # small settings: seconds per fit

# %% [markdown]
# ## 3.1 Entropy: the 1.5-bit example
#
# $$H(X) = -\sum_x p(x)\log_2 p(x) \quad\text{bits}\qquad (\text{natural log: nats; } 1\text{ nat} = 1/\ln 2 \approx 1.443 \text{ bits}).$$
#
# For $p = (\tfrac12, \tfrac14, \tfrac14)$:
# $H = \tfrac12\cdot 1 + \tfrac14\cdot 2 + \tfrac14\cdot 2 = 1.5$ bits. bayeslm's
# functions work in nats and take `units="bits"`.

# %%
p = np.array([0.5, 0.25, 0.25])
print("H(p) =", blm.entropy(p, units="bits"), "bits =", blm.entropy(p), "nats")
print("to_bits(to_nats(1.5)) =", blm.to_bits(blm.to_nats(1.5)))
print("uniform over 3 outcomes:", blm.entropy(np.full(3, 1 / 3), units="bits"), "bits = log2(3)")

# %% [markdown]
# **Entropy as code length.** The prefix code a→`0`, b→`10`, c→`11` spends
# $-\log_2 p(x)$ bits on each outcome (its *surprisal*: 1, 2, 2 bits), so its average
# length equals the entropy. No uniquely decodable code does better on average
# (Shannon's source-coding theorem); here the bound is met exactly because every
# probability is a power of 1/2.

# %%
rng = np.random.default_rng(0)
message = rng.choice(3, size=20_000, p=p)
code = {0: "0", 1: "10", 2: "11"}
bits = "".join(code[s] for s in message)
print(f"{len(bits) / message.size:.4f} bits per symbol over {message.size} symbols (entropy 1.5)")

q = np.linspace(1e-6, 1 - 1e-6, 200)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(q, blm.entropy(np.stack([q, 1 - q], axis=1), units="bits"))
ax.set(xlabel="p(heads)", ylabel="H (bits)", title="entropy of a coin: largest when least predictable")
plt.show()

# %% [markdown]
# ## 3.2 Cross-entropy
#
# Data come from $P$, the model predicts $Q$. The average code length when coding $P$'s
# outcomes with a code built for $Q$ is the cross-entropy
#
# $$H(P, Q) = -\sum_x P(x)\log Q(x) = H(P) + D_{\rm KL}(P\,\|\,Q) \;\ge\; H(P),$$
#
# with equality only for $Q = P$ (Gibbs' inequality). A model that gives probability 0 to
# anything that happens pays infinitely many bits: the zeros of the MLE in notebook 1.

# %%
candidates = {
    "Q = P": [0.5, 0.25, 0.25],
    "Q uniform": [1 / 3, 1 / 3, 1 / 3],
    "Q = (1/4, 1/4, 1/2)": [0.25, 0.25, 0.5],
    "Q = (1/2, 1/2, 0)": [0.5, 0.5, 0.0],
}
rows = []
for name, Q in candidates.items():
    with np.errstate(divide="ignore"):
        log_q = np.log2(Q)
    h_pq = float(-(p * log_q).sum())
    rows.append({"model": name, "H(P,Q) bits": h_pq, "KL(P||Q) bits": h_pq - 1.5, "perplexity 2^H": 2**h_pq})
pd.DataFrame(rows).set_index("model").round(4)

# %% [markdown]
# ## 3.3 Cross-entropy is the language-model loss
#
# For a language, $P$ is unknown, but we have a text $w_1, \dots, w_T$ drawn from it. The
# average surprisal of the text under the model estimates the cross-entropy:
#
# $$\hat H(P, Q) = -\frac1T\sum_{t=1}^T \log Q(w_t\mid w_{<t}) \;\longrightarrow\; H(P, Q) \quad (T\to\infty).$$
#
# This is the log loss with a one-hot target: of the whole predicted distribution
# $Q(\cdot\mid w_{<t})$ only the probability of the word that occurred enters.
#
# **The chapter's example, as written**, is a binary log loss: labels `[1, 0, 0, 1]` and
# probabilities `[0.7, 0.2, 0.1, 0.9]` are four independent yes/no predictions, scored as
# $-\frac14[\ln 0.7 + \ln(1-0.2) + \ln(1-0.1) + \ln 0.9]$:

# %%
y_true = np.array([1, 0, 0, 1])
y_pred = np.array([0.7, 0.2, 0.1, 0.9])
binary = -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))
print(f"binary log loss: {binary:.3f} nats  (sklearn.metrics.log_loss gives the same)")

# %% [markdown]
# It rewards the model for saying "no" to words B and C, which is not what a next-word
# model is asked. **Next-word cross-entropy** over a vocabulary of four words: at each of
# four positions the model gives a distribution over {A, B, C, D} (rows sum to 1) and we
# read off the probability of the word that came.

# %%
words = ["A", "B", "C", "D"]
Q = np.array([
    [0.7, 0.1, 0.1, 0.1],  # position 1: the word was A
    [0.2, 0.5, 0.2, 0.1],  # position 2: the word was B
    [0.1, 0.1, 0.1, 0.7],  # position 3: the word was C (the model expected D)
    [0.05, 0.05, 0.0, 0.9],  # position 4: the word was D
])
observed = np.array([0, 1, 2, 3])
log_q = np.log(Q[np.arange(4), observed])
print("probabilities of the observed words:", Q[np.arange(4), observed])
print(f"cross-entropy {blm.cross_entropy(log_q):.3f} nats = {blm.cross_entropy(log_q, units='bits'):.3f} bits per token, "
      f"perplexity {blm.perplexity(log_q):.2f}")

# %% [markdown]
# ## 3.4 Perplexity
#
# $$\text{PP} = 2^{\hat H \text{ in bits}} = e^{\hat H \text{ in nats}}.$$
#
# A model that is uniformly unsure among $K$ tokens at every step has perplexity $K$, so
# perplexity reads as an *effective number of choices per token*: the 1.5-bit source is
# as hard to predict as a fair choice among $2^{1.5} \approx 2.83$ outcomes. Bits and nats
# give the same perplexity; only the base of the logarithm and of the exponential must
# agree. In bayeslm every sentence is scored with its `</s>` and without `<s>`, so $T$
# counts the words plus one end marker per sentence.
#
# ## 3.5 The entropy report of a fitted model
#
# A trigram model on the demo corpus (Python documentation topics, 90% for training):

# %%
train, test = blm.demo_corpus().split(0.9, random_seed=0)
lm = blm.DirichletLM(order=3, min_count=2, sampler_config=SAMPLER)
lm.fit(train, random_seed=1)
result = lm.evaluate(test)
print(result)

# %% [markdown]
# Two kinds of number. **Per draw**: for each posterior draw of the concentrations, the
# cross-entropy of the test text, so the 94% HDI says how much the model-level figure
# depends on parameters we are unsure of (very little: 100,000 training tokens fix the
# few concentrations well). **Predictive**: the cross-entropy of the posterior predictive
# $\bar Q = \mathbb E_\theta[Q_\theta]$, the mixture over draws. Since $-\log$ is convex,
# averaging the probabilities first can only help (Jensen): the predictive figure is at
# most the per-draw average.

# %%
d = result.to_dict()
print(f"predictive: {d['predictive_cross_entropy_bits']:.5f} bits;  mean over draws: {d['cross_entropy_bits']['mean']:.5f} bits")
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(result.cross_entropy_bits.values.ravel(), bins=30, alpha=0.6)
ax.axvline(d["predictive_cross_entropy_bits"], color="k", ls="--", label="posterior predictive")
ax.axvspan(d["cross_entropy_bits"]["hdi_low"], d["cross_entropy_bits"]["hdi_high"], color="C1", alpha=0.15, label="94% HDI")
ax.set(xlabel="held-out cross-entropy (bits/token)", title="one value per posterior draw")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Per token.** `lm.per_token(text, units="bits")` gives every scored position: its log
# probability (surprisal $= -\log_2 p$ in bits) and the entropy of the predicted distribution
# before the token was seen, split into aleatoric and epistemic parts (section 3.6). Like
# every function of the Python API that returns information, it works in nats unless told
# `units="bits"`, and its column names say which.

# %%
table = lm.per_token(test, units="bits")
table["surprisal_bits"] = -table["log_prob_bits"]
# a sentence of ordinary words, 8 to 14 tokens long
lengths = table.groupby("sentence").size()
wordy = table.groupby("sentence")["token"].apply(lambda t: all(w.isalpha() or w == "</s>" for w in t))
chosen = int(lengths[(lengths >= 9) & (lengths <= 15) & wordy].index[0])
sentence = table[table["sentence"] == chosen]
print(sentence[["token", "surprisal_bits", "entropy_bits", "aleatoric_bits", "epistemic_bits"]].round(2).to_string(index=False))

fig, ax = plt.subplots(figsize=(9, 3.2))
x = np.arange(len(sentence))
ax.bar(x, sentence["surprisal_bits"], alpha=0.6, label="surprisal $-\\log_2 p(w_t)$")
ax.plot(x, sentence["entropy_bits"], "ko-", ms=4, label="entropy of the prediction")
ax.set_xticks(x, sentence["token"], rotation=45, ha="right")
ax.set(ylabel="bits")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Surprisal is what the token cost; entropy is what the model *expected* it to cost.
# If the model were the true distribution, the two would agree on average at every
# level of entropy. Binning all held-out positions by their predicted entropy checks
# this (a form of calibration):

# %%
bins = pd.cut(table["entropy_bits"], bins=np.arange(0, 13, 1.0))
calib = table.groupby(bins, observed=True).agg(entropy=("entropy_bits", "mean"), surprisal=("surprisal_bits", "mean"),
                                                positions=("token", "size"))
print(f"mean predicted entropy {table['entropy_bits'].mean():.3f} bits vs mean surprisal "
      f"(= cross-entropy) {table['surprisal_bits'].mean():.3f} bits")
fig, ax = plt.subplots(figsize=(5, 4))
ax.plot([0, 12], [0, 12], "k:", label="calibrated")
ax.scatter(calib["entropy"], calib["surprisal"], s=np.sqrt(calib["positions"]) * 3, label="held-out positions, binned")
ax.set(xlabel="predicted entropy (bits)", ylabel="mean surprisal (bits)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3.6 Aleatoric and epistemic uncertainty
#
# A Bayesian model's next-token distribution $p_\theta(\cdot\mid u)$ is itself uncertain.
# The entropy of the predictive splits in two:
#
# $$\underbrace{H\big[\mathbb E_\theta\, p_\theta\big]}_{\text{total}} \;=\;
# \underbrace{\mathbb E_\theta\, H[p_\theta]}_{\text{aleatoric}} \;+\;
# \underbrace{I(w;\theta)}_{\text{epistemic}} .$$
#
# *Aleatoric*: the randomness of the next token even if we knew $p(\cdot\mid u)$ exactly
# (language is not deterministic). *Epistemic*: the mutual information between the next
# token and the unknown distribution, what more data about this context would remove.
# For $p \sim \text{Dirichlet}(A_1, \dots, A_V)$, $A = \sum_w A_w$, the expected entropy is
# closed form, $\mathbb E\,H[p] = \psi(A+1) - \sum_w \frac{A_w}{A}\psi(A_w+1)$ nats.
#
# Take the 1.5-bit distribution as the mean and vary the total concentration $A$ (the
# amount of evidence): the predictive, and so the total entropy, stays 1.5 bits, while
# the split moves.

# %%
concentrations = np.array([0.3, 1, 3, 10, 30, 100, 1000])
alpha = concentrations[:, None] * p[None, :]
aleatoric = blm.dirichlet_expected_entropy(alpha, units="bits")
rng = np.random.default_rng(1)
draws = np.stack([rng.dirichlet(a, size=20_000) for a in alpha])  # (concentration, draw, token)
mc = blm.entropy_decomposition(draws, sample_axes=(1,), axis=-1, units="bits")
split = pd.DataFrame({"A": concentrations, "aleatoric (exact)": aleatoric, "aleatoric (Monte Carlo)": mc["aleatoric"],
                      "epistemic (exact)": 1.5 - aleatoric, "total (Monte Carlo)": mc["total"]}).set_index("A")
print(split.round(3).to_string())
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(np.arange(len(concentrations)), aleatoric, label="aleatoric")
ax.bar(np.arange(len(concentrations)), 1.5 - aleatoric, bottom=aleatoric, label="epistemic")
ax.set_xticks(np.arange(len(concentrations)), concentrations)
ax.set(xlabel="total concentration A (pseudo-counts)", ylabel="bits", title="the same 1.5-bit predictive")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# In the Dirichlet LM, $A_w = c_{uw} + a\,m_{uw}$ after context $u$: the count of the
# context sets the amount of evidence. Epistemic uncertainty should therefore fall as the
# context gets more frequent, while the aleatoric part stays at the language's own
# unpredictability. We read the trigram count $c_u$ of every held-out context from the
# model's counts (0: never seen, the model backs off to the bigram base).

# %%
def context_counts(lm, corpus):
    """Highest-order context count c_u at every scored position (0: never seen)."""
    stream, targets = lm.encode(corpus).padded(lm.order)
    k = lm.order
    contexts = np.stack([stream[targets - (k - 1) + j] for j in range(k - 1)], axis=1)
    ctx_id = lm.counts_.context_ids(contexts)[k - 1]
    return np.where(ctx_id >= 0, lm.counts_[k].context_total[np.maximum(ctx_id, 0)], 0)


table["context_count"] = context_counts(lm, test)
edges = [-0.5, 0.5, 1.5, 3.5, 9.5, 99.5, 999.5, np.inf]
labels = ["0 (unseen)", "1", "2-3", "4-9", "10-99", "100-999", "1000+"]
table["count bin"] = pd.cut(table["context_count"], edges, labels=labels)
by_count = table.groupby("count bin", observed=True)[["aleatoric_bits", "epistemic_bits", "surprisal_bits"]].mean()
by_count["positions"] = table.groupby("count bin", observed=True).size()
print(by_count.round(3).to_string())

fig, ax = plt.subplots(figsize=(7, 3.3))
x = np.arange(len(by_count))
ax.bar(x, by_count["aleatoric_bits"], label="aleatoric")
ax.bar(x, by_count["epistemic_bits"], bottom=by_count["aleatoric_bits"], label="epistemic")
ax.plot(x, by_count["surprisal_bits"], "ko-", label="mean surprisal")
ax.set_xticks(x, by_count.index)
ax.set(xlabel="trigram context count in training", ylabel="bits")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# - Contexts seen often (right) have almost no epistemic uncertainty: their next-token
#   distribution is known; what remains is aleatoric.
# - Contexts seen once or a few times (left) carry the most epistemic uncertainty:
#   $a\,m_{uw}$ is spread over thousands of tokens with tiny parameters, and a single draw
#   of $p(\cdot\mid u)$ puts its mass on a few of them, so draws disagree.
# - Unseen contexts fall back on the bigram base with only the prior's $a$ pseudo-counts.
# - The gap between the bars (predicted entropy) and the line (surprisal actually paid)
#   is the calibration of section 3.5 broken down by context count: after rare contexts
#   the model is more unsure than it needs to be, after frequent ones less. One
#   concentration per order cannot fit both; count-dependent discounting (Kneser-Ney,
#   the Pitman-Yor family) is the classical answer.
#
# The positions where the model is most unsure in this sense. At the top are unseen
# trigram contexts whose last word is rare: the bigram base after a rare word is close
# to the unigram distribution (about 7.3 bits), and only $a_3 \approx 7$ pseudo-counts
# stand behind it, so they all look alike. Among contexts seen in training, those seen
# once come first:

# %%
cols = ["sentence", "index", "token", "context_count", "entropy_bits", "aleatoric_bits", "epistemic_bits"]
print(table.nlargest(3, "epistemic_bits")[cols].round(2).to_string(index=False))
table[table["context_count"] > 0].nlargest(6, "epistemic_bits")[cols].round(2)

# %% [markdown]
# **Summary.** Entropy is the average surprisal of a distribution; cross-entropy the
# average surprisal of data under a model (the LM loss); perplexity its exponential, an
# effective number of choices. Bits or nats is a choice of logarithm. A Bayesian model
# adds a split of its predictive entropy into what the language leaves open (aleatoric)
# and what the training data did not settle (epistemic); notebook 6 uses the split to
# mark uncertain tokens in generated text.
