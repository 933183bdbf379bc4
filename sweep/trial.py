"""One trial: build the model from ``hp``, fit it with EarlyStopping and the best
checkpoint, and record the trial's facts on the Optuna trial (user attrs).

Also the probe that checks a space before any trial runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from sweep.data import Data, head
from sweep.errors import ConfigError, MonitorMissingError, TrialFailedError
from sweep.hparams import OptunaHyperParameters, suggest
from sweep.progress import EpochEvent
from sweep.recorder import TrialRecorder, missing_monitor_message
from sweep.space import SearchSpace, Settings


@dataclass(frozen=True, kw_only=True)
class TrialResult:
    best_score: float
    best_epoch: int  # 1-based
    stop_epoch: int  # 1-based: the last epoch trained
    early_stopped: bool
    keras_best_epoch: int | None  # EarlyStopping's own best_epoch, 1-based (honours min_delta)
    checkpoint: Path
    history: Path


def seed_everything(seed: int, *, deterministic: bool) -> None:
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def build(space: SearchSpace, hp: Any) -> Any:
    """Call ``build_model(hp)`` and check it returned a compiled ``keras.Model``."""
    model = space.build_model(hp)
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"search space {space.path}: build_model(hp) must return a compiled keras.Model, "
            f"got {type(model).__name__}; return the model"
        )
    if not getattr(model, "compiled", False):
        raise ConfigError(
            f"search space {space.path}: build_model(hp) returned a model that is not compiled; "
            "call model.compile(optimizer=..., loss=..., metrics=[...]) before returning it"
        )
    return model


def logged_keys(model: Any, data: Data) -> list[str]:
    """The keys Keras logs at the end of an epoch, from one real training step on a few samples."""
    n = 8
    x, y = head(data.x_train, n), head(data.y_train, n)
    val = None if data.x_val is None else (head(data.x_val, n), head(data.y_val, n))
    history = model.fit(x, y, validation_data=val, epochs=1, batch_size=n, verbose=0)
    return sorted(history.history)


def resolve_mode(model: Any, monitor: str, mode: str, *, origin: str) -> str:
    """Resolve ``auto`` exactly as Keras' EarlyStopping does, on a model whose metrics are built."""
    if mode in ("min", "max"):
        return mode
    probe = keras.callbacks.EarlyStopping(monitor=monitor, mode="auto")
    probe.set_model(model)
    try:
        probe._set_monitor_op()
    except ValueError:
        raise ConfigError(
            f"{origin}: mode 'auto' cannot tell whether {monitor!r} should go up or down; "
            "set --mode min or --mode max (or SETTINGS['mode'])"
        ) from None
    return "min" if probe.monitor_op is keras.ops.less else "max"


def probe_space(space: SearchSpace, data: Data) -> tuple[str, list[Any]]:
    """Build the model once with KerasTuner's default values, before any trial runs.

    Checks that ``build_model`` returns a compiled model, trains it for one step on
    a few samples to see the exact keys Keras logs (the monitor must be one of them),
    resolves ``mode``, and checks that every hyperparameter seen maps onto an Optuna
    distribution. Returns the resolved mode and those hyperparameters (the grid
    sampler needs them). Any error here is a configuration error: it would fail every
    trial.
    """
    import keras_tuner
    import optuna

    hp = keras_tuner.HyperParameters()
    try:
        model = build(space, hp)
        keys = logged_keys(model, data)
        monitor = space.settings.monitor
        if monitor not in keys:
            raise MonitorMissingError(
                f"search space {space.path}: {missing_monitor_message(monitor, keys)}"
            )
        mode = resolve_mode(
            model, monitor, space.settings.mode, origin=f"search space {space.path}"
        )
    except ConfigError:
        raise
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise ConfigError(
            f"search space {space.path}: build_model(hp) raised {type(exc).__name__}"
            f"{': ' + lines[0] if lines else ''}; fix the file"
        ) from None
    finally:
        keras.backend.clear_session()
    scratch = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    for h in hp.space:
        try:
            suggest(scratch.ask(), h)
        except ConfigError as exc:
            raise ConfigError(f"search space {space.path}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(
                f"search space {space.path}: hyperparameter {h.name!r} is not a valid Optuna "
                f"range: {exc}; fix its bounds"
            ) from None
    return mode, list(hp.space)


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
) -> TrialResult:
    """Train one trial. Trial facts known so far are on ``trial.user_attrs`` even if it raises.

    With ``seed``, Keras is seeded after the session is cleared, right before the
    model is built, so the same seed gives the same initial weights and batches.
    """
    keras.backend.clear_session()
    if seed is not None:
        seed_everything(seed, deterministic=deterministic)
    trial_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = (trial_dir / "best.keras").resolve()
    history_path = (trial_dir / "history.csv").resolve()
    for key, value in {
        "monitor": settings.monitor,
        "mode": mode,
        "max_epochs": settings.epochs,
        "patience": settings.patience,
        "min_delta": settings.min_delta,
        "baseline": settings.baseline,
        "start_from_epoch": settings.start_from_epoch,
        "batch_size": settings.batch_size,
        "trial_dir": str(trial_dir.resolve()),
    }.items():
        trial.set_user_attr(key, value)

    recorder = TrialRecorder(
        trial_number=trial.number,
        monitor=settings.monitor,
        mode=mode,
        max_epochs=settings.epochs,
        checkpoint_path=checkpoint,
        history_path=history_path,
        report=lambda value, step: trial.report(value, step),
        on_epoch=on_epoch,
    )
    stopper = keras.callbacks.EarlyStopping(
        monitor=settings.monitor,
        mode=mode,
        patience=settings.patience,
        min_delta=settings.min_delta,
        baseline=settings.baseline,
        start_from_epoch=settings.start_from_epoch,
    )
    started = time.monotonic()
    try:
        model = build(space, OptunaHyperParameters(trial))
        validation = None if data.x_val is None else (data.x_val, data.y_val)
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=validation,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            callbacks=[recorder, stopper],
            verbose=0,
        )
    finally:
        _record(trial, recorder, started)
    if recorder.failure is not None:
        raise TrialFailedError(recorder.failure)
    if recorder.best_epoch is None or recorder.best_score is None:
        raise TrialFailedError(f"monitor {settings.monitor!r} was never a finite number")
    early = stopper.stopped_epoch > 0 and recorder.stop_epoch < settings.epochs
    trial.set_user_attr("early_stopped", early)
    keras_best = None if stopper.best is None else stopper.best_epoch + 1
    trial.set_user_attr("keras_best_epoch", keras_best)
    return TrialResult(
        best_score=recorder.best_score,
        best_epoch=recorder.best_epoch,
        stop_epoch=recorder.stop_epoch,
        early_stopped=early,
        keras_best_epoch=keras_best,
        checkpoint=checkpoint,
        history=history_path,
    )


def _record(trial: Any, recorder: TrialRecorder, started: float) -> None:
    trial.set_user_attr("duration_s", round(time.monotonic() - started, 3))
    trial.set_user_attr("stop_epoch", recorder.stop_epoch)
    if recorder.best_epoch is not None:
        trial.set_user_attr("best_epoch", recorder.best_epoch)
        trial.set_user_attr("best_score", recorder.best_score)
        trial.set_user_attr("checkpoint", str(recorder.checkpoint_path))
