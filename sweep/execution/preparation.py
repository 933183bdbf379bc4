"""Preparing a sweep, once, before any trial: the space probed (its mode, grid, trial
target and defaults), the study created or checked, and, for ``sweep worker``, the plan
that ``sweep run`` stored on the study read back."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.direction import Direction
from sweep.core.errors import ConfigError
from sweep.core.plan import Plan
from sweep.core.record import StudyAttr, read_study, write_study
from sweep.space.files import SearchSpace
from sweep.store.storage import check_study_name, open_storage

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Probed:
    mode: Direction
    grid: dict[str, list[Any]] | None  # for the grid sampler
    target: int
    defaults: dict[str, Any]  # every active hyperparameter's default value
    notes: tuple[str, ...] = ()  # what sweep does differently for this space, one line each


def probe(space: SearchSpace, data: Any) -> Probed:
    """The resolved mode, the grid, the trial target and the default values."""
    from sweep.execution.samplers import grid_size, grid_space
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


def open_study(
    name: str, storage_url: str, *, mode: Direction, monitor: str, space: str
) -> optuna.Study:
    """Create the study, or load it and check it was made for the same monitor and mode."""
    import optuna

    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage_url),
        direction=mode.optuna,
        load_if_exists=True,
    )
    made_for = read_study(study, StudyAttr.MONITOR), read_study(study, StudyAttr.MODE)
    if made_for[0] is None:
        write_study(study, StudyAttr.MONITOR, monitor)
        write_study(study, StudyAttr.MODE, mode.value)
        write_study(study, StudyAttr.SPACE, space)
    elif made_for != (monitor, mode):
        raise ConfigError(
            f"study {name!r} was created for {made_for[0]} ({made_for[1]}), "
            f"this run asks for {monitor} ({mode}); use the same monitor or a new --study NAME"
        )
    return study


def load_plan(study: optuna.Study, *, storage: str, artifacts: str | None) -> Plan:
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
