"""Running one command in its own process and measuring it: wall time from spawn to
exit, CPU time (user + system, children included), and the JSON it wrote.

Wall time is what a person waits for; CPU time moves much less when something else runs
on the machine, so both are reported.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


@dataclass
class Measured:
    wall: float  # seconds from spawn to exit
    cpu: float  # user + system seconds of the process and everything it waited for
    spawned: float  # time.time() at spawn, to place the child's own timestamps
    output: str  # stdout and stderr
    result: dict[str, Any] = field(default_factory=dict)  # the JSON the child wrote, if any


def measure(
    command: Sequence[str], *, result: Path | None = None, cwd: Path | None = None
) -> Measured:
    """Run ``command`` to the end; raise with its output if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    spawned = time.time()
    started = time.perf_counter()
    proc = subprocess.run(
        list(command), capture_output=True, text=True, cwd=cwd, env=env, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{output[-3000:]}")
    loaded = json.loads(result.read_text()) if result is not None else {}
    return Measured(wall=wall, cpu=cpu, spawned=spawned, output=output, result=loaded)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def seconds(values: Sequence[float], digits: int = 1) -> str:
    """Every run's seconds, for a table cell: '29.9, 27.6, 26.5'."""
    return ", ".join(f"{v:.{digits}f}" for v in values)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (it reads as a plain-text table too)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
