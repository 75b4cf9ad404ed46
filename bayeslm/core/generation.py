"""Uncertain continuations: text drawn from the posterior, every token annotated.

Each continuation holds **one posterior draw** for its whole length: for the conjugate
n-gram models a draw of p(. | u) over the whole vocabulary, made the first time the
continuation meets context u and reused whenever u recurs. The spread between
continuations therefore shows the model's epistemic uncertainty. With
``mode="predictive"`` every step samples the posterior predictive instead.

Every generated token carries its probability under the held draw and under the
posterior predictive, the predictive entropy in bits with its split into expected entropy
(aleatoric) and mutual information (epistemic), and the top alternatives; a continuation's
log probabilities are in bits too (base 2), like everything a person reads. Works for any
model answering the protocol of :mod:`bayeslm.core.protocol` (``predictive_probs``,
``context_entropy_split``, ``sample_distribution``, ``context_length``, ``n_samples``).
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from bayeslm.exceptions import BayesLMError, NotFittedError

__all__ = ["TokenInfo", "Continuation", "generate", "transform_probs", "format_terminal"]

LN2 = np.log(2.0)
MAX_PROMPT_TOKENS = 10_000
_SHADES = (231, 224, 217, 210, 203, 196)  # xterm-256 backgrounds: white .. red


@dataclass
class TokenInfo:
    """One generated token and how unsure the model was about it (bits, probabilities)."""

    token: str
    id: int
    prob_draw: float  # under the continuation's posterior draw (before temperature etc.)
    prob_predictive: float  # under the posterior predictive
    entropy_bits: float  # of the predictive next-token distribution
    aleatoric_bits: float  # expected entropy of p(. | u)
    epistemic_bits: float  # mutual information between the token and p(. | u)
    flagged: bool  # epistemic above the model's threshold
    top: list[tuple[str, float]] = field(default_factory=list)  # predictive alternatives


@dataclass
class Continuation:
    """A sampled continuation of a prompt."""

    prompt: str
    text: str
    tokens: list[TokenInfo]
    draw: int | None  # flattened posterior sample held (None in predictive mode)
    stop_reason: str  # "eos", "stop_string" or "max_tokens"
    unknown_prompt_tokens: list[str]
    mi_threshold_bits: float
    separator: str = " "  # between tokens when shown one by one

    @property
    def log_prob_bits(self) -> float:
        """log2 probability of the generated tokens under the posterior predictive (bits, <= 0)."""
        return float(sum(np.log2(t.prob_predictive) for t in self.tokens))

    @property
    def log_prob_draw_bits(self) -> float:
        """log2 probability of the generated tokens under the held posterior draw (bits, <= 0)."""
        return float(sum(np.log2(max(t.prob_draw, 1e-300)) for t in self.tokens))

    @property
    def log_prob_nats(self) -> float:
        """Deprecated: ``log_prob_bits * ln 2`` (a continuation's numbers are all in bits now)."""
        warnings.warn("Continuation.log_prob_nats is deprecated; use log_prob_bits", FutureWarning, stacklevel=2)
        return self.log_prob_bits * LN2

    @property
    def log_prob_draw_nats(self) -> float:
        """Deprecated: ``log_prob_draw_bits * ln 2``."""
        warnings.warn("Continuation.log_prob_draw_nats is deprecated; use log_prob_draw_bits", FutureWarning,
                      stacklevel=2)
        return self.log_prob_draw_bits * LN2

    @property
    def mean_entropy_bits(self) -> float:
        return float(np.mean([t.entropy_bits for t in self.tokens])) if self.tokens else 0.0

    @property
    def mean_epistemic_bits(self) -> float:
        return float(np.mean([t.epistemic_bits for t in self.tokens])) if self.tokens else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tokens"] = [{**asdict(t), "top": [{"token": w, "prob": p} for w, p in t.top]} for t in self.tokens]
        data.update(
            schema="bayeslm.continuation/2",
            log_prob_bits=self.log_prob_bits,
            log_prob_draw_bits=self.log_prob_draw_bits,
            mean_entropy_bits=self.mean_entropy_bits,
            mean_epistemic_bits=self.mean_epistemic_bits,
            flagged_tokens=int(sum(t.flagged for t in self.tokens)),
        )
        return data


def transform_probs(p: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None) -> np.ndarray:
    """The distribution actually sampled: temperature, then top-k, then top-p (nucleus).

    ``p`` has shape (..., V); the result is renormalised. Top-p keeps the smallest set of
    most probable tokens whose probability reaches ``top_p`` (at least one token).
    """
    p = np.asarray(p, dtype=float)
    if temperature != 1.0:
        with np.errstate(divide="ignore"):
            logits = np.log(p) / temperature
        logits -= logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=-1, keepdims=True)
    if top_k is not None and top_k < p.shape[-1]:
        kth = np.partition(p, -top_k, axis=-1)[..., -top_k, None]
        keep = p >= kth
        # ties at the k-th value: keep the first k of them in id order
        rank = np.cumsum(keep, axis=-1)
        p = np.where(keep & (rank <= top_k), p, 0.0)
        p /= p.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=-1)
        before = np.cumsum(sorted_p, axis=-1) - sorted_p  # mass strictly before each token
        keep_sorted = before < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=-1, keepdims=True)
    return p


def _check_options(n, max_tokens, temperature, top_k, top_p, mode):
    if int(n) < 1:
        raise BayesLMError(f"n must be at least 1, got {n}")
    if int(max_tokens) < 1:
        raise BayesLMError(f"max_tokens must be at least 1, got {max_tokens}")
    if not (temperature > 0 and np.isfinite(temperature)):
        raise BayesLMError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and int(top_k) < 1:
        raise BayesLMError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise BayesLMError(f"top_p must lie in (0, 1], got {top_p}")
    if mode not in ("draw", "predictive"):
        raise BayesLMError(f"mode must be 'draw' or 'predictive', got {mode!r}")


@dataclass(frozen=True)
class _Decoding:
    """How each token of a continuation is drawn and annotated, and when the continuation stops."""

    max_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None
    stop: str | None
    stop_at_eos: bool
    mi_threshold_bits: float
    n_top: int


def _prompt_ids(model, prompt: str) -> tuple[list[int], list[str]]:
    """Token ids of the prompt, and its tokens the model reads as ``<unk>`` (or as sentence markers)."""
    vocab = model.vocabulary
    prompt_tokens = model.tokenizer_.tokenize(prompt) if prompt else []
    if len(prompt_tokens) > MAX_PROMPT_TOKENS:
        raise BayesLMError(f"the prompt has {len(prompt_tokens)} tokens; the limit is {MAX_PROMPT_TOKENS}")
    unknown = [t for t in prompt_tokens if t not in vocab or t in ("<s>", "</s>")]
    return ([int(i) for i in vocab.encode(prompt_tokens)] if prompt_tokens else []), unknown


def _token_info(model, ctx: np.ndarray, token_id: int, sampled_from: np.ndarray, predictive: np.ndarray,
                decoding: _Decoding, rng: np.random.Generator) -> TokenInfo:
    """The drawn token with its probabilities and the entropy split of its context ``ctx`` (1, context_length).

    The token's text is :meth:`~bayeslm.core.base.BayesianLM.token_text` (an open
    vocabulary spells a new word where it drew ``<unk>``).
    """
    vocab = model.vocabulary
    split = model.context_entropy_split(ctx).iloc[0]
    top_ids = np.argsort(-predictive, kind="stable")[: decoding.n_top]
    return TokenInfo(
        token=model.token_text(token_id, rng),
        id=token_id,
        prob_draw=float(sampled_from[token_id]),
        prob_predictive=float(predictive[token_id]),
        entropy_bits=float(split["total"] / LN2),
        aleatoric_bits=float(split["aleatoric"] / LN2),
        epistemic_bits=float(split["epistemic"] / LN2),
        flagged=bool(split["epistemic"] / LN2 > decoding.mi_threshold_bits),
        top=[(vocab.tokens[i], float(predictive[i])) for i in top_ids],
    )


def _continue(model, history: list[int], held: int | None, rng: np.random.Generator,
              decoding: _Decoding) -> tuple[list[TokenInfo], str]:
    """Tokens drawn after ``history`` under posterior draw ``held`` (None: the predictive), and why it stopped.

    A held draw's distribution p(. | u) is drawn the first time context u occurs and reused
    whenever u recurs.
    """
    k = model.context_length
    held_cache: dict[tuple, np.ndarray] = {}
    infos: list[TokenInfo] = []
    for _ in range(decoding.max_tokens):
        ctx = np.asarray(history[len(history) - k:] if k else [], dtype=np.int64).reshape(1, k)
        key = tuple(ctx[0])
        predictive = model.predictive_probs(ctx)[0]
        if held is None:
            sampled_from = predictive
        else:
            if key not in held_cache:
                held_cache[key] = model.sample_distribution(ctx, int(held), rng)[0]
            sampled_from = held_cache[key]
        probs = transform_probs(sampled_from, decoding.temperature, decoding.top_k, decoding.top_p)
        token_id = int(rng.choice(probs.size, p=probs))
        infos.append(_token_info(model, ctx, token_id, sampled_from, predictive, decoding, rng))
        if token_id == model.vocabulary.eos_id and decoding.stop_at_eos:
            return infos, "eos"
        history.append(token_id)
        if decoding.stop is not None and decoding.stop in _text(model, infos):
            return infos, "stop_string"
    return infos, "max_tokens"


def generate(model, prompt: str = "", n: int = 5, max_tokens: int = 40, random_seed=None, *,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             stop: str | None = None, stop_at_eos: bool = True, mode: str = "draw",
             mi_threshold_bits: float | None = None, n_top: int = 5) -> list[Continuation]:
    """Sample ``n`` continuations of ``prompt`` from a fitted model.

    Parameters
    ----------
    prompt : str
        Text to continue (tokenised with the model's tokenizer; unknown words become
        ``<unk>`` and are reported). Empty: start a sentence.
    n, max_tokens : int
        Number of continuations and the most tokens each may have.
    random_seed : int or None
        Same seed, same continuations.
    temperature, top_k, top_p
        Applied, in that order, to the distribution each token is drawn from.
    stop : str, optional
        Stop when the continuation's text contains this string (the text is cut before it).
    stop_at_eos : bool
        Stop at ``</s>`` (not included in the text).
    mode : {"draw", "predictive"}
        Hold one posterior draw per continuation, or sample the posterior predictive.
    mi_threshold_bits : float, optional
        Flag tokens whose mutual information exceeds this; default the model's stored
        90th percentile of mutual information over validation positions.
    """
    if not model.is_fitted_:
        raise NotFittedError(model, "generate")
    _check_options(n, max_tokens, temperature, top_k, top_p, mode)
    prompt_ids, unknown = _prompt_ids(model, prompt)
    if mi_threshold_bits is None:
        mi_threshold_bits = model_mi_threshold_bits(model)
    decoding = _Decoding(int(max_tokens), temperature, top_k, top_p, stop, stop_at_eos, float(mi_threshold_bits), n_top)
    rng = np.random.default_rng(random_seed)
    S = model.n_samples
    draws = rng.choice(S, size=n, replace=n > S) if mode == "draw" else [None] * n
    history = [model.vocabulary.bos_id] * model.context_length + prompt_ids
    results = []
    for held in draws:
        infos, stop_reason = _continue(model, list(history), held, rng, decoding)
        text = _text(model, infos)
        if stop_reason == "stop_string":
            text = text[: text.index(stop)]
        results.append(Continuation(
            prompt=prompt, text=text, tokens=infos, draw=None if held is None else int(held),
            stop_reason=stop_reason, unknown_prompt_tokens=unknown, mi_threshold_bits=float(mi_threshold_bits),
            separator=model.tokenizer_.separator,
        ))
    return results


def _text(model, infos: list[TokenInfo]) -> str:
    return model.tokenizer_.detokenize([t.token for t in infos if t.token != "</s>"])


def model_mi_threshold_bits(model) -> float:
    """The model's stored flag threshold (90th percentile of validation MI), in bits."""
    attrs = model.idata["posterior"].attrs
    if "mi_threshold_nats" in attrs:
        return float(attrs["mi_threshold_nats"]) / LN2
    return float("inf")


def format_terminal(continuations: list[Continuation], color: bool | None = None) -> str:
    """Continuations as text; in a terminal each token's background shows its uncertainty.

    Per continuation a header ``[i] draw D  log p L bits  mean H E bits  mean MI M bits
    F flagged  (stop reason)``, then the prompt and the text. Shade: mutual information
    (epistemic) relative to the flag threshold, from white (none) to red (at or above it);
    flagged tokens (above it) are underlined, and a last line says so. Plain text when
    ``color`` is False or, by default, when standard output is not a terminal; flagged
    tokens are then listed under the text. Control characters in the prompt and the tokens
    are shown escaped (:func:`bayeslm.core.terminal.printable`). ``docs/cli.md`` explains
    every number.
    """
    from bayeslm.core.terminal import printable

    if color is None:
        color = sys.stdout.isatty()
    lines = []
    for i, c in enumerate(continuations, start=1):
        lines.append(f"[{i}] draw {c.draw if c.draw is not None else '-'}  log p {c.log_prob_bits:.2f} bits  "
                     f"mean H {c.mean_entropy_bits:.2f} bits  mean MI {c.mean_epistemic_bits:.3f} bits  "
                     f"{sum(t.flagged for t in c.tokens)} flagged  ({c.stop_reason})")
        if color:
            lines.append("    " + printable(c.prompt + (" " if c.prompt else "")) + _shaded(c))
            continue
        lines.append("    " + printable(c.prompt + (" " if c.prompt else "") + c.text))
        flagged = [printable(t.token) for t in c.tokens if t.flagged]
        if flagged:
            lines.append(f"    unsure (MI above {c.mi_threshold_bits:.3f} bits): {' '.join(flagged)}")
    if color and continuations:
        threshold = continuations[0].mi_threshold_bits
        red = (f"the flag threshold, {threshold:.3f} bits); underlined: above it (flagged)"
               if _shade_scale(threshold) == threshold else "1 bit; the model stores no flag threshold)")
        lines.append(f"colours: mutual information from white (0 bits) to red (at or above {red}")
    if unknown := (continuations[0].unknown_prompt_tokens if continuations else []):
        lines.append(f"note: prompt words not in the vocabulary (read as <unk>): {printable(' '.join(unknown))}")
    return "\n".join(lines)


def _shade_scale(threshold: float) -> float:
    """Mutual information (bits) shown in full red: the flag threshold, or 1 bit if there is none."""
    return threshold if np.isfinite(threshold) and threshold > 0 else 1.0


def _shaded(c: Continuation) -> str:
    """The continuation's tokens, each on a background from white (no MI) to red (MI at the threshold)."""
    from bayeslm.core.terminal import printable

    threshold = _shade_scale(c.mi_threshold_bits)
    parts = []
    for t in c.tokens:
        if t.token == "</s>":
            continue
        level = min(t.epistemic_bits / threshold, 1.0)
        shade = _SHADES[int(round(level * (len(_SHADES) - 1)))]
        style = f"\x1b[48;5;{shade}m\x1b[30m" + ("\x1b[4m" if t.flagged else "")
        parts.append(f"{style}{printable(t.token)}\x1b[0m")
    return printable(c.separator).join(parts)


def to_json(continuations: list[Continuation]) -> str:
    return json.dumps({"schema": "bayeslm.generate/2", "continuations": [c.to_dict() for c in continuations]},
                      indent=2)
