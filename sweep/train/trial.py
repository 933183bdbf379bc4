"""One trial: build the model from ``hp``, fit it with EarlyStopping and the best
checkpoint, and record the trial's facts on the Optuna trial (through sweep.core.record).
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

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
from sweep.core.observers import Observer, TrialBuilt
from sweep.core.record import StopReason, TrialRecord, from_trial, recorded, write
from sweep.space.data import Data
from sweep.space.files import SearchSpace, Settings
from sweep.space.fingerprint import ResumeRefused, settings_conflict, started_with
from sweep.space.hypermodel import (
    hypermodel_fit,
    objective_from_fit,
)
from sweep.space.inputs import InputKind, call_fit_options
from sweep.store.trials import stored as stored_trial
from sweep.train.callbacks import UserCallbacks, user_callbacks
from sweep.train.gpu import reset_policy_after, set_trial_policy, trial_strategy
from sweep.train.hparams import OptunaHyperParameters
from sweep.train.recorder import TrialRecorder, history_csv
from sweep.train.resume import (
    ResumableEarlyStopping,
    ResumeDir,
    ResumeState,
    load_resume_point,
    load_variables,
)

if TYPE_CHECKING:  # Optuna is imported where a study is opened, not by importing this
    import optuna
    from optuna.trial import FrozenTrial

    from sweep.train.executions import ExecutionTrial

    # an Optuna trial, or one execution's view of it (sweep.train.executions)
    TrialView: TypeAlias = optuna.Trial | ExecutionTrial


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


def stopping_settings(
    trial: TrialView, settings: Settings, *, calibration: bool
) -> tuple[int, float]:
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


@dataclass(frozen=True)
class TrialJob:
    """One trial to train, as the session asks for it. Retries and executions pass it on
    whole (an execution with its own view of the trial, folder and seed).

    ``seed``: Keras is seeded after the session is cleared, right before the model is
    built (``deterministic``: with TensorFlow's deterministic ops). ``stop_request`` is
    asked after every epoch; "interrupted" stops the trial, leaving its resume point.
    ``calibration``: the trial trains to ``max_epochs`` (see ``stopping_settings``).
    """

    trial: TrialView
    space: SearchSpace
    data: Data
    settings: Settings
    mode: Direction
    trial_dir: Path
    seed: int | None = None
    deterministic: bool = False
    observer: Observer | None = None
    stop_request: Callable[[], str | None] | None = None
    calibration: bool = False
    on_message: Callable[[str], None] | None = None


@dataclass
class _Run:
    """A trial started or resumed in this process: what its steps share."""

    resume: ResumeDir
    state: ResumeState | None  # the resume point it continues from; None: from scratch
    saved: list[Any] | None  # the resume point's variables
    max_epochs: int  # as the trial started (a HyperModel's fit may have chosen them)
    data_seed: int
    stopper: ResumableEarlyStopping
    recorder: TrialRecorder
    started: float  # time.monotonic(), less the time trained before a resume

    @property
    def done(self) -> int:
        """The epochs trained before this process."""
        return 0 if self.state is None else self.state.epochs_done

    @property
    def finished_before(self) -> bool:
        """Training had ended when the resume point was saved: only concluding is left."""
        return self.state is not None and (
            self.state.stopper.stopped_epoch > 0
            or self.state.epochs_done >= self.max_epochs
            or self.state.stopped_by is not None
        )


@reset_policy_after
def run_trial(job: TrialJob) -> TrialRecord:
    """Train one trial, or continue it from its resume point if it has one: started or
    resumed, built, fit, concluded.

    Returns the trial's record; facts known so far are recorded even if it raises. Raises
    ``Interrupted`` (leaving the resume point) when ``job.stop_request`` answered
    "interrupted".
    """
    run = _start(job)
    try:
        model, hp, user = _build(job, run)
        if not run.finished_before:
            returned = _fit(job, run, model, hp, user)
            if returned is not None:  # a HyperModel's fit that trained no epoch through us
                return returned
    except BaseException:
        _record(job.trial, run.recorder, run.started)
        raise
    _record(job.trial, run.recorder, run.started)
    return _conclude(job, run)


def _start(job: TrialJob) -> _Run:
    """Start the trial, or resume it: Keras cleared and seeded, the resume point read, the
    settings it starts with checked and recorded, its EarlyStopping and recorder made
    (restored, on resume, to where the resume point left them)."""
    keras.backend.clear_session()
    set_trial_policy(job.settings.mixed_precision)  # clear_session reset it
    if job.seed is not None:
        seed_everything(job.seed, deterministic=job.deterministic)
    job.trial_dir.mkdir(parents=True, exist_ok=True)
    resume = ResumeDir(job.trial_dir / "resume", (job.trial_dir / "best.keras").resolve())
    state, saved = load_resume_point(job.trial.number, resume, job.on_message)
    stored = _stored(job.trial)
    before = from_trial(stored)
    patience, min_delta = stopping_settings(job.trial, job.settings, calibration=job.calibration)
    max_epochs, data_seed = _started_with(
        job, stored, before, state=state, patience=patience, min_delta=min_delta
    )
    stopper = ResumableEarlyStopping(
        monitor=job.settings.monitor,
        mode=job.mode,
        patience=patience,
        min_delta=min_delta,
        baseline=job.settings.baseline,
        start_from_epoch=job.settings.start_from_epoch,
        restore=None if state is None else state.stopper,
    )
    recorder = _recorder(job, resume, stopper)
    if state is not None:
        _resumed(job, recorder, state)
    return _Run(
        resume=resume,
        state=state,
        saved=saved,
        max_epochs=max_epochs,
        data_seed=data_seed,
        stopper=stopper,
        recorder=recorder,
        started=time.monotonic() - float((before.duration_s or 0.0) if state else 0.0),
    )


def _started_with(
    job: TrialJob,
    stored: FrozenTrial,
    before: TrialRecord,
    *,
    state: ResumeState | None,
    patience: int,
    min_delta: float,
) -> tuple[int, int]:
    """Record the settings the trial starts with, its folder, data seed and device; on
    resume, refuse first (changing nothing) if they differ from those it recorded.
    Returns its max_epochs and data seed."""
    trial = job.trial
    data_seed = before.data_seed
    if data_seed is None:
        data_seed = job.seed if job.seed is not None else secrets.randbelow(2**31)
    checked = started_with(  # patience/min_delta: as stopping_settings asked them
        job.space,
        mode=job.mode,
        calibration=job.calibration,
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
        trial_dir=job.trial_dir.resolve(),
        data_seed=data_seed,
        device=current_devices().label,  # this process's (not checked on resume)
    )
    return int(checked["max_epochs"]), int(data_seed)


def _recorder(job: TrialJob, resume: ResumeDir, stopper: ResumableEarlyStopping) -> TrialRecorder:
    trial, settings = job.trial, job.settings
    return TrialRecorder(
        trial_number=trial.number,
        monitor=settings.monitor,
        mode=job.mode,
        max_epochs=settings.epochs,
        resume=resume,
        stopper=stopper,
        history_path=(job.trial_dir / "history.csv").resolve(),
        report=lambda value, step: trial.report(value, step),
        observer=job.observer,
        stop_request=job.stop_request,
        should_prune=None if job.calibration or settings.pruner == "none" else trial.should_prune,
    )


def _resumed(job: TrialJob, recorder: TrialRecorder, state: ResumeState) -> None:
    """The recorder as the resume point left it, and the monitored values a kill kept from
    reaching the storage reported now."""
    recorder.restore(state)
    write(job.trial, resumed_from=state.epochs_done)
    reported = _stored(job.trial).intermediate_values
    for row in state.history:
        value = row[job.settings.monitor]
        if int(row["epoch"]) not in reported and math.isfinite(value):
            job.trial.report(value, int(row["epoch"]))


def _build(job: TrialJob, run: _Run) -> tuple[Any, OptunaHyperParameters, UserCallbacks]:
    """The model built from ``hp`` (in a strategy's scope where a trial spans devices), the
    observers told it is built, the user's callbacks made and, on resume, the model's
    variables loaded from the resume point."""
    hp = OptunaHyperParameters(job.trial)
    if job.space.declared is not None:
        hp.merge(job.space.declared)
    with trial_strategy().scope():  # MirroredStrategy where a trial spans devices
        model = build(job.space, hp)
        if job.observer is not None:  # the hyperparameters are known now
            _built(job.trial, job.observer, run.state, job.settings.monitor)
        user = user_callbacks(job.space, hp, run.recorder, resumed=run.state is not None)
        write(job.trial, **user.attrs)
        if run.state is not None:
            load_variables(model, run.resume.folder / run.state.variables, run.saved)
    return model, hp, user


def _fit(
    job: TrialJob, run: _Run, model: Any, hp: OptunaHyperParameters, user: UserCallbacks
) -> TrialRecord | None:
    """Train from the epoch after ``run.done``: ``model.fit`` on the space's input, or the
    HyperModel's own fit. Returns the trial's record where that fit trained no epoch
    through the callbacks (a custom training loop), else None."""
    space, data, recorder, done = job.space, job.data, run.recorder, run.done
    callbacks = [run.stopper, *recorder.watch.watched(user.states.callbacks), recorder]
    if space.fit is None:
        fit_inputs(space, hp, model, data, seed=run.data_seed, done=done, callbacks=callbacks)
        return None
    # a HyperModel's own fit: NumPy arrays, KerasTuner-style
    returned = hypermodel_fit(
        space,
        hp,
        model,
        data.x_train,
        data.y_train,
        validation_data=None if data.x_val is None else (data.x_val, data.y_val),
        initial_epoch=done,
        epochs=job.settings.epochs,
        callbacks=callbacks,
        verbose=0,
    )
    if recorder.stop_epoch == done == 0:
        return _fit_returned(job, run, model, returned)
    if recorder.stop_epoch == done:
        raise ConfigError(
            f"search space {space.path}: hypermodel.fit trained no epoch with the "
            "callbacks it was given; pass **kwargs on to model.fit"
        )
    return None


def _conclude(job: TrialJob, run: _Run) -> TrialRecord:
    """How the trial ended, recorded: interrupted (raised, its resume point kept), failed
    or pruned (raised), or finished by EarlyStopping, a user's callback or max_epochs."""
    trial, settings, recorder, stopper = job.trial, job.settings, run.recorder, run.stopper
    write(trial, objective_source="monitor")
    if recorder.max_epochs != settings.epochs:  # the HyperModel's fit chose its epochs
        write(trial, max_epochs=recorder.max_epochs, epochs_from_fit=True)
    if recorder.stop_reason == StopReason.INTERRUPTED:
        raise Interrupted(f"trial {trial.number} interrupted after epoch {recorder.stop_epoch}")
    run.resume.remove()  # finished, pruned or failed: nothing left to resume
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


def _built(trial: TrialView, observer: Observer, state: ResumeState | None, monitor: str) -> None:
    built = TrialBuilt(
        trial=trial.number,
        params=dict(trial.params),
        distributions=dict(trial.distributions),
        history=[] if state is None else [dict(row) for row in state.history],
        attrs=dict(trial.user_attrs),
        monitor=monitor,
    )
    write(trial, **observer.trial_built(built))  # e.g. mlflow_run_id


def _fit_returned(job: TrialJob, run: _Run, model: Any, returned: Any) -> TrialRecord:
    """A HyperModel fit that trained no epoch through the callbacks (a custom training
    loop): the objective is what it returned (KerasTuner's rule), the checkpoint the model
    as fit left it. best/stop epoch come from a returned History, else are the epochs."""
    trial, settings = job.trial, job.settings
    found = objective_from_fit(returned, settings.monitor, job.mode)
    if isinstance(found, str) or not math.isfinite(found.value):
        what = found if isinstance(found, str) else f"returned {settings.monitor}={found.value}"
        raise TrialFailedError(f"hypermodel.fit trained no epoch through the callbacks and {what}")
    stop = found.stop_epoch or run.max_epochs
    best = found.best_epoch or stop
    checkpoint = job.trial_dir.resolve() / "best.keras"
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
        duration_s=round(time.monotonic() - run.started, 3),
        best_score=found.value,
        best_epoch=best,
        stop_epoch=stop,
        checkpoint=checkpoint,
        early_stopped=False,
        stop_reason=StopReason.MAX_EPOCHS,
        keras_best_epoch=None,
    )
    return from_trial(_stored(trial))


def _record(trial: TrialView, recorder: TrialRecorder, started: float) -> None:
    write(trial, duration_s=round(time.monotonic() - started, 3), stop_epoch=recorder.stop_epoch)
    if recorder.best_epoch is not None:
        write(
            trial,
            best_epoch=recorder.best_epoch,
            best_score=recorder.best_score,
            checkpoint=recorder.checkpoint_path,
        )


def _stored(trial: TrialView) -> FrozenTrial:
    """The trial as the storage has it now (a FrozenTrial; one execution's own view of it
    when the trial trains several, see sweep.train.executions)."""
    frozen: Callable[[], FrozenTrial] | None = getattr(trial, "frozen", None)
    if callable(frozen):
        return frozen()
    return stored_trial(cast("optuna.Trial", trial))
