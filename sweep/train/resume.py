"""A trial's resume point: everything needed to continue from its last completed epoch.

Keras' BackupAndRestore restores weights, optimizer and epoch, but not
EarlyStopping's wait/best, the best-checkpoint threshold, or the history. We
persist all of it at the end of every epoch, in an order that leaves a
consistent resume point whenever the process is killed:

1. a new best model, if the epoch improved, to ``best.pending-<epoch>.keras``;
2. every variable (weights, seed-generator states, optimizer) to ``vars-<epoch>.npz``;
3. ``state.json`` (temp file + rename), naming both files: the commit point;
4. the pending best renamed to ``best.keras``, older ``vars-*.npz`` removed.

``recover`` finishes step 4 when a kill came between 3 and 4, and removes what no
state names (a kill between 1 and 3), so ``best.keras`` is always the model of the
state's best epoch.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import keras
import numpy as np

from sweep.core.atomic import atomic_path, write_text_atomic

STATE = "state.json"


@dataclass(frozen=True)
class StopperState:
    """EarlyStopping's counters, as Keras keeps them (0-based epochs)."""

    wait: int
    best: float | None
    best_epoch: int
    stopped_epoch: int


@dataclass(frozen=True)
class ResumeState:
    epochs_done: int
    history: list[dict[str, float]]
    best_score: float | None
    best_epoch: int | None  # 1-based
    stopper: StopperState
    variables: str
    pending_best: str | None
    # the user's callbacks' states (sweep.train.callbacks), one per callback, None: no state
    callbacks: list[Any] | None = None
    stopped_by: str | None = None  # the user callback that stopped training at this epoch

    def to_json(self) -> str:
        raw = {f.name: getattr(self, f.name) for f in fields(self)}  # no deep copy of history
        raw["stopper"] = asdict(self.stopper)
        return json.dumps(raw)

    @classmethod
    def from_json(cls, text: str) -> ResumeState:
        raw = json.loads(text)
        raw["stopper"] = StopperState(**raw["stopper"])
        return cls(**raw)


def model_variables(model: Any) -> list[Any]:
    """Weights, seed-generator states and optimizer variables, in a stable order."""
    optimizer = model.optimizer
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    extra = list(optimizer.variables) if optimizer is not None else []
    return list(model.variables) + extra


def save_variables(model: Any, path: Path) -> None:
    # Variable.numpy() directly: keras.ops.convert_to_numpy costs 1 ms more per epoch here.
    arrays = [np.asarray(v.numpy()) for v in model_variables(model)]
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, *arrays)


class DamagedResumePoint(Exception):
    """A file of a resume point can't be read back (cut short, overwritten, missing)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}{': ' + text[0] if text else ''}"


def read_variables(path: Path) -> list[np.ndarray]:
    """Every array of a ``vars-<epoch>.npz``; ``DamagedResumePoint`` if it can't be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return [data[f"arr_{i}"] for i in range(len(data.files))]
    except FileNotFoundError:
        raise DamagedResumePoint(path, "missing") from None
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, ValueError: cut short or garbage
        raise DamagedResumePoint(path, _reason(exc)) from None


def load_variables(model: Any, path: Path, arrays: list[np.ndarray] | None = None) -> None:
    """Assign the saved variables (``arrays`` if already read from ``path``) to the model."""
    variables = model_variables(model)
    if arrays is None:
        arrays = read_variables(path)
    if len(arrays) != len(variables) or any(
        tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables, strict=False)
    ):
        raise ValueError(
            f"the resume point {path} does not fit the model build_model(hp) returned now "
            f"({len(arrays)} saved variables, {len(variables)} in the model)"
        )
    for value, variable in zip(arrays, variables, strict=True):
        variable.assign(value)


class ResumeDir:
    """``trials/<n>/resume/``: the files of one trial's resume point."""

    def __init__(self, folder: Path, checkpoint: Path) -> None:
        self.folder = folder
        self.checkpoint = checkpoint

    def save(
        self,
        model: Any,
        *,
        epochs_done: int,
        history: list[dict[str, float]],
        best_score: float | None,
        best_epoch: int | None,
        stopper: StopperState,
        improved: bool,
        callbacks: list[Any] | None = None,
        stopped_by: str | None = None,
    ) -> None:
        """Steps 1-4 above, at the end of epoch ``epochs_done``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        pending = None
        if improved:
            pending = f"best.pending-{epochs_done}.keras"
            with atomic_path(self.folder / pending) as tmp:
                model.save(tmp)
        variables = f"vars-{epochs_done}.npz"
        save_variables(model, self.folder / variables)
        state = ResumeState(
            epochs_done=epochs_done,
            history=history,
            best_score=best_score,
            best_epoch=best_epoch,
            stopper=stopper,
            variables=variables,
            pending_best=pending,
            callbacks=callbacks,
            stopped_by=stopped_by,
        )
        write_text_atomic(self.folder / STATE, state.to_json())
        self._finish(state)

    def _finish(self, state: ResumeState) -> None:
        if state.pending_best and (self.folder / state.pending_best).exists():
            os.replace(self.folder / state.pending_best, self.checkpoint)
        keep = {STATE, state.variables}
        for path in self.folder.iterdir():
            if path.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def load(self) -> ResumeState | None:
        """The last committed resume point, with step 4 finished; None if there is none."""
        path = self.folder / STATE
        if not path.is_file():
            return None
        try:
            state = ResumeState.from_json(path.read_text(encoding="utf-8"))
            if not isinstance(state.epochs_done, int) or not isinstance(state.variables, str):
                raise ValueError("epochs_done or variables has the wrong type")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DamagedResumePoint(path, _reason(exc)) from None  # UnicodeDecodeError too
        self._finish(state)
        return state

    def remove(self) -> None:
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                path.unlink()
            self.folder.rmdir()


def load_resume_point(
    number: int, resume: ResumeDir, on_message: Callable[[str], None] | None
) -> tuple[ResumeState | None, list[Any] | None]:
    """The trial's resume point and its saved variables, or (None, None) to start afresh:
    there is none, or one of its files is damaged (then it is removed, and said so)."""
    try:
        state = resume.load()
        if state is None:
            return None, None
        return state, read_variables(resume.folder / state.variables)
    except DamagedResumePoint as exc:
        if on_message is not None:
            on_message(
                f"trial {number}: its resume point is damaged ({exc}); "
                "restarting the trial from scratch"
            )
        resume.remove()
        return None, None


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):  # type: ignore[misc]
    """Keras' EarlyStopping, whose counters can be carried over from an earlier process."""

    def __init__(self, *args: Any, restore: StopperState | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.restore = restore

    def on_train_begin(self, logs: Any = None) -> None:
        super().on_train_begin(logs)
        if self.restore is not None:
            self.wait = self.restore.wait
            self.best = self.restore.best
            self.best_epoch = self.restore.best_epoch
            self.stopped_epoch = self.restore.stopped_epoch

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.monitor not in (logs or {}):
            return  # TrialRecorder raises a clear error; skip Keras' warning
        super().on_epoch_end(epoch, logs)

    def snapshot(self) -> StopperState:
        best = None if self.best is None else float(self.best)
        return StopperState(
            wait=int(self.wait),
            best=best,
            best_epoch=int(self.best_epoch),
            stopped_epoch=int(self.stopped_epoch),
        )
