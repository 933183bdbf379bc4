"""Small pure parts: durations, URL redaction, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.core.atomic import write_text_atomic
from sweep.core.durations import parse_duration
from sweep.core.errors import ConfigError
from sweep.core.redaction import redact


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("30m", 1800),
        ("8h", 28800),
        ("1h30m", 5400),
        ("2d", 172800),
        ("45", 45),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "8x", "h", "", "-5", "0", "1h 30m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(text)


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://bob:s3cr@t@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_atomic_write_leaves_no_temp_and_keeps_old_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "t.csv"
    write_text_atomic(target, "a\n")
    assert target.read_text() == "a\n"
    from sweep.core.atomic import write_with

    def broken(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_with(target, broken)
    assert target.read_text() == "a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
