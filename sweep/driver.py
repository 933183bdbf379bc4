"""The sweep: the Optuna study and its storage, the sampler, the trial loop, the budget.

Trials are asked from the study and told back (ask/tell), so the loop decides
what counts, when to stop, and writes the results table after every trial.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sweep.errors import ConfigError, SweepError
from sweep.progress import FanOut, NullProgress, PlainProgress, Progress, TrialEvent
from sweep.results import table_rows, write_table
from sweep.space import SearchSpace, load_space
from sweep.storage import default_storage_url, open_storage, redact, study_dir
from sweep.tfenv import import_tensorflow_quietly

FINISHED_STATES = ("COMPLETE", "PRUNED", "FAIL")


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    space: str = "digits_cnn"
    overrides: dict[str, Any] = field(default_factory=dict)
    study: str | None = None
    storage: str | None = None
    results_dir: Path = Path("results")
    timeout_s: float | None = None
    seed: int | None = None
    deterministic: bool = False


@dataclass(frozen=True, kw_only=True)
class SweepSummary:
    study: str
    storage: str
    folder: Path
    table: Path
    finished: int
    target: int
    stopped_because: str
    best: list[dict[str, Any]]


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SweepError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _open_study(space: SearchSpace, name: str, storage_url: str, mode: str, sampler: Any) -> Any:
    import optuna

    direction: Literal["minimize", "maximize"] = "minimize" if mode == "min" else "maximize"
    storage = open_storage(storage_url)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        direction=direction,
        load_if_exists=True,
    )
    attrs = study.user_attrs
    monitor = space.settings.monitor
    if not attrs:
        study.set_user_attr("monitor", monitor)
        study.set_user_attr("mode", mode)
        study.set_user_attr("space", str(space.path))
    elif attrs.get("monitor") != monitor or attrs.get("mode") != mode:
        raise ConfigError(
            f"study {name!r} was created for {attrs.get('monitor')} ({attrs.get('mode')}), "
            f"this run asks for {monitor} ({mode}); use the same monitor or a new --study NAME"
        )
    return study


def _finished(study: Any) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED_STATES)


def run_sweep(options: RunOptions, progress: Progress | None = None) -> SweepSummary:
    """Run trials until the study has ``trials`` finished ones or the time budget is spent.

    Everything shown to ``progress`` also goes to ``results/<study>/sweep.log``, with
    every epoch.
    """
    with contextlib.ExitStack() as stack:
        return _run(options, progress or NullProgress(), stack)


def _run(options: RunOptions, progress: Progress, stack: contextlib.ExitStack) -> SweepSummary:
    started = time.monotonic()
    import_tensorflow_quietly()
    _quiet_optuna()
    space = load_space(options.space, overrides=options.overrides)
    settings = space.settings
    name = options.study or space.name
    folder = study_dir(options.results_dir, name)
    storage_url = options.storage or default_storage_url(options.results_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    log = stack.enter_context((folder / "sweep.log").open("a", encoding="utf-8"))
    progress = FanOut(progress, PlainProgress(log, epochs=True))

    from sweep.data import prepare_data
    from sweep.samplers import grid_size, grid_space, make_sampler
    from sweep.trial import probe_space, run_trial

    try:
        raw = space.load_data()
    except Exception as exc:
        raise ConfigError(
            f"search space {space.path}: load_data() raised {_error_text(exc)}; fix the file"
        ) from None
    data = prepare_data(raw, validation_split=settings.validation_split, source=space.path)
    mode, hps = probe_space(space, data)
    target = settings.trials
    grid = None
    if settings.sampler == "grid":
        grid = grid_space(hps)
        target = min(target, grid_size(grid))
    study = _open_study(space, name, storage_url, mode, make_sampler("random", seed=None))
    # A fresh sampler seed per session: resuming must not replay the same suggestions.
    offset = len(study.get_trials(deepcopy=False))
    sampler_seed = None if options.seed is None else options.seed + offset
    study.sampler = make_sampler(settings.sampler, seed=sampler_seed, grid=grid)
    table = folder / "trials.csv"
    progress.message(
        f"study {name}: {space.path} on {redact(storage_url)}, "
        f"monitor {settings.monitor} ({mode}), {_finished(study)}/{target} trials finished"
    )
    write_table(study, table)

    stopped_because = "target reached"
    while True:
        if _finished(study) >= target:
            break
        if options.timeout_s is not None and time.monotonic() - started >= options.timeout_s:
            stopped_because = "time budget spent"
            break
        trial = study.ask()
        seeded = options.seed is not None or options.deterministic
        fatal: ConfigError | None = None
        try:
            result = run_trial(
                trial,
                space=space,
                data=data,
                settings=settings,
                mode=mode,
                trial_dir=folder / "trials" / str(trial.number),
                seed=(options.seed or 0) + trial.number if seeded else None,
                deterministic=options.deterministic,
                on_epoch=progress.epoch_ended,
            )
        except KeyboardInterrupt:
            trial.set_user_attr("error", "interrupted (Ctrl+C)")
            study.tell(trial, state=_fail_state())
            write_table(study, table)
            raise
        except Exception as exc:  # the one place that maps a trial's exception to its state
            error = _error_text(exc)
            trial.set_user_attr("error", error)
            study.tell(trial, state=_fail_state())
            state = "failed"
            if isinstance(exc, ConfigError):
                fatal = exc  # it would fail every trial: stop the sweep
        else:
            study.tell(trial, result.best_score)
            state, error = "complete", ""
        write_table(study, table)
        attrs = trial.user_attrs
        progress.trial_ended(
            TrialEvent(
                trial=trial.number,
                state=state,
                monitor=settings.monitor,
                best_score=attrs.get("best_score"),
                best_epoch=attrs.get("best_epoch"),
                stop_epoch=attrs.get("stop_epoch"),
                duration_s=float(attrs.get("duration_s", 0.0)),
                error=error,
            )
        )
        if fatal is not None:
            raise fatal
    rows = table_rows(study)
    return SweepSummary(
        study=name,
        storage=redact(storage_url),
        folder=folder,
        table=table,
        finished=_finished(study),
        target=target,
        stopped_because=stopped_because,
        best=[r for r in rows if r["state"] == "complete"][:3],
    )


def _fail_state() -> Any:
    import optuna

    return optuna.trial.TrialState.FAIL
