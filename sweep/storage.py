"""Where a study lives: its folder, its Optuna storage URL, opening it.

Optuna storage is the one source of truth. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from sweep.errors import ConfigError

STUDY_DB = "study.db"


def study_dir(results_dir: Path, study: str) -> Path:
    return results_dir / study


def default_storage_url(results_dir: Path, study: str) -> str:
    return f"sqlite:///{(study_dir(results_dir, study) / STUDY_DB).resolve()}"


def redact(url: str) -> str:
    """Hide a password in a storage URL: ``postgresql://u:***@host/db``."""
    return re.sub(r"(://[^:/@\s'\"]+:)[^/\s'\"]*@", r"\1***@", url)


# Server storages record each running trial's heartbeat this often; a trial whose
# heartbeat is older than the grace period was left by a dead worker (see ownership).
HEARTBEAT_S = 5
GRACE_S = 20


def open_storage(url: str) -> Any:
    import warnings

    import optuna

    kwargs: dict[str, Any] = {}
    heartbeat: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Wait for a lock instead of failing at once when another process writes.
        kwargs["connect_args"] = {"timeout": 60}
    else:
        heartbeat = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S}
        kwargs["pool_pre_ping"] = True
    try:
        for attempt in range(10):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, **heartbeat)
            except Exception as exc:
                # another process creating the same new storage at the same moment
                racing = "already exists" in str(exc) or "database is locked" in str(exc)
                if not racing or attempt == 9:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")
    except Exception as exc:
        text = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise ConfigError(
            f"storage {redact(url)}: expected an Optuna storage URL that can be opened, "
            f"got {type(exc).__name__}: {text}"
        ) from None


def check_results_dir(results_dir: Path, flag: str = "--results") -> None:
    """A results folder that exists must be a folder."""
    if results_dir.exists() and not results_dir.is_dir():
        raise ConfigError(
            f"{flag} {results_dir}: expected a folder, found a file; pass a folder "
            "(it is created if missing)"
        )


def writable_study_dir(results_dir: Path, study: str, flag: str = "--results") -> Path:
    """``results_dir/study``, created if missing; a one-line error if it can't be written."""
    check_results_dir(results_dir, flag)
    folder = study_dir(results_dir, study)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"{flag} {results_dir}: expected {folder} to be a folder, found a file; "
            "move the file away or pass another --results"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{flag} {results_dir}: cannot create {folder} ({exc.strerror}); pass a writable folder"
        ) from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(
            f"{flag} {results_dir}: cannot write to {folder} (read-only or no permission); "
            "pass a writable folder"
        )
    return folder


def existing_studies(results_dir: Path) -> list[str]:
    if not results_dir.is_dir():
        return []
    return sorted(p.parent.name for p in results_dir.glob(f"*/{STUDY_DB}"))


class DbState(enum.Enum):
    READY = "ready"  # holds Optuna's tables
    CREATING = "creating"  # empty, or so new that Optuna is still creating its tables
    DAMAGED = "damaged"


SQLITE_MAGIC = b"SQLite format 3\x00"
NEW_S = 60.0  # a file without Optuna's tables younger than this may still be being created


def _truncated(db: Path) -> str | None:
    """Why the SQLite header says the file is cut short, or None (cheap: reads 100 bytes)."""
    with db.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "it is not an SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # the page count is kept up to date
    size = db.stat().st_size
    if valid and pages and size < pages * page_size:
        return f"it is truncated: {size} of {pages * page_size} bytes"
    return None


def db_state(db: Path) -> tuple[DbState, str]:
    """Whether an SQLite file holds Optuna's tables, is being created, or is damaged (and
    why); read-only: creates nothing."""
    if db.stat().st_size == 0:
        return DbState.CREATING, ""
    damage = _truncated(db)
    if damage is not None:
        return DbState.DAMAGED, damage
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
            found = c.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchone()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return DbState.CREATING, ""
        return DbState.DAMAGED, f"SQLite says: {exc}"
    if found is not None:
        return DbState.READY, ""
    if time.time() - db.stat().st_mtime < NEW_S:
        return DbState.CREATING, ""
    return DbState.DAMAGED, "it holds no Optuna study tables"


def damaged_error(study: str, db: Path, why: str) -> ConfigError:
    trials = db.parent / "trials"
    return ConfigError(
        f"study {study!r}: {db} is damaged ({why}) and cannot be read; the checkpoints and "
        f"histories under {trials}/ are intact; restore {db.name} from a backup, or run the "
        "sweep again with --study NEW"
    )


DAMAGE_TEXTS = ("file is not a database", "database disk image is malformed")


def load_existing_study(study: str, *, results_dir: Path, storage: str | None) -> Any:
    """Open a study that must already exist (for table, status, ...)."""
    import optuna

    check_results_dir(results_dir)
    if storage is None:
        db = study_dir(results_dir, study) / STUDY_DB
        if not db.is_file():
            known = ", ".join(existing_studies(results_dir)) or "none"
            raise ConfigError(
                f"study {study!r}: expected {db}, found no such file; "
                f"studies in {results_dir}/: {known} (or pass --results DIR / --storage URL)"
            )
        state, why = db_state(db)
        if state is DbState.DAMAGED:
            raise damaged_error(study, db, why)
        if state is DbState.CREATING:
            raise ConfigError(
                f"study {study!r}: {db} is being created right now; try again in a moment"
            )
        storage = default_storage_url(results_dir, study)
    try:
        opened = open_storage(storage)
        return optuna.load_study(study_name=study, storage=opened)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(opened)]
        raise ConfigError(
            f"study {study!r}: not found in {redact(storage)}; "
            f"studies there: {', '.join(names) or 'none'}"
        ) from None
    except Exception as exc:  # SQLAlchemy's or Optuna's wrapping of SQLite's own words
        found = next((text for text in DAMAGE_TEXTS if text in str(exc)), None)
        if found is None or not storage.startswith("sqlite:///"):
            raise
        db = Path(storage.removeprefix("sqlite:///"))
        raise damaged_error(study, db, f"SQLite says: {found}") from None
