"""A pair of Keras callbacks that time every fit the same way, whoever runs it.

``Clock.around(callbacks)`` puts one clock first and one last in a fit's callback list:
the first one's ``on_epoch_end`` runs right after Keras computed the epoch (training
and validation), the last one's after every other callback's epoch-end work (early
stopping, checkpoints, resume points, storage writes). Each record is written to a
``FitLog``; a process dumps it as JSON at the end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import keras


@dataclass
class FitRecord:
    train_begin: float = 0.0
    train_end: float = 0.0
    # per epoch: [begin, computed (train + validation done), done (all callbacks done)]
    epochs: list[list[float]] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # the monitored value per epoch


@dataclass
class FitLog:
    monitor: str
    fits: list[FitRecord] = field(default_factory=list)

    def __deepcopy__(self, memo: Any) -> FitLog:
        return self  # shared, never copied: KerasTuner deep-copies each trial's callbacks

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "train_begin": f.train_begin,
                "train_end": f.train_end,
                "epochs": f.epochs,
                "values": [v if math.isfinite(v) else None for v in f.values],
            }
            for f in self.fits
        ]


class Clock(keras.callbacks.Callback):  # type: ignore[misc]
    def __init__(self, log: FitLog, *, first: bool) -> None:
        super().__init__()
        self.log = log
        self.first = first

    @staticmethod
    def around(log: FitLog, callbacks: list[Any]) -> list[Any]:
        return [Clock(log, first=True), *callbacks, Clock(log, first=False)]

    def on_train_begin(self, logs: Any = None) -> None:
        if self.first:
            self.log.fits.append(FitRecord(train_begin=time.time()))

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self.first:
            self.log.fits[-1].epochs.append([time.time(), 0.0, 0.0])

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        fit = self.log.fits[-1]
        if self.first:
            fit.epochs[-1][1] = time.time()
            fit.values.append(float((logs or {}).get(self.log.monitor, math.nan)))
        else:
            fit.epochs[-1][2] = time.time()

    def on_train_end(self, logs: Any = None) -> None:
        if not self.first:
            self.log.fits[-1].train_end = time.time()
