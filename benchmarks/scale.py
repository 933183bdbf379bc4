"""Studies of 100, 1,000 and 10,000 trials x 50 epochs: how long `sweep table`, `status`,
`compare` and `report` take, and what a running sweep's bookkeeping between two trials
costs at 10 and at 10,000 finished trials.

    python benchmarks/scale.py [--workdir DIR] [--quick]

The studies are synthetic but look exactly like real ones: made with sweep's own
``open_study``, every trial carrying the user attrs a real trial writes (the keys of
``sweep.core.record.TrialRecord`` and the settings ``sweep.trial`` records), its params with
the digits space's distributions, one intermediate value per epoch, written straight
into Optuna's SQLite tables in one transaction (as Optuna itself would write them).
They are cached under --workdir (default: a temporary folder); --quick does 100 and
1,000 trials. Each command runs in its own process, start-up included.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from measure import PYTHON, measure, median, plural, table

EPOCHS = 50
TARGETS = {"table": 1.5, "status": 1.5, "compare": 5.0, "report": 10.0}
GAP_TARGET = 1.5  # gap at 10,000 finished trials / gap at 10


def distributions() -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    return {
        "filters": IntDistribution(8, 32, step=8),
        "second_conv": CategoricalDistribution([False, True]),
        "dropout": FloatDistribution(0.0, 0.5, step=0.1),
        "units": CategoricalDistribution([32, 64, 128]),
        "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
    }


def trial_attrs(number: int, folder: Path, rng: random.Random) -> tuple[dict[str, Any], Any]:
    """A finished trial's user attrs as sweep records them, and its curve."""
    from sweep.core.record import TrialRecord

    curve = [
        min(0.99, 0.5 + 0.45 * (1 - math.exp(-e / 8)) + rng.gauss(0, 0.01)) for e in range(EPOCHS)
    ]
    best_epoch = max(range(EPOCHS), key=lambda e: curve[e]) + 1
    record = TrialRecord(
        number=number,
        state="complete",
        best_score=curve[best_epoch - 1],
        best_epoch=best_epoch,
        stop_epoch=EPOCHS,
        max_epochs=EPOCHS,
        stop_reason="max_epochs",
        early_stopped=False,
        patience=4,
        min_delta=0.0,
        duration_s=round(rng.uniform(5, 20), 3),
        worker=f"bench:{1000 + number % 4}",
        checkpoint=folder / "trials" / str(number) / "best.keras",
        monitor="val_accuracy",
        mode="max",
        keras_best_epoch=best_epoch,
    )
    attrs = {k: v for k, v in asdict(record).items() if k not in ("number", "state", "params")}
    attrs["checkpoint"] = str(record.checkpoint)
    attrs.update(
        baseline=None,
        start_from_epoch=0,
        batch_size=32,
        trial_dir=str(folder / "trials" / str(number)),
        data_seed=0,
        owner=f"bench-{1000 + number % 4}-0000",
        owner_host="bench",
        space_fingerprint={"source": "0" * 64, "path": "digits_cnn.py", "settings": {}},
    )
    return attrs, curve


def build(workdir: Path, n: int) -> tuple[Path, str]:
    """results folder and study name of an n-trial study (made once, then cached)."""
    from sweep.core.direction import Direction
    from sweep.execution.preparation import open_study
    from sweep.store.storage import default_storage_url

    results, name = workdir / f"scale{n}", f"s{n}"
    db = results / name / "study.db"
    if db.is_file():
        return results, name
    (results / name).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    study = open_study(
        name,
        default_storage_url(results, name),
        mode=Direction.MAX,
        monitor="val_accuracy",
        space="digits_cnn",
    )
    insert_trials(db, study._study_id, n, results / name)
    print(f"  built {n} trials in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return results, name


def insert_trials(db: Path, study_id: int, n: int, folder: Path) -> None:
    """Every trial in one transaction, row for row as Optuna's RDBStorage writes them."""
    from optuna.distributions import distribution_to_json

    rng = random.Random(n)
    dists = distributions()
    texts = {k: distribution_to_json(d) for k, d in dists.items()}
    t0 = datetime.datetime(2026, 1, 1)
    trials, values, params, attrs, steps = [], [], [], [], []
    for i in range(n):
        tid = i + 1
        start = t0 + datetime.timedelta(seconds=15 * i)
        end = start + datetime.timedelta(seconds=14)
        trials.append((tid, i, study_id, "COMPLETE", str(start), str(end)))
        recorded, curve = trial_attrs(i, folder, rng)
        values.append((tid, 0, recorded["best_score"], "FINITE"))
        chosen = {
            "filters": rng.choice([8, 16, 24, 32]),
            "second_conv": rng.choice([False, True]),
            "dropout": rng.choice([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]),
            "units": rng.choice([32, 64, 128]),
            "learning_rate": 10 ** rng.uniform(-4, -2),
        }
        for key, value in chosen.items():
            params.append((tid, key, dists[key].to_internal_repr(value), texts[key]))
        attrs.extend((tid, key, json.dumps(value)) for key, value in recorded.items())
        steps.extend((tid, e + 1, v, "FINITE") for e, v in enumerate(curve))
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, "
            "datetime_complete) VALUES (?, ?, ?, ?, ?, ?)",
            trials,
        )
        conn.executemany(
            "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?,?,?,?)",
            values,
        )
        conn.executemany(
            "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
            "VALUES (?, ?, ?, ?)",
            params,
        )
        conn.executemany(
            "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, ?, ?)",
            attrs,
        )
        conn.executemany(
            "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, "
            "intermediate_value_type) VALUES (?, ?, ?, ?)",
            steps,
        )


class SamplerClock:
    """CPU seconds spent inside the sampler's own methods (Optuna's work, not sweep's)."""

    METHODS = (
        "infer_relative_search_space",
        "sample_relative",
        "sample_independent",
        "before_trial",
        "after_trial",
    )

    def __init__(self, sampler: Any) -> None:
        self.spent = 0.0
        for name in self.METHODS:
            setattr(sampler, name, self._timed(getattr(sampler, name)))

    def _timed(self, method: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.spent += time.process_time() - started

        return timed


@dataclass(frozen=True)
class Gap:
    """Between one trial's end and the next one's start, CPU seconds (medians over the
    rounds after the first): all of it, and the sampler's own part of it."""

    total: float
    sampler: float
    first: float  # the first round: the session's start-up (Optuna's cache fills)

    @property
    def sweep(self) -> float:
        return self.total - self.sampler


def bookkeeping_gap(results: Path, name: str, *, sampler: str, rounds: int = 8) -> Gap:
    """What a running sweep's Session does between two trials, training left out (on a
    copy of the study): the orphan check, the counts, reseed and ask, the trial's facts,
    tell, the table rewrite, the trial read back and the best so far. CPU time, not wall
    time: it moves little when other work loads the machine."""
    import optuna

    from sweep.core.record import from_trial, write
    from sweep.execution.samplers import make_sampler, reseed_for_trial
    from sweep.store.ownership import Worker
    from sweep.store.reading import BestCache
    from sweep.store.results import TableCache, write_table
    from sweep.store.storage import default_storage_url, open_storage, reader_for
    from sweep.store.warm import warm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=name, storage=open_storage(default_storage_url(results, name))
    )
    study.sampler = make_sampler(sampler, seed=0)  # as `sweep run --sampler NAME --seed 0`
    warmed = time.process_time()
    warm(study)  # as the session does before its first ask
    warm_s = time.process_time() - warmed
    reader = reader_for(study)
    clock = SamplerClock(study.sampler)
    worker, cache, table_path = Worker(results / name), TableCache(), results / name / "trials.csv"
    write_table(reader, table_path, cache)  # the session's first table (its start-up)
    shown = BestCache()  # the live display's best so far
    reader.best(cache=shown)
    totals: list[float] = []
    own: list[float] = []
    dists = distributions()
    try:
        for _ in range(rounds):
            started, clock.spent = time.process_time(), 0.0
            with worker.claiming():
                worker.orphans(study)
                counts = reader.state_counts()
                reseed_for_trial(study.sampler, 0, counts.total())
                trial = study.ask()
                worker.mark(trial)
                write(trial, space_fingerprint={"source": "0" * 64})
            for key, dist in dists.items():
                trial._suggest(key, dist)
            study.tell(trial, 0.5)
            write_table(reader, table_path, cache)
            from_trial(study._storage.get_trial(trial._trial_id))
            reader.best(cache=shown)
            totals.append(time.process_time() - started)
            own.append(clock.spent)
    finally:
        worker.close()
    return Gap(total=median(totals[1:]), sampler=median(own[1:]), first=warm_s + totals[0])


def copy_study(results: Path, name: str, into: Path) -> Path:
    import shutil

    target = into / results.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(results, target)
    return target


@dataclass
class ScaleResults:
    sizes: list[int]
    commands: dict[int, dict[str, list[Any]]]  # trials -> command -> every run's Measured
    gaps: dict[tuple[int, str], Gap]


def time_commands(results: Path, name: str, repeats: int) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    base = [PYTHON, "-m", "sweep"]
    commands = {c: [*base, c, name, "--results", str(results)] for c in TARGETS}
    commands["table --format csv"] = [*commands["table"], "--format", "csv"]
    for _ in range(repeats):
        for what, args in commands.items():
            found.setdefault(what, []).append(measure(args))
    return found


def measure_scale(workdir: Path, *, quick: bool = False, repeats: int = 3) -> ScaleResults:
    sizes = [100, 1_000] if quick else [100, 1_000, 10_000]
    workdir.mkdir(parents=True, exist_ok=True)
    out = ScaleResults(sizes=sizes, commands={}, gaps={})
    with tempfile.TemporaryDirectory() as tmp:
        for n in [10, *sizes]:
            print(f"  scale: {n} trials", file=sys.stderr, flush=True)
            results, name = build(workdir, n)
            if n != 10:
                out.commands[n] = time_commands(results, name, 1 if quick else repeats)
            for sampler in ("random", "tpe"):
                scratch = copy_study(results, name, Path(tmp) / sampler)
                out.gaps[(n, sampler)] = bookkeeping_gap(scratch, name, sampler=sampler)
    return out


def _cell(runs: list[Any]) -> str:
    wall = statistics.median(r.wall for r in runs)
    cpu = statistics.median(r.cpu for r in runs)
    return f"{wall:.2f} ({cpu:.2f})"


def format_scale(found: ScaleResults) -> str:
    largest = found.sizes[-1]
    heads = ["trials", *found.commands[largest]]
    rows = [[f"{n:,}", *(_cell(r) for r in found.commands[n].values())] for n in found.sizes]
    walls = {c: statistics.median(r.wall for r in found.commands[largest][c]) for c in TARGETS}
    met = [f"{c} {'met' if walls[c] <= t else 'MISSED'}" for c, t in TARGETS.items()]
    head = (
        f"Table 5a, seconds per command, wall (CPU), median of "
        f"{plural(len(found.commands[largest]['table']), 'run')}, each in its own process, on "
        f"synthetic SQLite studies of {EPOCHS} epochs a trial (targets at 10,000: "
        + ", ".join(f"{k} <= {v:g} s" for k, v in TARGETS.items())
        + f"; at {largest:,}: "
        + ", ".join(met)
        + ")"
    )
    gap_rows = []
    for sampler in ("random", "tpe"):
        base = found.gaps[(10, sampler)]
        for n in [10, *found.sizes]:
            g = found.gaps[(n, sampler)]
            gap_rows.append(
                [
                    sampler,
                    f"{n:,}",
                    f"{1000 * g.total:.0f}",
                    f"{g.total / base.total:.2f}x",
                    f"{1000 * g.sweep:.0f}",
                    f"**{g.sweep / base.sweep:.2f}x**",
                    f"{1000 * g.sampler:.0f}",
                    f"{g.first:.2f}",
                ]
            )
    gap_heads = [
        "sampler",
        "finished trials",
        "gap ms (CPU)",
        "vs 10",
        "sweep's part ms",
        "vs 10",
        "the sampler's own ms",
        "first round s (start-up)",
    ]
    gap_head = (
        "Table 5b, between two trials of a running sweep (its bookkeeping, training left "
        f"out; CPU ms, median of rounds 2..8; target: at the largest study <= {GAP_TARGET}x "
        "the gap at 10 trials)"
    )
    return (
        head + "\n\n" + table(heads, rows) + "\n\n" + gap_head + "\n\n" + table(gap_heads, gap_rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="cache the synthetic studies here")
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 trials only")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        print(format_scale(measure_scale(workdir, quick=args.quick, repeats=args.repeats)))


if __name__ == "__main__":
    main()
