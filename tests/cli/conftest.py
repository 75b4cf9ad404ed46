"""Fixtures of the command-line tests: a folder with the tiny corpus and a model fitted from it once."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from bayeslm.cli import main
from cli_support import CONFIG, TEST, TRAIN


@pytest.fixture(scope="session")
def cli_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-session")
    paths = {"root": root, "config": root / "tiny.toml", "train": root / "train.txt", "test": root / "test.txt"}
    paths["config"].write_text(CONFIG, encoding="utf-8")
    paths["train"].write_text(TRAIN, encoding="utf-8")
    paths["test"].write_text(TEST, encoding="utf-8")
    return paths


@pytest.fixture(scope="session")
def tiny_model(cli_files) -> Path:
    """A model directory written by ``bayeslm fit`` (100 draws per chain); never modify it."""
    out = cli_files["root"] / "tiny-model"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["fit", str(cli_files["config"]), "--train", str(cli_files["train"]), "--out", str(out),
                     "--set", "sampler.draws=100", "--set", "sampler.tune=100", "--seed", "3", "--quiet"]) == 0
    return out
