"""``sweep run``: prepare once (the space checked, the study created, the plan stored on
it), then run trials in this process or in N workers, and summarise."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.devices import (
    HIDDEN,
    DevicePlan,
    ParentGpus,
    WorkerDevices,
    discover_gpus,
    parse_gpus,
    parse_memory,
    plan_devices,
    take,
)
from sweep.core.devices import current as current_devices
from sweep.core.direction import Direction
from sweep.core.errors import ConfigError, SweepError, disk_full_stops
from sweep.core.observers import Observer, Observers, SweepEnd, SweepEnded, SweepStart
from sweep.core.plan import Plan, TrialOptions
from sweep.core.progress import PlainProgress
from sweep.core.record import StudyAttr, read_study, write_study
from sweep.core.redaction import redact, redact_text
from sweep.core.tfenv import import_tensorflow_quietly, quiet_optuna
from sweep.execution.preparation import Probed, open_study, probe
from sweep.execution.session import TooManyFailures, work
from sweep.integrations.trackers import check_trackers, sweep_trackers
from sweep.space.files import (
    Functions,
    SearchSpace,
    load_space,
    resolve_space_path,
    space_from_functions,
)
from sweep.space.fingerprint import RerunCheck, space_fingerprint
from sweep.space.loading import load_checked_data, pickle_functions, space_label
from sweep.store.reading import StudyReader
from sweep.store.results import table_rows, write_table
from sweep.store.storage import (
    check_study_name,
    default_storage_url,
    reader_for,
    writable_study_dir,
)

if TYPE_CHECKING:
    import optuna

    from sweep.space.data import Data

__all__ = ["RunOptions", "SweepSummary", "TooManyFailures", "run_sweep"]


@dataclass(frozen=True, kw_only=True)
class RunOptions(TrialOptions):
    """What ``sweep run`` / ``sweep.run`` ask for (built by ``sweep.api.entry.run_options``)."""

    space: str = "digits_cnn"
    study: str | None = None
    storage: str | None = None
    results_dir: Path = Path("results")
    artifacts_dir: Path | None = None
    timeout_s: float | None = None
    jobs: int | None = 1
    threads: int | None = None
    backend: str = "loky"
    scheduler: str | None = None
    functions: Functions | None = None  # instead of ``space``: sweep.run(build_model=...)
    force_jobs: bool = False  # start --jobs workers even if the machine can't hold them
    gpus: str | None = None  # --gpus 0,1 or none (default: every GPU listed)
    gpus_per_trial: int = 1
    gpu_memory: str | None = None  # --gpu-memory 10GB: a cap per worker on each of its GPUs


@dataclass(frozen=True, kw_only=True)
class SweepSummary:
    study: str
    storage: str
    folder: Path
    table: Path
    finished: int
    target: int
    stopped_because: SweepEnd
    best: list[dict[str, Any]]
    test: tuple[int, dict[str, float]] | None = None  # (trial, scores): the best on test data


def run_sweep(options: RunOptions, progress: Observer | None = None) -> SweepSummary:
    """Run trials until the study has ``trials`` finished ones or the time budget is spent.

    Everything shown to ``progress`` also goes to ``results/<study>/sweep.log``, with
    every epoch, and the log says how the session ended.
    """
    started = time.time()
    progress = progress or Observer()
    name = study_name(options)
    devices = run_devices(options)  # a refused --gpus creates nothing
    folder = writable_study_dir(options.results_dir, name)
    from sweep.space.shared import remove_stale

    remove_stale(folder / "data")  # --jobs copies of the arrays left by killed runs
    parent = ParentGpus()
    parent.set(HIDDEN if is_parallel(options) else devices.workers[0].visible)
    take(devices.workers[0] if not is_parallel(options) else WorkerDevices(), set_env=False)
    with disk_full_stops(folder), (folder / "sweep.log").open("a", encoding="utf-8") as log:
        logged = PlainProgress(log, epochs=True)
        try:
            run = _Run(options, progress, name, folder, started, devices, parent, None)
            summary = _started(run, logged)
        except (SweepError, KeyboardInterrupt) as exc:
            why = str(exc) if isinstance(exc, SweepError) else "interrupted"
            logged.message(f"sweep stopped: {redact_text(why, options.storage or '')}")
            raise
        finally:
            parent.restore()  # the caller's own CUDA_VISIBLE_DEVICES back
        ended = f"sweep ended: {summary.finished}/{summary.target} trials finished"
        ended += f" ({summary.stopped_because})"
        if summary.best:
            best = summary.best[0]
            ended += f"; best: trial {best['trial']} {best['monitor']}={best['best_score']:.6g}"
        logged.message(ended)
        return summary


@dataclass(frozen=True)
class _Run:
    """One ``sweep run``'s facts, handed down its steps."""

    options: RunOptions
    progress: Observer  # what the person sees (sweep.log is written besides)
    name: str
    folder: Path
    started: float
    devices: DevicePlan
    parent: ParentGpus
    workers: Any  # the loky workers started before TensorFlow's import (sweep.execution.together)


def _started(run: _Run, logged: PlainProgress) -> SweepSummary:
    """Start the early workers (if any), import TensorFlow, run; the workers are stopped
    if the sweep stops before or while they run."""
    both = Observers(run.progress, logged)
    run = replace(run, options=capped_jobs(run, both))
    workers = early_workers(run.options, run.devices)
    try:
        import_tensorflow_quietly()  # here CUDA reads CUDA_VISIBLE_DEVICES, once
        from sweep.train.gpu import configure_process

        settled = configure_process(current_devices())  # where this process really trains
        quiet_optuna()
        for warning in (run.devices.warning, settled):
            if warning:
                both.message(f"warning: {warning}")
        return _run(replace(run, workers=workers), logged)
    except BaseException:
        if workers is not None:
            workers.stop()
        raise


def early_workers(options: RunOptions, devices: DevicePlan) -> Any:
    """``--jobs N`` on this machine's CPUs: the other N-1 workers, started now, before
    this process imports TensorFlow (see sweep.execution.together); else None. Where workers get
    GPUs of their own, each must set them before it imports TensorFlow (and the parent's
    probe keeps off the GPUs), so they start after the probe."""
    if options.backend == "loky" and (options.jobs or 1) > 1 and not devices.assigned:
        from sweep.execution.together import start_early

        return start_early(options.jobs or 1, options.threads)
    return None


def capped_jobs(run: _Run, both: Observer) -> RunOptions:
    """The options with ``--jobs`` as many as this machine runs (sweep.execution.capacity): on the
    CPU at most one per core, said on ``both``; refused if their memory is not there."""
    options = run.options
    if options.backend != "loky" or (options.jobs or 1) <= 1:
        return options
    from sweep.execution.capacity import machine_jobs

    jobs, note = machine_jobs(
        options.jobs or 1, force=options.force_jobs, on_cpu=not run.devices.assigned
    )
    if note is not None:
        both.message(note)
    return replace(options, jobs=jobs)


def is_parallel(options: RunOptions) -> bool:
    return options.backend != "loky" or (options.jobs or 1) > 1


def run_devices(options: RunOptions) -> DevicePlan:
    """Each worker's devices (checked before TensorFlow is imported, so errors are quick)."""
    if options.gpus_per_trial < 1:
        raise ConfigError(
            f"--gpus-per-trial: expected a whole number >= 1, got {options.gpus_per_trial}"
        )
    listed = [] if parse_gpus(options.gpus) == "none" else discover_gpus()
    return plan_devices(
        options.gpus,
        per_trial=options.gpus_per_trial,
        memory_mb=parse_memory(options.gpu_memory),
        listed=listed,
        env=os.environ,
    )


def study_name(options: RunOptions) -> str:
    """The study's name, checked to be a folder name (before TensorFlow is imported)."""
    if options.study is not None:
        return check_study_name(options.study)
    if options.functions is not None:
        raise ConfigError(
            "sweep.run(build_model=..., load_data=...): expected study='NAME' (the folder "
            "its results go to), got none; pass study='my_study'"
        )
    space_file = resolve_space_path(options.space)
    return check_study_name(space_file.stem, space_file=space_file)


def load_run_space(options: RunOptions, name: str) -> SearchSpace:
    """The space of a run: its file with the overrides, or the functions with the settings."""
    f = options.functions
    if f is None:
        return load_space(options.space, overrides=options.overrides)
    return space_from_functions(
        name=name,
        build_model=f.build_model,
        load_data=f.load_data,
        hypermodel=f.hypermodel,
        settings=options.overrides,
        callbacks=f.callbacks,
    )


def refuse_unresumable(study: optuna.Study, space: SearchSpace, plan: Plan) -> None:
    """Raise ``ResumeRefused`` if this run may not resume one of the study's orphans
    (the settings or the space differ from the ones it was interrupted under)."""
    from sweep.store.ownership import Worker

    check = RerunCheck(
        space=space,
        mode=plan.mode,
        calibrate=plan.calibrate,
        artifacts=Path(plan.artifacts),
        allow_space_change=plan.allow_space_change,
    )
    worker = Worker(Path(plan.artifacts))
    try:
        with worker.claiming():
            for trial in worker.orphans(study):
                check.check(trial)
    finally:
        worker.close()


def record_data_fingerprint(study: optuna.Study, data: Data, progress: Observer) -> None:
    """The validation data's fingerprint, on the study: export checks it; a rerun with
    other data (unseeded random data) is told once."""
    from sweep.space.data import fingerprint
    from sweep.space.inputs import InputKind

    if data.x_val is None or data.kinds[1] is not InputKind.ARRAYS:  # datasets: not hashed
        return
    now = fingerprint(data.x_val, data.y_val)
    recorded = read_study(study, StudyAttr.VALIDATION_FINGERPRINT)
    if recorded is None:
        write_study(study, StudyAttr.VALIDATION_FINGERPRINT, now)
    elif recorded != now:
        progress.message(
            "load_data() returned other validation data than when this study started "
            "(unseeded random data?): scores of trials run now and before are not comparable, "
            "and export verifies against the data of the first run"
        )


def enqueue_defaults(study: optuna.Study, defaults: dict[str, Any]) -> None:
    """Trial 0 of a new study takes every hyperparameter's default (KerasTuner's); the
    grid sampler needs no such trial, the defaults are on its grid or not at all."""
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(defaults, skip_if_exists=True)


def _run(run: _Run, logged: PlainProgress) -> SweepSummary:
    options, workers = run.options, run.workers
    space = load_run_space(options, run.name)
    check_trackers(space.settings, run.folder)  # before study.db
    parallel = is_parallel(options)
    if workers is not None or (not parallel and options.threads is not None):
        from sweep.execution.parallel import limit_threads

        limit_threads(workers.threads if workers is not None else int(options.threads or 1))
    return _prepared(run, logged, space)


def _prepared(run: _Run, logged: PlainProgress, space: SearchSpace) -> SweepSummary:
    """Prepare the study and the plan, launch the trials, summarise."""
    both = Observers(run.progress, logged)
    ready = prepare(run, space, both)
    stopped_because = launch(run, ready, space, both=both, logged=logged)
    return summarise(run, ready, stopped_because, logged)


@dataclass(frozen=True)
class _Ready:
    """A sweep ready to launch: its study (created or checked) and the plan its workers run."""

    study: optuna.Study
    reader: StudyReader  # chosen once, for the study's storage
    plan: Plan
    data: Data
    notes: list[str]  # the probe's, shown once the sweep starts


def prepare(run: _Run, space: SearchSpace, both: Observer) -> _Ready:
    """Probe the space on the data, open the study and store the plan on it, refusing a
    rerun that may not resume the study's orphans before anything is written."""
    options = run.options
    data = load_checked_data(space)
    probed = probe(space, data)
    storage_url = options.storage or default_storage_url(options.results_dir, run.name)
    study = open_study(
        run.name,
        storage_url,
        mode=probed.mode,
        monitor=space.settings.monitor,
        space=str(space.path),
    )
    record_data_fingerprint(study, data, both)
    if space.settings.first_trial == "defaults" and probed.grid is None:
        enqueue_defaults(study, probed.defaults)
    plan = make_plan(run, space, probed, storage_url)
    refuse_unresumable(study, space, plan)  # before anything is written to the study
    write_study(study, StudyAttr.PLAN, plan.to_json())  # for `sweep worker` on other machines
    write_study(study, StudyAttr.FINGERPRINT, space_fingerprint(space))
    return _Ready(
        study=study, reader=reader_for(study), plan=plan, data=data, notes=list(probed.notes)
    )


def make_plan(run: _Run, space: SearchSpace, probed: Probed, storage_url: str) -> Plan:
    """What every worker of this sweep runs (stored on the study)."""
    options, folder = run.options, run.folder
    artifacts = folder if options.artifacts_dir is None else options.artifacts_dir / run.name
    functions = None if options.functions is None else pickle_functions(space)
    return Plan(
        **{**options.trial_options(), "overrides": dict(options.overrides)},
        space=str(space.path.resolve()) if functions is None else space_label(functions),
        study=run.name,
        storage=storage_url,
        results=str(folder.resolve()),
        artifacts=str(artifacts.resolve()),
        mode=probed.mode,
        grid=probed.grid,
        target=probed.target,
        deadline=None if options.timeout_s is None else run.started + options.timeout_s,
        functions=functions,
        from_functions=functions is not None,
        devices=run.devices,
    )


def launch(
    run: _Run, ready: _Ready, space: SearchSpace, *, both: Observer, logged: PlainProgress
) -> SweepEnd:
    """Start the sweep (its own trackers first: MLflow's study run, before any worker),
    run its trials here or in its workers, end it; return why it stopped. ``both`` (the
    display and the log) is what the trials' observers report to."""
    options, study, plan, reader = run.options, ready.study, ready.plan, ready.reader
    observers = Observers(*sweep_trackers(space.settings, study=study, warn=both.message), both)
    done = reader.finished_count()
    observers.sweep_started(
        SweepStart(
            text=f"study {run.name}: {space.path} on {redact(plan.storage)}, monitor "
            f"{space.settings.monitor} ({plan.mode}), {done}/{plan.target} trials finished",
            target=plan.target,
            done=done,
            timeout_s=options.timeout_s,
            maximize=plan.mode is Direction.MAX,
            best=reader.best(),
        )
    )
    for note in ready.notes:
        observers.message(note)
    write_table(reader, run.folder / "trials.csv")
    if is_parallel(options):
        from sweep.execution.together import Launch, run_workers

        stopped_because = run_workers(
            Launch(options.jobs, options.backend, options.scheduler, options.threads),
            run.workers,
            plan,
            progress=run.progress,
            both=both,
            logged=logged,
            study=study,
            space=space,
            data=ready.data,
            restore_gpus=run.parent.restore,
        )
    else:
        from sweep.execution.parallel import start_up_frozen

        with start_up_frozen():
            stopped_because = work(plan, both, space=space, data=ready.data)
    write_table(reader, run.folder / "trials.csv")
    observers.sweep_ended(SweepEnded(reason=stopped_because))
    return stopped_because


def summarise(
    run: _Run, ready: _Ready, stopped_because: SweepEnd, logged: PlainProgress
) -> SweepSummary:
    """The sweep's summary: the best trials and, once the target is reached, the best
    model scored on the test data (said in the log)."""
    from sweep.train.evaluate import best_on_test

    study, plan, reader = ready.study, ready.plan, ready.reader
    rows = table_rows(reader)
    reached = stopped_because is SweepEnd.TARGET_REACHED
    on_test = best_on_test(study, ready.data) if reached else None
    if on_test is not None:
        scores = ", ".join(f"{k}={v:.6g}" for k, v in on_test[1].items())
        logged.message(f"test data: trial {on_test[0]}'s best model scores {scores}")
    return SweepSummary(
        study=run.name,
        storage=redact(plan.storage),
        folder=run.folder,
        table=run.folder / "trials.csv",
        finished=reader.finished_count(),
        target=plan.target,
        stopped_because=stopped_because,
        best=[r for r in rows if r["state"] == "complete"][:3],
        test=on_test,
    )
