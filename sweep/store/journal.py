"""``--storage journal:PATH``: Optuna's journal file, made to survive a torn write.

Optuna's ``JournalFileBackend`` appends one JSON record a line. A process killed in the
middle of a write, or a disk that fills up during one, leaves a partial last line. Optuna
skips it when reading, but the next append is glued onto it, and from then on the file
cannot be read at all (``JSONDecodeError``). Here a torn final record is set aside
before anything is appended: its bytes are copied beside the journal
(``PATH.torn-<time>-<pid>``), the journal is truncated to its last complete record
(under Optuna's own journal lock, so no writer is mid-write), and one line says so. A
journal that is garbage (not JSON records, or corrupt before its last line) is one
``ConfigError``, with nothing changed. A write that fails (a full disk) is undone, and
its error names the journal's file, so the disk-full line names the journal's folder.

No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import IO, Any

from sweep.core.errors import ConfigError

JOURNAL = "journal:"
RECORD_START = b'{"op_code":'  # every record Optuna writes starts so
_CHUNK = 1 << 16


class TailKind(enum.Enum):
    OK = "ok"  # empty, or a complete last record with its line end
    NO_NEWLINE = "no newline"  # a whole record whose line end was not written
    TORN = "torn"  # the start of a record, cut short
    GARBAGE = "garbage"  # not a record at all


@dataclass(frozen=True)
class Tail:
    start: int  # where the last line starts
    line: bytes  # the last line, with its line end if it has one
    kind: TailKind


def _last_line_start(fh: IO[bytes], size: int) -> int:
    """Offset of the last line of a file of ``size`` bytes (its final line end ignored)."""
    end = size - 1  # a line end at the very end belongs to the last line
    while end > 0:
        begin = max(0, end - _CHUNK)
        fh.seek(begin)
        found = fh.read(end - begin).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        end = begin
    return 0


def _kind(line: bytes) -> TailKind:
    if not line:
        return TailKind.OK
    try:
        whole = isinstance(json.loads(line), dict)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        whole = False
    if whole:
        return TailKind.OK if line.endswith(b"\n") else TailKind.NO_NEWLINE
    cut = line.rstrip(b"\n").rstrip(b"\0")  # a crash may leave zeros past the written end
    if cut.startswith(RECORD_START) or RECORD_START.startswith(cut):
        return TailKind.TORN
    return TailKind.GARBAGE


def read_tail(path: str) -> Tail:
    """The journal's last line and what it is."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        start = _last_line_start(fh, size)
        fh.seek(start)
        line = fh.read(size - start)
    return Tail(start, line, _kind(line))


def _ends_whole(path: str) -> bool:
    """Cheap: the file is empty or ends with a line end (what every complete write leaves)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return True
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_aside(path: str) -> str | None:
    """Call under the journal's lock: make the journal end with a complete record (a torn
    last record's bytes copied beside it first); return the line that says what was
    done, or None if there was nothing to do."""
    tail = read_tail(path)
    if tail.kind is TailKind.OK:
        return None
    if tail.kind is TailKind.NO_NEWLINE:
        with open(path, "ab") as fh:
            fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        return f"journal {path}: its last record had no line end (a write cut short); added it"
    aside = f"{path}.torn-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    with open(aside, "xb") as fh:
        fh.write(tail.line)
        fh.flush()
        os.fsync(fh.fileno())
    os.truncate(path, tail.start)
    _fsync(path)
    return (
        f"journal {path}: its last record was cut short (a process killed while writing it, "
        f"or a full disk); its {len(tail.line)} bytes were set aside in {aside}, the "
        f"{tail.start} bytes before it are intact"
    )


def _say(line: str | None) -> None:
    if line is not None:
        sys.stderr.write(f"sweep: {line}\n")
        sys.stderr.flush()


def _first_bad_line(path: str) -> tuple[int, str]:
    """The number (1-based) of the journal's first line that is not a JSON record, and why."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                json.loads(line)
            except ValueError as exc:
                return number, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return 0, "unreadable"


def _garbage(url: str, found: str) -> ConfigError:
    return ConfigError(
        f"--storage {url}: expected an Optuna journal (one JSON record a line), but {found}; "
        "nothing was changed; pass the journal file of the study, or restore it from a backup"
    )


def _backend_class() -> type:
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._file import get_lock_file

    class TornSafeFileBackend(JournalFileBackend):
        """Optuna's file backend that never appends onto a torn record, and undoes a
        write that failed (a full disk) instead of leaving part of it."""

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            path = self._file_path
            with get_lock_file(self._lock):
                try:
                    if not _ends_whole(path):
                        _say(set_aside(path))
                    size = os.stat(path).st_size
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, exc.filename or path) from exc
                try:
                    with open(path, "ab") as fh:
                        fh.write(text.encode("utf-8"))
                        fh.flush()
                        os.fsync(fh.fileno())
                except OSError as exc:
                    with contextlib.suppress(OSError):  # frees what it wrote, on a full disk
                        os.truncate(path, size)
                    # the file's name: a full disk's line names the journal's folder
                    raise OSError(exc.errno, exc.strerror, path) from exc

    return TornSafeFileBackend


def open_journal(url: str, *, existing: bool = False) -> Any:
    """``journal:PATH``: Optuna's JournalStorage on a file, locked with open(O_EXCL),
    which works on NFS (v3 and later) where a shared filesystem is all there is.
    ``existing``: for the commands that only read, the file must exist (none is created)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileOpenLock

    path = url.removeprefix(JOURNAL)
    if not path:
        raise ConfigError(
            "--storage journal:PATH: expected a file path after 'journal:', got none; "
            "e.g. --storage journal:/shared/sweeps/study.log"
        )
    if existing and not os.path.exists(path):
        raise ConfigError(
            f"no such journal: {path}; expected the journal file of a study, found no file; "
            f"create it with sweep run SPACE --storage {url}, or fix the path"
        )
    try:
        lock = JournalFileOpenLock(path)
        storage = JournalStorage(_backend_class()(path, lock_obj=lock))
        tail = read_tail(path)
    except ValueError:  # a line before the last is not JSON: Optuna's reading stopped there
        number, why = _first_bad_line(path)
        raise _garbage(url, f"line {number} of {path} is not ({why})") from None
    except OSError as exc:
        raise ConfigError(
            f"--storage {url}: cannot open the journal file ({exc.strerror}); "
            "pass a writable path (its folder must exist)"
        ) from None
    if tail.kind is TailKind.GARBAGE:
        shown = tail.line[:40].decode("utf-8", "replace").rstrip("\n")
        raise _garbage(url, f"its last line is not ({shown!r})")
    if tail.kind is not TailKind.OK:
        _repair(path, lock)
    return storage


def _repair(path: str, lock: Any) -> None:
    """Set a torn last record aside now, if no writer holds the lock (one that does may be
    writing that record right now; a writer sets it aside before its next append)."""
    from optuna.storages.journal._file import LOCK_FILE_SUFFIX, get_lock_file

    if os.path.exists(path + LOCK_FILE_SUFFIX):
        return
    try:
        with get_lock_file(lock):
            _say(set_aside(path))
    except OSError as exc:  # a read-only journal: Optuna's reading skips the torn line
        _say(f"journal {path}: its last record is incomplete and was skipped ({exc.strerror})")
