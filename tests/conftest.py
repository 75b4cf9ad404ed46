"""Shared fixtures: one small fitted model per family for the whole run, and the ``slow`` /
``shared_data`` markers.

A test that only needs "a fitted model" takes one of the session models below (never
modify it: save a copy, or copy its directory with ``model_dirs.writable_copy``); a module
fits its own model only where its tests need particular data or settings, and says why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from corpora import CAT_LINES, NGRAM_TRAIN, shared_data
from sampling import GPT_DRAWS, QUICK, TINY_GPT


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    """Tests that read ../shared/data carry the ``shared_data`` marker (``-m 'not shared_data'``
    deselects them); ``slow`` tests are skipped unless ``--run-slow``."""
    for item in items:
        if "shakespeare_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shakespeare_dir() -> Path:
    """../shared/data/shakespeare (train/ valid/ test/), or skip where this clone has no ../shared."""
    return shared_data("shakespeare")


# -- one fitted model per family, for the whole run ----------------------------------------------
def _ngram_trigram(family: str, seed: int, **options):
    """A trigram of ``corpora.NGRAM_TRAIN`` of the class ``bayeslm.<family>`` (QUICK draws)."""
    import bayeslm

    lm = getattr(bayeslm, family)(order=3, sampler_config={**QUICK, "random_seed": seed}, **options)
    lm.fit(bayeslm.Corpus.from_texts(NGRAM_TRAIN))
    return lm


@pytest.fixture(scope="session")
def dirichlet_lm():
    """A Dirichlet trigram of ``corpora.NGRAM_TRAIN`` (QUICK draws, seed 13). Never modify it."""
    return _ngram_trigram("DirichletLM", 13)


@pytest.fixture(scope="session")
def pitman_yor_lm():
    """A Pitman-Yor trigram of ``corpora.NGRAM_TRAIN`` by Gibbs sweeps over the seating (3 retained
    seatings per chain, QUICK draws, seed 3). Never modify it."""
    return _ngram_trigram("PitmanYorLM", 3, inference="gibbs", retain=3)


@pytest.fixture(scope="session")
def ikn_lm():
    """A Pitman-Yor trigram of ``corpora.NGRAM_TRAIN`` in the ikn mode (one table per type; 4
    retained samples per chain, QUICK draws, seed 4). Never modify it."""
    return _ngram_trigram("PitmanYorLM", 4, inference="ikn", retain=4)


@pytest.fixture(scope="session")
def fast_lm():
    """A Pitman-Yor trigram of ``corpora.NGRAM_TRAIN`` in the fast mode (one seating; 4 retained
    samples per chain, QUICK draws, seed 5). Never modify it."""
    return _ngram_trigram("PitmanYorLM", 5, inference="fast", retain=4)


@pytest.fixture(scope="session")
def gpt_lm():
    """A character TinyGPT with a Laplace last layer (TINY_GPT, GPT_DRAWS, seed 0) of
    ``corpora.CAT_LINES``, validated on their first ten lines. Never modify it."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # tiny models: one thread is as fast, and far faster on a shared machine
    import bayeslm as blm

    train = blm.Corpus.from_lines(CAT_LINES, tokenizer=blm.CharTokenizer())
    lm = blm.GPTLM(**TINY_GPT, sampler_config={**GPT_DRAWS, "random_seed": 0})
    lm.fit(train, valid=CAT_LINES[:10])
    return lm


def _directory_of(family: str):
    """A session fixture ``<family>_dir``: the saved model directory of ``<family>_lm``."""

    def directory(request, tmp_path_factory) -> Path:
        return request.getfixturevalue(f"{family}_lm").save(tmp_path_factory.mktemp(family) / "model")

    directory.__doc__ = f"The model directory of ``{family}_lm``. Never modify it."
    return pytest.fixture(scope="session", name=f"{family}_dir")(directory)


dirichlet_dir = _directory_of("dirichlet")
pitman_yor_dir = _directory_of("pitman_yor")
ikn_dir = _directory_of("ikn")
fast_dir = _directory_of("fast")
gpt_dir = _directory_of("gpt")
