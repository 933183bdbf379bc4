"""The Keras callback that records a trial, epoch by epoch.

It owns our one definition of best: the epoch with the best monitored value
among the epochs trained, earliest on ties (strict comparison, no min_delta).
On each such epoch it saves the model to ``best.keras``, so the checkpoint and
the reported best_score always name the same epoch, whatever EarlyStopping's
min_delta says. It also writes ``history.csv`` after every epoch, reports the
monitored value to Optuna, and fails fast on a missing monitor or a NaN loss.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from sweep.atomic import write_text_atomic, write_with
from sweep.errors import MonitorMissingError
from sweep.progress import EpochEvent


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
        mode: str,
        max_epochs: int,
        checkpoint_path: Path,
        history_path: Path,
        report: Callable[[float, int], None] | None = None,
        on_epoch: Callable[[EpochEvent], None] | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be resolved to 'min' or 'max', got {mode!r}")
        self.trial_number = trial_number
        self.monitor = monitor
        self.mode = mode
        self.max_epochs = max_epochs
        self.checkpoint_path = checkpoint_path
        self.history_path = history_path
        self.report = report
        self.on_epoch = on_epoch
        self.history: list[dict[str, float]] = []
        self.best_score: float | None = None
        self.best_epoch: int | None = None  # 1-based
        self.failure: str | None = None

    @property
    def stop_epoch(self) -> int:
        """The last epoch trained, 1-based (0 before the first epoch ends)."""
        return len(self.history)

    def is_better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best_score is None:
            return True
        return value < self.best_score if self.mode == "min" else value > self.best_score

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        if self.monitor not in logs:
            raise MonitorMissingError(missing_monitor_message(self.monitor, sorted(logs)))
        number = epoch + 1
        row: dict[str, float] = {"epoch": number}
        row.update({k: float(v) for k, v in logs.items()})
        self.history.append(row)
        write_text_atomic(self.history_path, history_csv(self.history))

        value = row[self.monitor]
        if self.is_better(value):
            self.best_score = value
            self.best_epoch = number
            write_with(self.checkpoint_path, self.model.save)
        loss = row.get("loss", 0.0)
        if not math.isfinite(loss):
            self.failure = f"loss became {loss} at epoch {number}"
            self.model.stop_training = True
        if self.report is not None and math.isfinite(value):
            self.report(value, number)
        if self.on_epoch is not None:
            self.on_epoch(
                EpochEvent(
                    trial=self.trial_number,
                    epoch=number,
                    max_epochs=self.max_epochs,
                    monitor=self.monitor,
                    value=value,
                    best=self.best_score,
                )
            )
