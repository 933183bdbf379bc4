"""The probe: the space checked once, before any trial runs, on a few samples.

It builds the model with KerasTuner's default values, trains it one epoch to see the
keys Keras logs (the monitor must be one of them) or, for a HyperModel fit with its own
training loop, what fit returns (the objective); resolves ``mode``; and checks that every
hyperparameter maps onto an Optuna distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from sweep.core.direction import Direction
from sweep.core.errors import (
    ConfigError,
    FatalTrialError,
    MonitorMissingError,
    error_text,
    is_fatal,
)
from sweep.space.data import Data, head
from sweep.space.files import SearchSpace
from sweep.space.hypermodel import fit_direction, hypermodel_fit, objective_from_fit
from sweep.space.inputs import call_fit_options
from sweep.train.callbacks import build_user_callbacks
from sweep.train.causes import name_bad_file
from sweep.train.finite import check_finite
from sweep.train.hparams import is_conflict, qualified_name, suggest
from sweep.train.recorder import missing_monitor_message
from sweep.train.trial import build


class _LogKeys(keras.callbacks.Callback):  # type: ignore[misc]
    """Remembers the keys of the last epoch's logs."""

    keys: list[str] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.keys = sorted(logs or {})


def logged_keys(space: SearchSpace, hp: Any, model: Any, data: Data) -> list[str] | Any:
    """The keys Keras logs at the end of an epoch, from one real epoch on a few samples
    (through the HyperModel's ``fit`` if it has one, which may declare hyperparameters).

    A HyperModel fit that sends no epoch through the callbacks (a custom training loop)
    gives what it returned instead: its objective, KerasTuner-style.
    """
    n = 8
    if space.fit is None:
        from sweep.train.feeds import probe_kwargs

        train, few_val = probe_kwargs(data)  # a few batches of whatever load_data returned
        history = model.fit(**train, validation_data=few_val, epochs=1, shuffle=False, verbose=0)
        return sorted(history.history)
    x, y = head(data.x_train, n), head(data.y_train, n)
    val = None if data.x_val is None else (head(data.x_val, n), head(data.y_val, n))
    catcher = _LogKeys()
    returned = hypermodel_fit(
        space, hp, model, x, y, validation_data=val, epochs=1, callbacks=[catcher], verbose=0
    )
    return returned if catcher.keys is None else catcher.keys


def fit_objective_mode(space: SearchSpace, returned: Any) -> Direction:
    """The mode of a trial whose objective is fit's return value; ConfigError if the
    return value holds none."""
    monitor = space.settings.monitor
    given = space.settings.mode
    mode = Direction(given) if given in ("min", "max") else fit_direction(monitor)
    found = objective_from_fit(returned, monitor, mode)
    if isinstance(found, str):
        raise ConfigError(
            f"search space {space.path}: hypermodel.fit(hp, model, x, y, **kwargs) trained no "
            f"epoch with the callbacks it was given and {found}; pass **kwargs on to "
            f"model.fit, or return the objective (a float, a dict with {monitor!r}, or a History)"
        )
    return mode


def resolve_mode(model: Any, monitor: str, mode: str, *, origin: str) -> Direction:
    """Resolve ``auto`` (the setting, a string) exactly as Keras' EarlyStopping does, on a
    model whose metrics are built."""
    if mode in ("min", "max"):
        return Direction(mode)
    probe = keras.callbacks.EarlyStopping(monitor=monitor, mode="auto")
    probe.set_model(model)
    try:
        probe._set_monitor_op()
    except ValueError:
        raise ConfigError(
            f"{origin}: mode 'auto' cannot tell whether {monitor!r} should go up or down; "
            "set --mode min or --mode max (or SETTINGS['mode'])"
        ) from None
    return Direction.MIN if probe.monitor_op is keras.ops.less else Direction.MAX


@dataclass(frozen=True)
class Probe:
    mode: Direction  # resolved
    hyperparameters: list[Any]  # every one seen (the grid sampler needs them)
    defaults: dict[str, Any]  # the active ones' default values (first_trial = "defaults")
    objective_source: str = "monitor"  # or "fit": the HyperModel's fit returns the objective
    notes: tuple[str, ...] = ()  # one line each, shown once when the sweep starts


def probe_space(space: SearchSpace, data: Data) -> Probe:
    """Build the model once with KerasTuner's default values, before any trial runs.

    Checks that ``build_model`` returns a compiled model, trains it for one step on
    a few samples to see the exact keys Keras logs (the monitor must be one of them),
    resolves ``mode``, and checks that every hyperparameter seen maps onto an Optuna
    distribution. Any error here is a configuration error: it would fail every
    trial.
    """
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    if space.declared is not None:
        hp.merge(space.declared)
    hypermodel = hasattr(space.build_model, "__self__")
    stage = "hypermodel.build(hp)" if hypermodel else "build_model(hp)"
    try:
        model = build(space, hp)
        stage = "callbacks(hp)"
        build_user_callbacks(space.callbacks, hp, f"search space {space.path}")
        if space.fit is None:  # sweep feeds fit: each part must end (or have its steps)
            stage = "fit_options(hp)"
            origin = f"search space {space.path}"
            options = call_fit_options(space.fit_options, hp, origin=origin)
            check_finite(data, options, origin=origin)
        stage = "model.fit on 8 samples" if space.fit is None else "hypermodel.fit(hp, model, ...)"
        source, mode = _objective(space, model, logged_keys(space, hp, model, data))
    except ConfigError:
        raise
    except Exception as exc:
        name_bad_file(exc, data)  # a corrupt image: TensorFlow names none
        if is_fatal(exc):
            raise FatalTrialError(
                f"search space {space.path}: {stage} raised {error_text(exc)}"
            ) from None
        raise ConfigError(
            f"search space {space.path}: {stage} raised {error_text(exc)}; fix the file"
        ) from None
    finally:
        keras.backend.clear_session()
    _check_distributions(space, hp)
    notes = () if source == "monitor" else (fit_source_note(space.settings.monitor, mode),)
    return Probe(
        mode=mode,
        hyperparameters=list(hp.space),
        defaults=dict(hp.values),
        objective_source=source,
        notes=notes,
    )


def _objective(space: SearchSpace, model: Any, keys: Any) -> tuple[str, Direction]:
    """Where the trials' objective comes from and its direction: the monitor among the
    keys Keras logged (its mode resolved), or what a HyperModel's fit returned (``keys``
    is not a list then)."""
    monitor = space.settings.monitor
    if not isinstance(keys, list):
        return "fit", fit_objective_mode(space, keys)
    if monitor not in keys:
        raise MonitorMissingError(
            f"search space {space.path}: {missing_monitor_message(monitor, keys)}"
        )
    return "monitor", resolve_mode(
        model, monitor, space.settings.mode, origin=f"search space {space.path}"
    )


def _check_distributions(space: SearchSpace, hp: Any) -> None:
    """Every hyperparameter the probe saw maps onto an Optuna distribution (asked of a
    scratch study in memory; a name two hyperparameters share, by its qualified name)."""
    import optuna

    scratch = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    for h in hp.space:
        try:
            try:
                suggest(scratch.ask(), h)
            except ValueError as exc:
                if not is_conflict(exc, h):
                    raise
                suggest(scratch.ask(), h, name=qualified_name(h))
        except ConfigError as exc:
            raise ConfigError(f"search space {space.path}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(
                f"search space {space.path}: hyperparameter {h.name!r} is not a valid Optuna "
                f"range: {exc}; fix its bounds"
            ) from None


def fit_source_note(monitor: str, mode: Direction) -> str:
    return (
        "hypermodel.fit trains no epoch through sweep's callbacks (a custom training loop): "
        f"each trial's objective is what fit returns ({monitor}, {mode}), with no early "
        "stopping and no resume mid-trial; the checkpoint is the model as fit left it"
    )
