"""Which process owns a running trial, and finding trials whose owner is gone.

Every process that runs trials holds an exclusive ``flock`` on its own file
``results/<study>/workers/<id>.lock`` for as long as it lives, and writes that id
on each trial it starts (user attr ``owner``). The kernel drops the lock when the
process dies, however it dies (kill -9 included), so "owner's lock can be taken"
means "owner is gone": no pid reuse, no heartbeat delay. Claims are serialised by
a second lock, ``claim.lock``, so two processes never take the same trial.

An owner on another machine can't always be checked that way. On a storage with
Optuna's RDB heartbeat (PostgreSQL, MySQL: see ``storage.open_storage``), every running
trial's heartbeat is recorded while it runs, and a trial whose heartbeat is older
than the grace period counts as orphaned, whoever owned it. A journal file keeps no
heartbeat: there the machines share the artifacts folder, and another machine's owner
lock is checked like this machine's (``flock`` works across NFSv4 clients) whenever
the trial's folder is visible here (``lock_shared``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sweep.core.locks import lock_if_free
from sweep.core.record import from_trial, write, write_stored
from sweep.store.storage import reader_for

if TYPE_CHECKING:
    import optuna

# A trial asked for but not yet marked with its owner is left alone this long.
UNCLAIMED_GRACE_S = 60.0


def owner_alive(study_folder: Path, owner: str, *, tidy: bool = False) -> bool:
    """Whether the process that wrote ``owner`` still holds its lock (read-only unless tidy)."""
    path = study_folder / "workers" / f"{owner}.lock"
    try:
        with lock_if_free(path) as free:
            if free and tidy:
                path.unlink(missing_ok=True)  # its owner is gone
            return not free
    except FileNotFoundError:
        return False


class Worker:
    """This process, as an owner of trials."""

    def __init__(self, study_folder: Path) -> None:
        # SWEEP_HOST names this machine where hostnames collide (containers on several hosts)
        self.host = os.environ.get("SWEEP_HOST") or socket.gethostname()
        self.label = f"{self.host}:{os.getpid()}"  # the table's `worker` column
        self.id = f"{self.host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.folder = study_folder / "workers"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.claims = study_folder / "claim.lock"
        self._fh: IO[str] | None = (self.folder / f"{self.id}.lock").open("w")
        fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            with contextlib.suppress(FileNotFoundError):
                (self.folder / f"{self.id}.lock").unlink()

    def alive(self, owner: str) -> bool:
        """Whether the process that wrote ``owner`` still holds its lock."""
        return owner == self.id or owner_alive(self.folder.parent, owner, tidy=True)

    @contextlib.contextmanager
    def claiming(self) -> Iterator[None]:
        with self.claims.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def mark(self, trial: optuna.Trial) -> None:
        write(trial, owner=self.id, owner_host=self.host, worker=self.label)

    @contextlib.contextmanager
    def heartbeat(self, study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
        """Record the trial's heartbeat while it runs, where the storage keeps heartbeats."""
        from optuna.storages._heartbeat import get_heartbeat_thread

        thread = get_heartbeat_thread(trial._trial_id, study._storage)
        thread.start()
        try:
            yield
        finally:
            thread.join()

    def orphans(self, study: optuna.Study) -> list[Any]:
        """Every RUNNING trial whose owner is gone, as FrozenTrials; claims none of them.

        Call it inside ``claiming()``, then ``claim`` the one trial this process runs
        next: the others stay orphans, for other workers (or this one, later)."""
        found = []
        stale = _stale_by_heartbeat(study)
        now = time.time()
        for t in reader_for(study).running():  # only the running trials are read
            record = from_trial(t)
            owner = record.owner
            if t._trial_id in stale:
                pass  # its owner, wherever it ran, stopped beating
            elif owner is None:
                started = t.datetime_start.timestamp() if t.datetime_start else now
                if now - started < UNCLAIMED_GRACE_S:
                    continue
            elif (record.owner_host or self.host) != self.host:
                if not (lock_shared(study, t) and not self.alive(owner)):
                    continue  # another machine's, alive or not known to be gone
            elif self.alive(owner):
                continue
            found.append(t)
        return found

    def claim(self, study: optuna.Study, trial: optuna.Trial) -> None:
        """Make an orphan (a FrozenTrial from ``orphans``) this process's own."""
        from optuna.storages._heartbeat import BaseHeartbeat

        storage = study._storage
        if isinstance(storage, BaseHeartbeat) and trial._trial_id in _stale_by_heartbeat(study):
            # beat now, under the claim lock: nobody else may find it stale any more
            storage.record_heartbeat(trial._trial_id)
        write_stored(
            storage, trial._trial_id, owner=self.id, owner_host=self.host, worker=self.label
        )


def lock_shared(study: optuna.Study, trial: optuna.Trial) -> bool:
    """Whether another machine's trial can be checked by its owner's lock: the storage
    keeps no heartbeat (a journal file) and the trial's folder is here, so the artifacts
    folder (with ``workers/``) is shared; ``flock`` works across NFSv4 clients."""
    from optuna.storages import JournalStorage

    trial_dir = from_trial(trial).trial_dir
    shared = trial_dir is not None and Path(trial_dir).is_dir()
    return isinstance(study._storage, JournalStorage) and shared


def _stale_by_heartbeat(study: optuna.Study) -> set[int]:
    """Trial ids whose RDB heartbeat is stale (empty where the storage keeps none)."""
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage = study._storage
    if not isinstance(storage, BaseHeartbeat) or not is_heartbeat_enabled(storage):
        return set()
    return set(storage._get_stale_trial_ids(study._study_id))
