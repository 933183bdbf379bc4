"""Writes that a kill cannot cut in half: a temp file in the same folder, then os.replace."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _umask_from_proc() -> int | None:
    """The process's umask from ``/proc/self/status`` (Linux >= 4.7), or None."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_at_import() -> int:
    # Setting the umask to read it is racy once threads create files: do it only where
    # /proc can't tell, and once, at import.
    found = _umask_from_proc()
    if found is None:
        found = os.umask(0o022)
        os.umask(found)
    return found


_UMASK = _umask_at_import()


def file_mode() -> int:
    """The mode a new file gets from ``open()``: 0666 less the umask (as now, if /proc says)."""
    umask = _umask_from_proc()
    return 0o666 & ~(_UMASK if umask is None else umask)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target`` (same suffix); rename it over ``target`` on success.

    The temp name keeps the suffix because some writers (Keras' ``model.save``)
    choose the format from it. The file ends up with the mode any other tool would give
    it (0666 less the umask), not ``mkstemp``'s 0600.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fchmod(fh.fileno(), file_mode())
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_with(target: Path, writer: Callable[[Path], object]) -> None:
    """Call ``writer(temp_path)`` and move the result into place."""
    with atomic_path(target) as tmp:
        writer(tmp)
