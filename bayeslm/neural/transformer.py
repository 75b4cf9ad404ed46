"""TinyGPT: a small decoder-only Transformer in one readable module, in the style of nanoGPT.

Token and position embeddings, ``n_layer`` blocks of (LayerNorm, multi-head
self-attention, LayerNorm, MLP) with residual connections, a final LayerNorm and a linear
output layer (tied to the token embedding by default). The textbook's chapter 8.1 writes
the output as ``softmax(W LayerNorm(f))``; :meth:`TinyGPT.features` returns exactly that
``h = LayerNorm(f)``, which :class:`bayeslm.BayesianLastLayer` consumes.

A checkpoint (:func:`save_checkpoint`, :func:`load_checkpoint`) is a directory of
safetensors files and a JSON file (no pickle). Training lives in
:mod:`bayeslm.neural.training`.

This module imports torch; ``import bayeslm`` does not import it (bayeslm loads this
module only when a TinyGPT is used).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F

from bayeslm.core.files import atomic_directory
from bayeslm.exceptions import ConfigError, ModelFileError

__all__ = ["GPTConfig", "TinyGPT", "load_checkpoint", "save_checkpoint", "read_checkpoint_meta", "state_tensors",
           "dataclass_from_dict", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "bayeslm-gpt-checkpoint/1"


def dataclass_from_dict(cls, data: dict, what: str):
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
        return dataclass_from_dict(cls, data, "GPT")


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


# -- checkpoints: safetensors + JSON, no pickle ---------------------------------------
def state_tensors(model: TinyGPT) -> dict:
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
        save_file(state_tensors(model), str(tmp / "model.safetensors"), metadata={"format": CHECKPOINT_FORMAT})
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
    expected = state_tensors(model)
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
