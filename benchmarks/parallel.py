"""Table 3, parallel throughput: the same 8 trials (a grid over the digits space, fixed
epochs) with `sweep run --jobs 1` and `--jobs 2`, run side by side, alternating, in one run.

    python benchmarks/parallel.py [--repeats 2]

Prints the wall time of each command and the throughput ratio jobs 2 / jobs 1, both
for the whole command (what a person waits for: start-up included) and for the
trial phase alone (first trial start to last trial end, from the study).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fixed_trials import SPACE
from measure import PYTHON, measure, median, plural, seconds, table


@dataclass(frozen=True)
class ParallelRun:
    jobs: int
    command_s: float  # the whole `sweep run`, start-up included
    phase_s: float  # first trial start to last trial end, from the study
    trials: int


def one_run(jobs: int, folder: Path, name: str) -> ParallelRun:
    """One `sweep run` of the digits grid (8 epochs per trial, no early stopping)."""
    import optuna

    command = [PYTHON, "-m", "sweep", "run", str(SPACE), "--jobs", str(jobs)]
    command += ["--study", name, "--results", str(folder), "--plain"]
    measured = measure(command)
    db = folder / name / "study.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials
    if not all(t.state.name == "COMPLETE" for t in trials):
        raise RuntimeError(f"jobs {jobs}: a trial did not complete:\n{measured.output[-2000:]}")
    first = min(t.datetime_start for t in trials if t.datetime_start)
    last = max(t.datetime_complete for t in trials if t.datetime_complete)
    return ParallelRun(jobs, measured.wall, (last - first).total_seconds(), len(trials))


def measure_parallel(repeats: int, folder: Path) -> dict[int, list[ParallelRun]]:
    runs: dict[int, list[ParallelRun]] = {1: [], 2: []}
    for r in range(repeats):
        for jobs in (1, 2) if r % 2 == 0 else (2, 1):  # alternate the order
            print(
                f"  parallel: repetition {r + 1}/{repeats}: --jobs {jobs}",
                file=sys.stderr,
                flush=True,
            )
            runs[jobs].append(one_run(jobs, folder, f"j{jobs}r{r}"))
    return runs


def format_parallel(runs: dict[int, list[ParallelRun]]) -> str:
    rows = []
    for what, field in (
        ("trial phase (first trial start to last trial end)", "phase_s"),
        ("whole command (start-up included)", "command_s"),
    ):
        one = [float(getattr(r, field)) for r in runs[1]]
        two = [float(getattr(r, field)) for r in runs[2]]
        rows.append(
            [
                what,
                f"{seconds(one)} (median {median(one):.1f})",
                f"{seconds(two)} (median {median(two):.1f})",
                f"**{median(one) / median(two):.2f}x**",
            ]
        )
    trials = runs[1][0].trials
    head = (
        f"Table 3, parallel throughput: {trials} trials of 8 epochs on the digits grid, "
        f"`sweep run --jobs 1` and `--jobs 2` alternating, {plural(len(runs[1]), 'repetition')}; "
        "throughput = median jobs 1 time / median jobs 2 time (target 1.8x for the trial phase)"
    )
    return head + "\n\n" + table(["seconds", "jobs 1", "jobs 2", "throughput"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(format_parallel(measure_parallel(args.repeats, Path(tmp))))


if __name__ == "__main__":
    main()
