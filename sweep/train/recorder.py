"""The Keras callback that records a trial, epoch by epoch.

It owns our one definition of best: the epoch with the best monitored value
among the epochs trained, earliest on ties (strict comparison, no min_delta).
On each such epoch the model becomes ``best.keras``, so the checkpoint and the
reported best_score always name the same epoch, whatever EarlyStopping's
min_delta says. At every epoch end it also commits the trial's resume point,
writes ``history.csv``, reports the monitored value to Optuna, fails fast on a
missing monitor or a NaN loss, and stops at the epoch boundary when asked to
(time budget, Ctrl+C).

It must come last in the callback list (after EarlyStopping and the user's callbacks),
so that the resume point holds their counters for the same epoch.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from typing import Any

import keras

from sweep.core.atomic import write_text_atomic
from sweep.core.direction import Direction
from sweep.core.errors import MonitorMissingError
from sweep.core.observers import EpochEvent, Observer
from sweep.core.record import StopReason
from sweep.train.callbacks import CallbackStates, StopWatch
from sweep.train.resume import ResumableEarlyStopping, ResumeDir, ResumeState


def history_csv(rows: list[dict[str, float]]) -> str:
    keys: list[str] = ["epoch"]
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def missing_monitor_message(monitor: str, keys: list[str]) -> str:
    hint = ""
    if monitor.startswith("val_") and not any(k.startswith("val_") for k in keys):
        hint = (
            "; there is no validation data: return a validation pair from load_data, "
            "or set --validation-split above 0"
        )
    elif keys:
        hint = "; set --monitor (or SETTINGS['monitor']) to one of them"
    return f"monitor {monitor!r} is not in the epoch logs; the logs have: {', '.join(keys)}{hint}"


class TrialRecorder(keras.callbacks.Callback):  # type: ignore[misc]
    def __init__(
        self,
        *,
        trial_number: int,
        monitor: str,
        mode: Direction,
        max_epochs: int,
        resume: ResumeDir,
        stopper: ResumableEarlyStopping,
        history_path: Any,
        report: Callable[[float, int], None] | None = None,
        observer: Observer | None = None,
        stop_request: Callable[[], str | None] | None = None,
        should_prune: Callable[[], bool] | None = None,
        user_callbacks: CallbackStates | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be resolved to 'min' or 'max', got {mode!r}")
        self.trial_number = trial_number
        self.monitor = monitor
        self.mode = Direction(mode)
        self.max_epochs = max_epochs
        self.resume = resume
        self.stopper = stopper
        self.history_path = history_path
        self.report = report
        self.observer = observer
        self.stop_request = stop_request
        self.should_prune = should_prune
        self.user_callbacks = user_callbacks
        self._callback_states: list[Any] | None = None  # to hand back at on_train_begin
        self.history: list[dict[str, float]] = []
        self.best_score: float | None = None
        self.best_epoch: int | None = None  # 1-based
        self.failure: str | None = None
        # "budget" or "interrupted" when asked to stop, "pruned" when the pruner said so
        self.stop_reason: StopReason | None = None
        self.watch = StopWatch()  # which user callback stopped training, if one did

    def restore(self, state: ResumeState) -> None:
        self.history = [dict(row) for row in state.history]
        self.best_score = state.best_score
        self.best_epoch = state.best_epoch
        self._callback_states = state.callbacks
        self.watch.by = state.stopped_by
        write_text_atomic(self.history_path, history_csv(self.history))

    @property
    def checkpoint_path(self) -> Any:
        return self.resume.checkpoint

    @property
    def stop_epoch(self) -> int:
        """The last epoch trained, 1-based (0 before the first epoch ends)."""
        return len(self.history)

    @property
    def stopped_by(self) -> str | None:
        """The user callback that ended training before max_epochs, if one did."""
        return self.watch.by if self.stop_epoch < self.max_epochs else None

    def is_better(self, value: float) -> bool:
        return Direction(self.mode).better(value, self.best_score)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        epochs = (self.params or {}).get("epochs")
        if isinstance(epochs, int) and epochs > 0:  # a HyperModel's fit may choose its epochs
            self.max_epochs = epochs
        # last in the list: every user callback has reset itself by now
        if self.user_callbacks is not None:
            self.user_callbacks.restore(self._callback_states)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        if self.monitor not in logs:
            raise MonitorMissingError(missing_monitor_message(self.monitor, sorted(logs)))
        number = epoch + 1
        row: dict[str, float] = {"epoch": number}
        row.update({k: float(v) for k, v in logs.items()})
        self.history.append(row)
        value = row[self.monitor]
        improved = self.is_better(value)
        if improved:
            self.best_score, self.best_epoch = value, number
        self.resume.save(
            self.model,
            epochs_done=number,
            history=self.history,
            best_score=self.best_score,
            best_epoch=self.best_epoch,
            stopper=self.stopper.snapshot(),
            improved=improved,
            callbacks=None if self.user_callbacks is None else self.user_callbacks.snapshot(),
            stopped_by=self.watch.by,
        )
        write_text_atomic(self.history_path, history_csv(self.history))
        if self.report is not None and math.isfinite(value):
            self.report(value, number)
        loss = row.get("loss", 0.0)
        if not math.isfinite(loss):
            self.failure = f"loss became {loss} at epoch {number}"
            self.model.stop_training = True
        elif not self.model.stop_training and number < self.max_epochs:
            # EarlyStopping (earlier in the list) has had its say; the checkpoint is saved
            reason = self.stop_request() if self.stop_request is not None else None
            if reason is None and self.should_prune is not None and math.isfinite(value):
                reason = StopReason.PRUNED if self.should_prune() else None
            if reason is not None:
                self.stop_reason = StopReason(reason)
                self.model.stop_training = True
        if self.observer is not None:  # after the resume point: a resumed trial fills in
            self.observer.epoch_ended(
                EpochEvent(
                    trial=self.trial_number,
                    epoch=number,
                    max_epochs=self.max_epochs,
                    monitor=self.monitor,
                    value=value,
                    best=self.best_score,
                    logs=row,
                )
            )
