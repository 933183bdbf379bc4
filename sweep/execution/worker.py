"""``sweep worker``: join a study that ``sweep run --storage URL`` created (on a storage
every machine reaches) and run its trials, in this process or N workers, until the
study's target or budget."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from sweep.core.devices import current as current_devices
from sweep.core.devices import discover_gpus, plan_devices
from sweep.core.errors import disk_full_stops
from sweep.core.progress import FanOut, PlainProgress, Progress
from sweep.core.redaction import redact
from sweep.core.tfenv import import_tensorflow_quietly, quiet_optuna
from sweep.execution.session import work
from sweep.store.storage import check_study_name, reader_for, writable_study_dir


def join_sweep(
    study: str,
    *,
    storage: str,
    results_dir: Path,
    artifacts_dir: Path | None,
    jobs: int,
    threads: int | None,
    progress: Progress,
    force_jobs: bool = False,
) -> str:
    """``sweep worker``: run trials of a study that ``sweep run --storage URL`` created."""

    from sweep.execution.preparation import load_plan
    from sweep.store.storage import load_existing_study

    check_study_name(study)
    import_tensorflow_quietly()
    from sweep.train.gpu import configure_process

    configure_process(current_devices())  # memory growth where this process trains
    quiet_optuna()
    listed = discover_gpus()  # this machine's GPUs, one per worker round-robin
    note = None
    if jobs > 1:
        from sweep.execution.capacity import machine_jobs

        jobs, note = machine_jobs(jobs, force=force_jobs, on_cpu=not listed)
    opened = load_existing_study(study, results_dir=results_dir, storage=storage)
    reader = reader_for(opened)
    artifacts = None if artifacts_dir is None else str((artifacts_dir / study).resolve())
    plan = load_plan(opened, storage=storage, artifacts=artifacts)
    folder = writable_study_dir(results_dir, study)
    plan = replace(plan, results=str(folder.resolve()))  # this machine's log and table
    plan = replace(
        plan, devices=plan_devices(None, per_trial=1, memory_mb=None, listed=listed, env=os.environ)
    )
    with disk_full_stops(folder), (folder / "sweep.log").open("a", encoding="utf-8") as log:
        both = FanOut(progress, PlainProgress(log, epochs=True))
        if note is not None:
            both.message(note)
        both.message(
            f"worker joined study {study} on {redact(storage)}: "
            f"{reader.finished_count()}/{plan.target} trials finished"
        )
        if jobs > 1:
            from sweep.execution.parallel import Relay, run_parallel

            with Relay(folder / "sweep.log", opened, progress, progress.relayed):
                reasons = run_parallel(
                    plan, jobs=jobs, backend="loky", scheduler=None, threads=threads
                )
            why = reasons[0]
        else:
            if threads is not None:
                from sweep.execution.parallel import limit_threads

                limit_threads(threads)
            from sweep.execution.parallel import start_up_frozen

            with start_up_frozen():
                why = work(plan, both)
        both.message(
            f"worker done: {reader.finished_count()}/{plan.target} trials finished ({why})"
        )
        return why
