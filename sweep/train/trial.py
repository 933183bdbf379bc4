"""One trial: build the model from ``hp``, fit it with EarlyStopping and the best
checkpoint, and record the trial's facts on the Optuna trial (through sweep.core.record).
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from sweep.core.atomic import atomic_path, write_text_atomic
from sweep.core.devices import current as current_devices
from sweep.core.direction import Direction
from sweep.core.errors import (
    ConfigError,
    Interrupted,
    TrialFailedError,
    TrialPrunedError,
)
from sweep.core.progress import EpochEvent
from sweep.core.record import StopReason, TrialRecord, from_trial, recorded, write
from sweep.core.tracking import Tracker, TrialStart
from sweep.space.data import Data
from sweep.space.files import SearchSpace, Settings
from sweep.space.fingerprint import ResumeRefused, settings_conflict, started_with
from sweep.space.hypermodel import (
    hypermodel_fit,
    objective_from_fit,
)
from sweep.space.inputs import InputKind, call_fit_options
from sweep.store.trials import stored as stored_trial
from sweep.train.callbacks import user_callbacks
from sweep.train.gpu import reset_policy_after, set_trial_policy, trial_strategy
from sweep.train.hparams import OptunaHyperParameters
from sweep.train.recorder import TrialRecorder, history_csv
from sweep.train.resume import ResumableEarlyStopping, ResumeDir, load_resume_point, load_variables


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
    mode: Direction,
    trial_dir: Path,
    seed: int | None = None,
    deterministic: bool = False,
    on_epoch: Callable[[EpochEvent], None] | None = None,
    stop_request: Callable[[], str | None] | None = None,
    calibration: bool = False,
    on_message: Callable[[str], None] | None = None,
    tracker: Tracker | None = None,
) -> TrialRecord:
    """Train one trial, or continue it from its resume point if it has one.

    Returns the trial's record; facts known so far are recorded even if it raises. With
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
    stored = _stored(trial)
    before = from_trial(stored)
    patience, min_delta = stopping_settings(trial, settings, calibration=calibration)
    data_seed = before.data_seed
    if data_seed is None:
        data_seed = seed if seed is not None else secrets.randbelow(2**31)
    checked = started_with(  # patience/min_delta: as stopping_settings asked them above
        space,
        mode=mode,
        calibration=calibration,
        params={**trial.params, "patience": patience, "min_delta": min_delta},
        max_epochs=before.max_epochs if before.epochs_from_fit else None,
    )
    if state is not None:  # checked before anything is recorded: a refusal changes nothing
        conflict = settings_conflict(trial.number, recorded(stored), checked)
        if conflict is not None:
            raise ResumeRefused(conflict)
    write(
        trial,
        **checked,
        trial_dir=trial_dir.resolve(),
        data_seed=data_seed,
        device=current_devices().label,  # this process's (not checked on resume)
    )

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
        write(trial, resumed_from=done)
        reported = _stored(trial).intermediate_values
        for row in state.history:  # values a kill kept from reaching the storage
            value = row[settings.monitor]
            if int(row["epoch"]) not in reported and math.isfinite(value):
                trial.report(value, int(row["epoch"]))
    started = time.monotonic() - float((before.duration_s or 0.0) if state else 0.0)
    finished_before = state is not None and (
        state.stopper.stopped_epoch > 0
        or state.epochs_done >= checked["max_epochs"]
        or state.stopped_by is not None
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
            write(trial, **user.attrs)
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
                    callbacks=[stopper, *recorder.watch.watched(user.states.callbacks), recorder],
                    verbose=0,
                )
                if recorder.stop_epoch == done == 0:
                    return _fit_returned(
                        trial,
                        model,
                        returned,
                        settings=settings,
                        mode=mode,
                        started=started,
                        max_epochs=int(checked["max_epochs"]),
                        trial_dir=trial_dir.resolve(),
                    )
                if recorder.stop_epoch == done:
                    raise ConfigError(
                        f"search space {space.path}: hypermodel.fit trained no epoch with the "
                        "callbacks it was given; pass **kwargs on to model.fit"
                    )
            else:
                fit_inputs(
                    space,
                    hp,
                    model,
                    data,
                    seed=int(data_seed),
                    done=done,
                    callbacks=[stopper, *recorder.watch.watched(user.states.callbacks), recorder],
                )
    except BaseException:
        _record(trial, recorder, started)
        raise
    _record(trial, recorder, started)
    write(trial, objective_source="monitor")
    if recorder.max_epochs != settings.epochs:  # the HyperModel's fit chose its epochs
        write(trial, max_epochs=recorder.max_epochs, epochs_from_fit=True)
    if recorder.stop_reason == StopReason.INTERRUPTED:
        raise Interrupted(f"trial {trial.number} interrupted after epoch {recorder.stop_epoch}")
    resume.remove()  # finished, pruned or failed: nothing left to resume
    if recorder.failure is not None:
        raise TrialFailedError(recorder.failure)
    if recorder.best_epoch is None or recorder.best_score is None:
        raise TrialFailedError(f"monitor {settings.monitor!r} was never a finite number")
    early = stopper.stopped_epoch > 0 and recorder.stop_epoch < recorder.max_epochs
    if recorder.stop_reason == StopReason.PRUNED:
        early = False
    reason = recorder.stop_reason or _ended_by(early, recorder.stopped_by)
    keras_best = None if stopper.best is None else stopper.best_epoch + 1
    write(trial, early_stopped=early, stop_reason=reason, keras_best_epoch=keras_best)
    if reason == StopReason.CALLBACK:
        write(trial, stopped_by=recorder.stopped_by)
    if reason == StopReason.PRUNED:
        raise TrialPrunedError(
            f"trial {trial.number} pruned after epoch {recorder.stop_epoch} by the "
            f"{settings.pruner} pruner"
        )
    return from_trial(_stored(trial))


def _ended_by(early: bool, callback: str | None) -> StopReason:
    """Why a trial nobody asked to stop ended: EarlyStopping, a user's callback, or
    max_epochs (EarlyStopping runs first: when both stop at one epoch, it is early)."""
    if early:
        return StopReason.EARLY_STOPPING
    return StopReason.CALLBACK if callback else StopReason.MAX_EPOCHS


def fit_inputs(
    space: SearchSpace,
    hp: Any,
    model: Any,
    data: Data,
    *,
    seed: int,
    done: int,
    callbacks: list[Any],
) -> None:
    """``model.fit`` on the space's training input of whatever kind, epochs ``done ..``."""
    from sweep.train.feeds import training_input, validation_kwargs
    from sweep.train.finite import check_finite

    settings = space.settings
    options = call_fit_options(space.fit_options, hp, origin=f"search space {space.path}")
    check_finite(data, options, origin=f"search space {space.path}")  # hp may change them
    feed, steps = training_input(
        data,
        batch_size=settings.batch_size,
        seed=seed,
        initial_epoch=done,
        epochs=settings.epochs,
        buffer=settings.shuffle_buffer,
        options=options,
    )
    extra = validation_kwargs(data, batch_size=settings.batch_size, options=options)
    if "class_weight" in options and data.kinds[0] is not InputKind.GENERATOR:
        extra["class_weight"] = options["class_weight"]  # a generator's feed applies it
    model.fit(
        feed,
        steps_per_epoch=steps,
        initial_epoch=done,
        epochs=settings.epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
        **extra,
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
    write(trial, **tracker.trial_started(start))  # e.g. mlflow_run_id


def _fit_returned(
    trial: Any,
    model: Any,
    returned: Any,
    *,
    settings: Settings,
    mode: Direction,
    started: float,
    max_epochs: int,
    trial_dir: Path,
) -> TrialRecord:
    """A HyperModel fit that trained no epoch through the callbacks (a custom training
    loop): the objective is what it returned (KerasTuner's rule), the checkpoint the model
    as fit left it. best/stop epoch come from a returned History, else are the epochs."""
    found = objective_from_fit(returned, settings.monitor, mode)
    if isinstance(found, str) or not math.isfinite(found.value):
        what = found if isinstance(found, str) else f"returned {settings.monitor}={found.value}"
        raise TrialFailedError(f"hypermodel.fit trained no epoch through the callbacks and {what}")
    stop = found.stop_epoch or max_epochs
    best = found.best_epoch or stop
    checkpoint = trial_dir / "best.keras"
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
    write(
        trial,
        objective_source="fit",
        duration_s=round(time.monotonic() - started, 3),
        best_score=found.value,
        best_epoch=best,
        stop_epoch=stop,
        checkpoint=checkpoint,
        early_stopped=False,
        stop_reason=StopReason.MAX_EPOCHS,
        keras_best_epoch=None,
    )
    return from_trial(_stored(trial))


def _record(trial: Any, recorder: TrialRecorder, started: float) -> None:
    write(trial, duration_s=round(time.monotonic() - started, 3), stop_epoch=recorder.stop_epoch)
    if recorder.best_epoch is not None:
        write(
            trial,
            best_epoch=recorder.best_epoch,
            best_score=recorder.best_score,
            checkpoint=recorder.checkpoint_path,
        )


def _stored(trial: Any) -> Any:
    """The trial as the storage has it now (a FrozenTrial; one execution's own view of it
    when the trial trains several, see sweep.train.executions)."""
    frozen = getattr(trial, "frozen", None)
    if callable(frozen):
        return frozen()
    return stored_trial(trial)
