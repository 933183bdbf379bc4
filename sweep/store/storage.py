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
from typing import TYPE_CHECKING, Any

from sweep.core.errors import ConfigError
from sweep.core.redaction import redact, redact_text
from sweep.store.reading import GenericReader, StudyReader
from sweep.store.relational import RelationalReader, rdb

if TYPE_CHECKING:  # Optuna is imported when a storage is opened, not by importing this
    import optuna

STUDY_DB = "study.db"
STORAGE_ENV = "SWEEP_STORAGE"
MAX_STUDY_NAME = 100
_STUDY_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_study_name(name: str, *, space_file: Path | None = None) -> str:
    """``name`` if it is a study name (a folder name under --results), else a ConfigError.

    ``space_file``: the name was derived from that file's stem (no --study given).
    """
    bad = sorted(set(_STUDY_NAME.sub("", name)))
    dash = name.startswith("-")  # a command line would read it as a flag
    if not bad and not dash and name not in ("", ".", "..") and len(name) <= MAX_STUDY_NAME:
        return name
    if len(name) > MAX_STUDY_NAME:
        found = f"{len(name)} characters"
    elif bad:
        found = f"{_short(name)!r}, which has {' '.join(repr(c) for c in bad[:5])}"
    elif dash:
        found = f"{_short(name)!r}, which starts with '-'"
    else:
        found = repr(name)
    suggestion = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:MAX_STUDY_NAME]
    suggestion = suggestion or "my_study"
    expected = (
        "expected a name of letters, digits, '-', '_' and '.' (not '.' or '..', "
        f"not starting with '-', at most {MAX_STUDY_NAME} characters)"
    )
    if space_file is not None:
        raise ConfigError(
            f"study name from the space file {_short(space_file.name)!r}: {expected}, "
            f"got {found}; pass --study NAME (e.g. --study {suggestion}) or rename the file"
        )
    raise ConfigError(f"study name: {expected}, got {found}; use e.g. {suggestion}")


def _short(text: str) -> str:
    return text if len(text) <= 60 else f"{text[:60]}..."


def study_dir(results_dir: Path, study: str) -> Path:
    return results_dir / check_study_name(study)


def default_storage_url(results_dir: Path, study: str) -> str:
    return f"sqlite:///{(study_dir(results_dir, study) / STUDY_DB).resolve()}"


def storage_from(flag: str | None, file: Path | None) -> str | None:
    """The storage URL: --storage, else the first line of --storage-file, else the
    SWEEP_STORAGE environment variable, else None (the study's SQLite file)."""
    if flag is not None:
        return flag
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(
                f"--storage-file {file}: expected a readable text file with the storage URL "
                f"on its first line, got: {why}; fix the path"
            ) from None
        url = lines[0].strip() if lines else ""
        if not url:
            raise ConfigError(
                f"--storage-file {file}: expected the storage URL on its first line, "
                "found an empty line; write the URL there"
            )
        return url
    return os.environ.get(STORAGE_ENV, "").strip() or None


# Server storages record each running trial's heartbeat this often; a trial whose
# heartbeat is older than the grace period was left by a dead worker (see ownership).
HEARTBEAT_S = 5
GRACE_S = 20


JOURNAL = "journal:"


def open_journal(url: str, *, existing: bool = False) -> Any:
    """``journal:PATH`` (see sweep.store.journal: a torn last record is set aside)."""
    from sweep.store.journal import open_journal as open_file

    return open_file(url, existing=existing)


def open_storage(url: str, *, existing: bool = False) -> Any:
    """The storage at ``url``; ``existing``: a storage that must already hold the study
    (the read commands): no table creation, and the quick schema check (sweep.store.schema)."""
    import warnings

    import optuna

    if url.startswith(JOURNAL):
        return open_journal(url, existing=existing)
    kwargs: dict[str, Any] = {}
    heartbeat: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Wait for a lock instead of failing at once when another process writes.
        kwargs["connect_args"] = {"timeout": 60}
    else:
        heartbeat = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S}
        kwargs["pool_pre_ping"] = True
    from sweep.store.schema import lazy_version_manager

    lazy = lazy_version_manager if existing else contextlib.nullcontext
    try:
        for attempt in range(10):
            try:
                with warnings.catch_warnings(), lazy():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    opened = optuna.storages.RDBStorage(
                        url,
                        engine_kwargs=kwargs,
                        skip_table_creation=existing,
                        skip_compatibility_check=existing,
                        **heartbeat,
                    )
                if existing:
                    from sweep.store.schema import check_schema

                    check_schema(opened)
                return opened
            except Exception as exc:
                # another process creating the same new storage at the same moment
                racing = "already exists" in str(exc) or "database is locked" in str(exc)
                if not racing or attempt == 9:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")
    except Exception as exc:
        text = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else "", url)
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


def reader_for(study: optuna.Study) -> StudyReader:
    """The study's reader (``sweep.store.reading``): SQL on an RDB storage (wrapped in
    Optuna's cache or not), ``get_trials`` on any other. Made once where a study is
    opened or held, and used for every read of it there."""
    storage = rdb(study)
    return GenericReader(study) if storage is None else RelationalReader(study, storage)


def load_existing_study(study: str, *, results_dir: Path, storage: str | None) -> optuna.Study:
    """Open a study that must already exist (for table, status, ...)."""
    import optuna

    check_study_name(study)
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
        opened = open_storage(storage, existing=True)
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
