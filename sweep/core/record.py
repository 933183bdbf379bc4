"""What a trial (and a study) records on the Optuna storage, as typed records.

This module is the one place where user-attr keys are spelled: ``TrialRecord``'s
field names are the trial's attr keys, ``StudyAttr`` names the study's. Everything
else reads through ``TrialRecord.from_trial`` / ``recorded`` and writes through
``write`` / ``write_stored`` (tests/test_record.py holds it). No TensorFlow here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from sweep.core.direction import Direction

__all__ = [
    "Direction",
    "State",
    "StopReason",
    "StudyAttr",
    "TrialRecord",
    "from_trial",
    "read_study",
    "recorded",
    "started_facts",
    "write",
    "write_study",
]


class StopReason(StrEnum):
    """Why a trial stopped training (the table's stop_reason column)."""

    EARLY_STOPPING = "early_stopping"
    MAX_EPOCHS = "max_epochs"
    BUDGET = "budget"
    PRUNED = "pruned"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CALLBACK = "callback"  # a callback from callbacks(hp) set model.stop_training (stopped_by)


class State(StrEnum):
    """A trial's state as the table writes it (Optuna's ``TrialState``, in our words)."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    RUNNING = "running"
    WAITING = "waiting"

    @classmethod
    def of(cls, trial_state: Any) -> State:
        """The state of an Optuna ``TrialState``."""
        name = {"FAIL": "failed"}.get(trial_state.name, trial_state.name.lower())
        return cls(name)


class StudyAttr(StrEnum):
    """The study's user-attr keys."""

    MONITOR = "monitor"
    MODE = "mode"
    SPACE = "space"
    PLAN = "sweep_plan"
    FINGERPRINT = "space_fingerprint"
    TEST_SCORE = "test_score"
    VALIDATION_FINGERPRINT = "validation_fingerprint"  # the data export verifies against
    MLFLOW_PARENT_RUN = "mlflow_parent_run_id"  # the study's MLflow run (--mlflow)


CURVE = "curve"  # in an execution's facts: its monitored value by epoch (str(epoch) -> value)


def execution_key(execution: int) -> str:
    """The user attr holding execution ``execution``'s own facts (a dict of TrialRecord
    field names, plus its ``curve``), for ``executions_per_trial`` > 1."""
    return f"execution_{execution}"


def execution_facts(trial: Any) -> list[dict[str, Any]]:
    """The facts of each execution of a trial trained ``executions_per_trial`` times."""
    attrs = trial.user_attrs
    count = int(attrs.get("executions", 1))
    return [dict(attrs.get(execution_key(e)) or {}) for e in range(count)] if count > 1 else []


def read_study(study: Any, key: StudyAttr, default: Any = None) -> Any:
    return study.user_attrs.get(key.value, default)


def write_study(study: Any, key: StudyAttr, value: Any) -> None:
    study.set_user_attr(key.value, value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One trial of a study: what it was given and what it did. Epochs are 1-based.

    Every field but ``number``, ``state`` and ``params`` is a user attr of the trial,
    under the field's own name."""

    number: int
    state: State  # complete, pruned, failed, running, waiting (the table's state column)
    params: dict[str, Any] = field(default_factory=dict)
    best_score: float | None = None
    best_epoch: int | None = None
    stop_epoch: int | None = None  # the last epoch trained (so far, while running)
    max_epochs: int | None = None
    stop_reason: StopReason | None = None
    stopped_by: str = ""  # the class of the callback that stopped training (stop_reason callback)
    early_stopped: bool | None = None
    patience: int | None = None
    min_delta: float | None = None
    calibration: bool | None = None  # trained to max_epochs with early stopping off
    duration_s: float | None = None
    worker: str = ""
    checkpoint: Path | None = None  # the best epoch's model, as recorded (may be deleted)
    error: str = ""
    monitor: str | None = None
    mode: str | None = None
    resumed_from: int = 0  # epochs done before the last process took the trial over
    keras_best_epoch: int | None = None  # EarlyStopping's own best_epoch (honours min_delta)
    baseline: float | None = None
    start_from_epoch: int | None = None
    batch_size: int | None = None
    trial_dir: Path | None = None  # absolute, where the trial was made
    data_seed: int | None = None
    owner: str | None = None  # the process that runs it (ownership)
    owner_host: str | None = None
    space_fingerprint: dict[str, Any] | None = None
    space_changed: bool = False  # resumed under another version of its space
    objective_source: str | None = None  # monitor, or fit (what a HyperModel's fit returned)
    epochs_from_fit: bool = False  # the HyperModel's fit chose its epochs (max_epochs)
    retries: int = 0  # reruns from scratch after an exception (max_retries_per_trial)
    device: str = ""  # what it trained on: GPU:1, GPU:0,1, CPU (this process's devices)
    mlflow_run_id: str = ""  # the trial's MLflow run (--mlflow), continued on resume
    resume_note: str = ""  # what a resume could not carry over (a callback's state), if any
    executions: int = 1  # executions_per_trial: best_score is the mean of their best scores
    best_execution: int | None = None  # the execution whose model is the checkpoint
    best_execution_score: float | None = None  # that execution's own best score

    @classmethod
    def from_trial(cls, trial: Any, *, now: float | None = None) -> TrialRecord:
        return from_trial(trial, now=now)

    def to_attrs(self) -> dict[str, Any]:
        """The user attrs this record stands for (fields that are set), JSON-ready."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _NOT_ATTRS or value is None:
                continue
            out[f.name] = _attr_value(value)
        return out

    @property
    def direction(self) -> Direction | None:
        return None if self.mode is None else Direction.from_mode(self.mode)


_NOT_ATTRS = frozenset({"number", "state", "params"})
ATTR_KEYS = frozenset(f.name for f in fields(TrialRecord)) - _NOT_ATTRS


def _attr_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def _key(name: str) -> str:
    if name not in ATTR_KEYS:
        raise KeyError(f"TrialRecord has no field {name!r}")
    return name


def write(trial: Any, **facts: Any) -> None:
    """Record ``facts`` (TrialRecord field names) on a live Optuna trial."""
    for name, value in facts.items():
        trial.set_user_attr(_key(name), _attr_value(value))


def write_stored(storage: Any, trial_id: int, **facts: Any) -> None:
    """Record ``facts`` on a trial through its storage (a trial this process has no handle on)."""
    for name, value in facts.items():
        storage.set_trial_user_attr(trial_id, _key(name), _attr_value(value))


def started_facts(
    *,
    monitor: str,
    mode: str,
    max_epochs: int,
    patience: int,
    min_delta: float,
    calibration: bool,
    baseline: float | None,
    start_from_epoch: int,
    batch_size: int | None,
) -> dict[str, Any]:
    """The settings a trial records when it starts and must match when it resumes, by
    field name (``write(trial, **facts)`` records them)."""
    return {k: v for k, v in locals().items()}


def recorded(trial: Any) -> dict[str, Any]:
    """The facts an Optuna trial has recorded, raw, by field name (only those it has)."""
    if isinstance(trial, TrialRecord):
        raise TypeError("recorded() reads an Optuna trial; a TrialRecord has its fields")
    return {k: v for k, v in trial.user_attrs.items() if k in ATTR_KEYS}


def _reason(value: Any) -> StopReason | None:
    if value is None or value == "":
        return None
    try:
        return StopReason(value)
    except ValueError:
        return None


def from_trial(trial: Any, *, now: float | None = None) -> TrialRecord:
    """The record of an Optuna ``FrozenTrial`` (or live trial)."""
    attrs = trial.user_attrs
    state = State.of(trial.state)
    duration = attrs.get("duration_s")
    if duration is None and trial.datetime_start is not None:
        end = trial.datetime_complete.timestamp() if trial.datetime_complete else None
        end = end if end is not None else (now or time.time())
        duration = round(end - trial.datetime_start.timestamp(), 3)
    stop_epoch = attrs.get("stop_epoch")
    if state is State.RUNNING:
        steps = trial.intermediate_values
        stop_epoch = max(steps) if steps else None  # epochs done so far
    checkpoint, trial_dir = attrs.get("checkpoint"), attrs.get("trial_dir")
    early, calibration = attrs.get("early_stopped"), attrs.get("calibration")
    return TrialRecord(
        number=int(trial.number),
        state=state,
        params=dict(trial.params),
        best_score=_float(attrs.get("best_score")),
        best_epoch=_int(attrs.get("best_epoch")),
        stop_epoch=_int(stop_epoch),
        max_epochs=_int(attrs.get("max_epochs")),
        stop_reason=_reason(attrs.get("stop_reason")),
        stopped_by=str(attrs.get("stopped_by", "")),
        early_stopped=None if early is None else bool(early),
        patience=_int(attrs.get("patience")),
        min_delta=attrs.get("min_delta"),  # as recorded: the table shows a whole 0 as 0
        calibration=None if calibration is None else bool(calibration),
        duration_s=_float(duration),
        worker=str(attrs.get("worker", "")),
        checkpoint=Path(checkpoint) if checkpoint else None,
        error=str(attrs.get("error", "")),
        monitor=attrs.get("monitor"),
        mode=attrs.get("mode"),
        resumed_from=int(attrs.get("resumed_from", 0)),
        keras_best_epoch=_int(attrs.get("keras_best_epoch")),
        baseline=_float(attrs.get("baseline")),
        start_from_epoch=_int(attrs.get("start_from_epoch")),
        batch_size=_int(attrs.get("batch_size")),
        trial_dir=Path(trial_dir) if trial_dir else None,
        data_seed=_int(attrs.get("data_seed")),
        owner=attrs.get("owner"),
        owner_host=attrs.get("owner_host"),
        space_fingerprint=attrs.get("space_fingerprint"),
        space_changed=bool(attrs.get("space_changed", False)),
        objective_source=attrs.get("objective_source"),
        epochs_from_fit=bool(attrs.get("epochs_from_fit", False)),
        retries=int(attrs.get("retries", 0)),
        device=str(attrs.get("device", "")),
        mlflow_run_id=str(attrs.get("mlflow_run_id", "")),
        resume_note=str(attrs.get("resume_note", "")),
        executions=int(attrs.get("executions", 1)),
        best_execution=_int(attrs.get("best_execution")),
        best_execution_score=_float(attrs.get("best_execution_score")),
    )
