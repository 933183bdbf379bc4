"""Table 2, epochs saved: the 8 trials of table 1 as `sweep run` ran them (EarlyStopping,
patience 3) against the same trials trained to max_epochs (`sweep run --calibrate 8`:
early stopping off, same seeds, same batches).

    python benchmarks/epochs_saved.py [--epochs 30] [--patience 3]

Prints, per trial, the epochs trained and the best score with and without early
stopping, the totals, and whether each early-stopped curve is exactly the start of the
full one (it should be: early stopping changes nothing before it stops).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fixed_trials import GRID, SPACE, Setup
from measure import PYTHON, measure, table


@dataclass(frozen=True)
class TrialFacts:
    number: int
    params: dict[str, Any]
    stop_epoch: int
    best_epoch: int
    best_score: float
    curve: dict[int, float]  # epoch (1-based) -> monitored value


def study_facts(folder: Path, study: str) -> list[TrialFacts]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = folder / study / "study.db"
    trials = optuna.load_study(study_name=study, storage=f"sqlite:///{db}").trials
    return [
        TrialFacts(
            number=t.number,
            params=t.params,
            stop_epoch=int(t.user_attrs["stop_epoch"]),
            best_epoch=int(t.user_attrs["best_epoch"]),
            best_score=float(t.user_attrs["best_score"]),
            curve=dict(t.intermediate_values),
        )
        for t in sorted(trials, key=lambda t: t.number)
        if t.state.name == "COMPLETE"
    ]


def run_full(setup: Setup, folder: Path, trials: int) -> tuple[float, list[TrialFacts]]:
    """The same trials to max_epochs: (wall seconds, facts)."""
    command = [PYTHON, "-m", "sweep", "run", str(SPACE), "--jobs", "1", *setup.args()]
    command += ["--calibrate", str(trials), "--study", "full", "--results", str(folder)]
    print(
        "  epochs saved: the same trials to max_epochs (--calibrate)", file=sys.stderr, flush=True
    )
    measured = measure([*command, "--plain"])
    return measured.wall, study_facts(folder, "full")


def run_early(setup: Setup, folder: Path) -> tuple[float, list[TrialFacts]]:
    """Table 2 on its own: one `sweep run` with early stopping (run_all reuses table 1's)."""
    command = [PYTHON, "-m", "sweep", "run", str(SPACE), "--jobs", "1", *setup.args()]
    command += ["--study", "early", "--results", str(folder), "--plain"]
    print("  epochs saved: the trials with early stopping", file=sys.stderr, flush=True)
    return measure(command).wall, study_facts(folder, "early")


def format_epochs_saved(
    setup: Setup,
    early: list[TrialFacts],
    full: list[TrialFacts],
    *,
    early_wall: float,
    full_wall: float,
) -> str:
    if [t.params for t in early] != [t.params for t in full]:
        raise RuntimeError("the two runs did not give trial n the same configuration")
    rows = []
    prefixes = 0
    for e, f in zip(early, full, strict=True):
        same = all(f.curve.get(k) == v for k, v in e.curve.items())
        prefixes += same
        config = ", ".join(f"{name}={e.params[name]}" for name in GRID)
        rows.append(
            [
                f"{e.number}: {config}",
                f"{e.stop_epoch}",
                f"{e.best_score:.4f} (epoch {e.best_epoch})",
                f"{f.stop_epoch}",
                f"{f.best_score:.4f} (epoch {f.best_epoch})",
                f"{f.best_score - e.best_score:+.4f}",
                "yes" if same else "no",
            ]
        )
    epochs_e = sum(t.stop_epoch for t in early)
    epochs_f = sum(t.stop_epoch for t in full)
    best_e = max(early, key=lambda t: t.best_score)
    best_f = max(full, key=lambda t: t.best_score)
    rows.append(
        [
            "**all trials**",
            f"**{epochs_e}**",
            f"best: trial {best_e.number}, {best_e.best_score:.4f}",
            f"**{epochs_f}**",
            f"best: trial {best_f.number}, {best_f.best_score:.4f}",
            f"{best_f.best_score - best_e.best_score:+.4f}",
            f"{prefixes}/{len(early)}",
        ]
    )
    header = ["trial: configuration", "epochs (ES)", "best val_accuracy (ES)"]
    header += [f"epochs (max {setup.epochs})", f"best (max {setup.epochs})", "gain"]
    header += ["ES curve = start of full curve"]
    head = (
        f"Table 2, epochs saved: the {len(early)} trials with EarlyStopping (patience "
        f"{setup.patience}) against the same trials trained to max_epochs={setup.epochs} "
        "(`--calibrate`, same seeds and batches); best val_accuracy at the best epoch"
    )
    foot = (
        f"Epochs trained: {epochs_e} with early stopping, {epochs_f} without: "
        f"**{100 * (1 - epochs_e / epochs_f):.0f}% saved** "
        f"(`sweep run` wall time {early_wall:.1f} s against {full_wall:.1f} s, "
        f"{early_wall / full_wall:.2f}x). Best score of the sweep: {best_e.best_score:.4f} "
        f"with early stopping, {best_f.best_score:.4f} trained to the end."
    )
    return head + "\n\n" + table(header, rows) + "\n\n" + foot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=3)
    args = parser.parse_args()
    setup = Setup(seed=args.seed, epochs=args.epochs, patience=args.patience)
    with tempfile.TemporaryDirectory() as tmp:
        early_wall, early = run_early(setup, Path(tmp))
        full_wall, full = run_full(setup, Path(tmp), len(early))
        print(format_epochs_saved(setup, early, full, early_wall=early_wall, full_wall=full_wall))


if __name__ == "__main__":
    main()
