"""Ctrl+C and SIGTERM during a sweep.

The first one asks for a stop: the current epoch finishes, its resume point is
committed, the table is written, and the command exits with status 130. The
second one exits at once; every file is written by temp file + rename, so even
then nothing is left half-written, and the trial resumes from its last epoch.

Only the ``sweep`` command (and the worker processes sweep starts) may exit the
process: anywhere else (``sweep.run`` in a notebook or a script) the second one
raises ``KeyboardInterrupt`` at once instead.

Python runs a signal handler only when the main thread is back in the interpreter,
never during one long call into TensorFlow (or a slow load). So in sweep's own
processes a thread of its own reads the signals from the C-level handler
(``signal.set_wakeup_fd``) and acts on them: a trial stuck in one call still stops
at the second signal. ``--jobs`` workers hear the parent's first signal through a
stop file (``relay_to``); the parent's second one ends them with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 130
STOPS = (signal.SIGINT, signal.SIGTERM)
FIRST_LINE = (
    "\nsweep: stopping after this epoch (the trial stays resumable); "
    "press Ctrl+C again to stop now\n"
)
_may_exit = False  # whether this process is sweep's own (the command, a worker)
_raised_at_start = False  # a start-up signal was raised (Python may have swallowed it)


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


class _State:
    """The stop signals of one sweep in this process (nested ``StopSignals`` share it)."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self.seen = 0  # SIGINT/SIGTERM since the sweep's start-up (the second exits)
        self.lock = threading.Lock()
        self.depth = 0  # StopSignals installed
        self.stop_file: Path | None = None  # --jobs workers: the parent asked them to stop
        self.children: Callable[[], list[int]] | None = None  # their pids (ended at the 2nd)
        self.exiting = False


_state = _State()


def _exit_now() -> None:
    """The second signal in sweep's own process: its workers end with it, and it exits."""
    with _state.lock:
        if _state.exiting:
            return
        _state.exiting = True
    for pid in _state.children() if _state.children is not None else []:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        sys.stderr.write("\nsweep: stopped now; run the same command again to resume\n")
        sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _first() -> None:
    """The first signal while trials run: stop after this epoch, and tell the workers."""
    _state.requested = "interrupted"
    if _state.stop_file is not None:
        with contextlib.suppress(OSError):
            _state.stop_file.touch()
    sys.stderr.write(FIRST_LINE)
    sys.stderr.flush()


def _seen(signum: int) -> None:
    """A SIGINT or SIGTERM, in sweep's own process (the watcher thread calls this)."""
    if signum not in STOPS:
        return
    with _state.lock:
        _state.seen += 1
        seen, trials = _state.seen, _state.depth > 0
    if seen >= 2:
        _exit_now()
    elif trials:
        _first()
    # else: before the trials, the Python handler raises KeyboardInterrupt (_interrupt)


class _Watcher:
    """Signal numbers, as the C-level handler writes them to a pipe, read in a thread."""

    def __init__(self) -> None:
        self.read, write = os.pipe()
        os.set_blocking(write, False)
        self.write = write
        self.previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self.thread = threading.Thread(target=self._run, name="sweep-signals", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = os.read(self.read, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                _seen(signum)

    def close(self) -> None:
        signal.set_wakeup_fd(self.previous)
        os.close(self.write)  # the thread reads the end of the pipe and ends
        self.thread.join(timeout=5)
        os.close(self.read)


_watcher: _Watcher | None = None


@contextlib.contextmanager
def _watching() -> Iterator[None]:
    """In sweep's own process, on the main thread: the watcher thread runs meanwhile."""
    global _watcher
    if _watcher is not None or not _may_exit:
        yield
        return
    _watcher = _Watcher()
    try:
        yield
    finally:
        _watcher.close()
        _watcher = None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _raised_at_start
    _raised_at_start = True
    raise KeyboardInterrupt


def _unraisable(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """Python's hook for an exception it cannot raise (in a weakref callback, a
    finalizer): a start-up KeyboardInterrupt there is kept (``_raised_at_start``) and
    raised at the next step instead, without the traceback."""

    def hook(info: Any) -> object:
        if isinstance(info.exc_value, KeyboardInterrupt) and _raised_at_start:
            return None
        return previous(info)

    return hook


@contextlib.contextmanager
def sigterm_is_ctrl_c() -> Iterator[None]:
    """From the start of a command that trains: SIGTERM stops it as Ctrl+C does before any
    trial runs (while TensorFlow imports, the data loads): one line and exit status 130,
    not a silent 143. ``StopSignals`` takes over while trials run, and hands back."""
    global _raised_at_start, _state
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _raised_at_start = False
    _state = _State()
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOPS}
    hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
    try:
        with _watching():
            yield
            if _raised_at_start:  # raised where Python could not propagate it
                raise KeyboardInterrupt
    finally:
        sys.unraisablehook = hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def relay_to(stop_file: Path, children: Callable[[], list[int]]) -> Iterator[None]:
    """While ``--jobs`` workers run: the first signal creates ``stop_file`` (each worker
    stops after its epoch, and starts no trial), the second ends ``children`` too."""
    stop_file.unlink(missing_ok=True)  # a killed parent's (the same pid, another day)
    _state.stop_file, _state.children = stop_file, children
    if _state.requested is not None:
        stop_file.touch()
    try:
        yield
    finally:
        _state.stop_file, _state.children = None, None
        stop_file.unlink(missing_ok=True)


class StopSignals:
    """SIGINT and SIGTERM while trials run (see the module's text); ``stop_file``: a
    ``--jobs`` worker's, created by its parent at the parent's first signal."""

    def __init__(self, stop_file: str | None = None) -> None:
        self.stop_file = None if stop_file is None else Path(stop_file)
        self._previous: dict[int, Any] = {}
        self._state = _state

    @property
    def requested(self) -> str | None:
        stop = self.stop_file
        if self._state.requested is None and stop is not None and stop.exists():
            self._state.requested = "interrupted"  # the parent of this --jobs worker
        return self._state.requested

    def install(self) -> None:
        global _state
        if threading.current_thread() is not threading.main_thread():
            return
        if _raised_at_start:  # a start-up signal that Python swallowed: stop now
            raise KeyboardInterrupt
        if _state.depth == 0 and _watcher is None:  # sweep.run, a worker: a sweep of its own
            _state = _State()
        self._state = _state
        handler = self._quiet if _may_exit else self._handle
        for sig in STOPS:
            self._previous[sig] = signal.signal(sig, handler)
        self._state.depth += 1
        self._watch = _watching()
        self._watch.__enter__()

    def restore(self) -> None:
        if not self._previous:
            return
        self._watch.__exit__(None, None, None)
        self._state.depth -= 1
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _quiet(self, signum: int, frame: FrameType | None) -> None:
        """Sweep's own process: the watcher thread acts on it (even while stuck)."""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._state.requested is None:
            _first()
            return
        sys.stderr.write("\nsweep: stopped now; run the same call again to resume\n")
        sys.stderr.flush()
        self.restore()
        raise KeyboardInterrupt
