"""Trials in parallel: N worker processes through joblib, on this machine (loky) or on a
Dask cluster (joblib's dask backend). Every worker runs ``session.work`` against the
same Optuna storage; nothing here is a scheduler of its own.

Workers can't draw on the parent's terminal, so they write their lines to
``sweep.log`` (prefixed with their worker), and the parent relays them, and polls
the study for the live display.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.errors import ConfigError
from sweep.core.observers import Observer, RunningTrial, SweepEnd
from sweep.core.plan import Plan
from sweep.core.record import from_trial
from sweep.store.reading import BestCache, StudyReader
from sweep.store.storage import reader_for

if TYPE_CHECKING:
    import optuna


def threads_per_job(jobs: int, threads: int | None) -> int:
    """TensorFlow threads per worker: the cores shared out, unless given."""
    return threads if threads is not None else max(1, len(os.sched_getaffinity(0)) // jobs)


def limit_threads(threads: int) -> None:
    """Limit TensorFlow's intra- and inter-op threads; only before its first op here."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # a reused worker process: it was set by the first task


@contextlib.contextmanager
def start_up_frozen() -> Iterator[None]:
    """While trials run, leave what start-up made (TensorFlow's and Optuna's modules, the
    data, the study) out of the garbage collector's full collections.

    Keras' ``clear_session()`` runs a full collection before every trial, and a full
    collection walks every object in the process: about half a million once TensorFlow,
    SQLAlchemy and Optuna are imported, 0.25 s a trial on 2 cores. Frozen (``gc.freeze``)
    they are skipped, and it takes about 0.02 s. They are unfrozen when the trials end,
    so whatever of them became garbage meanwhile is collected then, and a process that
    goes on (a test, a notebook) collects as before.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def worker_entry(plan: Plan, index: int, threads: int) -> SweepEnd:
    """What each worker process runs: load once, then trials until the study is done."""
    from sweep.core.devices import current, take
    from sweep.core.interrupts import process_owned
    from sweep.core.progress import PlainProgress
    from sweep.core.tfenv import import_tensorflow_quietly, quiet_optuna
    from sweep.execution.session import work

    warning = take(plan.devices.for_worker(index))  # before TensorFlow is imported
    import_tensorflow_quietly()
    from sweep.train.gpu import configure_process

    settled = configure_process(current())  # where this worker really trains
    limit_threads(threads)
    quiet_optuna()
    with (Path(plan.results) / "sweep.log").open("a", encoding="utf-8") as log:
        progress = PlainProgress(log, epochs=True, prefix=f"[w{index}] ")
        for line in (warning, settled):
            if line:
                progress.message(f"warning: {line}")
        with start_up_frozen(), process_owned():  # a worker process is sweep's own
            return work(plan, progress, index=index)


def run_parallel(
    plan: Plan,
    *,
    jobs: int | None,
    backend: str,
    scheduler: str | None,
    threads: int | None,
) -> list[SweepEnd]:
    """Run ``jobs`` workers to the end; return why each stopped."""
    import joblib

    if backend == "loky":
        n = jobs or 1
        per = threads_per_job(n, threads)
        return list(
            joblib.Parallel(n_jobs=n, backend="loky")(
                joblib.delayed(worker_entry)(plan, i, per) for i in range(n)
            )
        )
    if backend == "dask":
        try:
            from dask.distributed import Client
        except ImportError:
            raise ConfigError(
                "--backend dask needs dask.distributed; pip install 'dask[distributed]'"
            ) from None
        if scheduler is None:
            raise ConfigError(
                "--backend dask: expected --scheduler tcp://HOST:8786 (the Dask scheduler), "
                "got none"
            )
        try:
            client = Client(scheduler, timeout=30)  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise ConfigError(
                f"--scheduler {scheduler}: could not reach the Dask scheduler ({exc}); "
                "start it (dask scheduler) or fix the address"
            ) from None
        with client:
            n = jobs or max(1, len(client.scheduler_info()["workers"]))
            per = threads_per_job(n, threads) if threads else 1
            with joblib.parallel_config(backend="dask"):
                return list(
                    joblib.Parallel(n_jobs=n)(
                        joblib.delayed(worker_entry)(plan, i, per) for i in range(n)
                    )
                )
    raise ConfigError(f"--backend: expected loky or dask, got {backend!r}")


WORKER_LINE = re.compile(r"\[w\d+\] ")  # PlainProgress's prefix in a worker's lines


class Relay:
    """While workers run: new sweep.log lines to ``line``, and the study's state to
    ``progress.study_state`` (for the live display), about once a second."""

    def __init__(
        self,
        log: Path,
        study: optuna.Study,
        progress: Observer,
        line: Callable[[str], None],
        *,
        prefixed_only: bool = False,  # the parent writes to the log too: only workers' lines
    ):
        self.prefixed_only = prefixed_only
        self.log = log
        self.reader = reader_for(study)
        self.progress = progress
        self.line = line
        self.offset = log.stat().st_size if log.exists() else 0
        self.best = BestCache()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Relay:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
        self._poll()

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            self._poll()

    def _poll(self) -> None:
        with self.log.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for raw in chunk[:end].decode("utf-8", "replace").splitlines():
            if not self.prefixed_only or WORKER_LINE.search(raw):
                self.line(raw)
        with contextlib.suppress(Exception):  # a busy storage: next time
            self.progress.study_state(*snapshot(self.reader, self.best))


def snapshot(
    reader: StudyReader, best: BestCache
) -> tuple[int, list[RunningTrial], tuple[int, float] | None]:
    running = []
    for t in reader.running():  # only these are read whole
        steps = t.intermediate_values
        epoch = max(steps) if steps else 0
        rec = from_trial(t)
        running.append(
            RunningTrial(
                trial=t.number,
                worker=rec.worker,
                epoch=epoch,
                max_epochs=int(rec.max_epochs or 0),
                value=steps.get(epoch),
                started=t.datetime_start.timestamp() if t.datetime_start else time.time(),
            )
        )
    return reader.finished_count(), running, reader.best(cache=best)
