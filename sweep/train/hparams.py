"""KerasTuner's ``hp`` API backed by an Optuna trial.

``OptunaHyperParameters`` *is* a ``keras_tuner.HyperParameters``: conditional
scopes, name scopes, ``hp.values`` and ``hp.get`` behave as in KerasTuner. The one
difference is where a new value comes from: instead of the default, each active
hyperparameter asks the Optuna trial (``trial.suggest_*``). The mapping:

==========================================  ===========================================
KerasTuner                                  Optuna
==========================================  ===========================================
``Int(min, max, step)`` (linear)            ``suggest_int(low, high, step=step)``
``Int(min, max, sampling="log")``           ``suggest_int(low, high, log=True)``
``Float(min, max)`` (linear)                ``suggest_float(low, high)``
``Float(min, max, step)`` (linear)          ``suggest_float(low, high, step=step)``
``Float(min, max, sampling="log")``         ``suggest_float(low, high, log=True)``
``Int/Float(..., step, sampling="log")``    ``suggest_categorical`` over KerasTuner's
                                            values (``min * step**i``)
``Choice(values)``                          ``suggest_categorical(values)``
``Boolean()``                               ``suggest_categorical([False, True])``
``Fixed(value)``                            ``suggest_categorical([value])``
``sampling="reverse_log"`` without step     not supported (no Optuna distribution)
==========================================  ===========================================
"""

from __future__ import annotations

from typing import Any

import keras_tuner
from keras_tuner.src.engine.hyperparameters import hp_types

from sweep.errors import ConfigError


def listed_values(hp: Any) -> list[Any] | None:
    """The finite values of a hyperparameter, or None if it is continuous.

    For an ``Int`` the values are ints (KerasTuner lists a stepped log ``Int`` as floats).
    """
    if isinstance(hp, hp_types.Fixed):
        return [hp.value]
    if isinstance(hp, hp_types.Boolean):
        return [False, True]
    if isinstance(hp, hp_types.Choice):
        return list(hp.values)
    if isinstance(hp, hp_types.Int | hp_types.Float) and hp.step is not None:
        cast = int if isinstance(hp, hp_types.Int) else float
        return [cast(v) for v in hp.values]
    return None


def suggest(trial: Any, hp: Any) -> Any:
    """Ask ``trial`` (an ``optuna.Trial``) for a value of the KerasTuner hyperparameter ``hp``."""
    name = hp.name
    if isinstance(hp, hp_types.Fixed):
        return trial.suggest_categorical(name, [hp.value])
    if isinstance(hp, hp_types.Boolean):
        return trial.suggest_categorical(name, [False, True])
    if isinstance(hp, hp_types.Choice):
        return trial.suggest_categorical(name, list(hp.values))
    if isinstance(hp, hp_types.Int | hp_types.Float):
        is_int = isinstance(hp, hp_types.Int)
        if hp.sampling == "linear":
            if is_int:
                return trial.suggest_int(name, hp.min_value, hp.max_value, step=hp.step or 1)
            return trial.suggest_float(name, hp.min_value, hp.max_value, step=hp.step)
        if hp.sampling == "log" and hp.step is None:
            if is_int:
                return trial.suggest_int(name, hp.min_value, hp.max_value, log=True)
            return trial.suggest_float(name, hp.min_value, hp.max_value, log=True)
        if hp.step is not None:
            # KerasTuner's step is a factor here: min, min*step, min*step**2, ...
            return trial.suggest_categorical(name, listed_values(hp))
        raise ConfigError(
            f"hyperparameter {name!r}: sampling='reverse_log' without a step has no Optuna "
            "distribution; use sampling='log', or give a step so its values can be listed"
        )
    raise ConfigError(
        f"hyperparameter {name!r}: expected Int, Float, Choice, Boolean or Fixed, "
        f"got {type(hp).__name__}; sweep supports only those"
    )


class OptunaHyperParameters(keras_tuner.HyperParameters):  # type: ignore[misc]
    """A ``keras_tuner.HyperParameters`` whose new values come from an Optuna trial."""

    def __init__(self, trial: Any) -> None:
        super().__init__()
        self.trial = trial

    def _register(self, hyperparameter: Any, overwrite: bool = False) -> Any:
        hp = hyperparameter
        self._validate_name(hp.name)
        hp = hp.__class__.from_config(hp.get_config())
        self._hps[hp.name].append(hp)
        self._space.append(hp)
        if self.is_active(hp):
            if overwrite or hp.name not in self.values:
                self.values[hp.name] = suggest(self.trial, hp)
            return self.values[hp.name]
        return None  # like KerasTuner: inactive values are not handed out
