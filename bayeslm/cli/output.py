"""What the command line prints, and what it lets libraries print.

Results go to standard output: JSON with ``--json`` (control characters escaped by
``json``), otherwise text in which every piece of corpus or model text is passed through
:func:`bayeslm.core.terminal.printable`. With ``--quiet`` nothing else is printed: no
progress bars, no log lines of PyMC, PyTensor, ArviZ or Dask, no warnings. Progress bars are
drawn only when standard error is a terminal (in a log file they are lines of debris).
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from contextlib import contextmanager

import numpy as np

from bayeslm.core.terminal import printable

__all__ = ["print_json", "print_text", "print_table", "library_output", "progress_bars"]

def print_json(obj) -> None:
    """One JSON document on standard output (NaN allowed, as ``json`` writes it)."""
    json.dump(obj, sys.stdout, indent=2, allow_nan=True)
    sys.stdout.write("\n")


def print_text(text: str) -> None:
    """Lines of text that may hold corpus or model text, control characters escaped."""
    print("\n".join(printable(line) for line in str(text).split("\n")))


def print_table(frame) -> None:
    """A DataFrame as tab-separated lines under a header of its column names.

    Numbers with 6 decimals, booleans as 0/1, text escaped (tabs too, so columns stay apart).
    """
    print("\t".join(frame.columns))
    for row in frame.itertuples(index=False):
        print("\t".join(_cell(value) for value in row))


def _cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.6f}"
    if isinstance(value, str):
        return printable(value, tabs=True)
    return str(value)


def progress_bars(quiet: bool) -> bool:
    """Whether to draw progress bars: not with ``--quiet``, and only on a terminal."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def library_output(quiet: bool):
    """Silence the libraries' noise for the block: always ArviZ's refactor notice; with ``quiet`` all of it.

    ``quiet`` turns logging off in this process (:func:`logging.disable`, which holds for
    loggers a library configures when it is imported later: PyMC sets its logger's level on
    import, and a command that never needs PyMC must not import it to silence it). Warning
    filters and the logging switch are put back afterwards.
    """
    previous = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
        warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
        if quiet:
            warnings.simplefilter("ignore")
            logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(previous)
