"""Whether a live process holds a lock file: the one check behind a worker's liveness
(sweep.store.ownership) and a data copy's use (sweep.space.shared)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def lock_if_free(path: Path) -> Iterator[bool]:
    """Yield whether ``path``'s lock was free, holding it exclusively inside the block if
    so (the file is created if missing; errors opening it propagate, each caller says what
    they mean)."""
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
