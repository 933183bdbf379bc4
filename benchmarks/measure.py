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


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy since boot (Linux's /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and every child it waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherLoad:
    """How much of the machine processes other than this run used: a table measured while
    something else ran is slower and noisier, and says so."""

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        self._wall, self._busy, self._own = time.perf_counter(), _busy_seconds(), _own_seconds()

    def note(self) -> str:
        """Since the last mark: the share of all cores other processes kept busy."""
        busy, wall = _busy_seconds(), time.perf_counter() - self._wall
        if busy is None or self._busy is None or wall <= 0:
            return "Machine load: unknown (no /proc/stat)."
        others = max(busy - self._busy - (_own_seconds() - self._own), 0.0)
        share = others / (wall * (os.cpu_count() or 1))
        verdict = (
            "busy: the numbers above are slower and noisier than on a quiet machine"
            if share > 0.10
            else "quiet"
        )
        return f"Machine load: other processes used {share:.0%} of the cores meanwhile ({verdict})."
