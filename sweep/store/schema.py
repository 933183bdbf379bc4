"""Whether an existing RDB storage has the table schema this Optuna writes, quickly.

Optuna's own check (``RDBStorage(...)`` without ``skip_compatibility_check``) loads
alembic's migration scripts, about 0.2 s of a command that only reads. The read
commands (table, status, compare, report, ...) open an existing storage without it and
check here instead: the revision stored in ``alembic_version`` against the newest
revision among Optuna's migration files. Only when they differ (or anything here is
unexpected) is Optuna's own check run, with its own message on what to upgrade.

Even with its check skipped, ``RDBStorage(...)`` makes a ``_VersionManager``, which
imports alembic and reads ``alembic_version`` through it (0.13 s); the read commands
open the storage with that made on first use instead (``lazy_version_manager``).

No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*(None|"[^"]*"|\'[^\']*\')', re.M)


def head_revision() -> str | None:
    """The newest revision of Optuna's migrations (None if the files don't say one)."""
    import optuna.storages._rdb as rdb_package

    versions = Path(rdb_package.__file__).parent / "alembic" / "versions"
    revisions, downs = set(), set()
    for path in versions.glob("*.py"):
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            return None
        revisions.add(found["revision"].strip("\"'"))
        downs.add(found.get("down_revision", "None").strip("\"'"))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def stored_revision(storage: Any) -> str | None:
    import sqlalchemy as sa

    try:
        with storage.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).fetchall()
    except Exception:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def check_schema(storage: Any) -> None:
    """Nothing if the stored schema is the current one; else Optuna's own check (which
    raises with what to upgrade, or passes)."""
    stored = stored_revision(storage)
    if stored is None or stored != head_revision():
        storage._version_manager.check_table_schema_compatibility()


class _LazyVersionManager:
    """Optuna's ``_VersionManager``, made when an attribute of it is first used."""

    def __init__(self, real: Any, *args: Any) -> None:
        self._made_by = (real, args)
        self._real: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._real is None:
            real, args = self._made_by
            self._real = real(*args)
        return getattr(self._real, name)


_PATCHING = threading.Lock()


@contextlib.contextmanager
def lazy_version_manager() -> Iterator[None]:
    """While open: an ``RDBStorage`` made in this thread (of a storage that exists: a
    new one needs its version manager at once, to record its schema's revision) makes
    its version manager only when it is first used. Where Optuna has no
    ``_VersionManager``, nothing changes."""
    import optuna.storages._rdb.storage as module

    real = getattr(module, "_VersionManager", None)
    if real is None:
        yield
        return
    me = threading.get_ident()

    def make(*args: Any) -> Any:  # another thread's storage (a new one, maybe): Optuna's
        return _LazyVersionManager(real, *args) if threading.get_ident() == me else real(*args)

    with _PATCHING:
        setattr(module, "_VersionManager", make)  # noqa: B010 (mypy: a class there)
        try:
            yield
        finally:
            setattr(module, "_VersionManager", real)  # noqa: B010
