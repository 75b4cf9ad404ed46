"""Ctrl-C and SIGTERM stop a command cleanly, and no sampler process outlives it.

PyMC catches ``KeyboardInterrupt`` while it samples and returns the draws made so far as if
the fit had finished. The command line therefore raises :class:`Interrupted` (not a
``KeyboardInterrupt``) from its signal handler, so the interrupt ends the fit and nothing is
saved; with ``--keep-partial`` the signal is a ``KeyboardInterrupt`` on purpose and the
partial draws are kept. Chain worker processes (forked by ``multiprocessing``) ignore SIGINT,
so the parent alone stops them through PyMC's abort message, and on Linux they are killed by
the kernel when their parent dies, even by ``kill -9`` (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["Interrupted", "InterruptState", "handle_interrupts", "workers_die_with_parent"]

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The command was interrupted by ``signum``; a BaseException so that no ``except Exception`` stops it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class InterruptState:
    """The first signal received while :func:`handle_interrupts` was active (None: none).

    ``written``: what the command has written so far, for the message if it is interrupted.
    """

    signum: int | None = None
    written: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextmanager
def handle_interrupts(keep_partial: bool = False):
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread; yields the :class:`InterruptState`.

    ``keep_partial``: they raise ``KeyboardInterrupt`` instead, which PyMC turns into an
    early end of sampling that keeps the draws so far (with chains sampled one after
    another, of the current chain only; the next one starts); anywhere else it stops the
    command like :class:`Interrupted`. Outside the main thread (where Python cannot
    install handlers) nothing changes.
    """
    state = InterruptState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state.signum is None:
            state.signum = signum
        if keep_partial:
            raise KeyboardInterrupt
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield state
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class _Registration:
    """The key of the after-fork hook: multiprocessing holds it weakly, so the hook goes with it."""


@contextmanager
def workers_die_with_parent():
    """For the block, every ``multiprocessing`` child forked ignores SIGINT and dies with this process.

    On Linux the kernel sends SIGKILL to the child when its parent exits
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere only the SIGINT part applies.
    """
    registration = _Registration()
    multiprocessing.util.register_after_fork(registration, _in_forked_child)
    try:
        yield
    finally:
        del registration  # the registry's weak reference dies with it: later forks are left alone


def _in_forked_child(_: _Registration) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its workers (PyMC's abort message)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before prctl: no signal will come
        os._exit(1)
