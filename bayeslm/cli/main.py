"""The ``bayeslm`` entry point: runs a command and turns every failure into one line.

An error prints exactly one line ``bayeslm: error: ...`` on standard error and exits with
status 2, without a traceback: bad input (:class:`bayeslm.exceptions.BayesLMError`), a
file that cannot be read or written (``OSError``: read-only folder, full disk), running
out of memory, and, as ``internal error``, anything unforeseen (``BAYESLM_TRACEBACK=1``
shows its traceback). Ctrl-C and SIGTERM print ``bayeslm: interrupted (SIGINT); ...`` and
exit with 130 (:mod:`bayeslm.cli.interrupts`). Nothing is ever written half-way.
"""

from __future__ import annotations

import os
import sys

from bayeslm.cli.interrupts import Interrupted, InterruptState, handle_interrupts, workers_die_with_parent
from bayeslm.cli.output import library_output
from bayeslm.cli.parser import PROG, build_parser
from bayeslm.core.terminal import printable
from bayeslm.exceptions import BayesLMError

__all__ = ["main", "build_parser"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.interrupts = InterruptState()
    try:
        with library_output(getattr(args, "quiet", False)), workers_die_with_parent(), \
                handle_interrupts(keep_partial=getattr(args, "keep_partial", False)) as args.interrupts:
            return args.func(args)
    except (Interrupted, KeyboardInterrupt):
        _exit(EXIT_INTERRUPTED, _interrupted(args.interrupts))
    except BrokenPipeError:  # e.g. `bayeslm tokenize ... | head`: the reader has all it wanted
        _silence_stdout()
        return 0
    except BaseException as err:  # noqa: BLE001 -- the one place that turns failures into one line
        if isinstance(err, SystemExit):
            raise
        if args.interrupts.signum is not None:  # a library turned the interrupt into another error
            _exit(EXIT_INTERRUPTED, _interrupted(args.interrupts))
        if not isinstance(err, (BayesLMError, OSError, MemoryError)) and os.environ.get("BAYESLM_TRACEBACK"):
            raise
        _exit(EXIT_ERROR, f"error: {describe(err)}")


def describe(err: BaseException) -> str:
    """One line saying what went wrong (for ``bayeslm: error: ...``)."""
    if isinstance(err, BayesLMError):
        return str(err)
    if isinstance(err, OSError):
        what = err.strerror or str(err) or type(err).__name__
        return f"{err.filename}: {what}" if err.filename is not None else what
    if isinstance(err, MemoryError):
        return f"out of memory{f' ({err})' if str(err) else ''}; try smaller inputs or settings"
    return (f"internal error ({type(err).__name__}: {err}); please report it "
            "(BAYESLM_TRACEBACK=1 shows where it happened)")


def _interrupted(state: InterruptState) -> str:
    name = f" ({state.name})" if state.signum is not None else ""
    done = "; wrote " + ", ".join(state.written) if state.written else "; nothing was written"
    return f"interrupted{name}{done}"


def _exit(status: int, message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"{PROG}: {printable(message)}\n")
    sys.stderr.flush()
    raise SystemExit(status)


def _silence_stdout() -> None:
    """Point standard output at /dev/null so that the flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
