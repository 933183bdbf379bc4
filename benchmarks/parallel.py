"""Table 3, parallel throughput: the same 8 trials (a grid over the digits space,
10 epochs each, no early stopping) with `sweep run --jobs 1`, `--jobs 2` and `--jobs 4`,
run side by side,
alternating, in one run. With --jobs N the parent is one of the N workers.

    python benchmarks/parallel.py [--repeats 2] [--quick]

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
    """One `sweep run` of the digits grid (10 epochs per trial, no early stopping)."""
    import optuna

    command = [PYTHON, "-m", "sweep", "run", str(SPACE), "--jobs", str(jobs)]
    command += ["--epochs", str(EPOCHS)]
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


JOBS = (1, 2, 4)
EPOCHS = 10  # per trial; the grid's patience is larger, so no trial stops early


def measure_parallel(repeats: int, folder: Path) -> dict[int, list[ParallelRun]]:
    runs: dict[int, list[ParallelRun]] = {j: [] for j in JOBS}
    for r in range(repeats):
        for jobs in JOBS if r % 2 == 0 else JOBS[::-1]:  # alternate the order
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
        one, two, four = ([float(getattr(r, field)) for r in runs[j]] for j in JOBS)
        rows.append(
            [
                what,
                *(f"{seconds(t)} (median {median(t):.1f})" for t in (one, two, four)),
                f"**{median(one) / median(two):.2f}x**",
                f"{median(two) / median(four):.2f}x",
            ]
        )
    trials = runs[1][0].trials
    head = (
        f"Table 3, parallel throughput: {trials} trials of {EPOCHS} epochs on the digits grid, "
        f"`sweep run --jobs 1`, `2` and `4` alternating, {plural(len(runs[1]), 'repetition')}; "
        "throughput = median jobs 1 time / median jobs 2 time (targets: 1.8x for the trial "
        "phase, 1.5x for the whole command; jobs 4 on 2 cores no slower than jobs 2: >= 1.0x)"
    )
    heads = ["seconds", "jobs 1", "jobs 2", "jobs 4", "jobs 2 vs 1", "jobs 4 vs 2"]
    return head + "\n\n" + table(heads, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one repetition")
    args = parser.parse_args()
    args.repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        print(format_parallel(measure_parallel(args.repeats, Path(tmp))))


if __name__ == "__main__":
    main()
