"""The model zoo: every configuration in models/ is described, listed and fits a tiny corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bayeslm as blm
from bayeslm.cli import main
from bayeslm.core.base import BayesianLM
from bayeslm.core.config import apply_overrides, list_configs, load_config
from bayeslm.core.storage import known_families
from sampling import QUICK, TINY_GPT, overrides

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "models").glob("*.toml"))
SMALL = overrides(QUICK)
# families that train a network: a tiny one, a few steps
FAMILY_SMALL = {"gpt-bll": overrides({**TINY_GPT, "train_steps": 30, "eval_interval": 10, "eval_batches": 1}, "model")}


def _ids(paths):
    return [p.stem for p in paths]


def _first_line(path: Path) -> str:
    return path.read_text(encoding="utf-8").splitlines()[0] if path.read_text(encoding="utf-8") else ""


def test_the_zoo_is_not_empty():
    assert CONFIGS, "models/ holds no configuration"


@pytest.mark.parametrize("path", CONFIGS, ids=_ids(CONFIGS))
def test_config_has_a_one_line_description(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # ./models is searched first
    first = _first_line(path)
    assert first.startswith("#"), f"{path.name}: the first line must be a comment describing the configuration"
    description = first.lstrip("#").strip()
    assert description, f"{path.name}: the description comment is empty"
    assert list_configs().get(path.stem) == description


@pytest.fixture(scope="module")
def tiny_lines():
    """About 300 sentences of the demo corpus, and 40 more to score."""
    lines = blm.demo_corpus().decode_lines()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(lines), size=340, replace=False)
    return [lines[i] for i in pick[:300]], [lines[i] for i in pick[300:]]


@pytest.mark.parametrize("path", CONFIGS, ids=_ids(CONFIGS))
def test_config_fits_a_tiny_corpus(path, tiny_lines):
    config = load_config(str(path))
    family = config.get("model", {}).get("family", "dirichlet")
    config = apply_overrides(config, SMALL + FAMILY_SMALL.get(family, []))
    if family not in known_families():
        pytest.skip(f"{path.name}: model family {family!r} is not registered yet (known: {known_families()})")
    model = BayesianLM.from_config(config)
    assert model.family == family
    assert model.order == config["model"].get("order", model.order)
    train_lines, test_lines = tiny_lines
    train = blm.Corpus.from_lines(train_lines, tokenizer=model.tokenizer)
    idata = model.fit(train, random_seed=0)
    assert model.is_fitted_ and idata is model.idata
    assert idata["posterior"].sizes["draw"] == QUICK["draws"]
    result = model.evaluate(test_lines)
    assert np.isfinite(result.predictive_perplexity) and result.predictive_perplexity > 1


def test_cli_models_lists_every_config_with_its_description(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # ./models is searched first
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for path in CONFIGS:
        description = _first_line(path).lstrip("#").strip()
        listed = [line for line in lines if line.split(maxsplit=1)[:1] == [path.stem]]
        assert listed, f"'bayeslm models' does not list {path.stem}"
        assert listed[0].split(maxsplit=1)[1].strip() == description
