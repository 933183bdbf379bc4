"""The error taxonomy: what stops the sweep, and what only fails one trial.

Messages are written for the person at the terminal: what was expected, what
was found, and how to fix it, on one line.
"""

from __future__ import annotations

import contextlib
import errno
import re
import shutil
from collections.abc import Iterator
from pathlib import Path


class SweepError(Exception):
    """Any error the CLI reports as one line, without a traceback."""

    exit_code: int = 1


class ConfigError(SweepError):
    """Bad usage or configuration: it would fail every trial, so stop at once (exit 2)."""

    exit_code = 2


class MonitorMissingError(ConfigError):
    """The monitored key is not in the epoch logs."""


class TrialFailedError(SweepError):
    """One trial failed (NaN loss, an exception in the user's code); the sweep goes on."""


class TrialPrunedError(SweepError):
    """The study's pruner stopped the trial at an epoch end; its best checkpoint is kept."""


class Interrupted(SweepError):
    """Ctrl+C (or SIGTERM): the current epoch finished, the trial is left resumable."""

    exit_code = 130


class DiskFullError(SweepError):
    """Out of disk space (or quota): the sweep stops at once, the running trial stays resumable."""

    exit_code = 1


class FatalTrialError(SweepError):
    """The user's code raised KerasTuner's ``FatalError``: stop the sweep (exit 1)."""

    exit_code = 1


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# SQLite says it in words (sqlite3.OperationalError, inside SQLAlchemy's OperationalError)
DISK_FULL_TEXTS = ("database or disk is full", "No space left on device", "Disk quota exceeded")


def disk_full_cause(exc: BaseException | None) -> BaseException | None:
    """The error in ``exc``'s chain (causes and contexts) that says the disk is full, or None;
    a ``DiskFullError`` first (it says the most), say when closing a log failed after it."""
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for found in chain:
        if isinstance(found, DiskFullError):
            return found
    for found in chain:
        if isinstance(found, OSError) and found.errno in DISK_FULL_ERRNOS:
            return found
        if any(text in str(found) for text in DISK_FULL_TEXTS):
            return found
    return None


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit} ({n} bytes)"


def disk_full_error(
    cause: BaseException, *, folder: Path, needed: int | None = None, kept: str = ""
) -> DiskFullError:
    """The one line for a full disk: where, how much is free (and needed, if known), what
    was kept, and how to go on."""
    if isinstance(cause, DiskFullError):
        return cause
    filename = getattr(cause, "filename", None)
    where = Path(filename).parent if filename else folder
    what = "disk quota exceeded" if getattr(cause, "errno", None) == errno.EDQUOT else "disk full"
    try:
        free = f"{_size(shutil.disk_usage(where).free)} free"
    except OSError:
        free = "free space unknown"
    need = f", about {_size(needed)} needed" if needed else ""
    return DiskFullError(
        f"{what}: out of space writing to {where} ({free}{need}); {kept}"
        "free some space and run the same command again to continue"
    )


@contextlib.contextmanager
def disk_full_stops(folder: Path) -> Iterator[None]:
    """Any error that a full disk caused inside the block leaves it as one DiskFullError."""
    try:
        yield
    except Exception as exc:
        cause = disk_full_cause(exc)
        if cause is None:
            raise
        raise disk_full_error(cause, folder=folder) from None


def _keras_tuner_error(exc: BaseException, name: str) -> bool:
    import sys

    kt = sys.modules.get("keras_tuner")
    cls = getattr(getattr(kt, "errors", None), name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def is_fatal(exc: BaseException) -> bool:
    """``keras_tuner.errors.FatalError`` (or a subclass): KerasTuner stops the search."""
    return _keras_tuner_error(exc, "FatalError")


def is_failed_trial(exc: BaseException) -> bool:
    """``keras_tuner.errors.FailedTrialError``: the trial failed, not retried."""
    return _keras_tuner_error(exc, "FailedTrialError")


CAUSE_CHARS = 300  # the most of a message the error column keeps
_NOISE = (
    "Graph execution error",
    "File ",
    "[[",
    "Traceback",
    "Detected at node",
    "<stack traces unavailable>",
    "Exception encountered when calling",  # Keras' layer-call wrapper: the cause follows
    "Arguments received by",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Keras prints the cause of a layer call in bold
# where TensorFlow runs the user's Python (a generator, a PyDataset): the user's error is
# the reason line, "RuntimeError: disk read failed", and names its own type
_PY_OPS = ("PyFunc", "EagerPyFunc", "PyFuncStateless")
_PY_ERROR = re.compile(r"[A-Za-z_][\w.]*: \S")  # "RuntimeError: ...", "mod.MyError: ..."
FILE_NOTE = "file: "  # a note added to an exception that a file caused (sweep.train.causes)


def _reason_and_op(message: str) -> tuple[str, str]:
    lines = [_ANSI.sub("", line).strip() for line in message.strip().splitlines()]
    op = ""
    for line in lines:
        found = re.match(r"Detected at node '?([^' ]+)'? defined at", line)
        if found:
            op = found.group(1).rsplit("/", 1)[-1]
            break
    reason = next((line for line in lines if line and not line.startswith(_NOISE)), "")
    if not reason:
        reason = next((line for line in lines if line), "")
    return reason, op


def _short(reason: str) -> str:
    return reason if len(reason) <= CAUSE_CHARS else reason[: CAUSE_CHARS - 3] + "..."


def cause_line(message: str) -> str:
    """The line of an error message that names its cause, at most ``CAUSE_CHARS`` long.

    TensorFlow's runtime errors open with "Graph execution error:", then where the op
    was defined (a Python stack, or "<stack traces unavailable>"), then the reason; the
    reason is kept, with the op named on the "Detected at node" line. Keras' "Exception
    encountered when calling ..." is followed by the cause (the shapes), which is kept.
    """
    reason, op = _reason_and_op(message)
    if op and op not in reason:
        reason = f"{reason} (op {op})"
    return _short(reason)


def error_text(exc: BaseException) -> str:
    """``Type: cause`` of an exception, for the error column and the printed line. An
    error raised by the user's Python inside TensorFlow (a generator's, a PyDataset's)
    is shown as the user's own ``RuntimeError: ...``, not TensorFlow's ``UnknownError``;
    a file named in a note (``FILE_NOTE``, e.g. a corrupt image) is appended."""
    if isinstance(exc, SweepError):
        return str(exc)
    reason, op = _reason_and_op(str(exc))
    if op in _PY_OPS and _PY_ERROR.match(reason):
        text = _short(reason)
    else:
        text = f"{type(exc).__name__}: {cause_line(str(exc))}".strip().removesuffix(":")
    files = [n for n in getattr(exc, "__notes__", []) if str(n).startswith(FILE_NOTE)]
    return "; ".join([text, *files])
