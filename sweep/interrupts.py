"""Ctrl+C and SIGTERM during a sweep.

The first one asks for a stop: the current epoch finishes, its resume point is
committed, the table is written, and the command exits with status 130. The
second one exits at once; every file is written by temp file + rename, so even
then nothing is left half-written, and the trial resumes from its last epoch.

Only the ``sweep`` command (and the worker processes sweep starts) may exit the
process: anywhere else (``sweep.run`` in a notebook or a script) the second one
raises ``KeyboardInterrupt`` at once instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 130
_may_exit = False  # whether this process is sweep's own (the command, a worker)


@contextlib.contextmanager
def process_owned() -> Iterator[None]:
    """While the ``sweep`` command (or a worker sweep started) runs: a second Ctrl+C
    may exit the process at once."""
    global _may_exit
    before, _may_exit = _may_exit, True
    try:
        yield
    finally:
        _may_exit = before


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_is_ctrl_c() -> Iterator[None]:
    """From the start of a command that trains: SIGTERM stops it as Ctrl+C does before any
    trial runs (while TensorFlow imports, the data loads): one line and exit status 130,
    not a silent 143. ``StopSignals`` takes over while trials run, and hands back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopSignals:
    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is None:
            self.requested = "interrupted"
            sys.stderr.write(
                "\nsweep: stopping after this epoch (the trial stays resumable); "
                "press Ctrl+C again to stop now\n"
            )
            sys.stderr.flush()
            return
        if not _may_exit:
            sys.stderr.write("\nsweep: stopped now; run the same call again to resume\n")
            sys.stderr.flush()
            self.restore()
            raise KeyboardInterrupt
        sys.stderr.write("\nsweep: stopped now; run the same command again to resume\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
