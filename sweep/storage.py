"""Where a study lives: its folder, its Optuna storage URL, opening it.

Optuna storage is the one source of truth. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
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


def existing_studies(results_dir: Path) -> list[str]:
    if not results_dir.is_dir():
        return []
    return sorted(p.parent.name for p in results_dir.glob(f"*/{STUDY_DB}"))


def _has_tables(db: Path) -> bool:
    """Whether an SQLite file already holds Optuna's tables (read-only: creates nothing)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
            found = c.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchone()
    except sqlite3.Error:
        return False
    return found is not None


def load_existing_study(study: str, *, results_dir: Path, storage: str | None) -> Any:
    """Open a study that must already exist (for table, status, ...)."""
    import optuna

    if storage is None:
        db = study_dir(results_dir, study) / STUDY_DB
        if not db.is_file():
            known = ", ".join(existing_studies(results_dir)) or "none"
            raise ConfigError(
                f"study {study!r}: expected {db}, found no such file; "
                f"studies in {results_dir}/: {known} (or pass --results DIR / --storage URL)"
            )
        if not _has_tables(db):
            raise ConfigError(
                f"study {study!r}: {db} is being created right now; try again in a moment"
            )
        storage = default_storage_url(results_dir, study)
    opened = open_storage(storage)
    try:
        return optuna.load_study(study_name=study, storage=opened)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(opened)]
        raise ConfigError(
            f"study {study!r}: not found in {redact(storage)}; "
            f"studies there: {', '.join(names) or 'none'}"
        ) from None
