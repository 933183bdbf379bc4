"""Loading a search-space file, and its settings with CLI overrides.

A search space is a Python file that defines ``build_model(hp)``, ``load_data()``
and optionally a ``SETTINGS`` dict. Nothing here trains; importing the file may
import Keras if the file does.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import inspect
import math
import sys
import traceback
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sweep.core.errors import ConfigError
from sweep.core.options import (
    file_path,
    number,
    number_or_list,
    option,
    whole,
    whole_or_list,
)
from sweep.space.hypermodel import hypermodel_entry, model_entry
from sweep.space.kerastuner import (
    declared_hyperparameters,
    find_tuner,
    no_tuner_folders,
    translate_settings,
)

MODES = ("auto", "min", "max")
SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp")
PRUNERS = ("none", "median", "percentile", "hyperband", "asha")
FIRST_TRIALS = ("sampled", "defaults")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """A space's settings. Every field has a CLI flag (``--min-delta`` for ``min_delta``)
    and a keyword of ``sweep.run``; either one, None or left out, keeps the space's own.

    On the command line, ``sweep run --help`` lists those that take a value first, then
    the one whose value may be left out, then the switches (``sweep.cli.arguments``)."""

    monitor: str = option(
        "val_loss", "metric to monitor, as Keras logs it (e.g. val_accuracy)", parse=str
    )
    mode: str = option(
        "auto", f"one of {', '.join(MODES)}; auto is resolved as Keras does", parse=str
    )
    epochs: int = option(20, "maximum epochs per trial", parse=whole(1))
    batch_size: int = option(32, "batch size", parse=whole(1))
    # sweep's seeded shuffle of a tf.data dataset that has none
    shuffle_buffer: int = option(
        1024, "buffer of sweep's per-epoch tf.data shuffle", parse=whole(1)
    )
    validation_split: float = option(0.2, "last fraction held out, as Keras does", parse=number)
    # a list makes it a hyperparameter of the study (patience and min_delta)
    patience: int | list[int] = option(
        3,
        "EarlyStopping patience; a list (2,5,10) makes it a hyperparameter",
        parse=whole_or_list,
    )
    min_delta: float | list[float] = option(
        0.0,
        "EarlyStopping min_delta; a list (0,1e-4) makes it a hyperparameter",
        parse=number_or_list,
    )
    baseline: float | None = option(None, "EarlyStopping baseline", parse=number)
    start_from_epoch: int = option(0, "EarlyStopping start_from_epoch", parse=whole(0))
    trials: int = option(10, "finished trials the study should have", parse=whole(1))
    sampler: str = option("tpe", f"Optuna sampler: {', '.join(SAMPLERS)} (default tpe)", parse=str)
    # Optuna's pruners, checked at each epoch end (see sweep.execution.pruning)
    pruner: str = option("none", f"Optuna pruner: {', '.join(PRUNERS)} (default none)", parse=str)
    first_trial: str = option(
        "sampled",
        "defaults: trial 0 uses every hyperparameter's default (default: sampled)",
        parse=str,
    )
    # handed to load_data(data_path=...) when it takes one
    data_path: str | None = option(
        None,
        "a local data file, passed to load_data(data_path=...)",
        parse=file_path,
        keyword="PathLike | None",
    )
    mixed_precision: bool = option(
        False,
        "Keras' mixed_float16 policy in every trial (setting mixed_precision)",
        listed_after="gpu_memory",
    )
    # results/<study>/tensorboard/ (see sweep.integrations.tensorboard)
    tensorboard: bool = option(False, "write results/<study>/tensorboard/ (HParams included)")
    # an MLflow tracking URI, or True: the one in MLFLOW_TRACKING_URI (sweep.integrations.trackers)
    mlflow: str | bool | None = option(
        None,
        "log the study and each trial to this MLflow tracking URI (http://... or "
        "sqlite:///...); alone: the one in MLFLOW_TRACKING_URI",
        parse=str,
        alone=True,
    )
    mlflow_artifacts: bool = option(False, "log each trial's best checkpoint to MLflow")
    executions_per_trial: int = option(  # KerasTuner's name
        1,
        "train each trial N times; its score is the mean of their best scores",
        parse=whole(1),
    )
    max_retries_per_trial: int = option(  # KerasTuner's
        0,
        "rerun a trial that raises from scratch up to N times (KerasTuner's; default 0)",
        parse=whole(0),
    )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


COMMAND_LINE = "command line"
SETTING_NAMES = tuple(f.name for f in fields(Settings))


@dataclass(frozen=True)
class SearchSpace:
    name: str
    path: Path
    build_model: Callable[[Any], Any]
    load_data: Callable[..., Any]
    settings: Settings
    fit: Callable[..., Any] | None = None  # a HyperModel's own fit(hp, model, x, y, **kwargs)
    takes_data_path: bool = False  # load_data(data_path=...)
    explicit: frozenset[str] = frozenset()  # settings given in SETTINGS or on the command line
    fit_options: Callable[[Any], Any] | None = None  # fit_options(hp): extra fit keywords
    callbacks: Callable[[Any], Any] | None = None  # callbacks(hp): the user's extra callbacks
    declared: Any = None  # a keras_tuner.HyperParameters declared up front (a static space)
    notes: tuple[str, ...] = ()  # one line each, shown once when the sweep starts

    def call_load_data(self) -> Any:
        if self.takes_data_path:
            return self.load_data(data_path=self.settings.data_path)
        return self.load_data()


def resolve_space_path(spec: str, *, spaces_dir: Path = Path("search_spaces")) -> Path:
    """``NAME`` means ``search_spaces/NAME.py``; anything else is a path."""
    candidate = Path(spec)
    known = sorted(p.stem for p in spaces_dir.glob("*.py")) if spaces_dir.is_dir() else []
    listed = ", ".join(known) if known else "none"
    if candidate.suffix == ".py" or candidate.exists():
        if candidate.is_file():
            return candidate
        found = "a directory" if candidate.is_dir() else "no such file"
        raise ConfigError(
            f"search space {spec}: expected a Python file, found {found}; give a path to a "
            f".py file or a name from {spaces_dir}/ ({listed})"
        )
    named = spaces_dir / f"{spec}.py"
    if named.is_file():
        return named
    raise ConfigError(
        f"search space {spec!r}: expected {named} or a path to a .py file, found neither; "
        f"spaces in {spaces_dir}/: {listed}"
    )


def _check(path: Path, name: str, value: Any, ok: bool, expected: str, origin: str) -> None:
    if not ok:
        flag = f"--{name.replace('_', '-')}"
        if origin == COMMAND_LINE:
            raise ConfigError(f"{flag}: expected {expected}, got {value!r}")
        raise ConfigError(
            f"{origin}: setting {name!r} expected {expected}, got {value!r}; "
            f"fix it in {path} or pass {flag}"
        )


def validate_settings(raw: Mapping[str, Any], *, path: Path, origin: str) -> dict[str, Any]:
    """Check names, types and ranges; return the values converted to their field types."""
    out: dict[str, Any] = {}
    for name, value in translate_settings(raw, origin=origin).items():
        if name not in SETTING_NAMES:
            close = difflib.get_close_matches(name, SETTING_NAMES, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(SETTING_NAMES)}"
            raise ConfigError(f"{origin}: unknown setting {name!r}; {hint}")
        if name in ("patience", "min_delta"):
            value = _checked_stopping(name, value, path=path, origin=origin)
        else:
            value = _checked_setting(name, value, path=path, origin=origin)
        if name == "validation_split" or (name == "baseline" and value is not None):
            value = float(value)
        out[name] = value
    return out


def _checked_setting(name: str, value: Any, *, path: Path, origin: str) -> Any:
    """One setting (but patience and min_delta) checked; its value (data_path: a str)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_num = (is_int or isinstance(value, float)) and math.isfinite(float(value))
    if name in ("monitor",):
        _check(path, name, value, isinstance(value, str) and bool(value), "a metric name", origin)
    elif name == "mode":
        _check(path, name, value, value in MODES, "one of auto, min, max", origin)
    elif name == "sampler":
        _check(path, name, value, value in SAMPLERS, f"one of {', '.join(SAMPLERS)}", origin)
    elif name == "pruner":
        _check(path, name, value, value in PRUNERS, f"one of {', '.join(PRUNERS)}", origin)
    elif name == "first_trial":
        ok = value in FIRST_TRIALS
        _check(path, name, value, ok, f"one of {', '.join(FIRST_TRIALS)}", origin)
    elif name == "data_path":
        ok = value is None or (isinstance(value, str | Path) and bool(str(value)))
        _check(path, name, value, ok, "a file path or None", origin)
        value = None if value is None else str(value)
    elif name == "mixed_precision":
        _check(path, name, value, isinstance(value, bool), "True or False", origin)
    elif name == "max_retries_per_trial":
        _check(path, name, value, is_int and value >= 0, "a whole number >= 0", origin)
    elif name in ("epochs", "batch_size", "trials", "executions_per_trial", "shuffle_buffer"):
        _check(path, name, value, is_int and value >= 1, "a whole number >= 1", origin)
    elif name == "start_from_epoch":
        _check(path, name, value, is_int and value >= 0, "a whole number >= 0", origin)
    elif name == "validation_split":
        _check(path, name, value, is_num and 0 <= value < 1, "a number in [0, 1)", origin)
    elif name == "baseline":
        _check(path, name, value, value is None or is_num, "a number or None", origin)
    elif name in ("tensorboard", "mlflow_artifacts"):
        _check(path, name, value, isinstance(value, bool), "True or False", origin)
    elif name == "mlflow":
        ok = value is None or isinstance(value, bool) or bool(str(value).strip())
        ok = ok and isinstance(value, str | bool | None)
        expected = "an MLflow tracking URI, True (the one in MLFLOW_TRACKING_URI) or None"
        _check(path, name, value, ok, expected, origin)
    return value


def _checked_stopping(name: str, value: Any, *, path: Path, origin: str) -> Any:
    """patience or min_delta checked: a value, or a list of them (a tuple made a list;
    min_delta's values floats)."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    if name == "patience":
        ok = bool(items) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in items
        )
        _check(path, name, value, ok, "a whole number >= 0, or a list of them", origin)
        return items if isinstance(value, list | tuple) else value
    ok = bool(items) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in items
    )
    _check(path, name, value, ok, "a number >= 0, or a list of them", origin)
    floats = [float(v) for v in items]
    return floats if isinstance(value, list | tuple) else floats[0]


def _check_executions(values: Mapping[str, Any], *, path: Path, origin: str) -> None:
    """Pruning judges one curve per trial: with several executions it is refused."""
    count, pruner = values.get("executions_per_trial", 1), values.get("pruner", "none")
    if count > 1 and pruner != "none":
        raise ConfigError(
            f"{origin}: executions_per_trial={count} with pruner {pruner!r}: a pruner judges "
            "one curve per trial, expected pruner 'none'; drop --pruner or set "
            "--executions-per-trial 1"
        )


def _import_file(path: Path) -> Any:
    module_name = f"sweep_space_{path.stem}_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"search space {path}: expected a Python file, could not load it")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with no_tuner_folders(path.read_text(encoding="utf-8", errors="replace")):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(
            f"search space {path}: syntax error at line {exc.lineno}: {exc.msg}; fix the file"
        ) from None
    except Exception as exc:
        raise ConfigError(
            f"search space {path}: importing it raised {type(exc).__name__}: {exc}"
            f"{_where(exc, path)}; fix the file"
        ) from None
    return module


def _where(exc: BaseException, path: Path) -> str:
    """`` (line N)`` of the deepest frame inside the space file, if any."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f" (line {lines[-1]})" if lines else ""


def _takes_data_path(
    load_data: Callable[..., Any], values: Mapping[str, Any], *, refusal: str
) -> bool:
    """Whether ``load_data`` takes ``data_path``; a data path given to one that doesn't is
    refused with ``refusal``."""
    takes = "data_path" in inspect.signature(load_data).parameters
    if values.get("data_path") is not None and not takes:
        raise ConfigError(refusal)
    return takes


def load_space(spec: str, *, overrides: Mapping[str, Any] | None = None) -> SearchSpace:
    """Load and check a search-space file; CLI ``overrides`` win over its ``SETTINGS``."""
    path = resolve_space_path(spec)
    module = _import_file(path)
    origin = f"search space {path}"
    tuner = find_tuner(module, origin)
    if tuner is None:
        build_model, fit = model_entry(module, origin)
        declared = declared_hyperparameters(module)
    else:
        build_model, fit = hypermodel_entry(tuner.hypermodel, origin)
        declared = tuner.hyperparameters
    load_data = getattr(module, "load_data", None)
    if not callable(load_data):
        raise ConfigError(
            f"{origin}: expected a function load_data() returning (x, y) or "
            "((x, y), (x_val, y_val)[, (x_test, y_test)]), found none; define it in the file"
        )
    raw = getattr(module, "SETTINGS", {})
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{origin}: expected SETTINGS to be a dict, got {type(raw).__name__}; "
            "write SETTINGS = {'monitor': 'val_loss', ...}"
        )
    callbacks = _callbacks_entry(getattr(module, "callbacks", None), origin)
    values = {} if tuner is None else validate_settings(tuner.settings, path=path, origin=origin)
    values.update(validate_settings(raw, path=path, origin=origin))
    values.update(validate_settings(overrides or {}, path=path, origin=COMMAND_LINE))
    _check_executions(values, path=path, origin=origin)
    takes_path = _takes_data_path(
        load_data,
        values,
        refusal=f"{origin}: a data path was given but load_data() takes no data_path "
        "parameter; define load_data(data_path=None), or drop --data-path",
    )
    return SearchSpace(
        name=path.stem,
        path=path,
        build_model=build_model,
        fit=fit,
        load_data=load_data,
        takes_data_path=takes_path,
        settings=Settings(**values),
        explicit=frozenset(values),
        fit_options=_fit_options(module, origin),
        declared=declared,
        notes=() if tuner is None else (tuner.note,),
        callbacks=callbacks,
    )


def _callbacks_entry(value: Any, origin: str) -> Callable[[Any], Any] | None:
    """The space's optional ``callbacks(hp)``, checked to be a function."""
    if value is None or isinstance(value, types.ModuleType):  # from keras import callbacks
        return None
    if callable(value):
        factory: Callable[[Any], Any] = value
        return factory
    raise ConfigError(
        f"{origin}: expected callbacks to be a function callbacks(hp) returning a list of "
        f"Keras callbacks, got {type(value).__name__}; define def callbacks(hp): return [...]"
    )


def _fit_options(module: Any, origin: str) -> Callable[[Any], Any] | None:
    fn = getattr(module, "fit_options", None)
    if fn is not None and not callable(fn):
        raise ConfigError(
            f"{origin}: fit_options must be a function fit_options(hp) returning a dict of fit "
            f"keywords, got {type(fn).__name__}; define it as a function"
        )
    return fn


@dataclass(frozen=True)
class Functions:
    """A search space given as functions rather than a file (``sweep.run(build_model=...)``)."""

    build_model: Callable[[Any], Any] | None = None
    load_data: Callable[..., Any] | None = None
    hypermodel: Any = None
    callbacks: Callable[[Any], Any] | None = None


FUNCTIONS_PATH = Path("<functions>")  # what messages call a space given as functions
_ORIGIN = "sweep.run()"


def space_from_functions(
    *,
    name: str,
    build_model: Callable[[Any], Any] | None,
    load_data: Callable[..., Any] | None,
    hypermodel: Any = None,
    settings: Mapping[str, Any] | None = None,
    callbacks: Callable[[Any], Any] | None = None,
) -> SearchSpace:
    """A search space from functions (``sweep.run(build_model=..., load_data=...)``): the
    same checks as a file's, its settings given as keyword arguments."""
    if not callable(load_data):
        raise ConfigError(
            f"{_ORIGIN}: expected load_data= a function returning (x, y) or "
            f"((x, y), (x_val, y_val)[, (x_test, y_test)]), got {type(load_data).__name__}"
        )
    if build_model is None and hypermodel is None:
        raise ConfigError(
            f"{_ORIGIN}: expected build_model= a function build_model(hp) returning a compiled "
            "keras.Model, or hypermodel= a KerasTuner HyperModel, got neither"
        )
    module = types.SimpleNamespace(__name__="__sweep_functions__")
    if build_model is not None:
        module.build_model = build_model
    if hypermodel is not None:
        module.hypermodel = hypermodel
    build, fit = model_entry(module, _ORIGIN)
    checked = _callbacks_entry(callbacks, _ORIGIN)
    return functions_space(name, build, fit, load_data, overrides=settings, callbacks=checked)


def functions_space(
    name: str,
    build: Callable[[Any], Any],
    fit: Callable[..., Any] | None,
    load_data: Callable[..., Any],
    *,
    overrides: Mapping[str, Any] | None,
    callbacks: Callable[[Any], Any] | None = None,
) -> SearchSpace:
    """The space of checked functions (also what a worker rebuilds from a plan)."""
    values = validate_settings(overrides or {}, path=FUNCTIONS_PATH, origin=COMMAND_LINE)
    _check_executions(values, path=FUNCTIONS_PATH, origin=_ORIGIN)
    takes_path = _takes_data_path(
        load_data,
        values,
        refusal=f"{_ORIGIN}: data_path was given but load_data() takes no data_path "
        "parameter; define load_data(data_path=None), or drop data_path=",
    )
    return SearchSpace(
        name=name,
        path=FUNCTIONS_PATH,
        build_model=build,
        fit=fit,
        load_data=load_data,
        takes_data_path=takes_path,
        settings=Settings(**values),
        explicit=frozenset(values),
        callbacks=callbacks,
    )
