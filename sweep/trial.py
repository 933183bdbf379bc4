"""One trial: build the model from ``hp``, fit it with EarlyStopping and the best
checkpoint, and record the trial's facts on the Optuna trial (user attrs).

Also the probe that checks a space before any trial runs.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from sweep.atomic import atomic_path, write_text_atomic
from sweep.data import Data
from sweep.devices import current as current_devices
from sweep.errors import (
    ConfigError,
    Interrupted,
    TrialFailedError,
    TrialPrunedError,
)
from sweep.feed import epoch_feed
from sweep.fingerprint import ResumeRefused, settings_conflict
from sweep.hparams import OptunaHyperParameters
from sweep.hypermodel import (
    fit_kwargs,
    hypermodel_fit,
    objective_from_fit,
)
from sweep.progress import EpochEvent
from sweep.recorder import TrialRecorder, history_csv
from sweep.resume import ResumableEarlyStopping, ResumeDir, load_resume_point, load_variables
from sweep.space import SearchSpace, Settings
from sweep.tracking import Tracker, TrialStart
from sweep.train.callbacks import user_callbacks
from sweep.train.gpu import reset_policy_after, set_trial_policy, trial_strategy


@dataclass(frozen=True, kw_only=True)
class TrialResult:
    best_score: float
    best_epoch: int  # 1-based
    stop_epoch: int  # 1-based: the last epoch trained
    early_stopped: bool
    stop_reason: str  # early_stopping, max_epochs, budget (pruned trials raise)
    keras_best_epoch: int | None  # EarlyStopping's own best_epoch, 1-based (honours min_delta)
    resumed_from: int  # epochs done before this process took the trial over (0: fresh)
    checkpoint: Path
    history: Path


def seed_everything(seed: int, *, deterministic: bool) -> None:
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def build(space: SearchSpace, hp: Any) -> Any:
    """Call ``build_model(hp)`` and check it returned a ``keras.Model``, compiled unless
    the HyperModel has its own fit (a custom training loop needs no compile)."""
    model = space.build_model(hp)
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"search space {space.path}: build_model(hp) must return a compiled keras.Model, "
            f"got {type(model).__name__}; return the model"
        )
    if not getattr(model, "compiled", False) and space.fit is None:
        raise ConfigError(
            f"search space {space.path}: build_model(hp) returned a model that is not compiled; "
            "call model.compile(optimizer=..., loss=..., metrics=[...]) before returning it"
        )
    return model


def stopping_settings(trial: Any, settings: Settings, *, calibration: bool) -> tuple[int, float]:
    """This trial's patience and min_delta: fixed, or asked of Optuna where the space lists
    several (then they are hyperparameters of the study). A calibration trial trains to
    max_epochs: a patience of max_epochs can never run out."""
    if calibration:
        return settings.epochs, 0.0
    patience, min_delta = settings.patience, settings.min_delta
    if isinstance(patience, list):
        patience = int(trial.suggest_categorical("patience", patience))
    if isinstance(min_delta, list):
        min_delta = float(trial.suggest_categorical("min_delta", min_delta))
    return patience, min_delta


@reset_policy_after
def run_trial(
    trial: Any,
    *,
    space: SearchSpace,
    data: Data,
    settings: Settings,
    mode: str,
    trial_dir: Path,
    seed: int | None = None,
    deterministic: bool = False,
    on_epoch: Callable[[EpochEvent], None] | None = None,
    stop_request: Callable[[], str | None] | None = None,
    calibration: bool = False,
    on_message: Callable[[str], None] | None = None,
    tracker: Tracker | None = None,
) -> TrialResult:
    """Train one trial, or continue it from its resume point if it has one.

    Trial facts known so far are on ``trial.user_attrs`` even if it raises. With
    ``seed``, Keras is seeded after the session is cleared, right before the model
    is built. Raises ``Interrupted`` (leaving the resume point) when ``stop_request``
    answered "interrupted".
    """
    keras.backend.clear_session()
    set_trial_policy(settings.mixed_precision)  # clear_session reset it
    if seed is not None:
        seed_everything(seed, deterministic=deterministic)
    trial_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = (trial_dir / "best.keras").resolve()
    history_path = (trial_dir / "history.csv").resolve()
    resume = ResumeDir(trial_dir / "resume", checkpoint)
    state, saved = load_resume_point(trial.number, resume, on_message)
    attrs = trial.user_attrs
    patience, min_delta = stopping_settings(trial, settings, calibration=calibration)
    data_seed = attrs.get("data_seed")
    if data_seed is None:
        data_seed = seed if seed is not None else secrets.randbelow(2**31)
    facts = {
        "monitor": settings.monitor,
        "mode": mode,
        "max_epochs": attrs["max_epochs"] if attrs.get("epochs_from_fit") else settings.epochs,
        "patience": patience,
        "min_delta": min_delta,
        "calibration": calibration,
        "baseline": settings.baseline,
        "start_from_epoch": settings.start_from_epoch,
        "batch_size": settings.batch_size
        if space.fit is None
        else fit_kwargs(space).get("batch_size"),
        "trial_dir": str(trial_dir.resolve()),
        "data_seed": data_seed,
    }
    if state is not None:  # checked before anything is recorded: a refusal changes nothing
        checked = {k: v for k, v in facts.items() if k != "trial_dir"}
        conflict = settings_conflict(trial.number, attrs, checked)
        if conflict is not None:
            raise ResumeRefused(conflict)
    for key, value in facts.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("device", current_devices().label)  # this process's (not checked)

    stopper = ResumableEarlyStopping(
        monitor=settings.monitor,
        mode=mode,
        patience=patience,
        min_delta=min_delta,
        baseline=settings.baseline,
        start_from_epoch=settings.start_from_epoch,
        restore=None if state is None else state.stopper,
    )
    recorder = TrialRecorder(
        trial_number=trial.number,
        monitor=settings.monitor,
        mode=mode,
        max_epochs=settings.epochs,
        resume=resume,
        stopper=stopper,
        history_path=history_path,
        report=lambda value, step: trial.report(value, step),
        on_epoch=on_epoch,
        stop_request=stop_request,
        should_prune=None if calibration or settings.pruner == "none" else trial.should_prune,
        tracker=tracker,
    )
    done = 0
    if state is not None:
        recorder.restore(state)
        done = state.epochs_done
        trial.set_user_attr("resumed_from", done)
        reported = _stored(trial).intermediate_values
        for row in state.history:  # values a kill kept from reaching the storage
            value = row[settings.monitor]
            if int(row["epoch"]) not in reported and math.isfinite(value):
                trial.report(value, int(row["epoch"]))
    started = time.monotonic() - float(attrs.get("duration_s", 0.0) if state else 0.0)
    finished_before = state is not None and (
        state.stopper.stopped_epoch > 0 or state.epochs_done >= trial.user_attrs["max_epochs"]
    )
    try:
        hp = OptunaHyperParameters(trial)
        if space.declared is not None:
            hp.merge(space.declared)
        with trial_strategy().scope():  # MirroredStrategy where a trial spans devices
            model = build(space, hp)
            if tracker is not None:  # the hyperparameters are known now
                _track_start(trial, tracker, state, settings.monitor)
            user = user_callbacks(space, hp, recorder, resumed=state is not None)
            for key, value in user.attrs.items():
                trial.set_user_attr(key, value)
            if state is not None:
                load_variables(model, resume.folder / state.variables, saved)
        if not finished_before:
            validation = None if data.x_val is None else (data.x_val, data.y_val)
            if space.fit is not None:  # a HyperModel's own fit: NumPy arrays, KerasTuner-style
                returned = hypermodel_fit(
                    space,
                    hp,
                    model,
                    data.x_train,
                    data.y_train,
                    validation_data=validation,
                    initial_epoch=done,
                    epochs=settings.epochs,
                    callbacks=[stopper, *user.states.callbacks, recorder],
                    verbose=0,
                )
                if recorder.stop_epoch == done == 0:
                    return _fit_returned(
                        trial, model, returned, settings=settings, mode=mode, started=started
                    )
                if recorder.stop_epoch == done:
                    raise ConfigError(
                        f"search space {space.path}: hypermodel.fit trained no epoch with the "
                        "callbacks it was given; pass **kwargs on to model.fit"
                    )
            else:
                feed, steps = epoch_feed(
                    data.x_train,
                    data.y_train,
                    batch_size=settings.batch_size,
                    seed=int(data_seed),
                    initial_epoch=done,
                    epochs=settings.epochs,
                )
                model.fit(
                    feed,
                    steps_per_epoch=steps,
                    initial_epoch=done,
                    validation_data=validation,
                    validation_batch_size=settings.batch_size,
                    epochs=settings.epochs,
                    callbacks=[stopper, *user.states.callbacks, recorder],
                    shuffle=False,
                    verbose=0,
                )
    except BaseException:
        _record(trial, recorder, started)
        raise
    _record(trial, recorder, started)
    trial.set_user_attr("objective_source", "monitor")
    if recorder.max_epochs != settings.epochs:  # the HyperModel's fit chose its epochs
        trial.set_user_attr("max_epochs", recorder.max_epochs)
        trial.set_user_attr("epochs_from_fit", True)
    if recorder.stop_reason == "interrupted":
        raise Interrupted(f"trial {trial.number} interrupted after epoch {recorder.stop_epoch}")
    resume.remove()  # finished, pruned or failed: nothing left to resume
    if recorder.failure is not None:
        raise TrialFailedError(recorder.failure)
    if recorder.best_epoch is None or recorder.best_score is None:
        raise TrialFailedError(f"monitor {settings.monitor!r} was never a finite number")
    early = stopper.stopped_epoch > 0 and recorder.stop_epoch < recorder.max_epochs
    if recorder.stop_reason == "pruned":
        early = False
    reason = recorder.stop_reason or ("early_stopping" if early else "max_epochs")
    keras_best = None if stopper.best is None else stopper.best_epoch + 1
    for key, value in {
        "early_stopped": early,
        "stop_reason": reason,
        "keras_best_epoch": keras_best,
    }.items():
        trial.set_user_attr(key, value)
    if reason == "pruned":
        raise TrialPrunedError(
            f"trial {trial.number} pruned after epoch {recorder.stop_epoch} by the "
            f"{settings.pruner} pruner"
        )
    return TrialResult(
        best_score=recorder.best_score,
        best_epoch=recorder.best_epoch,
        stop_epoch=recorder.stop_epoch,
        early_stopped=early,
        stop_reason=reason,
        keras_best_epoch=keras_best,
        resumed_from=done,
        checkpoint=checkpoint,
        history=history_path,
    )


def _track_start(trial: Any, tracker: Tracker, state: Any, monitor: str) -> None:
    start = TrialStart(
        number=trial.number,
        params=dict(trial.params),
        distributions=dict(trial.distributions),
        history=[] if state is None else [dict(row) for row in state.history],
        attrs=dict(trial.user_attrs),
        monitor=monitor,
    )
    for key, value in tracker.trial_started(start).items():  # e.g. mlflow_run_id
        trial.set_user_attr(key, value)


def _fit_returned(
    trial: Any, model: Any, returned: Any, *, settings: Settings, mode: str, started: float
) -> TrialResult:
    """A HyperModel fit that trained no epoch through the callbacks (a custom training
    loop): the objective is what it returned (KerasTuner's rule), the checkpoint the model
    as fit left it. best/stop epoch come from a returned History, else are the epochs."""
    found = objective_from_fit(returned, settings.monitor, mode)
    if isinstance(found, str) or not math.isfinite(found.value):
        what = found if isinstance(found, str) else f"returned {settings.monitor}={found.value}"
        raise TrialFailedError(f"hypermodel.fit trained no epoch through the callbacks and {what}")
    epochs = int(trial.user_attrs["max_epochs"])
    stop = found.stop_epoch or epochs
    best = found.best_epoch or stop
    checkpoint = Path(trial.user_attrs["trial_dir"]) / "best.keras"
    with atomic_path(checkpoint) as tmp:
        model.save(tmp)
    history = getattr(returned, "history", None)
    if isinstance(history, dict):
        rows = [
            {"epoch": i + 1, **{k: float(v[i]) for k, v in history.items() if i < len(v)}}
            for i in range(stop)
        ]
        write_text_atomic(checkpoint.parent / "history.csv", history_csv(rows))
    trial.report(found.value, stop)
    for key, value in {
        "objective_source": "fit",
        "duration_s": round(time.monotonic() - started, 3),
        "best_score": found.value,
        "best_epoch": best,
        "stop_epoch": stop,
        "checkpoint": str(checkpoint),
        "early_stopped": False,
        "stop_reason": "max_epochs",
        "keras_best_epoch": None,
    }.items():
        trial.set_user_attr(key, value)
    return TrialResult(
        best_score=found.value,
        best_epoch=best,
        stop_epoch=stop,
        early_stopped=False,
        stop_reason="max_epochs",
        keras_best_epoch=None,
        resumed_from=0,
        checkpoint=checkpoint,
        history=checkpoint.parent / "history.csv",
    )


def _record(trial: Any, recorder: TrialRecorder, started: float) -> None:
    trial.set_user_attr("duration_s", round(time.monotonic() - started, 3))
    trial.set_user_attr("stop_epoch", recorder.stop_epoch)
    if recorder.best_epoch is not None:
        trial.set_user_attr("best_epoch", recorder.best_epoch)
        trial.set_user_attr("best_score", recorder.best_score)
        trial.set_user_attr("checkpoint", str(recorder.checkpoint_path))


def _stored(trial: Any) -> Any:
    """The trial as the storage has it now (a FrozenTrial)."""
    return next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
