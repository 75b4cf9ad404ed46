# %% [markdown]
# # 4. GPT: the chain rule and attention
#
# *Textbook chapter 8.1 (predictive language models, GPT) and the advanced examples
# (embeddings, self-attention, multi-head attention, masked language models, L2
# regularisation and dropout).*
#
# A GPT is an autoregressive language model: it factorises the probability of a text by
# the chain rule,
#
# $$P(w_1, \dots, w_T) = \prod_{t=1}^T P(w_t \mid w_1, \dots, w_{t-1}),$$
#
# and computes every conditional with the same Transformer: token and position
# embeddings, $L$ blocks of causal multi-head self-attention and an MLP (each behind a
# LayerNorm, with residual connections), a final LayerNorm and a linear output layer,
#
# $$P(w_t \mid w_{<t}) = \mathrm{softmax}\big(W\,\mathrm{LayerNorm}(f_\theta(w_{<t}))\big).$$
#
# This notebook trains `bayeslm.TinyGPT` (a nanoGPT-style module of ~60 lines) on the
# characters of the demo corpus for about a minute, then opens it up: the chain rule
# computed both ways, attention by hand, why $\sqrt{d_k}$, what the causal mask does, why
# position embeddings are needed, the masked-token objective of BERT, training as MAP, and
# fine-tuning. Notebook 5 puts a posterior on the output layer $W$.

# %%
import logging
import math
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

import bayeslm as blm
from bayeslm.neural.gpt import _stream_of

warnings.filterwarnings("ignore", category=FutureWarning)
logging.getLogger("bayeslm").setLevel(logging.WARNING)
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (7, 3.6), "axes.grid": True, "grid.alpha": 0.3})
torch.set_num_threads(1)  # small matrices: one thread is as fast, and much faster on a busy machine

# %% [markdown]
# ## 4.1 Data: the text as one stream of characters
#
# The demo corpus (the Python documentation topics every Python install carries), at
# character level. A GPT reads across lines, so the text becomes one stream: a line break
# token `</s>`, then each line's characters followed by `</s>`. Every character and every
# line break is a position to predict.

# %%
tok = blm.CharTokenizer()
corpus = blm.demo_corpus(tokenizer=tok)
train, test = corpus.split(0.9, random_seed=0)
vocab = blm.Vocabulary.build(train.type_counts())
train, test = train.with_vocabulary(vocab), test.with_vocabulary(vocab)
train_stream, test_stream = _stream_of(train), _stream_of(test)
decode = lambda ids: "".join("\n" if i == vocab.eos_id else vocab.tokens[i] for i in ids)
print(f"vocabulary {len(vocab)} characters; train stream {train_stream.size:,} tokens, test {test_stream.size:,}")
print(repr(decode(train_stream[:120])))

# %% [markdown]
# ## 4.2 Training is MAP
#
# Training minimises the mean cross-entropy plus an L2 penalty $\frac{\lambda}{2}\|\theta\|^2$
# on the weight matrices. That is the negative log posterior per token under a Gaussian
# prior $\theta \sim N(0, 1/(N\lambda))$ ($N$ training tokens), so the trained weights are a
# MAP estimate, the chapter-3.3 idea at scale. The advanced examples' other regularisers
# are approximations of a prior at best: *dropout* zeroes activations at random while
# training, and AdamW's *decoupled weight decay* shrinks the weights outside Adam's
# rescaling, which is not the gradient of any fixed prior. Both are options of
# `TrainConfig`; the default is the exact L2 penalty. The learning rate warms up, then
# decays on a cosine; the validation loss is measured every 100 steps.

# %%
config = blm.GPTConfig(vocab_size=len(vocab), block_size=64, n_layer=2, n_head=4, n_embd=64)
torch.manual_seed(0)
gpt = blm.TinyGPT(config)
print(f"{gpt.num_params():,} parameters")
train_cfg = blm.TrainConfig(max_steps=700, batch_size=16, learning_rate=3e-3, min_lr=3e-4, warmup_steps=50,
                            l2=1e-5, eval_interval=100, eval_batches=8, patience=None, seed=0)
start = time.perf_counter()
result = blm.train_gpt(gpt, train_stream, train_cfg, valid_stream=test_stream, progress=False)
history = pd.DataFrame(result.history)
print(f"{result.steps} steps in {time.perf_counter() - start:.0f} s; best validation loss "
      f"{result.best_valid_loss:.3f} nats = {result.best_valid_bits:.3f} bits per character")
ax = history.plot(x="step", y=["train_loss", "valid_loss"], figsize=(6, 3))
ax.axhline(np.log(len(vocab)), color="grey", ls=":", label="uniform")
ax.set(ylabel="nats per character", title="TinyGPT on the demo corpus")
ax.legend()
plt.show()

# %% [markdown]
# ## 4.3 The chain rule, two ways
#
# The log probability of a text is the sum of the log conditionals. A GPT can compute them
# one at a time (a forward pass per prefix, as when generating) or all at once: thanks to
# the causal mask, the output at position $t$ of *one* forward pass depends only on
# tokens $\le t$, so it *is* $P(w_{t+1}\mid w_{\le t})$. Both give the same numbers.

# %%
gpt.eval()
text = "def f(x):\n    return x"
ids = [vocab.eos_id] + [vocab.id(c) if c != "\n" else vocab.eos_id for c in text]
x = torch.tensor([ids])
with torch.no_grad():
    one_pass = F.log_softmax(gpt(x)[0][0, :-1], -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    per_prefix = torch.stack([F.log_softmax(gpt(x[:, :t])[0][0, -1], -1)[ids[t]] for t in range(1, len(ids))])
print(f"log P(text) = sum of {len(ids) - 1} log conditionals: one pass {one_pass.sum():.4f} nats, "
      f"prefix by prefix {per_prefix.sum():.4f} nats (max difference {float((one_pass - per_prefix).abs().max()):.1e})")
table = pd.DataFrame({"next": [repr(c) for c in text], "P(next | prefix)": one_pass.exp().numpy().round(3)})
print(table.T.to_string(header=False))

# %% [markdown]
# Changing a later token never changes an earlier position's output (the tests check this
# for every position):

# %%
y = x.clone()
y[0, 10:] = vocab.id("z")
with torch.no_grad():
    same = torch.equal(gpt(x)[0][:, :10], gpt(y)[0][:, :10])
    later = float((gpt(x)[0][:, 10:] - gpt(y)[0][:, 10:]).abs().max())
print(f"outputs at positions < 10 unchanged: {same}; later outputs change by up to {later:.2f}")

# %% [markdown]
# ## 4.4 Embeddings and cosine similarity
#
# Each token $w$ has a vector $v_w \in \mathbb R^d$ (here $d = 64$), learned with the rest.
# The advanced examples compare embeddings by cosine similarity,
# $\mathrm{sim}(v, v') = \dfrac{v \cdot v'}{\|v\|\,\|v'\|}$ (the text's flattened formula
# lost its fraction bar: it is the dot product *over* the product of the norms). After a
# minute of training, characters that behave alike already point alike:

# %%
def nearest_neighbours(model, vocab, tokens, n=5):
    """Each token's n nearest tokens by cosine similarity of the input embeddings (no specials)."""
    E = model.transformer.wte.weight.detach()
    E = E / E.norm(dim=1, keepdim=True)
    for t in tokens:
        sims = (E @ E[vocab.id(t)]).numpy()
        order = [i for i in np.argsort(-sims) if i != vocab.id(t) and i > 2][:n]
        print(f"{t!r}: " + ", ".join(f"{vocab.tokens[i]!r} {sims[i]:.2f}" for i in order))


nearest_neighbours(gpt, vocab, ["a", "e", "1", "(", "A"])

# %% [markdown]
# Characters carry little meaning of their own. With subword tokens, byte-pair encoding
# (`blm.BPETokenizer`, trained on the same text with the `tokenizers` library; `▁` marks
# a token that starts a word), the same model learns embeddings whose nearest neighbours
# are words of the same kind. A second TinyGPT of the same size, 600 steps on BPE tokens
# (about half a minute):

# %%
bpe_corpus = blm.demo_corpus(tokenizer=blm.BPETokenizer(vocab_size=1000))
bpe_train, bpe_test = bpe_corpus.split(0.9, random_seed=0)
bpe_vocab = blm.Vocabulary.build(bpe_train.type_counts())
bpe_train, bpe_test = bpe_train.with_vocabulary(bpe_vocab), bpe_test.with_vocabulary(bpe_vocab)
torch.manual_seed(0)
bpe_gpt = blm.TinyGPT(blm.GPTConfig(vocab_size=len(bpe_vocab), block_size=64, n_layer=2, n_head=4, n_embd=64))
bpe_result = blm.train_gpt(bpe_gpt, _stream_of(bpe_train), blm.TrainConfig(**{**train_cfg.__dict__, "max_steps": 600}),
                           valid_stream=_stream_of(bpe_test), progress=False)
print(f"{len(bpe_vocab)} BPE tokens; validation loss {bpe_result.best_valid_bits:.2f} bits per token")
nearest_neighbours(bpe_gpt, bpe_vocab, ["▁class", "▁list", "▁return", "▁1", "ing"])

# %% [markdown]
# ## 4.5 Self-attention by hand
#
# Every position's vector $x_t$ gives a query $q_t = W_Q x_t$, a key $k_t = W_K x_t$ and a
# value $v_t = W_V x_t$; position $t$ mixes the values with weights
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right)V,$$
#
# where the causal mask $M$ is $-\infty$ above the diagonal (a GPT may not look ahead).
# Multi-head attention splits $Q, K, V$ into $h$ heads of $d_k = d/h$ dimensions, attends in
# each, concatenates and applies $W_O$. Below: layer 1's attention recomputed from its
# weight matrices, against the model's own (fused) computation.

# %%
block = gpt.transformer.h[0]
sample = "x = len(items)\nfor item in items:\n    print(item)"
sid = torch.tensor([[vocab.eos_id] + [vocab.id(c) if c != "\n" else vocab.eos_id for c in sample]])
T = sid.shape[1]
with torch.no_grad():
    h = block.ln_1(gpt.transformer.wte(sid) + gpt.transformer.wpe(torch.arange(T)))  # (1, T, d)
    q, k, v = block.attn.c_attn(h).split(config.n_embd, dim=2)
    n_head, d_k = config.n_head, config.n_embd // config.n_head
    q, k, v = (z.view(1, T, n_head, d_k).transpose(1, 2) for z in (q, k, v))  # (1, heads, T, d_k)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
    weights = scores.softmax(-1)  # (1, heads, T, T)
    by_hand = block.attn.c_proj((weights @ v).transpose(1, 2).reshape(1, T, config.n_embd))
    fused = block.attn(h)
print(f"by hand vs the model: max difference {float((by_hand - fused).abs().max()):.1e}")
labels = ["\\n" if i == vocab.eos_id else vocab.tokens[i] for i in sid[0].tolist()]
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for head, ax in zip((0, 1), axes):
    ax.imshow(weights[0, head].numpy(), cmap="viridis")
    ax.set_xticks(range(T), labels, fontsize=6)
    ax.set_yticks(range(T), labels, fontsize=6)
    ax.set(title=f"layer 1, head {head + 1}: row t attends to columns <= t", xlabel="key position",
           ylabel="query position")
    ax.grid(False)
plt.tight_layout()
plt.show()

# %% [markdown]
# The upper triangle is exactly zero: the causal mask. Heads specialise; a common
# pattern in character models is a head that attends to the previous character or to the
# start of the current word or line.
#
# **Why divide by $\sqrt{d_k}$?** For query and key components independent with variance 1,
# $q\cdot k$ has variance $d_k$. Without the scaling, wider heads give larger scores, the
# softmax saturates on one position and its gradient vanishes:

# %%
rng = np.random.default_rng(0)
rows = []
for dk in (4, 16, 64, 256):
    qs, ks = rng.normal(size=(2000, dk)), rng.normal(size=(2000, 10, dk))
    raw = np.einsum("nd,njd->nj", qs, ks)
    for name, s in (("q.k", raw), ("q.k / sqrt(d_k)", raw / np.sqrt(dk))):
        w = np.exp(s - s.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        rows.append({"d_k": dk, "scores": name, "sd of scores": s.std(), "mean largest weight of 10": w.max(1).mean()})
pd.DataFrame(rows).pivot(index="d_k", columns="scores").round(2)

# %% [markdown]
# **Order comes from the position embeddings.** The advanced examples say self-attention
# models relations "without depending on the order of the sentence". Attention itself is
# indeed blind to order: without position embeddings, permuting the input only permutes
# the outputs (for a bidirectional block; the causal mask is what makes a GPT see order
# at all without them). That is why GPT adds a learned position embedding $p_t$ to each
# token embedding.

# %%
bidir = blm.TinyGPT(blm.GPTConfig(vocab_size=len(vocab), block_size=64, n_layer=1, n_head=4, n_embd=64, causal=False))
bidir.eval()
perm = torch.randperm(T, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    blk = bidir.transformer.h[0]
    e = bidir.transformer.wte(sid)  # token embeddings only
    out, out_perm = blk(e), blk(e[:, perm])
    with_pos = blk(e + bidir.transformer.wpe(torch.arange(T)))
    with_pos_perm = blk(e[:, perm] + bidir.transformer.wpe(torch.arange(T)))
print("without positions: block(permuted x) == permuted block(x):", torch.allclose(out_perm, out[:, perm], atol=1e-5))
print("with positions:    block(permuted x) == permuted block(x):", torch.allclose(with_pos_perm, with_pos[:, perm], atol=1e-5))

# %% [markdown]
# ## 4.6 The output layer and generation
#
# The last block's output goes through a final LayerNorm, $h = \mathrm{LayerNorm}(f)$
# (`gpt.features(x)`), and the output layer gives logits $W h$. (Chapter 8.1 writes the
# output once with the LayerNorm and once, in 8.1.3, without it; GPT-2-style models, this
# one included, apply it.) Here $W$ is tied to the token embedding: the logit of token $w$
# is $v_w \cdot h$. Generation samples one token at a time from these conditionals and
# appends it, the chain rule run forwards:

# %%
with torch.no_grad():
    h_feat = gpt.features(x)
    print("logits == W h:", torch.allclose(gpt(x)[0], h_feat @ gpt.transformer.wte.weight.T, atol=1e-5))
    prompt = torch.tensor([[vocab.eos_id] + [vocab.id(c) for c in "The "]])
    for temperature in (0.5, 1.0):
        out = gpt.generate(prompt, 80, temperature=temperature, generator=torch.Generator().manual_seed(1))
        print(f"temperature {temperature}: {decode(out[0, 1:].tolist())!r}")

# %% [markdown]
# ## 4.7 BERT's masked-token objective
#
# A masked language model sees the whole sequence (no causal mask) with some tokens
# replaced by a mask token, and maximises $\sum_{i \in \text{masked}} \log P(x_i \mid x_{\setminus
# i})$. `TrainConfig(objective="masked")` does this on a `causal=False` TinyGPT (15% of
# positions chosen; of those 80% masked, 10% replaced by a random token, 10% kept). With
# context on both sides a masked character is much easier to guess than the next one, but
# a masked model gives no chain rule: it cannot score or generate a text left to right.

# %%
torch.manual_seed(0)
bert = blm.TinyGPT(blm.GPTConfig(vocab_size=len(vocab), block_size=64, n_layer=2, n_head=4, n_embd=64, causal=False))
mask_id = vocab.bos_id  # <s> never occurs inside the stream: free to serve as the mask token
mlm = blm.train_gpt(bert, train_stream, blm.TrainConfig(**{**train_cfg.__dict__, "objective": "masked", "max_steps": 500}),
                    valid_stream=test_stream, progress=False, mask_id=mask_id)
print(f"masked-token loss {mlm.best_valid_bits:.3f} bits per masked character vs next-character "
      f"{result.best_valid_bits:.3f} bits (same size, similar training)")
bert.eval()
masked = torch.tensor([[vocab.id(c) for c in "print(value)"]])
masked[0, 3] = mask_id
with torch.no_grad():
    p = bert(masked)[0][0, 3].softmax(-1)
top = torch.topk(p, 3)
print("p(? | 'pri?t(value)'):", ", ".join(f"{vocab.tokens[int(i)]!r} {float(v):.2f}" for v, i in zip(top.values, top.indices)))

# %% [markdown]
# ## 4.8 Pre-training and fine-tuning
#
# Chapter 8.1's two stages: pre-train on a large text, then continue training on the
# text of a task. Fine-tuning is the same `train_gpt` call on a model that is already
# trained, with text in the same vocabulary. As a "task", the lines of the corpus that
# mention `class`: a few hundred steps lower their loss markedly, and the loss on the rest
# of the test text moves much less.

# %%
raw_lines = ["".join(corpus.vocab.tokens[j] for j in corpus[i]) for i in range(corpus.n_sentences)]
task_corpus = corpus.select([i for i, line in enumerate(raw_lines) if "class" in line]).with_vocabulary(vocab)
task_train, task_test = task_corpus.split(0.8, random_seed=0)
ts_train, ts_test = _stream_of(task_train), _stream_of(task_test)


def loss_bits(model, stream, n=4000):
    """Bits per character on the first n positions of a stream (non-overlapping windows of 64)."""
    n = min(n, len(stream) - 1)
    s = torch.from_numpy(stream[: n + 1])
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, 64):
            xb, yb = s[i:min(i + 64, n)][None], s[i + 1:min(i + 65, n + 1)][None]
            total += float(F.cross_entropy(model(xb)[0][0], yb[0], reduction="sum"))
    return total / n / math.log(2)


before = (loss_bits(gpt, ts_test), loss_bits(gpt, test_stream))
tuned = blm.TinyGPT(config)
tuned.load_state_dict(gpt.state_dict())
blm.train_gpt(tuned, ts_train, blm.TrainConfig(**{**train_cfg.__dict__, "max_steps": 200, "warmup_steps": 10,
                                                  "learning_rate": 1e-3, "min_lr": 1e-4}), progress=False)
tuned.eval()
after = (loss_bits(tuned, ts_test), loss_bits(tuned, test_stream))
print(f"{task_corpus.n_sentences} lines mention 'class'")
pd.DataFrame({"before fine-tuning": before, "after": after},
             index=["held-out 'class' lines (bits/char)", "rest of the test text (bits/char)"]).round(3)

# %% [markdown]
# ## Summary
#
# - A GPT is the chain rule with one network for every conditional; the causal mask makes
#   one forward pass compute all of them.
# - Attention is softmax$(QK^\top/\sqrt{d_k})V$ per head; $\sqrt{d_k}$ keeps the softmax from
#   saturating; position embeddings give it order.
# - Training with an L2 penalty is MAP under a Gaussian prior; dropout and AdamW's decay
#   only approximate that.
# - The output layer $\mathrm{softmax}(W\,\mathrm{LayerNorm}(f))$ is where notebook 5 puts a
#   posterior.
