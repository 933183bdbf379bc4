"""Commands that don't train must not import TensorFlow (it costs seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import contextlib, io, json, sys
from sweep.cli.main import main
code = None
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help exits through argparse
        code = exc.code
heavy = sorted(
    m for m in ("tensorflow", "keras", "keras_tuner", "mlflow", "tensorboard") if m in sys.modules
)
print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue()}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["run", "--help"],
        ["table", "tiny"],
        ["table", "tiny", "--format", "json"],
        ["status", "tiny"],
        ["compare", "tiny"],
        ["report", "tiny"],
    ],
)
def test_command_does_not_import_tensorflow(finished_sweep: Path, argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=finished_sweep,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    assert result["out"]  # it did its work
    assert result["heavy"] == []


def test_the_probe_would_see_tensorflow(finished_sweep: Path) -> None:
    """The check above can fail: importing the trial module does pull TensorFlow in."""
    code = PROBE.replace(
        "from sweep.cli.main import main",
        "import sweep.train.trial\nfrom sweep.cli.main import main",
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "status", "tiny"],
        cwd=finished_sweep,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "tensorflow" in json.loads(proc.stdout.strip().splitlines()[-1])["heavy"]
