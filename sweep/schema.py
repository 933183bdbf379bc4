"""Whether an existing RDB storage has the table schema this Optuna writes, quickly.

Optuna's own check (``RDBStorage(...)`` without ``skip_compatibility_check``) loads
alembic's migration scripts, about 0.2 s of a command that only reads. The read
commands (table, status, compare, report, ...) open an existing storage without it and
check here instead: the revision stored in ``alembic_version`` against the newest
revision among Optuna's migration files. Only when they differ (or anything here is
unexpected) is Optuna's own check run, with its own message on what to upgrade.

No TensorFlow here.
"""

from __future__ import annotations

import re
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
