"""Trackers: where a sweep's trials are also shown (TensorBoard, MLflow), as they run.

The extension point is ``Tracker``, a small base class in the style of Optuna's
samplers: three methods, each with a do-nothing default. The trial calls
``trial_started`` once its hyperparameters are known (after ``build_model``), the
recorder calls ``epoch_ended`` after each epoch's resume point is saved, and the
session calls ``trial_ended`` once the study was told. A resumed trial gets
``trial_started`` again, with the epochs its resume point already holds
(``TrialStart.history``), so a tracker can fill in what a kill kept from it.

No TensorFlow and no MLflow here: the implementations import them, and only a sweep
that trains with ``--tensorboard`` or ``--mlflow`` loads them (``sweep.integrations.trackers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweep.core.record import TrialRecord


@dataclass(frozen=True, kw_only=True)
class TrialStart:
    """A trial whose hyperparameters are known: starting, or resuming after ``history``."""

    number: int
    params: dict[str, Any]  # the values Optuna gave (patience/min_delta when they are asked)
    # where each value came from: Optuna's distributions (sweep.train.hparams maps KerasTuner's
    # hp objects onto them one to one)
    distributions: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # epochs done before
    attrs: Mapping[str, Any] = field(default_factory=dict)  # the trial's user attrs so far
    monitor: str = "val_loss"


class Tracker:
    """Shows trials somewhere else as they run. Subclasses override what they need.

    A tracker must not fail a trial: one that cannot reach its service says so (one
    warning line per trial) and stops logging that trial.
    """

    def trial_started(self, start: TrialStart) -> dict[str, Any]:
        """Called when the trial's hyperparameters are known; returns user attrs to record
        on the trial (e.g. a run id, so that a resumed trial continues its own run)."""
        return {}

    def epoch_ended(self, trial: int, epoch: int, logs: Mapping[str, float]) -> None:
        """Called after each epoch (1-based), with every key of the epoch's logs."""

    def trial_ended(self, record: TrialRecord) -> None:
        """Called once the trial is finished (complete, pruned or failed) and told."""

    def close(self) -> None:
        """Called when this process runs no more trials."""


class Trackers(Tracker):
    """Several trackers as one, called in order."""

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        self.trackers = list(trackers)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def trial_started(self, start: TrialStart) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        for t in self.trackers:
            attrs.update(t.trial_started(start))
        return attrs

    def epoch_ended(self, trial: int, epoch: int, logs: Mapping[str, float]) -> None:
        for t in self.trackers:
            t.epoch_ended(trial, epoch, logs)

    def trial_ended(self, record: TrialRecord) -> None:
        for t in self.trackers:
            t.trial_ended(record)

    def close(self) -> None:
        for t in self.trackers:
            t.close()
