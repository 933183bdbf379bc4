"""Table 6, which search finds the best model soonest: the digits CNN space
(search_spaces/digits_cnn.py, its own settings: val_accuracy, patience 4, batch 32,
validation_split 0.2), each way given the same budget of epochs trained, several seeds.

    python benchmarks/search.py [--seeds 5] [--budget 300] [--workdir DIR] [--quick]

The ways: sweep's random sampler and TPE with early stopping, TPE with the median pruner
and with the Hyperband pruner (each `sweep.run(..., jobs=1, seed=seed)` in a process of
its own, one study per search), and KerasTuner's ``Hyperband`` tuner (max_epochs,
factor 3, seed) on the same ``build_model``, data and validation split, with the
``EarlyStopping(patience=4)`` its users pass it, run for as many Hyperband iterations as
the budget takes.

Every epoch any model trained counts against the budget: a pruned trial's epochs, and
each KerasTuner round's epochs of a continued model. A sweep search adds trials (in
order, one at a time) until its epochs reach the budget; the trials' per-epoch
val_accuracy, in trial order, is cut at the budget. The best score after k epochs is the
best val_accuracy of any epoch trained so far: the model the search has saved by then.
``--workdir`` keeps each search's result (JSON), and a rerun skips finished searches.
Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from measure import HERE, PYTHON, measure, median, plural, table
from search_ways import BY_KEY, WAYS, Way, run_kerastuner, run_sweep_way

CLOSE = 0.005  # "within 0.005 of the best score any way found"


@dataclass(frozen=True)
class Setup:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    budget: int = 300  # epochs trained per search
    max_epochs: int = 30
    threads: int = 1  # TensorFlow's intra- and inter-op threads in each search

    @property
    def marks(self) -> tuple[int, int, int]:
        """Where the table reads the best score: a third, two thirds and all the budget."""
        return (self.budget // 3, 2 * self.budget // 3, self.budget)


@dataclass
class Searched:
    """One search: every trial's (KerasTuner: every fit's) val_accuracy per epoch, in the
    order they trained; a search may run past the budget, the table cuts it there."""

    way: str
    seed: int
    budget: int
    max_epochs: int
    curves: list[list[float]]
    wall: float = 0.0  # seconds, the search's process from spawn to exit

    @property
    def epochs(self) -> list[float]:
        """The val_accuracy of every epoch trained, in order, up to the budget."""
        return [v for curve in self.curves for v in curve][: self.budget]

    @property
    def trials(self) -> int:
        """Trials (fits) that started within the budget."""
        started, used = 0, 0
        for curve in self.curves:
            if used >= self.budget:
                break
            started, used = started + 1, used + len(curve)
        return started

    def best_after(self, k: int) -> float:
        finite = [v for v in self.epochs[:k] if math.isfinite(v)]
        return max(finite) if finite else math.nan

    def epochs_to(self, target: float) -> int | None:
        """Epochs trained until one scored at least ``target``; None if none within budget."""
        return next((i + 1 for i, v in enumerate(self.epochs) if v >= target), None)


Results = dict[str, list[Searched]]  # way key -> one search per seed


# ---- the parent: one process per search, cached in the workdir ----


def search_once(way: Way, seed: int, setup: Setup, folder: Path) -> Searched:
    """One search in a fresh process and a fresh folder, or its cached result."""
    cached = folder / f"{way.key}-seed{seed}.json"
    if cached.exists():
        found = Searched(**json.loads(cached.read_text()))
        if (found.budget, found.max_epochs) == (setup.budget, setup.max_epochs):
            print(f"  search: {way.key} seed {seed}: cached", file=sys.stderr, flush=True)
            return found
    work = folder / f"{way.key}-seed{seed}"
    shutil.rmtree(work, ignore_errors=True)  # an unfinished search starts afresh
    work.mkdir(parents=True)
    out = work / "result.json"
    command = [PYTHON, str(Path(__file__).resolve()), "--one", way.key, "--seed", str(seed)]
    command += ["--budget", str(setup.budget), "--max-epochs", str(setup.max_epochs)]
    command += ["--threads", str(setup.threads), "--workdir", str(work), "--out", str(out)]
    print(f"  search: {way.key} seed {seed} ...", file=sys.stderr, flush=True)
    measured = measure(command, result=out, cwd=HERE)
    found = Searched(**{**measured.result, "wall": measured.wall})
    print(
        f"  search: {way.key} seed {seed}: {measured.wall:.0f} s, {len(found.curves)} trials, "
        f"best {found.best_after(setup.budget):.4f}",
        file=sys.stderr,
        flush=True,
    )
    cached.write_text(json.dumps(asdict(found)))
    return found


def measure_search(
    seeds: Sequence[int],
    budget: int,
    folder: Path,
    *,
    max_epochs: int = 30,
    threads: int = 1,
    parallel: int = 1,
) -> Results:
    """Every way on every seed, ``parallel`` searches at a time (quality is counted in
    epochs, so searches running side by side change no score, only the wall times)."""
    from concurrent.futures import ThreadPoolExecutor

    setup = Setup(seeds=tuple(seeds), budget=budget, max_epochs=max_epochs, threads=threads)
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {
            way.key: [pool.submit(search_once, way, s, setup, folder) for s in setup.seeds]
            for way in WAYS
        }
        return {key: [f.result() for f in found] for key, found in futures.items()}


# ---- the table ----


def reached(searches: list[Searched], target: float, budget: int) -> str:
    """The median over seeds of the epochs to ``target`` (a seed that never got there
    counts as more than the budget), and how many seeds got there."""
    found = [s.epochs_to(target) for s in searches]
    there = sum(f is not None for f in found)
    middle = median([math.inf if f is None else f for f in found])
    shown = f"not within {budget}" if math.isinf(middle) else f"{middle:.0f}"
    return f"{shown} ({there}/{len(found)} seeds)"


def format_search(results: Results) -> str:
    any_search = next(s for searches in results.values() for s in searches)
    budget, max_epochs = any_search.budget, any_search.max_epochs
    setup = Setup(budget=budget, max_epochs=max_epochs)
    marks = setup.marks
    every = [(s.best_after(budget), s) for searches in results.values() for s in searches]
    best, where = max(every, key=lambda pair: pair[0])
    target = best - CLOSE
    rows = []
    for key, searches in results.items():
        rows.append(
            [
                BY_KEY[key].label,
                *(f"{median([s.best_after(k) for s in searches]):.4f}" for k in marks),
                reached(searches, target, budget),
                f"{median([s.trials for s in searches]):.0f}",
                ", ".join(f"{s.best_after(budget):.4f}" for s in searches),
                f"{median([s.wall for s in searches]):.0f}",
            ]
        )
    seeds = len(next(iter(results.values())))
    header = [
        "way",
        *(f"best after {k} epochs" for k in marks),
        f"epochs to >= {target:.4f}",
        "trials run",
        f"best after {budget}, each seed",
        "search wall s",
    ]
    head = (
        f"Table 6, which search finds the best model soonest: digits CNN (max_epochs="
        f"{max_epochs}), {budget} epochs trained per search, {plural(seeds, 'seed')}; best "
        "val_accuracy of any epoch trained so far, median over seeds"
    )
    foot = (
        f"Best score found overall: {best:.4f} ({where.way}, seed {where.seed}); "
        f"'epochs to >= {target:.4f}' is the median over seeds of the epochs trained until "
        f"a model came within {CLOSE} of it (a seed that did not counts as more than "
        f"{budget}). Trials run: median over seeds of the trials (KerasTuner: fits, a "
        f"continued bracket's round is one) started within the {budget} epochs. Search "
        "wall time: median, one search's process from spawn to exit, on this machine."
    )
    return head + "\n\n" + table(header, rows) + "\n\n" + foot


def run_one(args: argparse.Namespace) -> None:
    way = BY_KEY[args.one]
    where = (args.seed, args.budget, args.max_epochs, args.workdir, args.threads)
    curves = run_kerastuner(*where) if way.kerastuner else run_sweep_way(way, *where)
    found = Searched(way.key, args.seed, args.budget, args.max_epochs, curves)
    args.out.write_text(json.dumps(asdict(found)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--budget", type=int, default=300, help="epochs trained per search")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per search")
    parser.add_argument("--parallel", type=int, default=1, help="searches at once (default 1)")
    parser.add_argument("--quick", action="store_true", help="2 seeds, budget 60, max epochs 10")
    parser.add_argument("--workdir", type=Path, help="keep every search (and its result) here")
    parser.add_argument("--one", choices=sorted(BY_KEY), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        run_one(args)
        return
    if args.quick:
        args.seeds, args.budget, args.max_epochs = 2, 60, 10
    with tempfile.TemporaryDirectory() as tmp:
        results = measure_search(
            range(args.seeds),
            args.budget,
            args.workdir or Path(tmp),
            max_epochs=args.max_epochs,
            threads=args.threads,
            parallel=args.parallel,
        )
        print(format_search(results))


if __name__ == "__main__":
    main()
