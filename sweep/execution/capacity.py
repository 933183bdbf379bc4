"""How many ``--jobs`` workers this machine runs.

Where trials train on the CPU, at most one worker per core: a worker beyond that only
takes turns on the cores with the others, and costs a TensorFlow import (seconds of
CPU) and its memory, so ``--jobs 4`` on 2 cores would finish later than ``--jobs 2``.
Ray Tune does the same with its default of one CPU per trial. Where workers have GPUs
of their own, every worker asked for runs. And never more than the memory holds.
``--force-jobs`` starts what was asked, whatever the machine.
"""

from __future__ import annotations

import os

from sweep.core.errors import ConfigError

TF_FOOTPRINT = 800 * 2**20  # resident memory of a process that imported TensorFlow, about


def jobs_to_start(
    jobs: int,
    *,
    cores: int,
    per_worker: int | None,
    available: int | None,
    force: bool,
    on_cpu: bool,
) -> tuple[int, str | None]:
    """The workers to start for ``--jobs jobs``, and the line that says why, if fewer.

    ``per_worker``: bytes one worker needs (this process's footprint once TensorFlow and
    the data are loaded); ``available``: bytes of memory available now. Raises a
    ``ConfigError`` (exit 2) where even those would not fit in memory."""
    if force or jobs <= 1:
        return jobs, None
    start, note = jobs, None
    if on_cpu and jobs > cores:
        start = max(1, cores)
        note = (
            f"--jobs {jobs}: running {start} workers, one per core of this machine's {cores}: "
            "the trials train on the CPU, where more workers only take turns on the cores and "
            f"each costs a TensorFlow start-up and its memory; pass --force-jobs to start {jobs}"
        )
    if start > 1 and per_worker and available is not None and start * per_worker > available:
        mb = 1024 * 1024
        raise ConfigError(
            f"--jobs {jobs}: each worker needs about {per_worker // mb} MB (TensorFlow and the "
            f"data) and {available // mb} MB of memory are available, enough for "
            f"{max(1, available // per_worker)}; use fewer --jobs, or pass --force-jobs to "
            f"start {jobs} anyway"
        )
    return start, note


def machine_jobs(jobs: int, *, force: bool, on_cpu: bool) -> tuple[int, str | None]:
    """``jobs_to_start`` with this machine's cores and memory, and this process's size."""
    import psutil

    return jobs_to_start(
        jobs,
        cores=len(os.sched_getaffinity(0)),
        # before TensorFlow is imported here, a worker still needs what it takes
        per_worker=max(psutil.Process().memory_info().rss, TF_FOOTPRINT),
        available=psutil.virtual_memory().available,
        force=force,
        on_cpu=on_cpu,
    )
