"""Parallel throughput: the same 8 trials (a grid over the digits space, fixed epochs)
with `sweep run --jobs 1` and `--jobs 2`, run side by side, alternating, in one run.

    python benchmarks/parallel.py [--repeats 2]

Prints the wall time of each command and the throughput ratio jobs 2 / jobs 1, both
for the whole command (what a person waits for: start-up included) and for the
trial phase alone (first trial start to last trial end, from the study).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

HERE = Path(__file__).resolve().parent
SPACE = HERE / "digits_grid.py"


def one_run(jobs: int, folder: Path, name: str) -> tuple[float, float, int]:
    """(command seconds, trial-phase seconds, trials) of one `sweep run`."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep",
            "run",
            str(SPACE),
            "--jobs",
            str(jobs),
            "--study",
            name,
            "--results",
            str(folder),
            "--plain",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    command = time.perf_counter() - started
    db = folder / name / "study.db"
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials
    assert all(t.state.name == "COMPLETE" for t in trials), "a trial failed"
    first = min(t.datetime_start for t in trials if t.datetime_start)
    last = max(t.datetime_complete for t in trials if t.datetime_complete)
    return command, (last - first).total_seconds(), len(trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    times: dict[int, list[tuple[float, float, int]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for jobs in (1, 2) if r % 2 == 0 else (2, 1):  # alternate the order
                times[jobs].append(one_run(jobs, Path(tmp), f"j{jobs}r{r}"))
    print(f"{'jobs':>4} {'trials':>6} {'command s':>10} {'trial phase s':>14}")
    for jobs, runs in times.items():
        for command, phase, n in runs:
            print(f"{jobs:>4} {n:>6} {command:>10.1f} {phase:>14.1f}")
    cmd1 = statistics.median(c for c, _, _ in times[1])
    cmd2 = statistics.median(c for c, _, _ in times[2])
    ph1 = statistics.median(p for _, p, _ in times[1])
    ph2 = statistics.median(p for _, p, _ in times[2])
    print(f"throughput jobs 2 / jobs 1, whole command: {cmd1 / cmd2:.2f}x")
    print(f"throughput jobs 2 / jobs 1, trial phase:   {ph1 / ph2:.2f}x  (target >= 1.8x)")


if __name__ == "__main__":
    main()
