"""The error taxonomy: what stops the sweep, and what only fails one trial.

Messages are written for the person at the terminal: what was expected, what
was found, and how to fix it, on one line.
"""

from __future__ import annotations


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


class FatalTrialError(SweepError):
    """The user's code raised KerasTuner's ``FatalError``: stop the sweep (exit 1)."""

    exit_code = 1


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
