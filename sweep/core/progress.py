"""The plain lines: what the person reads where there is no live display, and sweep.log.

``PlainProgress`` is an observer (``sweep.core.observers``): one timestamped line per
finished trial and message, and per epoch when ``epochs`` is set. ``describe_trial``
is the line a finished trial gets on every display.
"""

from __future__ import annotations

import datetime as _dt
from typing import TextIO

from sweep.core.durations import format_duration
from sweep.core.observers import EpochEvent, Observer, SweepStart, TrialEvent, TrialStart
from sweep.core.record import State


def describe_trial(event: TrialEvent) -> str:
    if event.state is State.FAILED:
        took = format_duration(event.duration_s)
        return f"trial {event.trial} failed after {took}: {event.error}"
    score = "-" if event.best_score is None else f"{event.best_score:.6g}"
    why = {"early_stopping": "early stopping", "budget": "time budget", "pruned": "the pruner"}.get(
        event.stop_reason, ""
    )
    return (
        f"trial {event.trial} {event.state}: best {event.monitor}={score} at epoch "
        f"{event.best_epoch}, stopped at epoch {event.stop_epoch}"
        f"{f' by {why}' if why else ''} ({format_duration(event.duration_s)})"
    )


def describe_epoch(event: EpochEvent) -> str:
    best = "-" if event.best is None else f"{event.best:.6g}"
    return (
        f"trial {event.trial} epoch {event.epoch}/{event.max_epochs}: "
        f"{event.monitor}={event.value:.6g} (best {best})"
    )


class PlainProgress(Observer):
    """Timestamped lines: one per finished trial, and per epoch when ``epochs`` is set.

    ``prefix`` (e.g. ``[w1] ``) marks the lines of one worker among several.
    """

    def __init__(self, stream: TextIO, *, epochs: bool = False, prefix: str = "") -> None:
        self.stream = stream
        self.epochs = epochs
        self.prefix = prefix

    def _line(self, text: str) -> None:
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        self.stream.write(f"{stamp} {self.prefix}{text}\n")  # one write: whole lines
        self.stream.flush()

    def relayed(self, line: str) -> None:
        self.stream.write(f"{line}\n")  # a worker's line, already stamped
        self.stream.flush()

    def sweep_started(self, event: SweepStart) -> None:
        self._line(event.text)

    def message(self, text: str) -> None:
        self._line(text)

    def trial_started(self, event: TrialStart) -> None:
        if self.epochs:
            self._line(f"trial {event.trial} {'resumed' if event.resumed else 'started'}")

    def epoch_ended(self, event: EpochEvent) -> None:
        if self.epochs:
            self._line(describe_epoch(event))

    def trial_ended(self, event: TrialEvent) -> None:
        self._line(describe_trial(event))
