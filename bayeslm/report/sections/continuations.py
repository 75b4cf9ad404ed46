"""The optional section of sampled continuations (``model.generate``, one posterior draw held each)."""

from __future__ import annotations

from typing import Sequence

__all__ = ["continuations_section"]


def continuations_section(model, prompts: Sequence[str], n: int, max_tokens: int, random_seed) -> list[dict]:
    """Per prompt: ``n`` continuations of up to ``max_tokens`` tokens in the ``bayeslm.continuation/2`` form."""
    return [
        {"prompt": prompt, "continuations": [c.to_dict() for c in model.generate(
            prompt, n=int(n), max_tokens=int(max_tokens), random_seed=random_seed)]}
        for prompt in prompts
    ]
