"""Fixtures of the command-line tests: a folder with the tiny corpus and a model fitted from it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import CONFIG, TEST, TRAIN, succeeds
from sampling import SMALL, cli_sets


@pytest.fixture(scope="session")
def cli_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-session")
    paths = {"root": root, "config": root / "tiny.toml", "train": root / "train.txt", "test": root / "test.txt"}
    paths["config"].write_text(CONFIG, encoding="utf-8")
    paths["train"].write_text(TRAIN, encoding="utf-8")
    paths["test"].write_text(TEST, encoding="utf-8")
    return paths


@pytest.fixture(scope="session")
def tiny_fit(cli_files) -> tuple[Path, str]:
    """A model directory written by ``bayeslm fit`` (SMALL sampler settings, seed 3) and what
    the command printed; never modify the directory."""
    out = cli_files["root"] / "tiny-model"
    printed = succeeds(["fit", cli_files["config"], "--train", cli_files["train"], "--out", out,
                        *cli_sets(SMALL), "--seed", "3", "--quiet"])
    return out, printed


@pytest.fixture(scope="session")
def tiny_model(tiny_fit) -> Path:
    """The model directory of ``tiny_fit``; never modify it."""
    return tiny_fit[0]
