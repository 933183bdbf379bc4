"""``sweep worker``: join a study that ``sweep run --storage URL`` created (on a storage
every machine reaches) and run its trials, in this process or N workers, until the
study's target or budget."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.devices import current as current_devices
from sweep.core.devices import discover_gpus, plan_devices
from sweep.core.errors import disk_full_stops
from sweep.core.observers import Observer, Observers
from sweep.core.progress import PlainProgress
from sweep.core.redaction import redact
from sweep.core.tfenv import import_tensorflow_quietly, quiet_optuna
from sweep.execution.session import work
from sweep.store.storage import check_study_name, reader_for, writable_study_dir

if TYPE_CHECKING:  # Optuna is imported where a study is opened, not by importing this
    import optuna

    from sweep.core.plan import Plan


def join_sweep(
    study: str,
    *,
    storage: str,
    results_dir: Path,
    artifacts_dir: Path | None,
    jobs: int,
    threads: int | None,
    progress: Observer,
    force_jobs: bool = False,
) -> str:
    """``sweep worker``: run trials of a study that ``sweep run --storage URL`` created."""
    from sweep.store.storage import load_existing_study

    check_study_name(study)
    listed, jobs, note = _this_machine(jobs, force_jobs=force_jobs)
    opened = load_existing_study(study, results_dir=results_dir, storage=storage)
    reader = reader_for(opened)
    artifacts = None if artifacts_dir is None else str((artifacts_dir / study).resolve())
    plan, folder = _worker_plan(opened, study, storage, results_dir, artifacts, listed)
    with disk_full_stops(folder), (folder / "sweep.log").open("a", encoding="utf-8") as log:
        both = Observers(progress, PlainProgress(log, epochs=True))
        if note is not None:
            both.message(note)
        both.message(
            f"worker joined study {study} on {redact(storage)}: "
            f"{reader.finished_count()}/{plan.target} trials finished"
        )
        why = _run_trials(plan, opened, folder, progress, both, jobs=jobs, threads=threads)
        both.message(
            f"worker done: {reader.finished_count()}/{plan.target} trials finished ({why})"
        )
        return why


def _this_machine(jobs: int, *, force_jobs: bool) -> tuple[list[Any], int, str | None]:
    """TensorFlow imported and this process's devices set up; this machine's GPUs, and the
    workers it runs (``jobs``, or fewer where it can't, said in the note)."""
    import_tensorflow_quietly()
    from sweep.train.gpu import configure_process

    configure_process(current_devices())  # memory growth where this process trains
    quiet_optuna()
    listed = discover_gpus()  # this machine's GPUs, one per worker round-robin
    note = None
    if jobs > 1:
        from sweep.execution.capacity import machine_jobs

        jobs, note = machine_jobs(jobs, force=force_jobs, on_cpu=not listed)
    return listed, jobs, note


def _worker_plan(
    opened: optuna.Study,
    study: str,
    storage: str,
    results_dir: Path,
    artifacts: str | None,
    listed: list[Any],
) -> tuple[Plan, Path]:
    """The plan ``sweep run`` stored on the study, with this machine's folder (its log and
    table) and devices; and that folder."""
    from sweep.execution.preparation import load_plan

    plan = load_plan(opened, storage=storage, artifacts=artifacts)
    folder = writable_study_dir(results_dir, study)
    plan = replace(plan, results=str(folder.resolve()))  # this machine's log and table
    plan = replace(
        plan, devices=plan_devices(None, per_trial=1, memory_mb=None, listed=listed, env=os.environ)
    )
    return plan, folder


def _run_trials(
    plan: Plan,
    opened: optuna.Study,
    folder: Path,
    progress: Observer,
    both: Observer,
    *,
    jobs: int,
    threads: int | None,
) -> str:
    """Trials until the study's target or budget: in ``jobs`` worker processes (their lines
    relayed to ``progress``), or in this one."""
    if jobs > 1:
        from sweep.execution.parallel import Relay, run_parallel

        with Relay(folder / "sweep.log", opened, progress, progress.relayed):
            reasons = run_parallel(plan, jobs=jobs, backend="loky", scheduler=None, threads=threads)
        return reasons[0]
    if threads is not None:
        from sweep.execution.parallel import limit_threads

        limit_threads(threads)
    from sweep.execution.parallel import start_up_frozen

    with start_up_frozen():
        return work(plan, both)
