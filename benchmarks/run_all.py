"""Every benchmark table in one run: overhead against what users would use instead,
epochs saved by early stopping, parallel throughput, start-up, studies of 10,000 trials,
which search finds the best model soonest, and input kinds.

    pip install -e '.[bench]'          # KerasTuner's search needs tensorboard
    python benchmarks/run_all.py --workdir DIR   # about 2 hours on 2 cores, most of it table 6
    python benchmarks/run_all.py --quick      # every code path, for development

Every number printed is measured in this run, except table 6's searches when --workdir
already holds them (`benchmarks/search.py --workdir DIR/search` made them; they are
counted in epochs, not seconds, so they may run beside other work, and there two at a
time: ``--search-parallel``). Progress goes to stderr, the tables to stdout (Markdown, as
in the README's Performance section).
After each table a line says how much of the machine other processes used meanwhile
(from /proc/stat): a table measured on a busy machine says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from epochs_saved import format_epochs_saved, run_full, study_facts
from fixed_trials import Setup
from inputs import format_speed, measure_memory, measure_speed
from measure import OtherLoad
from overhead import format_overhead, per_trial_overhead, run_all_ways
from parallel import format_parallel, measure_parallel
from scale import format_scale, measure_scale
from search import format_search, measure_search
from startup import format_startup, measure_startup


def environment() -> str:
    packages = ["tensorflow", "keras", "keras-tuner", "optuna"]
    found = ", ".join(f"{p} {version(p)}" for p in packages)
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {found}"


def fresh(folder: Path) -> Path:
    """A table's run folder, emptied: a study left there by an earlier run would be
    found finished, and nothing measured (the scale studies and the searches are the
    caches, kept)."""
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="repetitions of tables 1 and 3")
    parser.add_argument("--quick", action="store_true", help="5 epochs, 1 repetition")
    parser.add_argument("--workdir", type=Path, help="keep every run's files here")
    parser.add_argument(
        "--search-parallel", type=int, default=1, help="table 6: searches at once (default 1)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    repeats = 1 if args.quick else args.repeats
    setup = Setup(epochs=5) if args.quick else Setup()
    spent: dict[str, float] = {}
    sys.stdout.write(
        f"`python benchmarks/run_all.py{' '.join(['', *sys.argv[1:]])}` on {environment()}\n\n"
    )
    load = OtherLoad()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.workdir or Path(tmp)

        clock = time.perf_counter()
        runs = run_all_ways(setup, repeats, fresh(folder / "overhead"))
        print(format_overhead(runs, setup) + "\n\n" + per_trial_overhead(runs) + "\n", flush=True)
        spent["table 1"] = time.perf_counter() - clock
        print(load.note() + "\n", flush=True)
        load.mark()

        clock = time.perf_counter()
        early_run = runs["b"][-1]
        assert early_run.study is not None
        early = study_facts(early_run.study.parent, early_run.study.name)
        full_wall, full = run_full(setup, fresh(folder / "full"), len(early))
        table2 = format_epochs_saved(
            setup, early, full, early_wall=early_run.measured.wall, full_wall=full_wall
        )
        print(table2 + "\n", flush=True)
        spent["table 2"] = time.perf_counter() - clock
        print(load.note() + "\n", flush=True)
        load.mark()

        clock = time.perf_counter()
        parallel = measure_parallel(repeats, fresh(folder / "parallel"))
        print(format_parallel(parallel) + "\n", flush=True)
        spent["table 3"] = time.perf_counter() - clock
        print(load.note() + "\n", flush=True)
        load.mark()

        clock = time.perf_counter()
        times, heavy = measure_startup(
            early_run.study.name, early_run.study.parent, 3 if args.quick else 5
        )
        first_epoch = {
            "`sweep run`: to the first epoch's start (table 1's (b) runs)": [
                r.phases["to first fit"] for r in runs["b"]
            ],
            "`sweep run`: to the end of the first epoch": [
                r.phases["first epoch end"] for r in runs["b"]
            ],
            "plain Keras loop (a): to the end of the first epoch": [
                r.phases["first epoch end"] for r in runs["a"]
            ],
        }
        print(format_startup(times, heavy, first_epoch) + "\n", flush=True)
        spent["table 4"] = time.perf_counter() - clock
        print(load.note() + "\n", flush=True)
        load.mark()

        clock = time.perf_counter()
        print(format_scale(measure_scale(folder / "scale", quick=args.quick)) + "\n", flush=True)
        spent["table 5"] = time.perf_counter() - clock
        print(load.note() + "\n", flush=True)
        load.mark()

        clock = time.perf_counter()
        print(format_speed(*measure_speed(args.quick)) + "\n", flush=True)
        print(measure_memory(args.quick) + "\n", flush=True)
        spent["table 7"] = time.perf_counter() - clock
        print(load.note() + "\n", flush=True)
        load.mark()

        clock = time.perf_counter()
        seeds, budget, most = (range(2), 60, 10) if args.quick else (range(5), 300, 30)
        searched = measure_search(
            seeds, budget, folder / "search", max_epochs=most, parallel=args.search_parallel
        )
        print(format_search(searched) + "\n", flush=True)
        spent["table 6"] = time.perf_counter() - clock
        print(load.note() + "\n", flush=True)
        load.mark()

    total = time.perf_counter() - started
    parts = ", ".join(f"{k} {v / 60:.1f}" for k, v in spent.items())
    print(f"Whole run: {total / 60:.1f} minutes ({parts}).")


if __name__ == "__main__":
    main()
