"""Posterior predictive checks find a planted misfit, and only where there is one.

Both n-gram families are fitted on text whose sentences all have the same length: an n-gram
model ends a sentence with a fixed probability after each word, so its sentence lengths
spread out, and the check on their standard deviation must fail (every replicate above the
observed 0). On text simulated by a model of the same kind (a unigram with a constant stop
probability), the same check passes. Each module fit is its own: the test is about the data.
"""

from __future__ import annotations

import numpy as np
import pytest
from sampling import QUICK

import bayeslm as blm
from bayeslm.stats.ppc import posterior_predictive_check

WORDS = [f"w{i}" for i in range(15)]
N_SENTENCES = 150
REPLICATES = 20


def constant_length_text(rng) -> list[str]:
    """Sentences of exactly 8 words drawn uniformly: lengths no n-gram model reproduces."""
    return [" ".join(rng.choice(WORDS, size=8)) for _ in range(N_SENTENCES)]


def geometric_length_text(rng) -> list[str]:
    """Sentences from a unigram that stops after each word with probability 1/8 (mean length 8)."""
    return [" ".join(rng.choice(WORDS, size=int(n))) for n in rng.geometric(1 / 8, size=N_SENTENCES)]


def fitted(family: str, lines: list[str]):
    lm = getattr(blm, family)(order=2, tokenizer="whitespace", sampler_config={**QUICK, "random_seed": 2})
    lm.fit(blm.Corpus.from_texts(lines, tokenizer=blm.WhitespaceTokenizer()))
    return lm


@pytest.mark.parametrize("family", ["DirichletLM", "PitmanYorLM"])
def test_a_planted_sentence_length_misfit_is_found(family):
    lines = constant_length_text(np.random.default_rng(0))
    lm = fitted(family, lines)
    observed = lm.encode(lines)
    check = posterior_predictive_check(lm, observed, observed_corpus="train", replicates=REPLICATES, random_seed=1)
    p, two_sided = check.p_values()["sd_sentence_length"]
    assert check.scalar("sd_sentence_length").min() > 0  # every replicate spreads its lengths
    assert (p, two_sided) == (1.0, 0.0)
    # the statistics the model does reproduce are not flagged
    assert check.p_values()["mean_sentence_length"][1] > 0.05


@pytest.mark.parametrize("family", ["DirichletLM", "PitmanYorLM"])
def test_text_the_model_could_have_written_passes(family):
    lines = geometric_length_text(np.random.default_rng(1))
    lm = fitted(family, lines)
    check = posterior_predictive_check(lm, lm.encode(lines), observed_corpus="train", replicates=REPLICATES,
                                       random_seed=1)
    for name in ("sd_sentence_length", "mean_sentence_length"):
        assert check.p_values()[name][1] > 0.05, name
