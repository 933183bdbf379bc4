"""The probe: build the model once with KerasTuner's default values before any trial
runs, to check the space (a compiled model, the monitor among the logged keys, the
mode, every hyperparameter a valid Optuna distribution)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from sweep.data import Data, head
from sweep.errors import ConfigError, MonitorMissingError
from sweep.hypermodel import hypermodel_fit
from sweep.space import SearchSpace
from sweep.train.hparams import suggest
from sweep.train.recorder import missing_monitor_message


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


class _LogKeys(keras.callbacks.Callback):  # type: ignore[misc]
    """Remembers the keys of the last epoch's logs."""

    keys: list[str] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.keys = sorted(logs or {})


def logged_keys(space: SearchSpace, hp: Any, model: Any, data: Data) -> list[str]:
    """The keys Keras logs at the end of an epoch, from one real epoch on a few samples
    (through the HyperModel's ``fit`` if it has one, which may declare hyperparameters)."""
    n = 8
    x, y = head(data.x_train, n), head(data.y_train, n)
    val = None if data.x_val is None else (head(data.x_val, n), head(data.y_val, n))
    if space.fit is None:
        history = model.fit(x, y, validation_data=val, epochs=1, batch_size=n, verbose=0)
        return sorted(history.history)
    catcher = _LogKeys()
    hypermodel_fit(
        space, hp, model, x, y, validation_data=val, epochs=1, callbacks=[catcher], verbose=0
    )
    if catcher.keys is None:
        raise ConfigError(
            f"search space {space.path}: hypermodel.fit(hp, model, x, y, **kwargs) trained no "
            "epoch with the callbacks it was given; pass **kwargs on to model.fit"
        )
    return catcher.keys


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


@dataclass(frozen=True)
class Probe:
    mode: str  # resolved: min or max
    hyperparameters: list[Any]  # every one seen (the grid sampler needs them)
    defaults: dict[str, Any]  # the active ones' default values (first_trial = "defaults")


def probe_space(space: SearchSpace, data: Data) -> Probe:
    """Build the model once with KerasTuner's default values, before any trial runs.

    Checks that ``build_model`` returns a compiled model, trains it for one step on
    a few samples to see the exact keys Keras logs (the monitor must be one of them),
    resolves ``mode``, and checks that every hyperparameter seen maps onto an Optuna
    distribution. Any error here is a configuration error: it would fail every
    trial.
    """
    import keras_tuner
    import optuna

    hp = keras_tuner.HyperParameters()
    try:
        model = build(space, hp)
        keys = logged_keys(space, hp, model, data)
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
    return Probe(mode=mode, hyperparameters=list(hp.space), defaults=dict(hp.values))
