"""Helpers shared by the bench scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git_state() -> dict:
    """Commit of the repository and whether the package has uncommitted changes (for the JSON)."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "bayeslm", "models"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return {"commit": commit or None, "package_dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "package_dirty": None}
