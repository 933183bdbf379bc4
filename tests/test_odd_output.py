"""Output that meets odd readers and odd values: a closed pipe (``sweep table s | head -1``),
a study name a command line would read as a flag, a cell holding a line break, an endless
timeout handed to the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write_space

from sweep.core.errors import ConfigError
from sweep.store.results import to_markdown
from sweep.store.storage import check_study_name


@pytest.mark.parametrize(
    "command",
    [
        "compare tiny",
        "table tiny",
        "table tiny --format markdown",
        "status tiny",
        "compare tiny 2>&1",
    ],
)
def test_a_command_into_a_closed_pipe_exits_quietly(finished_sweep: Path, command: str) -> None:
    """As a user types it: ``sweep compare tiny | head -1`` in a shell. The reader takes one
    line and goes away; the command prints no traceback, fails nothing (pipefail), and the
    files it writes are still written."""
    stopping = finished_sweep / "results" / "tiny" / "stopping.csv"
    before = stopping.stat().st_mtime_ns if stopping.exists() else None
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m sweep {command} | head -1"],
        cwd=finished_sweep,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.stdout.count("\n") == 1  # head read its line
    assert proc.stderr == "", proc.stderr  # no traceback, no BrokenPipeError
    assert proc.returncode == 0
    if command.startswith("compare"):  # it still wrote its table
        assert stopping.stat().st_mtime_ns != before


@pytest.mark.parametrize("name", ["-x", "--help", "-"])
def test_a_study_name_may_not_start_with_a_dash(name: str) -> None:
    with pytest.raises(ConfigError, match="not starting with '-'") as info:
        check_study_name(name)
    assert "which starts with '-'" in str(info.value)
    assert "\n" not in str(info.value)
    assert check_study_name("x-") == "x-"  # a dash inside or at the end is fine


def test_run_refuses_study_dash_x_before_writing_anything(tmp_path: Path) -> None:
    space = write_space(tmp_path)
    code, _, err = run_cli("run", str(space), "--study=-x", "--results", "res", cwd=tmp_path)
    assert code == 2
    assert err.startswith("sweep: error: study name: expected a name of letters")
    assert "use e.g. x" in err and err.count("\n") == 1
    assert not (tmp_path / "res").exists()


def test_markdown_keeps_each_row_on_one_line() -> None:
    rows = [
        {"trial": 0, "state": "failed", "error": "ValueError: first line\nsecond | line"},
        {"trial": 1, "state": "complete", "error": None},
    ]
    text = to_markdown(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)  # header, rule, one line per row
    assert "first line<br>second \\| line" in lines[2]
    assert all(line.startswith("| ") or line.startswith("|---") for line in lines)


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), -1.0, 0])
def test_the_api_refuses_an_endless_or_empty_timeout(tmp_path: Path, timeout: float) -> None:
    import sweep

    space = write_space(tmp_path)
    with pytest.raises(ConfigError, match="--timeout: expected") as info:
        sweep.run(space, timeout=timeout, results=tmp_path / "res")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "res").exists()
