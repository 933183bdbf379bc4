"""What one trial recorded on the study, as one typed record.

``from_trial`` is the one function that reads a trial's user attrs for the Python API;
no TensorFlow here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_NAMES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One trial of a study: what it was given and what it did. Epochs are 1-based."""

    number: int
    state: str  # complete, pruned, failed, running, waiting (the table's state column)
    params: dict[str, Any] = field(default_factory=dict)
    best_score: float | None = None
    best_epoch: int | None = None
    stop_epoch: int | None = None  # the last epoch trained (so far, while running)
    max_epochs: int | None = None
    stop_reason: str = ""  # early_stopping, max_epochs, budget, pruned, failed
    early_stopped: bool | None = None
    patience: int | None = None
    min_delta: float | None = None
    calibration: bool = False  # trained to max_epochs with early stopping off
    duration_s: float | None = None
    worker: str = ""
    checkpoint: Path | None = None  # the best epoch's model, as recorded (may be deleted)
    error: str = ""
    monitor: str | None = None
    mode: str | None = None
    resumed_from: int = 0  # epochs done before the last process took the trial over
    keras_best_epoch: int | None = None  # EarlyStopping's own best_epoch (honours min_delta)
    device: str = ""  # what it trained on: GPU:1, GPU:0,1, CPU (this process's devices)
    mlflow_run_id: str = ""  # the trial's MLflow run (--mlflow), continued on resume
    resume_note: str = ""  # what a resume could not carry over (a callback's state), if any
    executions: int = 1  # executions_per_trial: best_score is the mean of their best scores
    best_execution: int | None = None  # the execution whose model is the checkpoint
    best_execution_score: float | None = None  # that execution's own best score


def from_trial(trial: Any, *, now: float | None = None) -> TrialRecord:
    """The record of an Optuna ``FrozenTrial``."""
    attrs = trial.user_attrs
    state = STATE_NAMES.get(trial.state.name, trial.state.name.lower())
    duration = attrs.get("duration_s")
    if duration is None and trial.datetime_start is not None:
        end = trial.datetime_complete.timestamp() if trial.datetime_complete else None
        end = end if end is not None else (now or time.time())
        duration = round(end - trial.datetime_start.timestamp(), 3)
    stop_epoch = attrs.get("stop_epoch")
    if state == "running":
        steps = trial.intermediate_values
        stop_epoch = max(steps) if steps else None  # epochs done so far
    checkpoint = attrs.get("checkpoint")
    return TrialRecord(
        number=int(trial.number),
        state=state,
        params=dict(trial.params),
        best_score=_float(attrs.get("best_score")),
        best_epoch=_int(attrs.get("best_epoch")),
        stop_epoch=_int(stop_epoch),
        max_epochs=_int(attrs.get("max_epochs")),
        stop_reason=str(attrs.get("stop_reason", "")),
        early_stopped=attrs.get("early_stopped"),
        patience=_int(attrs.get("patience")),
        min_delta=_float(attrs.get("min_delta")),
        calibration=bool(attrs.get("calibration", False)),
        duration_s=_float(duration),
        worker=str(attrs.get("worker", "")),
        checkpoint=Path(checkpoint) if checkpoint else None,
        error=str(attrs.get("error", "")),
        monitor=attrs.get("monitor"),
        mode=attrs.get("mode"),
        resumed_from=int(attrs.get("resumed_from", 0)),
        keras_best_epoch=_int(attrs.get("keras_best_epoch")),
        device=str(attrs.get("device", "")),
        mlflow_run_id=str(attrs.get("mlflow_run_id", "")),
        resume_note=str(attrs.get("resume_note", "")),
        executions=int(attrs.get("executions", 1)),
        best_execution=_int(attrs.get("best_execution")),
        best_execution_score=_float(attrs.get("best_execution_score")),
    )
