"""KerasTuner's Tuner arguments in a space file: as ``SETTINGS`` keys, or read from a
``keras_tuner.Tuner`` object the file constructed (its ``search()`` not called).

Nothing here imports KerasTuner (or TensorFlow) unless the space file does.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sweep.core.errors import ConfigError

# Tuner arguments sweep has its own equivalent for: refused, naming it.
REFUSED = {
    "overwrite": "sweep never overwrites a study; start a new one with --study NEW",
    "directory": "sweep writes under --results DIR (default results/)",
    "project_name": "sweep names the study with --study NAME (default: the space file's name)",
}
# Tuner classes whose search maps onto an Optuna sampler.
SAMPLER_OF = {"RandomSearch": "random", "GridSearch": "grid", "BayesianOptimization": "gp"}


def _objective(value: Any, origin: str) -> dict[str, Any]:
    """``objective`` as a string (the monitor) or a ``keras_tuner.Objective`` (monitor, mode)."""
    if isinstance(value, str) and value:
        return {"monitor": value}
    name, direction = getattr(value, "name", None), getattr(value, "direction", None)
    if isinstance(name, str) and direction in ("min", "max") and not isinstance(value, list):
        if type(value).__name__ == "MultiObjective":
            name = None
        else:
            return {"monitor": name, "mode": direction}
    raise ConfigError(
        f"{origin}: setting 'objective' expected a metric name or "
        f"keras_tuner.Objective(name, direction), got {value!r}; sweep optimises one objective"
    )


def _executions(value: Any, origin: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(
            f"{origin}: setting 'executions_per_trial' expected a whole number >= 1, got {value!r}"
        )


def translate_settings(raw: Mapping[str, Any], *, origin: str) -> dict[str, Any]:
    """KerasTuner's Tuner arguments as sweep settings: ``objective`` sets monitor (and
    mode), ``max_trials`` is ``trials``; the rest pass through unchanged."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name in REFUSED:
            raise ConfigError(f"{origin}: setting {name!r} is KerasTuner's; {REFUSED[name]}")
        if name == "objective":
            out.update(_objective(value, origin))
            if "monitor" in raw:
                raise ConfigError(
                    f"{origin}: both 'objective' and 'monitor' are set; keep one of them"
                )
        elif name == "max_trials":
            if "trials" in raw:
                raise ConfigError(
                    f"{origin}: both 'max_trials' and 'trials' are set; keep one of them"
                )
            out["trials"] = value
        elif name == "executions_per_trial":
            _executions(value, origin)
            out[name] = value
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class TunerFound:
    """What a Tuner object in the space file says, as sweep settings."""

    hypermodel: Any
    settings: dict[str, Any]
    hyperparameters: Any  # its oracle's HyperParameters: declared and seen so far
    note: str


def _tuner_settings(tuner: Any, origin: str) -> dict[str, Any]:
    oracle = tuner.oracle
    settings: dict[str, Any] = {}
    objective = getattr(oracle, "objective", None)
    if objective is not None and type(objective).__name__ != "DefaultObjective":
        settings.update(_objective(objective, origin))
    if getattr(oracle, "max_trials", None) is not None:
        settings["trials"] = int(oracle.max_trials)
    executions = getattr(tuner, "executions_per_trial", 1)
    _executions(executions, origin)
    if executions > 1:
        settings["executions_per_trial"] = executions
    retries = int(getattr(oracle, "max_retries_per_trial", 0) or 0)
    if retries:
        settings["max_retries_per_trial"] = retries
    sampler = SAMPLER_OF.get(type(tuner).__name__)
    if sampler is not None:
        settings["sampler"] = sampler
    return settings


def find_tuner(module: Any, origin: str) -> TunerFound | None:
    """The one ``keras_tuner.Tuner`` the file constructed, read for its hypermodel and
    arguments; None without one."""
    kt = sys.modules.get("keras_tuner")
    if kt is None:
        return None
    found = [v for v in vars(module).values() if isinstance(v, kt.Tuner)]
    if not found:
        return None
    if len(found) > 1:
        raise ConfigError(
            f"{origin}: expected at most one keras_tuner Tuner, found {len(found)}; keep one"
        )
    tuner = found[0]
    if tuner.hypermodel is None:
        raise ConfigError(
            f"{origin}: the {type(tuner).__name__} has no hypermodel; pass one "
            "(RandomSearch(build_model, ...))"
        )
    settings = _tuner_settings(tuner, origin)
    shown = ", ".join(f"{k}={v}" for k, v in settings.items())
    note = (
        f"{type(tuner).__name__} in {origin.removeprefix('search space ')} read: its hypermodel"
        f"{', ' + shown if shown else ''} (SETTINGS and flags win); its directory "
        f"{tuner.directory}/{tuner.project_name} is not used: sweep writes under --results"
    )
    return TunerFound(tuner.hypermodel, settings, tuner.oracle.hyperparameters, note)


def declared_hyperparameters(module: Any) -> Any:
    """A ``keras_tuner.HyperParameters`` object declared at the top of the file (a static
    space, read by ``build_model`` through ``hp.get``); None without one."""
    kt = sys.modules.get("keras_tuner")
    if kt is None:
        return None
    found = [v for v in vars(module).values() if isinstance(v, kt.HyperParameters)]
    return found[0] if len(found) == 1 and found[0].space else None


@contextlib.contextmanager
def no_tuner_folders(source: str) -> Iterator[None]:
    """While a space file is imported: a Tuner constructed in it creates no
    ``directory/project_name`` folder (KerasTuner makes one on construction)."""
    if "keras_tuner" not in source and "kerastuner" not in source:
        yield
        return
    from keras_tuner.src import utils

    original = utils.create_directory
    utils.create_directory = lambda path, remove_existing=False: None
    try:
        yield
    finally:
        utils.create_directory = original
