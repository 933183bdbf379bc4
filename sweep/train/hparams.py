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

from sweep.core.errors import ConfigError


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


# Optuna keeps one distribution per parameter name in a study; these are its complaints
# when the same name comes back with another one.
_CONFLICTS = ("dynamic value space", "different distribution kind")


def is_conflict(exc: BaseException, hp: Any) -> bool:
    """Optuna refused ``hp``'s distribution because a conditional hyperparameter of the
    same name under other conditions was registered with another one."""
    return bool(hp.conditions) and any(c in str(exc) for c in _CONFLICTS)


def qualified_name(hp: Any) -> str:
    """``b[a=3]``: the name Optuna stores a conditional hyperparameter under when the same
    name has another distribution under other conditions; the table shows it as ``b``."""
    conditions = ", ".join(
        f"{c.name}={'|'.join(map(str, c.values))}" for c in hp.conditions if hasattr(c, "values")
    )
    return f"{hp.name}[{conditions}]"


def suggest(trial: Any, hp: Any, name: str | None = None) -> Any:
    """Ask ``trial`` (an ``optuna.Trial``) for a value of the KerasTuner hyperparameter ``hp``."""
    name = hp.name if name is None else name
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
                self.values[hp.name] = self._suggest(hp)
            return self.values[hp.name]
        return None  # like KerasTuner: inactive values are not handed out

    def _suggest(self, hp: Any) -> Any:
        """The same name under different conditions (``Fixed("b", 4)`` under ``a == 2``,
        ``Fixed("b", 5)`` under ``a == 3``) is two hyperparameters: the second distribution
        Optuna sees goes under its qualified name."""
        try:
            return suggest(self.trial, hp)
        except ValueError as exc:
            if not is_conflict(exc, hp):
                raise
            return suggest(self.trial, hp, name=qualified_name(hp))
