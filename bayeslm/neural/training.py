"""Training a :class:`~bayeslm.neural.transformer.TinyGPT`: MAP under a Gaussian prior, resumable bit for bit.

:func:`train_gpt` minimises the mean cross-entropy plus ``l2 / 2 * ||theta||^2`` on the
weight matrices and embeddings (the negative log posterior per token under a prior
N(0, 1 / (N l2))), with warm-up then cosine decay, early stopping on the validation loss,
and training checkpoints (the model's checkpoint plus optimizer, batch generator and
history). ``docs/transformer.md`` ("Training is MAP") has the details. Imports torch.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from bayeslm.exceptions import ConfigError, VocabularyMismatchError
from bayeslm.neural.transformer import TinyGPT, dataclass_from_dict, load_checkpoint, save_checkpoint

__all__ = ["TrainConfig", "TrainResult", "train_gpt"]

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16")


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
    precision: str = "fp32"  # "bf16": the training forward pass under bfloat16 autocast (weights and Adam stay fp32)

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
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return dataclass_from_dict(cls, data, "training")


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
        Token ids, the text read as one stream (see :class:`bayeslm.neural.gpt.GPTLM`).
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
    _check_objective(model, cfg, mask_id)
    stream, valid = _token_streams(model, train_stream, valid_stream)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    run = _start_run(model, cfg, mask_id, resume_from=ckpt if resume else None)
    extra = {**(meta or {}), "train_tokens": int(len(stream))}
    bar = _tqdm(progress)(total=cfg.max_steps, initial=run.state["step"], desc="training", unit="step", leave=False)
    start = time.perf_counter() - run.state["elapsed"]
    save = None if ckpt is None else (lambda: _save_training(ckpt, run, extra))
    model.train()
    try:
        stopped = _train_loop(run, stream, valid, bar, start, save)
    finally:
        bar.close()
    run.state["elapsed"] = time.perf_counter() - start
    if save is not None:
        save()
    if run.best_weights is not None:  # the best validation loss, not the last step
        model.load_state_dict(run.best_weights, strict=False)  # a tied lm_head.weight is the embedding
    model.eval()
    state = run.state
    return TrainResult(steps=state["step"], best_step=state["best_step"], best_valid_loss=state["best_valid"],
                       seconds=state["elapsed"], stopped=stopped, history=list(state["history"]))


@dataclass
class _Run:
    """A training run in progress: what a training checkpoint holds and resuming restores."""

    model: TinyGPT
    cfg: TrainConfig
    opt: torch.optim.Optimizer
    decay: list  # the parameters under the Gaussian prior (see _decayed)
    gen: torch.Generator  # draws the batches
    mask_id: int | None
    state: dict = field(default_factory=lambda: {"step": 0, "elapsed": 0.0, "best_valid": None, "best_step": 0,
                                                 "bad_evals": 0, "history": []})
    best_weights: dict | None = None  # the state dict with the best validation loss so far
    running_loss: float | None = None  # the training loss, exponentially smoothed over steps


def _check_objective(model: TinyGPT, cfg: TrainConfig, mask_id: int | None) -> None:
    if cfg.objective == "masked":
        if model.config.causal:
            raise ConfigError("the masked-token objective needs a model with causal=False")
        if mask_id is None:
            raise ConfigError("the masked-token objective needs a mask_id")
    elif not model.config.causal:
        raise ConfigError("the causal objective needs a model with causal=True")


def _token_streams(model: TinyGPT, train_stream, valid_stream) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The training and validation streams as int64 tensors (validation: None if absent or shorter than a block)."""
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
    return stream, valid


def _start_run(model: TinyGPT, cfg: TrainConfig, mask_id: int | None, resume_from: Path | None) -> _Run:
    """A fresh optimizer and batch generator, continued from the checkpoint at ``resume_from`` if there is one."""
    decay, other = _decayed(model)
    groups = [{"params": decay, "weight_decay": cfg.l2 if cfg.regularization == "adamw" else 0.0},
              {"params": other, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    run = _Run(model, cfg, opt, decay, torch.Generator().manual_seed(int(cfg.seed)), mask_id)
    if resume_from is None or not (resume_from / "config.json").is_file():
        return run
    loaded, saved, opt_state = load_checkpoint(resume_from, with_optimizer=True, weights="last")
    if asdict(loaded.config) != asdict(model.config):
        raise ConfigError(f"{resume_from}: the checkpoint's model settings differ from this model's; "
                          "use another checkpoint_dir or resume=False")
    model.load_state_dict(loaded.state_dict())
    if opt_state is not None:
        _restore_optimizer(opt, opt_state, run.gen)
        run.state.update(saved.get("train_state", {}))
        run.best_weights = opt_state.get("best_weights")
        log.info("resumed from %s at step %d", resume_from, run.state["step"])
    return run


def _train_loop(run: _Run, stream: torch.Tensor, valid: torch.Tensor | None, bar, start: float, save) -> str:
    """Steps until ``max_steps``, ``max_seconds`` or early stopping; returns which of them stopped it.

    ``start`` is the ``time.perf_counter()`` the run's elapsed time counts from; ``save``
    (or None) writes the training checkpoint.
    """
    cfg, state = run.cfg, run.state
    while state["step"] < cfg.max_steps:
        elapsed = time.perf_counter() - start
        if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
            _evaluate_last_step(run, valid, start, bar)
            return "max_seconds"
        progress_frac = state["step"] / cfg.max_steps
        if cfg.max_seconds is not None:
            progress_frac = max(progress_frac, elapsed / cfg.max_seconds)
        lr = _lr_at(state["step"], progress_frac, cfg)
        _train_step(run, stream, lr)
        bar.update(1)
        bar.set_postfix(loss=f"{run.running_loss:.3f}", lr=f"{lr:.1e}")
        last = state["step"] == cfg.max_steps
        if state["step"] % cfg.eval_interval == 0 or last:
            _evaluate(run, valid, lr, time.perf_counter() - start, bar)
            interval = cfg.checkpoint_interval or cfg.eval_interval
            if save is not None and (state["step"] % interval == 0 or last):
                state["elapsed"] = time.perf_counter() - start
                save()
            if cfg.patience is not None and state["bad_evals"] >= cfg.patience:
                return "early_stop"
    return "max_steps"


def _evaluate_last_step(run: _Run, valid: torch.Tensor | None, start: float, bar) -> None:
    """Evaluate the weights of the last step, unless that step was evaluated: when the time budget ends
    a run between evaluations, its last steps (at the lowest learning rate) compete for the best."""
    history = run.state["history"]
    if run.state["step"] > 0 and (not history or history[-1]["step"] != run.state["step"]):
        _evaluate(run, valid, run.opt.param_groups[0]["lr"], time.perf_counter() - start, bar)


def _train_step(run: _Run, stream: torch.Tensor, lr: float) -> None:
    """One optimizer step on a random batch at learning rate ``lr``."""
    cfg, model = run.cfg, run.model
    for group in run.opt.param_groups:
        group["lr"] = lr
    x, y = _batch(stream, cfg, model.config.block_size, run.gen, run.mask_id)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        _, loss = model(x, y)
    objective = loss
    if cfg.regularization == "l2" and cfg.l2 > 0:
        objective = loss + 0.5 * cfg.l2 * sum((p * p).sum() for p in run.decay)
    run.opt.zero_grad(set_to_none=True)
    objective.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    run.opt.step()
    run.state["step"] += 1
    value = loss.detach().item()
    run.running_loss = value if run.running_loss is None else 0.95 * run.running_loss + 0.05 * value


def _evaluate(run: _Run, valid: torch.Tensor | None, lr: float, seconds: float, bar) -> None:
    """A history record at this step: the validation loss, and the weights if it is the best so far."""
    state = run.state
    record = {"step": state["step"], "lr": lr, "train_loss": run.running_loss, "seconds": seconds}
    if valid is not None:
        vloss = _eval_loss(run.model, valid, run.cfg, run.mask_id)
        record["valid_loss"] = vloss
        if state["best_valid"] is None or vloss < state["best_valid"]:
            state.update(best_valid=vloss, best_step=state["step"], bad_evals=0)
            run.best_weights = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        else:
            state["bad_evals"] += 1
        bar.set_postfix(loss=f"{run.running_loss:.3f}", valid=f"{vloss:.3f}", lr=f"{lr:.1e}")
    state["history"].append(record)
    log.info("step %d: %s", state["step"], record)


def _tqdm(progress: bool):
    if progress:
        from tqdm.auto import tqdm

        return tqdm

    class _Silent:
        def __init__(self, *a, **k):
            pass

        update = set_postfix = close = lambda self, *a, **k: None

    return _Silent


# -- training checkpoints: the model's checkpoint plus optimizer, generator and history --------
def _save_training(ckpt: Path, run: _Run, extra: dict) -> None:
    model, opt, state = run.model, run.opt, run.state
    tensors = {"rng": run.gen.get_state()}
    params = [p for group in opt.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        s = opt.state.get(p)
        if s:
            tensors[f"adam.{i}.exp_avg"] = s["exp_avg"].contiguous()
            tensors[f"adam.{i}.exp_avg_sq"] = s["exp_avg_sq"].contiguous()
            tensors[f"adam.{i}.step"] = torch.as_tensor(s["step"]).clone().reshape(1)
    best = None
    if run.best_weights is not None:
        best = {k: v.contiguous() for k, v in run.best_weights.items()
                if not (model.config.tie_weights and k == "lm_head.weight")}
    meta = {**extra, "train": asdict(run.cfg),
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
