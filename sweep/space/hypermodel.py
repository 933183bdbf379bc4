"""KerasTuner HyperModels as search spaces: finding one in a space file, and calling
its own ``fit(hp, model, x, y, **kwargs)`` the way KerasTuner's ``search`` does.

Nothing here imports KerasTuner (or TensorFlow) unless the space file already did.
"""

from __future__ import annotations

import ast
import inspect
import math
import numbers
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sweep.core.direction import Direction
from sweep.core.errors import ConfigError

if TYPE_CHECKING:
    from sweep.space.files import SearchSpace


def _hypermodels(module: Any) -> tuple[Any, list[Any]]:
    """``(the 'hypermodel' attribute, HyperModel instances and subclasses defined in the file)``.

    A file can only define a ``keras_tuner.HyperModel`` if it imported KerasTuner, so a
    space without one never imports it (or TensorFlow) here.
    """
    kt = sys.modules.get("keras_tuner")
    named = getattr(module, "hypermodel", None)
    if kt is None:
        return named, []
    base = kt.HyperModel
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, base)
        or (
            isinstance(value, type)
            and issubclass(value, base)
            and value is not base
            and value.__module__ == module.__name__
        )
    ]
    return named, found


def model_entry(module: Any, origin: str) -> tuple[Callable[[Any], Any], Any]:
    """``(build(hp), fit(hp, model, x, y, **kwargs) or None)`` from ``build_model`` or a
    KerasTuner ``HyperModel`` (an instance or a subclass; its ``fit`` only if overridden)."""
    build_model = getattr(module, "build_model", None)
    named, found = _hypermodels(module)
    candidate = named
    if candidate is None and callable(build_model) and found:
        candidate = found[0]  # reported as "both" below
    if candidate is None:
        instances = [f for f in found if not isinstance(f, type)]
        pool = instances or found
        if len(pool) > 1:
            names = ", ".join(sorted(getattr(f, "__name__", type(f).__name__) for f in pool))
            raise ConfigError(
                f"{origin}: expected one KerasTuner HyperModel, found several ({names}); "
                "say which with hypermodel = MyHyperModel()"
            )
        candidate = pool[0] if pool else None
    if candidate is None:
        if not callable(build_model):
            raise ConfigError(
                f"{origin}: expected a function build_model(hp) returning a compiled "
                "keras.Model, or a KerasTuner HyperModel (hypermodel = MyHyperModel()), "
                "found neither; define one in the file"
            )
        return build_model, None
    if callable(build_model):
        raise ConfigError(
            f"{origin}: expected build_model(hp) or a HyperModel, found both; keep one of them"
        )
    return hypermodel_entry(candidate, origin)


def hypermodel_entry(candidate: Any, origin: str) -> tuple[Callable[[Any], Any], Any]:
    """``(build, fit or None)`` of a KerasTuner HyperModel instance or subclass."""
    import keras_tuner

    if isinstance(candidate, type) and issubclass(candidate, keras_tuner.HyperModel):
        try:
            candidate = candidate()
        except TypeError as exc:
            raise ConfigError(
                f"{origin}: {candidate.__name__}() needs arguments ({exc}); "
                f"create it in the file: hypermodel = {candidate.__name__}(...)"
            ) from None
    if not isinstance(candidate, keras_tuner.HyperModel):
        raise ConfigError(
            f"{origin}: expected hypermodel to be a keras_tuner.HyperModel, got "
            f"{type(candidate).__name__}; subclass keras_tuner.HyperModel"
        )
    overridden = type(candidate).fit is not keras_tuner.HyperModel.fit
    return candidate.build, candidate.fit if overridden else None


def fit_kwargs(space: SearchSpace) -> dict[str, Any]:
    """What a HyperModel's own ``fit`` gets besides ``x, y``, KerasTuner-style: no batch
    size unless the settings name one (then the fit must not set it too)."""
    if "batch_size" in space.explicit:
        return {"batch_size": space.settings.batch_size}
    return {}


def hypermodel_fit(space: SearchSpace, hp: Any, model: Any, x: Any, y: Any, **kwargs: Any) -> Any:
    """Call the HyperModel's ``fit(hp, model, x, y, **kwargs)`` and return what it returned.

    To train through sweep's early stopping and checkpoint it passes ``kwargs`` on to
    ``model.fit``. A fit that sets ``epochs`` itself (``epochs=hp.Int("epochs", 5, 20)``,
    KerasTuner's docstring example) wins: it is called without sweep's ``epochs``.
    """
    assert space.fit is not None
    kwargs = {**fit_kwargs(space), **kwargs}
    if "epochs" in kwargs and sets_epochs(space.fit):
        kwargs.pop("epochs")
    try:
        return space.fit(hp, model, x, y, **kwargs)
    except TypeError as exc:
        if "multiple values for keyword argument" not in str(exc):
            raise
        if "'epochs'" in str(exc) and "epochs" in kwargs:
            kwargs.pop("epochs")
            return hypermodel_fit(space, hp, model, x, y, **kwargs)
        raise ConfigError(
            f"search space {space.path}: hypermodel.fit(...) raised TypeError: {exc}; the "
            "harness passes batch_size only when the settings give one: remove it from "
            "SETTINGS/--batch-size or from the fit"
        ) from None


def sets_epochs(fit: Any) -> bool:
    """Whether the fit's own code passes ``epochs=`` to a call (KerasTuner's docstring:
    ``model.fit(*args, epochs=hp.Int("epochs", 5, 20), **kwargs)``). Then sweep does not
    pass its own: calling it with both would raise "multiple values for 'epochs'"."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fit)))
    except (OSError, TypeError, SyntaxError):
        return False  # no source: the TypeError fallback in hypermodel_fit applies
    return any(isinstance(node, ast.keyword) and node.arg == "epochs" for node in ast.walk(tree))


@dataclass(frozen=True)
class FitObjective:
    """A trial's objective taken from what a HyperModel's own fit returned."""

    value: float
    best_epoch: int | None  # 1-based; known from a History only
    stop_epoch: int | None


def objective_from_fit(result: Any, monitor: str, mode: Direction) -> FitObjective | str:
    """KerasTuner's rule (``convert_to_metrics_dict``): a number is the objective, a dict
    holds it under the objective's name, a History is read at its best epoch. A string
    says why ``result`` holds no objective."""
    if isinstance(result, numbers.Real) and not isinstance(result, bool):
        return FitObjective(float(result), None, None)
    if isinstance(result, np.ndarray | np.generic) and np.ndim(result) == 0:
        return FitObjective(float(result), None, None)
    if isinstance(result, dict):
        if monitor not in result:
            return f"returned a dict without {monitor!r} (it has: {', '.join(map(str, result))})"
        return FitObjective(float(result[monitor]), None, None)
    history = getattr(result, "history", None)
    if isinstance(history, dict):
        values = [float(v) for v in history.get(monitor, [])]
        finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
        if not finite:
            keys = ", ".join(sorted(history)) or "nothing"
            return f"returned a History without {monitor!r} (it has: {keys})"
        sign = Direction(mode).sign  # a Direction, or its string
        best = min(finite, key=lambda p: (sign * p[0], p[1]))
        return FitObjective(best[0], best[1] + 1, len(values))
    return f"returned {type(result).__name__}"


def fit_direction(monitor: str) -> Direction:
    """KerasTuner's direction for an objective by name; "min" where it can't tell (a
    float returned without an Objective is minimised)."""
    from keras_tuner.src.engine.metrics_tracking import infer_metric_direction

    try:
        direction = infer_metric_direction(monitor)
    except ValueError:
        direction = None
    return Direction(direction) if direction in ("min", "max") else Direction.MIN
