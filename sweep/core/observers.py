"""Observers: everything that watches a sweep as it runs, through one interface.

``Observer`` is a base class in the style of Ray Tune's ``Callback``: one method per
moment of a sweep, each doing nothing by default, so an observer overrides the ones it
needs. The terminal display (``sweep.api.live``), the notebook display, the plain lines
and sweep.log (``sweep.core.progress``), TensorBoard and MLflow (``sweep.integrations``)
are observers. ``Observers`` is several as one, called in order.

The moments, in the order they come:

- ``sweep_started`` / ``sweep_ended``: the sweep as a whole, in the process that
  prepared it (``sweep run``), before its first trial and once its workers stopped.
- ``trial_started``: a trial starts, or resumes, in this process.
- ``trial_built``: its model is built, so its hyperparameters are known (Optuna asks
  them while ``build_model`` runs); returns user attrs to record on the trial (a run id,
  so that a resumed trial continues its own run). A resumed trial's event holds the
  epochs its resume point already has, so that an observer can fill in what a kill kept
  from it.
- ``epoch_ended``: after each epoch, once its resume point is saved and its value
  reported to the study.
- ``trial_ended``: the trial finished (complete, pruned or failed) and the study was told.
- ``close``: this process runs no more trials.

Besides these: ``message`` (a line for the person), ``relayed`` (a line another worker
wrote to sweep.log) and ``study_state`` (the study as a display polls it while other
workers run). An observer must not fail a trial: one that cannot reach its service says
so through ``message`` and stops logging that trial.

No TensorFlow and no Optuna here; the observers that need them import them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sweep.core.record import State, TrialRecord


class SweepEnd(StrEnum):
    """Why a sweep (or one worker's part of it) starts no more trials."""

    TARGET_REACHED = "target reached"
    BUDGET_SPENT = "time budget spent"

    @classmethod
    def of_workers(cls, ends: list[SweepEnd]) -> SweepEnd:
        """The sweep's end, from each worker's: the budget, if any worker spent it."""
        return cls.BUDGET_SPENT if cls.BUDGET_SPENT in ends else ends[0]


@dataclass(frozen=True, kw_only=True)
class SweepStart:
    text: str
    target: int
    done: int  # trials the study had finished before this session
    timeout_s: float | None = None
    maximize: bool = False
    best: tuple[int, float] | None = None  # trial number and score of the best so far


@dataclass(frozen=True, kw_only=True)
class SweepEnded:
    reason: SweepEnd  # why its workers started no more trials


@dataclass(frozen=True, kw_only=True)
class TrialStart:
    """A trial starting in this process, or resuming one a process that is gone left."""

    trial: int
    resumed: bool = False


@dataclass(frozen=True, kw_only=True)
class TrialBuilt:
    """A trial whose model is built: its hyperparameters are known."""

    trial: int
    params: dict[str, Any]  # the values Optuna gave (patience/min_delta when they are asked)
    # where each value came from: Optuna's distributions (sweep.train.hparams maps KerasTuner's
    # hp objects onto them one to one)
    distributions: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # epochs done before
    attrs: Mapping[str, Any] = field(default_factory=dict)  # the trial's user attrs so far
    monitor: str = "val_loss"


@dataclass(frozen=True, kw_only=True)
class EpochEvent:
    trial: int
    epoch: int  # 1-based
    max_epochs: int
    monitor: str
    value: float
    best: float | None
    logs: Mapping[str, float] = field(default_factory=dict)  # every key of the epoch's logs


@dataclass(frozen=True, kw_only=True)
class TrialEvent:
    """A trial that finished in this process, with its record as the study holds it."""

    record: TrialRecord
    state: State
    monitor: str
    error: str = ""

    @property
    def trial(self) -> int:
        return self.record.number

    @property
    def best_score(self) -> float | None:
        return self.record.best_score

    @property
    def best_epoch(self) -> int | None:
        return self.record.best_epoch

    @property
    def stop_epoch(self) -> int | None:
        return self.record.stop_epoch

    @property
    def duration_s(self) -> float:
        return float(self.record.duration_s or 0.0)

    @property
    def stop_reason(self) -> str:
        return str(self.record.stop_reason or "")


@dataclass(frozen=True, kw_only=True)
class RunningTrial:
    """A running trial as the study storage shows it (for displays fed by polling)."""

    trial: int
    worker: str
    epoch: int
    max_epochs: int
    value: float | None
    started: float


class Observer:
    """Watches a sweep as it runs; every method does nothing unless overridden."""

    def sweep_started(self, event: SweepStart) -> None:
        """The sweep prepared, before its first trial."""

    def sweep_ended(self, event: SweepEnded) -> None:
        """Its workers stopped (the target reached, or the time budget spent)."""

    def trial_started(self, event: TrialStart) -> None:
        """A trial starts or resumes in this process."""

    def trial_built(self, event: TrialBuilt) -> Mapping[str, Any]:
        """The trial's model is built; returns user attrs to record on the trial."""
        return {}

    def epoch_ended(self, event: EpochEvent) -> None:
        """An epoch of a trial (1-based) ended and was recorded."""

    def trial_ended(self, event: TrialEvent) -> None:
        """A trial finished (complete, pruned or failed) and the study was told."""

    def message(self, text: str) -> None:
        """A line for the person."""

    def relayed(self, line: str) -> None:
        """A line another worker wrote to sweep.log (already stamped and prefixed)."""

    def study_state(
        self, done: int, running: list[RunningTrial], best: tuple[int, float] | None
    ) -> None:
        """The study as polled while other workers run trials."""

    def close(self) -> None:
        """This process runs no more trials."""


class Observers(Observer):
    """Several observers as one, called in the order given."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def sweep_started(self, event: SweepStart) -> None:
        for o in self.observers:
            o.sweep_started(event)

    def sweep_ended(self, event: SweepEnded) -> None:
        for o in self.observers:
            o.sweep_ended(event)

    def trial_started(self, event: TrialStart) -> None:
        for o in self.observers:
            o.trial_started(event)

    def trial_built(self, event: TrialBuilt) -> Mapping[str, Any]:
        attrs: dict[str, Any] = {}
        for o in self.observers:
            attrs.update(o.trial_built(event))
        return attrs

    def epoch_ended(self, event: EpochEvent) -> None:
        for o in self.observers:
            o.epoch_ended(event)

    def trial_ended(self, event: TrialEvent) -> None:
        for o in self.observers:
            o.trial_ended(event)

    def message(self, text: str) -> None:
        for o in self.observers:
            o.message(text)

    def relayed(self, line: str) -> None:
        for o in self.observers:
            o.relayed(line)

    def study_state(
        self, done: int, running: list[RunningTrial], best: tuple[int, float] | None
    ) -> None:
        for o in self.observers:
            o.study_state(done, running, best)

    def close(self) -> None:
        for o in self.observers:
            o.close()
