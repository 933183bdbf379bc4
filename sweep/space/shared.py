"""Array data handed to ``--jobs`` workers without a private copy each: the parent writes
the training and validation arrays once as ``.npy`` files under
``results/<study>/data/<id>/`` and every worker memory-maps them
(``np.load(mmap_mode="r")``); the operating system keeps one copy in its page cache for
all of them. Files are named by position (``x_train.0.npy``); a dict's keys (``"a/b"``)
are kept in the manifest. TensorFlow-free.

The run that wrote a copy holds its lock file ``data/<id>.lock`` (``flock``) while it
lives; the kernel drops the lock when the process dies (``kill -9`` included), so a copy
whose lock can be taken is stale: every ``sweep run`` removes those when it starts, and
its own copy when it ends. (A worker that outlived its run keeps its memory maps: a
removed file's pages stay until they are unmapped.) The space is checked before writing;
a full disk while writing leaves no partial copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from sweep.core.errors import DiskFullError, disk_full_cause, disk_full_error
from sweep.core.locks import lock_if_free
from sweep.space.data import Data

FIELDS = ("x_train", "y_train", "w_train", "x_val", "y_val", "w_val")
MANIFEST = "manifest.json"


def _leaves(a: Any) -> list[Any]:
    if a is None:
        return []
    if isinstance(a, dict):
        return [leaf for v in a.values() for leaf in _leaves(v)]
    if isinstance(a, list | tuple):
        return [leaf for v in a for leaf in _leaves(v)]
    return [a]


# NumPy's words for a short write (no errno): "800000 requested and 262112 written"
SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
PAGE = 4096  # files take whole blocks: a header and rounding up per file


def needed_bytes(data: Data) -> int:
    """About what ``write_shared`` writes for ``data`` (rounded up to whole blocks)."""
    leaves = [leaf for f in FIELDS for leaf in _leaves(getattr(data, f))]
    sizes = [np.asarray(leaf).nbytes + PAGE for leaf in leaves]  # + the .npy header
    return sum(-(-n // PAGE) * PAGE for n in sizes) + PAGE  # + the manifest


def _write(a: Any, folder: Path, name: str) -> Any:
    """Save the leaves of ``a`` (dicts, lists, tuples walked), each file named by its
    position (a dict's keys may hold '/'); return its layout, with the keys."""
    if a is None:
        return None
    if isinstance(a, dict):
        items = enumerate(a.items())
        return {"dict": {k: _write(v, folder, f"{name}.{i}") for i, (k, v) in items}}
    if isinstance(a, list | tuple):
        kind = "list" if isinstance(a, list) else "tuple"
        return {kind: [_write(v, folder, f"{name}.{i}") for i, v in enumerate(a)]}
    file = f"{name}.npy"
    np.save(folder / file, np.ascontiguousarray(a), allow_pickle=False)
    return {"npy": file}


def _read(layout: Any, folder: Path) -> Any:
    if layout is None:
        return None
    if "dict" in layout:
        return {k: _read(v, folder) for k, v in layout["dict"].items()}
    if "list" in layout:
        return [_read(v, folder) for v in layout["list"]]
    if "tuple" in layout:
        return tuple(_read(v, folder) for v in layout["tuple"])
    return np.load(folder / layout["npy"], mmap_mode="r", allow_pickle=False)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def _lock_new(root: Path) -> tuple[Path, IO[str]]:
    """A new copy's folder under ``root`` and its lock, held by this process."""
    while True:
        name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        lock = root / f"{name}.lock"
        fh = lock.open("x")
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:  # a stale-copy sweep may have taken and removed it before the flock
            if os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino:
                return root / name, fh
        except FileNotFoundError:
            pass
        fh.close()


class SharedCopy:
    """This run's copy of the arrays (``folder``), in use while ``folder.lock`` is held."""

    def __init__(self, folder: Path, lock: IO[str]) -> None:
        self.folder = folder
        self._lock: IO[str] | None = lock

    def remove(self) -> None:
        """Remove the copy (and stale ones, and ``data/`` if that leaves it empty)."""
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        with lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            Path(f"{self.folder}.lock").unlink(missing_ok=True)
        remove_stale(self.folder.parent)


def write_shared(data: Data, root: Path, *, jobs: int) -> SharedCopy:
    """Write ``data``'s training and validation arrays in a new folder under ``root``; the
    manifest is written last, so a folder without one is incomplete. Refused if the disk
    has not the space; a full disk while writing leaves nothing behind."""
    remove_stale(root)
    root.mkdir(parents=True, exist_ok=True)
    needed = needed_bytes(data)
    free = shutil.disk_usage(root).free
    if free < needed:
        remove_stale(root)
        raise DiskFullError(
            f"--jobs {jobs}: the workers' copy of the arrays needs about {_mb(needed)} "
            f"under {root}, {_mb(free)} are free there; free some space, or run with "
            "--jobs 1 (no copy)"
        )
    folder, lock = _lock_new(root)
    copy = SharedCopy(folder, lock)
    try:
        folder.mkdir()
        layout = {f: _write(getattr(data, f), folder, f) for f in FIELDS}
        meta = {"layout": layout, "validation": data.validation}
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, folder / MANIFEST)
    except BaseException as exc:
        copy.remove()
        cause = disk_full_cause(exc) if isinstance(exc, Exception) else None
        if cause is None and isinstance(exc, OSError) and SHORT_WRITE.search(str(exc)):
            cause = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))  # NumPy's
        if cause is None:
            raise
        kept = "nothing was recorded yet; "
        raise disk_full_error(cause, folder=root, needed=needed, kept=kept) from None
    return copy


def read_shared(folder: Path) -> Data:
    """The arrays ``write_shared`` wrote, memory-mapped (read-only)."""
    meta = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    values = {f: _read(meta["layout"][f], folder) for f in FIELDS}
    from sweep.space.inputs import InputKind

    val = InputKind.ARRAYS if values["x_val"] is not None else None
    blank = Data(None, None, None, None)
    return replace(
        blank, **values, validation=meta["validation"], kinds=(InputKind.ARRAYS, val, None)
    )


def _unused(lock: Path) -> bool:
    """Whether no live process holds ``lock`` (taken exclusively and removed if so)."""
    try:
        with lock_if_free(lock) as free:
            if free:
                shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
                lock.unlink(missing_ok=True)
            return free
    except OSError:
        return False


def remove_stale(root: Path) -> None:
    """Remove the copies under ``root`` that no live process uses (and ``root`` if that
    leaves it empty): those of runs killed with ``kill -9``, and copies from before
    copies had locks."""
    if not root.is_dir():
        return
    for lock in root.glob("*.lock"):
        _unused(lock)
    for entry in root.iterdir():
        if entry.suffix == ".lock" or Path(f"{entry}.lock").exists():
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        root.rmdir()  # only if empty
