"""Shared fixtures and the ``slow`` / ``shared_data`` markers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shakespeare_dir() -> Path:
    """../shared/data/shakespeare, or skip where this clone has no ../shared."""
    path = SHARED_DATA / "shakespeare"
    if not path.is_dir():
        pytest.skip(f"needs {path} (the shared data beside the repository); absent here")
    return path
