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
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sweep.plan import Plan
from sweep.progress import Progress


def warm_up(threads: int) -> None:
    """In a worker process, before it has a plan: import TensorFlow, limit its threads."""
    from sweep.parallel import limit_threads
    from sweep.tfenv import import_tensorflow_quietly, quiet_optuna

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

    def run(self, plan: Plan) -> list[Future[str]]:
        from sweep.parallel import worker_entry

        return [
            self.executor.submit(worker_entry, plan, i, self.threads)
            for i in range(1, self.extra + 1)
        ]

    def stop(self) -> None:
        """Nothing to run (the sweep stopped before its trials): end the processes."""
        self.executor.shutdown(wait=False, kill_workers=True)


def start_early(jobs: int, threads: int | None, *, force: bool) -> Workers:
    """Check the machine holds ``jobs`` workers and start the other ``jobs - 1`` (before
    this process imports TensorFlow: their start-up overlaps its import, the data load
    and the probe). This process limits its own threads (``workers.threads``) once it
    has imported TensorFlow."""
    from sweep.parallel import check_machine_holds, threads_per_job

    check_machine_holds(jobs, force=force)
    return Workers(jobs - 1, threads_per_job(jobs, threads))


def run_with_parent(
    workers: Workers,
    plan: Plan,
    *,
    both: Progress,
    progress: Progress,
    study: Any,
    space: Any,
    data: Any,
) -> list[str]:
    """Run the workers and, in this process, worker 0; return why each stopped."""
    from sweep.parallel import Relay, start_up_frozen
    from sweep.session import work

    futures = workers.run(plan)
    log = Path(plan.results) / "sweep.log"
    try:
        with Relay(log, study, progress, progress.relayed, prefixed_only=True), start_up_frozen():
            mine = work(plan, both, space=space, data=data)
    except BaseException:
        for f in futures:  # they stop too (the same signal, or the target): wait for them
            with contextlib.suppress(Exception):
                f.result()
        raise
    return [mine, *(f.result() for f in futures)]
