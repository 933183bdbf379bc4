"""The sweep: the Optuna study and its storage, the sampler, the trial loop, the budget.

Trials are asked from the study and told back (ask/tell), so the loop decides
what counts, when to stop, and writes the results table after every trial.
Trials that a dead process left RUNNING are claimed and resumed before new ones
start (see ``ownership``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sweep.errors import ConfigError, Interrupted, SweepError
from sweep.interrupts import StopSignals
from sweep.progress import (
    FanOut,
    NullProgress,
    PlainProgress,
    Progress,
    TrialEvent,
    TrialStart,
)
from sweep.results import table_rows, write_table
from sweep.space import SearchSpace, load_space, resolve_space_path
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
    max_failures: int = 5
    keep_checkpoints: int | None = None


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


class TooManyFailures(SweepError):
    exit_code = 1


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SweepError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _open_study(space: SearchSpace, name: str, storage_url: str, mode: str) -> Any:
    import optuna

    direction: Literal["minimize", "maximize"] = "minimize" if mode == "min" else "maximize"
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage_url),
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


def load_space_name(spec: str) -> str:
    return resolve_space_path(spec).stem


def _best_so_far(study: Any) -> tuple[int, float] | None:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return None
    best = study.best_trial
    return best.number, float(best.value)


def _finished(study: Any) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED_STATES)


@dataclass
class _Sweep:
    """The state of one ``sweep run`` session."""

    options: RunOptions
    space: SearchSpace
    data: Any
    mode: str
    study: Any
    folder: Path
    progress: Progress
    started: float
    signals: StopSignals
    failures_in_a_row: int = 0

    @property
    def table(self) -> Path:
        return self.folder / "trials.csv"

    def over_budget(self) -> bool:
        timeout = self.options.timeout_s
        return timeout is not None and time.monotonic() - self.started >= timeout

    def stop_request(self) -> str | None:
        if self.signals.requested is not None:
            return self.signals.requested
        return "budget" if self.over_budget() else None

    def run_one(self, trial: Any, *, resumed: bool) -> None:
        """Run (or resume) one trial, tell the study, write the table, report it."""
        import optuna

        from sweep.trial import run_trial

        options, settings = self.options, self.space.settings
        seeded = options.seed is not None or options.deterministic
        self.progress.trial_started(TrialStart(trial=trial.number, resumed=resumed))
        fatal: ConfigError | None = None
        try:
            run_trial(
                trial,
                space=self.space,
                data=self.data,
                settings=settings,
                mode=self.mode,
                trial_dir=self.folder / "trials" / str(trial.number),
                seed=(options.seed or 0) + trial.number if seeded else None,
                deterministic=options.deterministic,
                on_epoch=self.progress.epoch_ended,
                stop_request=self.stop_request,
            )
        except Interrupted:
            write_table(self.study, self.table)  # the trial stays RUNNING: resumable
            raise
        except Exception as exc:  # the one place that maps a trial's exception to its state
            error = _error_text(exc)
            trial.set_user_attr("error", error)
            trial.set_user_attr("stop_reason", "failed")
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            state = "failed"
            self.failures_in_a_row += 1
            if isinstance(exc, ConfigError):
                fatal = exc  # it would fail every trial: stop the sweep
        else:
            self.study.tell(trial, trial.user_attrs["best_score"])
            state, error = "complete", ""
            self.failures_in_a_row = 0
        if options.keep_checkpoints is not None:
            from sweep.checkpoints import prune_checkpoints

            prune_checkpoints(self.study, options.keep_checkpoints)
        write_table(self.study, self.table)
        attrs = trial.user_attrs
        self.progress.trial_ended(
            TrialEvent(
                trial=trial.number,
                state=state,
                monitor=settings.monitor,
                best_score=attrs.get("best_score"),
                best_epoch=attrs.get("best_epoch"),
                stop_epoch=attrs.get("stop_epoch"),
                duration_s=float(attrs.get("duration_s", 0.0)),
                error=error,
                stop_reason=attrs.get("stop_reason", ""),
            )
        )
        if fatal is not None:
            raise fatal
        if self.failures_in_a_row >= options.max_failures:
            raise TooManyFailures(
                f"{self.failures_in_a_row} trials failed in a row, the last (trial "
                f"{trial.number}) with: {error}; fix the cause and run the same command again "
                "to continue, or raise --max-failures"
            )


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
    name = options.study or load_space_name(options.space)
    folder = study_dir(options.results_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    log = stack.enter_context((folder / "sweep.log").open("a", encoding="utf-8"))
    logged = PlainProgress(log, epochs=True)
    try:
        summary = _prepare_and_loop(options, FanOut(progress, logged), stack, started, folder)
    except (SweepError, KeyboardInterrupt) as exc:
        text = str(exc) if isinstance(exc, SweepError) else "interrupted"
        logged.message(f"sweep stopped: {text}")
        raise
    best = summary.best[0] if summary.best else None
    logged.message(
        f"sweep ended: {summary.finished}/{summary.target} trials finished "
        f"({summary.stopped_because})"
        + (
            f"; best: trial {best['trial']} {best['monitor']}={best['best_score']:.6g}"
            if best
            else ""
        )
    )
    return summary


def _prepare_and_loop(
    options: RunOptions,
    progress: Progress,
    stack: contextlib.ExitStack,
    started: float,
    folder: Path,
) -> SweepSummary:
    space = load_space(options.space, overrides=options.overrides)
    settings = space.settings
    name = options.study or space.name
    storage_url = options.storage or default_storage_url(options.results_dir, name)

    from sweep.data import prepare_data
    from sweep.ownership import Worker
    from sweep.samplers import grid_size, grid_space, make_sampler
    from sweep.trial import probe_space

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
    study = _open_study(space, name, storage_url, mode)
    # A fresh sampler seed per session: resuming must not replay the same suggestions.
    offset = len(study.get_trials(deepcopy=False))
    sampler_seed = None if options.seed is None else options.seed + offset
    study.sampler = make_sampler(settings.sampler, seed=sampler_seed, grid=grid)
    worker = Worker(folder)
    stack.callback(worker.close)
    signals = StopSignals()
    signals.install()
    stack.callback(signals.restore)
    sweep = _Sweep(
        options=options,
        space=space,
        data=data,
        mode=mode,
        study=study,
        folder=folder,
        progress=progress,
        started=started,
        signals=signals,
    )
    progress.sweep_started(
        f"study {name}: {space.path} on {redact(storage_url)}, "
        f"monitor {settings.monitor} ({mode}), {_finished(study)}/{target} trials finished",
        target=target,
        done=_finished(study),
        timeout_s=options.timeout_s,
        maximize=mode == "max",
        best=_best_so_far(study),
    )
    write_table(study, sweep.table)
    stopped_because = _loop(sweep, worker, target)
    rows = table_rows(study)
    return SweepSummary(
        study=name,
        storage=redact(storage_url),
        folder=folder,
        table=sweep.table,
        finished=_finished(study),
        target=target,
        stopped_because=stopped_because,
        best=[r for r in rows if r["state"] == "complete"][:3],
    )


def _loop(sweep: _Sweep, worker: Any, target: int) -> str:
    import optuna

    study = sweep.study
    while True:
        if sweep.signals.requested is not None:
            raise Interrupted("interrupted before the next trial")
        if sweep.over_budget():
            return "time budget spent"
        orphans = worker.orphans(study)
        if orphans:
            frozen = orphans[0]
            sweep.progress.message(
                f"trial {frozen.number} was left running by a process that is gone; resuming it"
            )
            trial = optuna.trial.Trial(study, frozen._trial_id)
            sweep.run_one(trial, resumed=True)
            continue
        if _finished(study) >= target:
            return "target reached"
        trial = study.ask()
        worker.mark(trial)
        sweep.run_one(trial, resumed=False)
