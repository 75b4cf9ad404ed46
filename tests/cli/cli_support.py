"""What the command-line tests share: a tiny configuration and corpus, and the one-line error check."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayeslm.cli import main

CONFIG = """# a tiny bigram configuration for the CLI tests
[model]
family = "dirichlet"
order = 2

[tokenizer]
kind = "word"
min_count = 2

[prior.concentration]
dist = "LogNormal"
kwargs = { mu = 2.0, sigma = 3.0 }

[sampler]
draws = 1000
tune = 1000
chains = 2
"""
TRAIN = """the cat sat on the mat
the dog sat on the log
a cat ran to the mat
the dog ran on the log
a dog sat
the cat sat on a mat
a big dog ran to a log
the big cat sat
"""
TEST = """the cat sat on the log

a zebra ran to the mat
the big dog sat on the moon
"""
REPOSITORY = Path(__file__).resolve().parents[2]


def error_line(stderr: str) -> str:
    """The one line ``bayeslm: error: ...`` that ``stderr`` must consist of."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("bayeslm: error: "), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    return lines[0]


def succeeds(argv) -> str:
    """Run the CLI in-process expecting exit status 0; returns what it printed on stdout."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([str(a) for a in argv]) == 0
    return printed.getvalue()


def fails(capsys, argv, *fragments) -> str:
    """Run the CLI in-process expecting exit status 2 and one line ``bayeslm: error: ...`` on stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    assert exc.value.code == 2
    line = error_line(capsys.readouterr().err)
    for fragment in fragments:
        assert fragment in line, line
    return line


def program(*args, prefix=()) -> subprocess.Popen:
    """``python -m bayeslm ARGS`` of this checkout as a process in its own process group.

    ``prefix``: a command that runs it (e.g. ``setpriv ...``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(REPOSITORY)
    return subprocess.Popen([*prefix, sys.executable, "-m", "bayeslm", *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
