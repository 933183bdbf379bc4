"""The Python API: ``sweep.run``, ``sweep.load`` and ``sweep.work``, each giving a ``Study``.

``run`` takes every setting (``Settings``) and option (``RunArgs``) of ``sweep run`` as a
keyword argument of the same name, and goes through the same ``RunOptions`` and driver as
the command. Its signature is written out for ``help()`` and IDEs; tests/test_api.py
holds it to those dataclasses' fields. Nothing here imports TensorFlow until a sweep
trains.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sweep.core.errors import ConfigError, Interrupted
from sweep.core.options import PathLike, RunArgs

if TYPE_CHECKING:
    from sweep.api.study import Study
    from sweep.core.observers import Observer
    from sweep.execution.driver import RunOptions
    from sweep.space.files import Functions

P = ParamSpec("P")
R = TypeVar("R")

SEED_MAX = 2**32 - 1


def suggest_keywords(func: Callable[P, R]) -> Callable[P, R]:
    """An unknown keyword argument is a TypeError that names the closest valid one."""
    valid = [
        name
        for name, p in inspect.signature(func).parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]

    @functools.wraps(func)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        for name in kwargs:
            if name not in valid:
                close = difflib.get_close_matches(name, valid, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(
                    f"{func.__name__}() got an unexpected keyword argument {name!r}{hint}"
                )
        return func(*args, **kwargs)

    return checked


def _whole(
    name: str, value: Any, minimum: int, *, optional: bool = True, maximum: int | None = None
) -> int | None:
    if value is None and optional:
        return None
    if maximum is not None and isinstance(value, int) and value > maximum:
        raise ConfigError(
            f"--{name.replace('_', '-')}: expected a whole number from {minimum} to {maximum}, "
            f"got {value!r}"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"--{name.replace('_', '-')}: expected a whole number >= {minimum}, got {value!r}"
        )
    return value


def _timeout(value: Any) -> float | None:
    from sweep.core.durations import parse_duration

    if value is None:
        return None
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"--timeout: expected seconds > 0 or a duration like '8h', got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(
            f"--timeout: expected a finite number of seconds or a duration like '8h', "
            f"got {value!r}; leave timeout out (None) for no time limit"
        )
    return float(value)


def _gpus(value: Any) -> str | None:
    """``gpus=[0, 1]`` or ``gpus="0,1"`` or ``gpus="none"``, as ``--gpus`` takes it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return ",".join(str(v) for v in value)
    raise ConfigError(f"--gpus: expected a list of GPU numbers or 'none', got {value!r}")


def _path(name: str, value: Any) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ConfigError(f"--{name}: expected a folder path, got {value!r}")
    return Path(value)


def run_options(
    request: RunArgs, functions: Functions | None, settings: dict[str, Any]
) -> RunOptions:
    """``RunOptions`` from ``run``'s keyword arguments (or ``sweep run``'s flags), each
    checked as the CLI checks it: the one place both build them. ``settings`` by name,
    None for a setting not given."""
    from sweep.core.plan import MAX_THREADS
    from sweep.execution.driver import RunOptions
    from sweep.store.storage import storage_from

    if functions is not None and request.space is not None:
        raise ConfigError(
            "sweep.run(): expected a space file or build_model=/load_data=, got both; "
            "pass one of them"
        )
    if request.backend not in ("loky", "dask"):
        raise ConfigError(f"--backend: expected loky or dask, got {request.backend!r}")
    if request.study is not None and (not isinstance(request.study, str) or not request.study):
        raise ConfigError(f"--study: expected a study name, got {request.study!r}")
    jobs = _whole("jobs", request.jobs, 1)
    if request.storage is not None and request.storage_file is not None:
        raise ConfigError(
            "sweep.run(): expected storage= or storage_file=, got both; pass one of them"
        )
    storage_file = (
        None if request.storage_file is None else _path("storage_file", request.storage_file)
    )
    seed = _whole("seed", request.seed, 0)
    if seed is not None and seed > SEED_MAX:
        raise ConfigError(f"--seed: expected a whole number from 0 to {SEED_MAX}, got {seed}")
    return RunOptions(
        space="digits_cnn" if request.space is None else os.fspath(request.space),
        overrides={k: v for k, v in settings.items() if v is not None},
        functions=functions,
        study=request.study,
        storage=storage_from(request.storage, storage_file),
        results_dir=_path("results", request.results),
        artifacts_dir=None if request.artifacts is None else _path("artifacts", request.artifacts),
        timeout_s=_timeout(request.timeout),
        seed=seed,
        deterministic=bool(request.deterministic),
        max_failures=_whole("max_failures", request.max_failures, 1, optional=False) or 1,
        keep_checkpoints=_whole("keep_checkpoints", request.keep_checkpoints, 0),
        calibrate=_whole("calibrate", request.calibrate, 0, optional=False) or 0,
        jobs=jobs if jobs is not None or request.backend == "dask" else 1,
        threads=_whole("threads", request.threads, 1, maximum=MAX_THREADS),
        backend=request.backend,
        scheduler=request.scheduler,
        force_jobs=bool(request.force_jobs),
        allow_space_change=bool(request.allow_space_change),
        gpus=_gpus(request.gpus),
        gpus_per_trial=_whole("gpus_per_trial", request.gpus_per_trial, 1, optional=False) or 1,
        gpu_memory=None if request.gpu_memory is None else str(request.gpu_memory),
    )


@contextlib.contextmanager
def _progress(show: bool) -> Iterator[Observer]:
    """Where a run's progress goes: a display that updates in place in Jupyter, the
    live display on a terminal, plain lines otherwise, nowhere with ``progress=False``."""
    from sweep.api.notebook import NotebookProgress, in_notebook
    from sweep.core.observers import Observer
    from sweep.core.progress import PlainProgress

    if not show:
        yield Observer()  # sees nothing
    elif in_notebook():
        import warnings

        with warnings.catch_warnings():  # Optuna imports tqdm.auto, which asks for ipywidgets
            warnings.filterwarnings("ignore", message="IProgress not found")
            import optuna  # noqa: F401
        with NotebookProgress() as shown:
            yield shown
    elif sys.stdout.isatty():
        from sweep.api.live import LiveProgress

        with LiveProgress(sys.stdout) as live:
            yield live
    else:
        yield PlainProgress(sys.stdout, epochs=True)


@suggest_keywords
def run(
    space: PathLike | None = None,
    *,
    build_model: Callable[[Any], Any] | None = None,
    load_data: Callable[..., Any] | None = None,
    hypermodel: Any = None,
    callbacks: Callable[[Any], Any] | None = None,
    trials: int | None = None,
    epochs: int | None = None,
    patience: int | list[int] | None = None,
    min_delta: float | list[float] | None = None,
    monitor: str | None = None,
    mode: str | None = None,
    batch_size: int | None = None,
    shuffle_buffer: int | None = None,
    validation_split: float | None = None,
    baseline: float | None = None,
    start_from_epoch: int | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    first_trial: str | None = None,
    data_path: PathLike | None = None,
    tensorboard: bool | None = None,
    mlflow: str | bool | None = None,
    mlflow_artifacts: bool | None = None,
    executions_per_trial: int | None = None,
    max_retries_per_trial: int | None = None,
    study: str | None = None,
    storage: str | None = None,
    storage_file: PathLike | None = None,
    results: PathLike = "results",
    artifacts: PathLike | None = None,
    timeout: str | float | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    jobs: int | None = None,
    threads: int | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    calibrate: int = 0,
    max_failures: int = 5,
    keep_checkpoints: int | None = None,
    force_jobs: bool = False,
    allow_space_change: bool = False,
    gpus: str | list[int] | None = None,
    gpus_per_trial: int = 1,
    gpu_memory: str | None = None,
    mixed_precision: bool | None = None,
    progress: bool = True,
) -> Study:
    """Run (or continue) a sweep, as ``sweep run`` does; return its ``Study``.

    ``space`` is a search-space file (or a name in search_spaces/); or give the functions
    of one (``build_model``/``hypermodel`` and ``load_data``, optionally ``callbacks(hp)``
    returning extra Keras callbacks) and a ``study`` name. Settings left None keep the
    space's own. Ctrl+C (the kernel's interrupt) stops at the end of the epoch, leaves the
    trial resumable, and raises KeyboardInterrupt; a second one raises at once. Running
    the same call again continues the study."""
    return _run(dict(locals()))  # the keywords by name (held to RunArgs, Settings: test_api)


def _run(given: dict[str, Any]) -> Study:
    """``run``, its keyword arguments by name."""
    from dataclasses import fields

    from sweep.api.study import Study
    from sweep.execution.driver import load_run_space, run_sweep
    from sweep.space.files import SETTING_NAMES, Functions
    from sweep.store.storage import default_storage_url

    functions = None
    if any(given[name] is not None for name in ("build_model", "load_data", "hypermodel")):
        functions = Functions(
            given["build_model"], given["load_data"], given["hypermodel"], given["callbacks"]
        )
    if given["callbacks"] is not None and functions is None:
        raise ConfigError(
            "sweep.run(): callbacks= goes with build_model=/load_data=, got a space file; "
            "define callbacks(hp) in the space file instead"
        )
    settings = {name: value for name, value in given.items() if name in SETTING_NAMES}
    if settings["data_path"] is not None:  # a notebook's working folder is not the workers'
        settings["data_path"] = str(Path(settings["data_path"]).expanduser().resolve())
    request = RunArgs(**{f.name: given[f.name] for f in fields(RunArgs)})
    options = run_options(request, functions, settings)
    try:
        with _progress(given["progress"]) as shown:
            summary = run_sweep(options, shown)
    except Interrupted as exc:
        raise KeyboardInterrupt(str(exc)) from None
    kept = None if functions is None else load_run_space(options, summary.study)
    url = options.storage or default_storage_url(options.results_dir, summary.study)
    return Study(summary.study, results=options.results_dir, storage=url, space=kept)


@suggest_keywords
def load(study: str, *, results: PathLike = "results", storage: str | None = None) -> Study:
    """A study made by ``sweep run`` or ``sweep.run``, finished or still running (its
    storage: ``storage``, else ``$SWEEP_STORAGE``, else the study's SQLite file)."""
    from sweep.api.study import Study
    from sweep.store.storage import storage_from

    url = storage_from(storage, None)
    return Study(study, results=_path("results", results), storage=url)


@suggest_keywords
def work(
    study: str,
    *,
    storage: str | None = None,
    storage_file: PathLike | None = None,
    results: PathLike = "results",
    artifacts: PathLike | None = None,
    jobs: int = 1,
    threads: int | None = None,
    force_jobs: bool = False,
    progress: bool = True,
) -> Study:
    """Join a study that ``sweep run --storage URL`` (or ``sweep.run(storage=...)``) made
    and run its trials until the target or the budget, as ``sweep worker`` does."""
    from sweep.api.study import Study
    from sweep.core.plan import MAX_THREADS
    from sweep.execution.worker import join_sweep
    from sweep.store.storage import STORAGE_ENV, storage_from

    if storage is not None and storage_file is not None:
        raise ConfigError(
            "sweep.work(): expected storage= or storage_file=, got both; pass one of them"
        )
    file = None if storage_file is None else _path("storage_file", storage_file)
    url = storage_from(storage, file)
    if url is None:
        raise ConfigError(
            f"sweep.work(): expected the study's storage URL (storage=, storage_file= or the "
            f"{STORAGE_ENV} environment variable), got none; give one of them"
        )
    folder = _path("results", results)
    try:
        with _progress(progress) as shown:
            join_sweep(
                study,
                storage=url,
                results_dir=folder,
                artifacts_dir=None if artifacts is None else _path("artifacts", artifacts),
                jobs=_whole("jobs", jobs, 1, optional=False) or 1,
                threads=_whole("threads", threads, 1, maximum=MAX_THREADS),
                progress=shown,
                force_jobs=force_jobs,
            )
    except Interrupted as exc:
        raise KeyboardInterrupt(str(exc)) from None
    return Study(study, results=folder, storage=url)
