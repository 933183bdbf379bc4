"""Preparing a sweep, once, before any trial: the space checked, the study created,
and a ``Plan`` that every process running trials works from.

A Plan is plain data (it is pickled to joblib and Dask workers, and stored on the
study so that ``sweep worker`` on another machine can join).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sweep.devices import DevicePlan
from sweep.direction import Direction
from sweep.errors import ConfigError, error_text
from sweep.record import StudyAttr, read_study, write_study
from sweep.redaction import stored_uri
from sweep.space import SearchSpace, load_space
from sweep.storage import check_study_name, open_storage

PLAN_ATTR = StudyAttr.PLAN.value  # the study attr holding the plan (sweep.record names it)
SEED_LIMIT = 2**32  # seeds are 0 .. 2**32 - 1 (NumPy's, and so Keras')
MAX_THREADS = 4096  # --threads: TensorFlow takes a C int; more threads than this is a typo


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number`` of a sweep seeded with ``seed``: in range for any pair."""
    return (seed + number) % SEED_LIMIT


@dataclass(frozen=True, kw_only=True)
class TrialOptions:
    """What a run is asked for (``RunOptions``) and hands on to every worker (``Plan``)
    under the same names: the settings overrides and how trials are run."""

    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    deterministic: bool = False
    max_failures: int = 5
    keep_checkpoints: int | None = None
    calibrate: int = 0  # trials numbered below this train to max_epochs (no early stopping)
    allow_space_change: bool = False  # resume trials interrupted under another space

    def trial_options(self) -> dict[str, Any]:
        """These fields, for the constructor of another ``TrialOptions`` (a Plan)."""
        return {f.name: getattr(self, f.name) for f in fields(TrialOptions)}


@dataclass(frozen=True, kw_only=True)
class Plan(TrialOptions):
    """A run as every worker runs it (stored on the study as JSON, for ``sweep worker``)."""

    space: str  # absolute path of the search-space file
    study: str
    storage: str  # the full URL; never printed (see redaction.redact)
    results: str  # results/<study>: trials.csv, sweep.log
    artifacts: str  # where trials/<n>/ go: every worker writes there, the driver reads
    mode: str
    grid: dict[str, list[Any]] | None = None
    target: int
    deadline: float | None = None  # wall-clock time.time() after which no trial starts
    # sweep.run(build_model=..., load_data=...): the functions, cloudpickled for the
    # workers (never stored on the study: they live in the caller's notebook or script)
    functions: bytes | None = None
    from_functions: bool = False
    # --jobs workers on this machine: the arrays memory-mapped from here (sweep.shared),
    # not load_data() per worker; never stored on the study (a local path)
    data_dir: str | None = None
    # each worker's GPUs (this machine's: not stored on the study; `sweep worker` finds its own)
    devices: DevicePlan = field(default_factory=DevicePlan)
    # --jobs workers on this machine: created by the parent at its first SIGINT/SIGTERM
    # (sweep.interrupts.relay_to); each worker stops after its epoch. Not stored either
    stop_file: str | None = None

    def to_json(self) -> str:
        raw = asdict(self)
        raw.pop("storage")  # a password must not end up in the storage itself
        raw.pop("functions")
        raw.pop("data_dir")
        raw.pop("devices")
        if isinstance(self.overrides.get("mlflow"), str):  # nor an MLflow password
            raw["overrides"]["mlflow"] = stored_uri(self.overrides["mlflow"])
        raw.pop("stop_file")
        return json.dumps(raw)

    @classmethod
    def from_json(cls, text: str, *, storage: str) -> Plan:
        return cls(**json.loads(text), storage=storage)

    def over_budget(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline


def load_checked_data(space: SearchSpace) -> Any:
    from sweep.data import prepare_data

    try:
        raw = space.call_load_data()
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"search space {space.path}: load_data() raised {error_text(exc)}; fix the file"
        ) from None
    settings = space.settings
    return prepare_data(raw, validation_split=settings.validation_split, source=space.path)


@dataclass(frozen=True)
class Probed:
    mode: str
    grid: dict[str, list[Any]] | None  # for the grid sampler
    target: int
    defaults: dict[str, Any]  # every active hyperparameter's default value
    notes: tuple[str, ...] = ()  # what sweep does differently for this space, one line each


def probe(space: SearchSpace, data: Any) -> Probed:
    """The resolved mode, the grid, the trial target and the default values."""
    from sweep.samplers import grid_size, grid_space
    from sweep.train.probe import probe_space

    probed = probe_space(space, data)
    target = space.settings.trials
    grid = None
    if space.settings.sampler == "grid":
        grid = grid_space(probed.hyperparameters)
        for name in ("patience", "min_delta"):
            values = getattr(space.settings, name)
            if isinstance(values, list):
                grid[name] = list(values)
        target = min(target, grid_size(grid))
    return Probed(
        mode=probed.mode,
        grid=grid,
        target=target,
        defaults=probed.defaults,
        notes=space.notes + probed.notes,
    )


def open_study(name: str, storage_url: str, *, mode: str, monitor: str, space: str) -> Any:
    """Create the study, or load it and check it was made for the same monitor and mode."""
    import optuna

    direction = Direction.from_mode(mode).optuna
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage_url),
        direction=direction,
        load_if_exists=True,
    )
    made_for = read_study(study, StudyAttr.MONITOR), read_study(study, StudyAttr.MODE)
    if made_for[0] is None:
        write_study(study, StudyAttr.MONITOR, monitor)
        write_study(study, StudyAttr.MODE, mode)
        write_study(study, StudyAttr.SPACE, space)
    elif made_for != (monitor, mode):
        raise ConfigError(
            f"study {name!r} was created for {made_for[0]} ({made_for[1]}), "
            f"this run asks for {monitor} ({mode}); use the same monitor or a new --study NAME"
        )
    return study


def load_plan(study: Any, *, storage: str, artifacts: str | None) -> Plan:
    """The plan ``sweep run`` stored on the study, for ``sweep worker``."""
    text = read_study(study, StudyAttr.PLAN)
    if text is None:
        raise ConfigError(
            f"study {study.study_name!r} has no sweep plan; create it with "
            "'sweep run SPACE --storage URL' first, then start workers"
        )
    plan = Plan.from_json(text, storage=storage)
    check_study_name(plan.study)  # read back from a storage: a folder name all the same
    if plan.from_functions:
        raise ConfigError(
            f"study {study.study_name!r} was made by sweep.run(build_model=..., load_data=...): "
            "its functions live in that notebook or script, not here; continue it with the "
            "same sweep.run(...) call"
        )
    if artifacts is not None:
        plan = Plan(**{**asdict(plan), "artifacts": artifacts})
    if not Path(plan.space).is_file():
        raise ConfigError(
            f"study {study.study_name!r}: its search space {plan.space} is not on this machine; "
            "put it at the same path (a shared filesystem) on every worker"
        )
    return plan


def pickle_functions(space: SearchSpace) -> bytes:
    """A function space's functions for the workers: by value, as joblib's loky would."""
    import cloudpickle

    parts = (space.name, space.build_model, space.fit, space.load_data, space.callbacks)
    blob: bytes = cloudpickle.dumps(parts)
    return blob


def space_label(functions: bytes) -> str:
    """A function plan's ``space``: names the functions, so that a worker process reused
    for another study (loky keeps its workers) does not take them from its cache."""
    import hashlib

    return f"<functions {hashlib.sha256(functions).hexdigest()[:16]}>"


def load_space_for(plan: Plan) -> SearchSpace:
    if plan.functions is not None:
        import pickle

        from sweep.space import functions_space

        name, build_model, fit, load_data, *rest = pickle.loads(plan.functions)
        callbacks = rest[0] if rest else None
        return functions_space(
            name, build_model, fit, load_data, overrides=plan.overrides, callbacks=callbacks
        )
    if plan.from_functions:
        raise ConfigError(
            f"study {plan.study!r} was made by sweep.run(build_model=..., load_data=...): "
            "its functions are not stored on the study; use the Study that sweep.run returned"
        )
    return load_space(plan.space, overrides=plan.overrides)
