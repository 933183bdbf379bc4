"""The progress layer: the only way code below the CLI tells the person anything.

The driver emits events; the CLI chooses where they go: a live display on a
terminal (``live``), plain timestamped lines otherwise, and always sweep.log.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Protocol, TextIO

from sweep.core.durations import format_duration
from sweep.core.record import State


@dataclass(frozen=True, kw_only=True)
class SweepStart:
    text: str
    target: int
    done: int  # trials the study had finished before this session
    timeout_s: float | None = None
    maximize: bool = False
    best: tuple[int, float] | None = None  # trial number and score of the best so far


@dataclass(frozen=True, kw_only=True)
class TrialStart:
    trial: int
    resumed: bool = False


@dataclass(frozen=True, kw_only=True)
class EpochEvent:
    trial: int
    epoch: int  # 1-based
    max_epochs: int
    monitor: str
    value: float
    best: float | None


@dataclass(frozen=True, kw_only=True)
class RunningTrial:
    """A running trial as the study storage shows it (for displays fed by polling)."""

    trial: int
    worker: str
    epoch: int
    max_epochs: int
    value: float | None
    started: float


@dataclass(frozen=True, kw_only=True)
class TrialEvent:
    trial: int
    state: State
    monitor: str
    best_score: float | None
    best_epoch: int | None
    stop_epoch: int | None
    duration_s: float
    error: str = ""
    stop_reason: str = ""


class Progress(Protocol):
    def sweep_started(self, event: SweepStart) -> None: ...
    def message(self, text: str) -> None: ...
    def trial_started(self, event: TrialStart) -> None: ...
    def epoch_ended(self, event: EpochEvent) -> None: ...
    def trial_ended(self, event: TrialEvent) -> None: ...
    def relayed(self, line: str) -> None: ...
    def study_state(
        self, done: int, running: list[RunningTrial], best: tuple[int, float] | None
    ) -> None: ...


class NullProgress:
    def sweep_started(self, event: SweepStart) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def trial_started(self, event: TrialStart) -> None:
        pass

    def epoch_ended(self, event: EpochEvent) -> None:
        pass

    def trial_ended(self, event: TrialEvent) -> None:
        pass

    def relayed(self, line: str) -> None:
        pass

    def study_state(
        self, done: int, running: list[RunningTrial], best: tuple[int, float] | None
    ) -> None:
        pass


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


class PlainProgress(NullProgress):
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


class FanOut:
    def __init__(self, *targets: Progress) -> None:
        self.targets = targets

    def sweep_started(self, event: SweepStart) -> None:
        for t in self.targets:
            t.sweep_started(event)

    def message(self, text: str) -> None:
        for t in self.targets:
            t.message(text)

    def trial_started(self, event: TrialStart) -> None:
        for t in self.targets:
            t.trial_started(event)

    def epoch_ended(self, event: EpochEvent) -> None:
        for t in self.targets:
            t.epoch_ended(event)

    def trial_ended(self, event: TrialEvent) -> None:
        for t in self.targets:
            t.trial_ended(event)

    def relayed(self, line: str) -> None:
        for t in self.targets:
            t.relayed(line)

    def study_state(
        self, done: int, running: list[RunningTrial], best: tuple[int, float] | None
    ) -> None:
        for t in self.targets:
            t.study_state(done, running, best)
