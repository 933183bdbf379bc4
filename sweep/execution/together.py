"""``--jobs N`` on one machine, with the parent as one of the N workers.

The parent imports TensorFlow and loads the data anyway, so it runs trials itself
(worker 0) next to N-1 loky worker processes; those are started before the parent
imports TensorFlow, so their own import overlaps the parent's, its data load and its
probe. The
workers write their lines to ``sweep.log`` and the relay thread shows them (and the
study's state) while the parent trains.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.observers import Observer, SweepEnd
from sweep.core.plan import Plan

if TYPE_CHECKING:
    import optuna

    from sweep.space.data import Data
    from sweep.space.files import SearchSpace
    from sweep.space.shared import SharedCopy


def warm_up(threads: int) -> None:
    """In a worker process, before it has a plan: import TensorFlow, limit its threads."""
    from sweep.core.tfenv import import_tensorflow_quietly, quiet_optuna
    from sweep.execution.parallel import limit_threads

    import_tensorflow_quietly()
    limit_threads(threads)
    quiet_optuna()


class Workers:
    """N-1 loky worker processes, started (and importing TensorFlow) ahead of their plan."""

    def __init__(self, extra: int, threads: int) -> None:
        from joblib.externals.loky import get_reusable_executor

        self.extra = extra
        self.threads = threads
        self.executor = get_reusable_executor(max_workers=extra, reuse=False)
        self.warming = [self.executor.submit(warm_up, threads) for _ in range(extra)]

    def run(self, plan: Plan) -> list[Future[SweepEnd]]:
        from sweep.execution.parallel import worker_entry

        return [
            self.executor.submit(worker_entry, plan, i, self.threads)
            for i in range(1, self.extra + 1)
        ]

    def stop(self) -> None:
        """End the processes: nothing (more) to run. Idle, they hold nothing unwritten;
        killed, they skip TensorFlow's teardown (about 1 s of CPU each)."""
        self.executor.shutdown(wait=False, kill_workers=True)


def start_early(jobs: int, threads: int | None) -> Workers:
    """Start the other ``jobs - 1`` workers (before this process imports TensorFlow: their
    start-up overlaps its import, the data load and the probe). This process limits its
    own threads (``workers.threads``) once it has imported TensorFlow."""
    from sweep.execution.parallel import threads_per_job

    return Workers(jobs - 1, threads_per_job(jobs, threads))


def run_with_parent(
    workers: Workers,
    plan: Plan,
    *,
    both: Observer,
    progress: Observer,
    study: optuna.Study,
    space: SearchSpace,
    data: Data,
) -> list[SweepEnd]:
    """Run the workers and, in this process, worker 0; return why each stopped."""
    from sweep.execution.parallel import Relay, start_up_frozen
    from sweep.execution.session import work

    futures = workers.run(plan)
    log = Path(plan.results) / "sweep.log"
    try:
        with Relay(log, study, progress, progress.relayed, prefixed_only=True), start_up_frozen():
            mine = work(plan, both, space=space, data=data)
            # the others' last lines (written after the study already holds their last
            # trial) are relayed once they are done: their results arrive after them
            others = [f.result() for f in futures]
    except BaseException:
        for f in futures:  # they stop too (the same signal, or the target): wait for them
            with contextlib.suppress(Exception):
                f.result()
        workers.stop()
        raise
    workers.stop()  # done and written: end them now rather than in their own teardown
    return [mine, *others]


def worker_pids(workers: Workers | None) -> list[int]:
    """The process ids of this machine's loky workers (the early ones, or joblib's)."""
    if workers is not None:
        executor: Any = workers.executor
    else:
        from joblib.externals.loky import reusable_executor

        executor = reusable_executor._executor
    return list(getattr(executor, "_processes", None) or {})


@dataclass(frozen=True)
class Launch:
    """How the workers of ``--jobs N`` start (the ``sweep run`` options they need)."""

    jobs: int | None
    backend: str
    scheduler: str | None
    threads: int | None


def share_arrays(launch: Launch, data: Any, folder: Path) -> SharedCopy | None:
    """Array data for --jobs workers on this machine, written once under the study folder
    (``data/``) for them to memory-map; None where workers call load_data() themselves
    (other input kinds, a HyperModel's fit, Dask workers elsewhere)."""
    if launch.backend != "loky" or (launch.jobs or 1) <= 1 or not data.arrays:
        return None
    from sweep.space.shared import write_shared

    root = (folder / "data").resolve()  # workers may have another cwd
    return write_shared(data, root, jobs=launch.jobs or 1)


def run_workers(
    launch: Launch,
    workers: Workers | None,
    plan: Plan,
    *,
    progress: Observer,
    both: Observer,
    logged: Observer,
    study: optuna.Study,
    space: SearchSpace,
    data: Data,
    restore_gpus: Callable[[], None],
) -> SweepEnd:
    """Run the sweep's trials in its workers (with this process as worker 0 where
    ``workers`` were started early); return why they stopped. ``progress`` is what the
    person sees, ``logged`` the log, ``both`` the two."""
    from sweep.core.interrupts import StopSignals, relay_to
    from sweep.execution.parallel import Relay, run_parallel

    folder = Path(plan.results)
    logged.message(f"starting {launch.jobs or 'one per Dask worker'} workers ({launch.backend})")
    # Ctrl+C on a terminal reaches every worker (one process group); a SIGTERM (or SIGINT)
    # to this process alone reaches them through the stop file: each finishes its epoch
    # and stops; the parent waits for them instead of killing them (a second signal exits
    # at once, everywhere).
    shared = share_arrays(launch, data, folder)  # before the handlers: it may refuse
    signals = StopSignals()
    signals.install()
    stop = folder / f".stop-{os.getpid()}"
    plan = replace(plan, stop_file=str(stop))
    relay = relay_to(stop, lambda: worker_pids(workers))
    if shared is not None:
        where = shared.folder
        both.message(f"the workers memory-map the arrays from {where} (removed at the end)")
        plan = replace(plan, data_dir=str(where))
    restore_gpus()  # the probe ran with GPUs hidden; workers take their own
    relay.__enter__()
    try:
        if workers is not None:
            reasons = run_with_parent(
                workers, plan, both=both, progress=progress, study=study, space=space, data=data
            )
        else:
            with Relay(folder / "sweep.log", study, progress, progress.relayed):
                reasons = run_parallel(
                    plan,
                    jobs=launch.jobs,
                    backend=launch.backend,
                    scheduler=launch.scheduler,
                    threads=launch.threads,
                )
    finally:
        relay.__exit__(None, None, None)
        signals.restore()
        if shared is not None:
            shared.remove()
    return SweepEnd.of_workers(reasons)
