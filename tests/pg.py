"""A real PostgreSQL server for the tests: Debian's postgresql package (installed by
.ci/run), a temporary data directory, loopback only, started and stopped by the test
session."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PASSWORD = "s3cret-pw"  # trust auth ignores it; it is there to prove it never leaks


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str | None]:
    """Yield a base URL ``postgresql://sweep:PW@127.0.0.1:PORT``, or None if not installed."""
    bindir = _bindir()
    if bindir is None:
        yield None
        return
    data = tempfile.mkdtemp(prefix="sweep-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use the package's user
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "sweep")
    opts = f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c max_connections=200"
    run(f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-w", "-l", f"{data}/log", "start")
    try:
        yield f"postgresql://sweep:{PASSWORD}@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(data, ignore_errors=True)


def new_database(base: str) -> str:
    """A fresh, empty database on the server; its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"
