"""TinyGPT: a small decoder-only Transformer in one readable module, in the style of nanoGPT.

Token and position embeddings, ``n_layer`` blocks of (LayerNorm, multi-head
self-attention, LayerNorm, MLP) with residual connections, a final LayerNorm and a linear
output layer (tied to the token embedding by default). The textbook's chapter 8.1 writes
the output as ``softmax(W LayerNorm(f))``; :meth:`TinyGPT.features` returns exactly that
``h = LayerNorm(f)``, which :class:`bayeslm.BayesianLastLayer` consumes.

Training (:func:`train_gpt`) minimises the mean cross-entropy plus an L2 penalty
``l2 / 2 * ||theta||^2`` on the weight matrices and embeddings: the negative log posterior
per training token under a Gaussian prior N(0, 1 / (N l2)) on each of them (N training
tokens), so the trained weights are a MAP estimate. AdamW's decoupled weight decay
(``regularization="adamw"``) and dropout only approximate a prior and are options, not
the default. The schedule is linear warm-up then cosine decay; the validation loss is
measured every ``eval_interval`` steps and training stops early after ``patience``
evaluations without improvement, keeping the best weights. Checkpoints are a directory
of safetensors files and a JSON file (no pickle); training resumes from one bit for bit.

This module imports torch; ``import bayeslm`` does not import it (bayeslm loads this
module only when a TinyGPT is used).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

from bayeslm.core.files import atomic_directory
from bayeslm.exceptions import ConfigError, ModelFileError, VocabularyMismatchError

__all__ = ["GPTConfig", "TinyGPT", "TrainConfig", "TrainResult", "train_gpt", "load_checkpoint",
           "save_checkpoint", "CHECKPOINT_FORMAT"]

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "bayeslm-gpt-checkpoint/1"


def _dataclass_from_dict(cls, data: dict, what: str):
    """``cls(**data)``, refusing keys that are not fields of the dataclass ``cls``."""
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown {what} setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


@dataclass
class GPTConfig:
    vocab_size: int = 96
    block_size: int = 128  # longest context, in tokens
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in Linear layers and LayerNorms
    tie_weights: bool = True  # output layer shares the token embedding
    causal: bool = True  # False: bidirectional attention (the masked-token objective)

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"GPTConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")

    @classmethod
    def from_dict(cls, data: dict) -> "GPTConfig":
        return _dataclass_from_dict(cls, data, "GPT")


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's has no bias=False before 2.1)."""

    def __init__(self, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention: softmax(Q K^T / sqrt(d_k)) V per head, heads concatenated, then W_O.

    With ``config.causal`` position t attends to positions <= t only (GPT); otherwise to
    every position (BERT's masked-token objective).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # W_Q, W_K, W_V at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # W_O
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.causal = config.causal

    def forward(self, x, return_attention: bool = False):
        B, T, C = x.size()  # batch, sequence length, embedding dimension (n_embd)
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if return_attention:  # the explicit formula, for notebooks and tests
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # (B, nh, T, T)
            if self.causal:
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
                att = att.masked_fill(~mask, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = att @ v  # (B, nh, T, hs)
        else:
            att = None
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=self.causal)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side: (B, T, C)
        y = self.resid_dropout(self.c_proj(y))
        return (y, att) if return_attention else y


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class TinyGPT(nn.Module):
    """A decoder-only Transformer language model (nanoGPT's ``GPT``, without downloads).

    ``forward(idx, targets=None)`` returns ``(logits, loss)``; ``features(idx)`` the final
    LayerNorm output h (B, T, n_embd), so ``logits = lm_head(h)``.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.vocab_size is not None and config.block_size is not None, "config needs vocab_size and block_size"
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.transformer.wte.weight = self.lm_head.weight  # https://paperswithcode.com/method/weight-tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # scaled init of the residual projections (GPT-2)
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (position embeddings excluded by default, as nanoGPT counts)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def features(self, idx):
        """h = LayerNorm(f(idx)): the input of the output layer, shape (B, T, n_embd)."""
        b, t = idx.size()
        assert t <= self.config.block_size, f"a sequence of length {t} exceeds the block size {self.config.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)  # (t,)
        tok_emb = self.transformer.wte(idx)  # token embeddings (b, t, n_embd)
        pos_emb = self.transformer.wpe(pos)  # position embeddings (t, n_embd)
        x = self.transformer.drop(tok_emb + pos_emb)
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)  # (b, t, n_embd)

    def forward(self, idx, targets=None):
        """Logits (B, T, vocab) and, with targets (B, T), the mean cross-entropy (-1 targets ignored)."""
        logits = self.lm_head(self.features(idx))  # (B, T, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def attention_maps(self, idx) -> list:
        """Attention weights of every layer, each (B, n_head, T, T) (slow explicit path)."""
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        maps = []
        for block in self.transformer.h:
            y, att = block.attn(block.ln_1(x), return_attention=True)
            maps.append(att)
            x = x + y
            x = x + block.mlp(block.ln_2(x))
        return maps

    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None):
        """Extend ``idx`` (B, T) by sampling ``max_new_tokens`` tokens, one at a time (chain rule)."""
        assert self.config.causal, "generation needs a causal (GPT) model"
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.config.block_size else idx[:, -self.config.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :] / temperature  # (B, vocab)
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("inf")
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx

    # -- files -----------------------------------------------------------------------
    def save(self, path, **meta) -> Path:
        """A checkpoint directory with the weights only (see :func:`save_checkpoint`)."""
        return save_checkpoint(path, self, meta=meta)

    @classmethod
    def load(cls, path) -> "TinyGPT":
        """The model of a checkpoint directory (its optimizer state, if any, is ignored)."""
        return load_checkpoint(path)[0]


# -- training ------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Settings of :func:`train_gpt`.

    ``max_steps`` and ``max_seconds`` bound the run (whichever comes first; the cosine
    schedule follows the step budget, and with a time budget it follows whichever is
    further along, which makes a timed run depend on the machine's speed).
    """

    max_steps: int = 2000
    max_seconds: float | None = None
    batch_size: int = 32
    learning_rate: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 100
    l2: float = 1e-6  # penalty l2 / 2 * ||theta||^2 on the mean loss: prior N(0, 1 / (N l2))
    regularization: str = "l2"  # "l2" (a Gaussian prior: MAP) or "adamw" (decoupled decay, approximate)
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 100
    eval_batches: int = 8
    patience: int | None = 5  # evaluations without improvement before stopping; None: never stop early
    objective: str = "causal"  # or "masked" (BERT-style, bidirectional attention)
    mask_prob: float = 0.15
    seed: int = 0
    checkpoint_interval: int | None = None  # steps between checkpoints (default: every evaluation)

    def __post_init__(self):
        if self.regularization not in ("l2", "adamw"):
            raise ConfigError(f"regularization must be 'l2' or 'adamw', got {self.regularization!r}")
        if self.objective not in ("causal", "masked"):
            raise ConfigError(f"objective must be 'causal' or 'masked', got {self.objective!r}")
        if int(self.max_steps) < 1 or int(self.batch_size) < 1 or int(self.eval_interval) < 1:
            raise ConfigError("max_steps, batch_size and eval_interval must be at least 1")
        if self.l2 < 0 or self.learning_rate <= 0:
            raise ConfigError("l2 must be >= 0 and learning_rate > 0")
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"mask_prob must lie in (0, 1), got {self.mask_prob}")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return _dataclass_from_dict(cls, data, "training")


@dataclass
class TrainResult:
    """What a training run did: per-evaluation history, best validation loss, time."""

    steps: int
    best_step: int
    best_valid_loss: float | None
    seconds: float
    stopped: str  # "max_steps", "max_seconds", "early_stop"
    history: list = field(default_factory=list)  # dicts: step, lr, train_loss, valid_loss, seconds

    @property
    def best_valid_bits(self) -> float | None:
        return None if self.best_valid_loss is None else self.best_valid_loss / math.log(2)


def _lr_at(step: int, progress: float, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr`` as progress goes 0 -> 1."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    coeff = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return cfg.min_lr + coeff * (cfg.learning_rate - cfg.min_lr)


def _decayed(model: TinyGPT) -> tuple[list, list]:
    """Parameters under the Gaussian prior (matrices, embeddings) and the rest (biases, LayerNorm)."""
    seen, decay, other = set(), [], []
    for p in model.parameters():  # parameters() yields a tied weight once
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else other).append(p)
    return decay, other


def _batch(stream: torch.Tensor, cfg: TrainConfig, block: int, gen: torch.Generator, mask_id: int | None):
    """Random windows of the token stream: inputs (B, T) and targets (B, T) (-1: not scored)."""
    ix = torch.randint(len(stream) - block - 1, (cfg.batch_size,), generator=gen)
    x = torch.stack([stream[i:i + block] for i in ix.tolist()]).long()
    if cfg.objective == "causal":
        y = torch.stack([stream[i + 1:i + 1 + block] for i in ix.tolist()]).long()
        return x, y
    # masked tokens (BERT): of the chosen positions, 80% become the mask token, 10% a random token, 10% stay
    chosen = torch.rand(x.shape, generator=gen) < cfg.mask_prob
    y = torch.where(chosen, x, torch.full_like(x, -1))
    r = torch.rand(x.shape, generator=gen)
    x = x.clone()
    x[chosen & (r < 0.8)] = mask_id
    rand_tok = torch.randint(int(stream.max()) + 1, x.shape, generator=gen)
    swap = chosen & (r >= 0.8) & (r < 0.9)
    x[swap] = rand_tok[swap]
    return x, y


@torch.no_grad()
def _eval_loss(model: TinyGPT, stream: torch.Tensor, cfg: TrainConfig, mask_id) -> float:
    """Mean loss over ``eval_batches`` fixed random windows (the same windows at every evaluation)."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(1234)
    total, count = 0.0, 0
    for _ in range(cfg.eval_batches):
        x, y = _batch(stream, cfg, model.config.block_size, gen, mask_id)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-1, reduction="sum")
        total += float(loss)
        count += int((y >= 0).sum())
    model.train(was)
    return total / max(count, 1)


def train_gpt(model: TinyGPT, train_stream, cfg: TrainConfig | None = None, *, valid_stream=None,
              checkpoint_dir=None, resume: bool = True, progress: bool = True, mask_id: int | None = None,
              meta: dict | None = None) -> TrainResult:
    """Train ``model`` in place on a token stream; returns what happened.

    Parameters
    ----------
    model : TinyGPT
        Trained from its current weights (a fresh model, or a trained one to fine-tune).
    train_stream, valid_stream : int array
        Token ids, the text read as one stream (see :class:`bayeslm.gpt.GPTLM`).
    cfg : TrainConfig
    checkpoint_dir : path, optional
        Written every ``checkpoint_interval`` steps and at the end (weights, optimizer,
        random state, history). With ``resume=True`` an existing checkpoint there is
        continued: the same settings give the same weights as an uninterrupted run.
    mask_id : int
        Input id of a masked position (the masked objective only).
    meta : dict, optional
        Stored in the checkpoint's ``config.json`` (e.g. the vocabulary, for fine-tuning).
    """
    cfg = cfg or TrainConfig()
    if cfg.objective == "masked":
        if model.config.causal:
            raise ConfigError("the masked-token objective needs a model with causal=False")
        if mask_id is None:
            raise ConfigError("the masked-token objective needs a mask_id")
    elif not model.config.causal:
        raise ConfigError("the causal objective needs a model with causal=True")
    block = model.config.block_size
    stream = torch.as_tensor(np.asarray(train_stream, dtype=np.int64))
    if len(stream) < block + 2:
        raise ConfigError(f"the training text has {len(stream)} tokens; the block size {block} needs at least {block + 2}")
    if int(stream.max()) >= model.config.vocab_size or int(stream.min()) < 0:
        raise VocabularyMismatchError("token ids of the training text lie outside the model's vocabulary")
    valid = None
    if valid_stream is not None:
        valid = torch.as_tensor(np.asarray(valid_stream, dtype=np.int64))
        if len(valid) < block + 2:
            log.warning("validation text shorter than a block (%d tokens): not used", len(valid))
            valid = None
    decay, other = _decayed(model)
    groups = [{"params": decay, "weight_decay": cfg.l2 if cfg.regularization == "adamw" else 0.0},
              {"params": other, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    gen = torch.Generator().manual_seed(int(cfg.seed))
    state = {"step": 0, "elapsed": 0.0, "best_valid": None, "best_step": 0, "bad_evals": 0, "history": []}
    best_weights = None
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None and resume and (ckpt / "config.json").is_file():
        loaded, saved, opt_state = load_checkpoint(ckpt, with_optimizer=True, weights="last")
        if asdict(loaded.config) != asdict(model.config):
            raise ConfigError(f"{ckpt}: the checkpoint's model settings differ from this model's; "
                              "use another checkpoint_dir or resume=False")
        model.load_state_dict(loaded.state_dict())
        if opt_state is not None:
            _restore_optimizer(opt, opt_state, gen)
            state.update(saved.get("train_state", {}))
            best_weights = opt_state.get("best_weights")
            log.info("resumed from %s at step %d", ckpt, state["step"])
    extra = {**(meta or {}), "train_tokens": int(len(stream))}
    tqdm = _tqdm(progress)
    bar = tqdm(total=cfg.max_steps, initial=state["step"], desc="training", unit="step", leave=False)
    start = time.perf_counter() - state["elapsed"]
    stopped = "max_steps"
    model.train()
    running = None
    try:
        while state["step"] < cfg.max_steps:
            step = state["step"]
            elapsed = time.perf_counter() - start
            if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                stopped = "max_seconds"
                break
            progress_frac = step / cfg.max_steps
            if cfg.max_seconds is not None:
                progress_frac = max(progress_frac, elapsed / cfg.max_seconds)
            lr = _lr_at(step, progress_frac, cfg)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = _batch(stream, cfg, block, gen, mask_id)
            _, loss = model(x, y)
            objective = loss
            if cfg.regularization == "l2" and cfg.l2 > 0:
                objective = loss + 0.5 * cfg.l2 * sum((p * p).sum() for p in decay)
            opt.zero_grad(set_to_none=True)
            objective.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            state["step"] = step + 1
            value = loss.detach().item()
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", lr=f"{lr:.1e}")
            last = state["step"] == cfg.max_steps
            if state["step"] % cfg.eval_interval == 0 or last:
                record = {"step": state["step"], "lr": lr, "train_loss": running,
                          "seconds": time.perf_counter() - start}
                if valid is not None:
                    vloss = _eval_loss(model, valid, cfg, mask_id)
                    record["valid_loss"] = vloss
                    if state["best_valid"] is None or vloss < state["best_valid"]:
                        state.update(best_valid=vloss, best_step=state["step"], bad_evals=0)
                        best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    else:
                        state["bad_evals"] += 1
                    bar.set_postfix(loss=f"{running:.3f}", valid=f"{vloss:.3f}", lr=f"{lr:.1e}")
                state["history"].append(record)
                log.info("step %d: %s", state["step"], record)
                interval = cfg.checkpoint_interval or cfg.eval_interval
                if ckpt is not None and (state["step"] % interval == 0 or last):
                    state["elapsed"] = time.perf_counter() - start
                    _save_training(ckpt, model, opt, gen, state, cfg, best_weights, extra)
                if cfg.patience is not None and state["bad_evals"] >= cfg.patience:
                    stopped = "early_stop"
                    break
    finally:
        bar.close()
    state["elapsed"] = time.perf_counter() - start
    if ckpt is not None:
        _save_training(ckpt, model, opt, gen, state, cfg, best_weights, extra)
    if best_weights is not None:  # the best validation loss, not the last step
        model.load_state_dict(best_weights, strict=False)  # a tied lm_head.weight is the embedding
    model.eval()
    return TrainResult(steps=state["step"], best_step=state["best_step"], best_valid_loss=state["best_valid"],
                       seconds=state["elapsed"], stopped=stopped, history=list(state["history"]))


def _tqdm(progress: bool):
    if progress:
        from tqdm.auto import tqdm

        return tqdm

    class _Silent:
        def __init__(self, *a, **k):
            pass

        update = set_postfix = close = lambda self, *a, **k: None

    return _Silent


# -- checkpoints: safetensors + JSON, no pickle ---------------------------------------
def _state_tensors(model: TinyGPT) -> dict:
    """The state dict with a tied output weight stored once (safetensors refuses shared storage)."""
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if model.config.tie_weights:
        sd.pop("lm_head.weight", None)
    return sd


def save_checkpoint(path, model: TinyGPT, *, meta: dict | None = None, optimizer_tensors: dict | None = None,
                    best_tensors: dict | None = None) -> Path:
    """Write ``config.json`` (format, GPT settings, ``meta``) and ``model.safetensors``.

    Training adds ``optimizer.safetensors`` (Adam's moments, the batch generator's state)
    and ``best.safetensors`` (the weights with the best validation loss). The directory is
    written under a temporary name and renamed, so a reader sees a complete checkpoint or
    none.
    """
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_directory(path, force=True) as tmp:
        save_file(_state_tensors(model), str(tmp / "model.safetensors"), metadata={"format": CHECKPOINT_FORMAT})
        if optimizer_tensors:
            save_file(optimizer_tensors, str(tmp / "optimizer.safetensors"), metadata={"format": CHECKPOINT_FORMAT})
        if best_tensors:
            save_file(best_tensors, str(tmp / "best.safetensors"), metadata={"format": CHECKPOINT_FORMAT})
        doc = {"format": CHECKPOINT_FORMAT, "gpt": asdict(model.config), **(meta or {})}
        (tmp / "config.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelFileError(f"{path}: missing (not a TinyGPT checkpoint?)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: truncated or not a safetensors file ({str(err).splitlines()[0]})") from None


def read_checkpoint_meta(path) -> dict:
    """The JSON document of a checkpoint directory, checked for its format."""
    path = Path(path)
    conf = path / "config.json"
    if not conf.is_file():
        raise ModelFileError(f"{path}: no config.json (not a TinyGPT checkpoint)")
    try:
        meta = json.loads(conf.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{conf}: truncated or not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{conf}: not a bayeslm TinyGPT checkpoint (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    return meta


def load_checkpoint(path, *, with_optimizer: bool = False, weights: str = "best"):
    """``(model, meta)`` of a checkpoint directory, or ``(model, meta, optimizer_state)``.

    ``weights="best"`` loads the weights with the best validation loss where training
    recorded them, ``"last"`` the weights of the last step (what resuming needs). A
    missing, truncated or foreign file raises :class:`bayeslm.ModelFileError` with a
    one-line reason.
    """
    path = Path(path)
    meta = read_checkpoint_meta(path)
    try:
        config = GPTConfig.from_dict(meta["gpt"])
    except (KeyError, TypeError, ConfigError) as err:
        raise ModelFileError(f"{path}: invalid GPT settings in config.json ({err})") from None
    name = "best.safetensors" if weights == "best" and (path / "best.safetensors").is_file() else "model.safetensors"
    tensors = _read_safetensors(path / name)
    model = TinyGPT(config)
    expected = _state_tensors(model)
    if set(tensors) != set(expected) or any(tensors[k].shape != expected[k].shape for k in expected):
        raise ModelFileError(f"{path}: {name} does not match the settings in config.json")
    model.load_state_dict(tensors, strict=False)  # a tied lm_head.weight is the embedding itself
    model.eval()
    if not with_optimizer:
        return model, meta
    opt_path = path / "optimizer.safetensors"
    opt_state = _read_safetensors(opt_path) if opt_path.is_file() else None
    if opt_state is not None and (path / "best.safetensors").is_file():
        opt_state["best_weights"] = _read_safetensors(path / "best.safetensors")
    return model, meta, opt_state


def _save_training(ckpt: Path, model, opt, gen, state, cfg, best_weights, extra) -> None:
    tensors = {"rng": gen.get_state()}
    params = [p for group in opt.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        s = opt.state.get(p)
        if s:
            tensors[f"adam.{i}.exp_avg"] = s["exp_avg"].contiguous()
            tensors[f"adam.{i}.exp_avg_sq"] = s["exp_avg_sq"].contiguous()
            tensors[f"adam.{i}.step"] = torch.as_tensor(s["step"]).clone().reshape(1)
    best = None
    if best_weights is not None:
        best = {k: v.contiguous() for k, v in best_weights.items()
                if not (model.config.tie_weights and k == "lm_head.weight")}
    meta = {**extra, "train": asdict(cfg),
            "train_state": {k: state[k] for k in ("step", "elapsed", "best_valid", "best_step", "bad_evals", "history")}}
    save_checkpoint(ckpt, model, meta=meta, optimizer_tensors=tensors, best_tensors=best)


def _restore_optimizer(opt, tensors: dict, gen: torch.Generator) -> None:
    gen.set_state(tensors["rng"])
    params = [p for group in opt.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        if f"adam.{i}.exp_avg" in tensors:
            opt.state[p] = {"step": tensors[f"adam.{i}.step"].reshape(()).clone(),
                            "exp_avg": tensors[f"adam.{i}.exp_avg"].clone(),
                            "exp_avg_sq": tensors[f"adam.{i}.exp_avg_sq"].clone()}
