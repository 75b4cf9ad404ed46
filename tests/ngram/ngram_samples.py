"""Small texts and a sample statistic shared by the n-gram tests."""

from __future__ import annotations

import numpy as np

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "log", "big", "red"]


def markov_sentences(seed: int, n: int, words=WORDS) -> list[str]:
    """Lower-case sentences from a random first-order Markov chain (so contexts repeat)."""
    rng = np.random.default_rng(seed)
    trans = rng.dirichlet(np.full(len(words), 0.3), size=len(words))
    out = []
    for _ in range(n):
        w = int(rng.integers(len(words)))
        sentence = [words[w]]
        for _ in range(int(rng.integers(0, 6))):
            w = int(rng.choice(len(words), p=trans[w]))
            sentence.append(words[w])
        out.append(" ".join(sentence))
    return out


def shortest_interval(samples: np.ndarray, mass: float) -> tuple[float, float]:
    """The shortest interval holding ``mass`` of the samples (sorted; every window of k + 1)."""
    x = np.sort(samples)
    k = int(np.floor(mass * x.size))
    i = int(np.argmin(x[k:] - x[: x.size - k]))
    return float(x[i]), float(x[i + k])
