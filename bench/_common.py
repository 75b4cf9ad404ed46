"""Helpers shared by the bench scripts."""

from __future__ import annotations

import subprocess
import sys
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


def word_counts(data: Path, order: int):
    """N-gram counts of ``data/train`` as the Pitman-Yor configurations read it (word tokens,
    min count 2), or exit 2 saying the shared data are missing."""
    if not (Path(data) / "train").is_dir():
        print(f"needs {data}/train (the shared data beside the repository)", file=sys.stderr)
        raise SystemExit(2)
    import bayeslm as blm
    from bayeslm.counting.counts import count

    train = blm.Corpus.from_paths(Path(data) / "train", tokenizer=blm.WordTokenizer())
    train = train.with_vocabulary(blm.Vocabulary.build(train.type_counts(), min_count=2))
    return count(train, order)
