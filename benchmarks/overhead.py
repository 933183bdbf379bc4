"""Table 1, overhead: the same 8 trials (fixed_trials.py) run five ways, each in a fresh
process, alternating the order every repetition:

(a)  a plain Keras loop: NumPy arrays, shuffle=True, EarlyStopping + ModelCheckpoint
(a') the same loop fed by sweep's epoch-keyed tf.data pipeline (sweep.train.feed)
(b)  `sweep run --jobs 1` (through timed_sweep.py: the real command, with stopwatches)
(c)  KerasTuner GridSearch with the same EarlyStopping
(d)  an Optuna study on SQLite whose objective fits with the same callbacks

    python benchmarks/overhead.py [--repeats 2] [--epochs 30] [--patience 3]

Prints each way's wall and CPU time relative to (a), how each run's time divides into
start-up, training, the work at each epoch's end and the work between trials, and the
harness' per-trial overhead against (a') with its parts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixed_trials import SPACE, Setup, config_key, schedule
from measure import HERE, PYTHON, Measured, measure, median, plural, seconds, table


@dataclass(frozen=True)
class Way:
    key: str
    label: str
    name: str  # ways.py's name, or "sweep"


WAYS = [
    Way("a", "plain Keras loop", "plain"),
    Way("a'", "plain Keras loop, sweep's tf.data feed", "plain-feed"),
    Way("b", "sweep run --jobs 1", "sweep"),
    Way("c", "KerasTuner GridSearch", "kerastuner"),
    Way("d", "Optuna study on SQLite", "optuna"),
]


@dataclass
class Run:
    way: Way
    measured: Measured
    phases: dict[str, float]  # seconds from spawn: see phases()
    curves: dict[tuple[Any, ...], list[float | None]]  # each configuration's monitored curve
    epoch_compute: list[float]  # per epoch after the first of each fit: train + validation
    epoch_end: list[float]  # per epoch: the callbacks' epoch-end work
    study: Path | None = None  # (b): its results folder
    timers: dict[str, list[float]] = field(default_factory=dict)


def epoch_end_work(fit: dict[str, Any]) -> list[float]:
    """Per epoch: from Keras having computed it to the next epoch's start (or the end of
    training): every callback's epoch-end work, wherever in the list it runs (KerasTuner
    appends its own after the user's)."""
    epochs = fit["epochs"]
    ends = [e[0] for e in epochs[1:]] + [fit["train_end"]]
    return [end - e[1] for e, end in zip(epochs, ends, strict=True)]


def phases(m: Measured) -> dict[str, float]:
    """Where a run's wall time went, from its fits' timestamps."""
    fits = m.result["fits"]
    first_begin = fits[0]["train_begin"] - m.spawned
    in_fit = sum(f["train_end"] - f["train_begin"] for f in fits)
    end_work = sum(sum(epoch_end_work(f)) for f in fits)
    between = sum(fits[k + 1]["train_begin"] - fits[k]["train_end"] for k in range(len(fits) - 1))
    return {
        "to first fit": first_begin,
        "training": in_fit - end_work,
        "epoch-end work": end_work,
        "between fits": between,
        "after last fit": m.wall - (fits[-1]["train_end"] - m.spawned),
        "first epoch end": fits[0]["epochs"][0][2] - m.spawned,
        "epochs": sum(len(f["epochs"]) for f in fits),
    }


def run_once(way: Way, setup: Setup, order_file: Path, folder: Path, tag: str) -> Run:
    out = folder / f"{tag}.json"
    work = folder / tag
    if way.name == "sweep":
        command = [PYTHON, str(HERE / "timed_sweep.py"), "--out", str(out), "--", "run"]
        command += [str(SPACE), "--jobs", "1", *setup.args(), "--study", tag]
        command += ["--results", str(work), "--plain"]
    else:
        command = [PYTHON, str(HERE / "ways.py"), way.name, "--schedule", str(order_file)]
        command += ["--workdir", str(work), "--out", str(out), *setup.args()]
    m = measure(command, result=out)
    expected = [config_key(c) for _, c in json.loads(order_file.read_text())]
    fits = m.result["fits"]
    if way.name == "sweep":
        configs = sweep_configs(work / tag / "study.db", tag)
        if configs != expected:
            raise RuntimeError(f"sweep ran the grid in another order than predicted: {configs}")
    elif way.name == "kerastuner":
        configs = kerastuner_configs(work / "kerastuner")
    else:
        configs = expected
    if len(fits) != len(expected) or sorted(configs) != sorted(expected):
        raise RuntimeError(f"{way.label}: expected the {len(expected)} grid trials, got {configs}")
    return Run(
        way=way,
        measured=m,
        phases=phases(m),
        curves={c: f["values"] for c, f in zip(configs, fits, strict=True)},
        epoch_compute=[e[1] - e[0] for f in fits for e in f["epochs"][1:]],
        epoch_end=[t for f in fits for t in epoch_end_work(f)],
        study=work / tag if way.name == "sweep" else None,
        timers=m.result.get("timers", {}),
    )


def sweep_configs(db: Path, study: str) -> list[tuple[Any, ...]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study, storage=f"sqlite:///{db}").trials
    if any(t.state.name != "COMPLETE" for t in trials):
        raise RuntimeError(f"sweep: a trial did not complete: {[t.state.name for t in trials]}")
    return [config_key(t.params) for t in sorted(trials, key=lambda t: t.number)]


def kerastuner_configs(project: Path) -> list[tuple[Any, ...]]:
    """The configurations KerasTuner's trials ran, in the order they ran."""
    found = []
    for path in sorted(project.glob("trial_*/trial.json")):
        trial = json.loads(path.read_text())
        found.append(config_key(trial["hyperparameters"]["values"]))
    return found


def run_all_ways(
    setup: Setup, repeats: int, folder: Path, only: list[str] | None = None
) -> dict[str, list[Run]]:
    ways = [w for w in WAYS if only is None or w.key in only]
    if (
        any(w.name == "kerastuner" for w in ways)
        and importlib.util.find_spec("tensorboard") is None
    ):
        raise SystemExit(
            "KerasTuner's search imports tensorboard, which is not installed; "
            "pip install -e '.[bench]' (sweep itself does not need it)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    order_file = folder / "schedule.json"
    order_file.write_text(json.dumps(schedule(setup.seed)))
    runs: dict[str, list[Run]] = {w.key: [] for w in ways}
    for r in range(repeats):
        for way in ways if r % 2 == 0 else ways[::-1]:  # alternate the order
            tag = f"{way.name}-r{r}"
            print(
                f"  overhead: repetition {r + 1}/{repeats}: {way.label}",
                file=sys.stderr,
                flush=True,
            )
            runs[way.key].append(run_once(way, setup, order_file, folder, tag))
    return runs


def same_curves(a: Run, b: Run) -> int:
    """Configurations whose monitored value is identical at every epoch in both runs."""
    return sum(1 for c, curve in a.curves.items() if b.curves.get(c) == curve)


def format_overhead(runs: dict[str, list[Run]], setup: Setup) -> str:
    base = runs["a"]
    wall_a = median([r.measured.wall for r in base])
    cpu_a = median([r.measured.cpu for r in base])
    rows = []
    for way in (w for w in WAYS if w.key in runs):
        rs = runs[way.key]
        wall = median([r.measured.wall for r in rs])
        cpu = median([r.measured.cpu for r in rs])
        twin, twin_name = (runs["a'"][0], "(a')") if way.key == "b" else (base[0], "(a)")
        same = (
            "-" if way.key == "a" else f"{same_curves(twin, rs[0])}/{len(twin.curves)} {twin_name}"
        )
        rows.append(
            [
                f"({way.key}) {way.label}",
                seconds([r.measured.wall for r in rs]),
                f"{wall:.1f}",
                f"**{wall / wall_a:.2f}**",
                f"{cpu:.1f}",
                f"{cpu / cpu_a:.2f}",
                f"{median([r.phases['epochs'] for r in rs]):.0f}",
                f"{1000 * median([median(r.epoch_compute) for r in rs]):.0f}",
                same,
            ]
        )
    n = len(base)
    head = (
        f"Table 1, overhead: {len(base[0].curves)} trials of the digits grid (seed {setup.seed}, "
        f"EarlyStopping patience {setup.patience}, max {setup.epochs} epochs), each way in "
        f"its own process, {plural(n, 'repetition')} alternating; medians; "
        "ratios to (a); ms/epoch: training + validation, first epoch of each trial excepted; "
        "same curves: trials whose val_accuracy is identical at every epoch"
    )
    header = ["way", "wall s (each run)", "wall s", "wall / (a)", "CPU s", "CPU / (a)"]
    header += ["epochs", "ms/epoch", "same curves as"]
    return head + "\n\n" + table(header, rows) + "\n\n" + format_phases(runs)


def format_phases(runs: dict[str, list[Run]]) -> str:
    names = ["to first fit", "training", "epoch-end work", "between fits", "after last fit"]
    rows = []
    for way in (w for w in WAYS if w.key in runs):
        rs = runs[way.key]
        rows.append(
            [f"({way.key})"]
            + [f"{median([r.phases[k] for r in rs]):.2f}" for k in names]
            + [f"{1000 * median([median(r.epoch_end) for r in rs]):.1f}"]
        )
    header = ["way", *(f"{k} s" for k in names), "epoch-end ms (median epoch)"]
    return "Where the wall time went (medians, seconds):\n\n" + table(header, rows)


# (b)'s stopwatches (timed_sweep.py) shown per trial: (label, what, does (a') do it too).
PARTS = [
    ("start-up: probe", "once: the probe (build_model, one training step)", "no"),
    ("start-up: create study", "once: create the study (SQLAlchemy, tables)", "no"),
    ("trial: build_model", "per trial: build_model (and the probe's)", "yes"),
    ("trial: data feed set-up", "per trial: the tf.data feed", "yes"),
    ("storage: next trial (claim, ask)", "per trial: claim lock, ask the sampler", "no"),
    ("storage: user attrs", "per trial: trial facts as user attrs", "no"),
    ("storage: tell", "per trial: tell", "no"),
    ("table (per trial)", "per trial: rewrite trials.csv", "no"),
    ("storage: report (per epoch)", "per epoch: report the value to the storage", "no"),
    ("epoch end: resume point: variables .npz", "per epoch: resume point, variables", "no"),
    ("epoch end: resume point: state.json", "per epoch: resume point, state.json", "no"),
    ("epoch end: history.csv", "per epoch: history.csv", "no"),
    ("epoch end: resume point: best checkpoint .keras", "improving epochs: best.keras", "yes"),
]


def per_trial_overhead(runs: dict[str, list[Run]]) -> str:
    """(b) against (a'): the same models on the same batches, so what differs is sweep."""
    b, a2 = runs["b"], runs["a'"]
    trials = len(b[0].curves)

    def per_trial(get: Any) -> str:
        return (
            f"{1000 * (median([get(r) for r in b]) - median([get(r) for r in a2])) / trials:+.0f}"
        )

    names = ["to first fit", "training", "epoch-end work", "between fits", "after last fit"]
    diff = table(
        ["all of it", *names],
        [
            [per_trial(lambda r: r.measured.wall)]
            + [per_trial(lambda r, n=n: r.phases[n]) for n in names]
        ],
    )
    rows = []
    own = 0.0
    for label, what, shared in PARTS:
        calls = median([r.timers.get(label, [0, 0.0])[0] for r in b])
        total = median([r.timers.get(label, [0, 0.0])[1] for r in b])
        own += total if shared == "no" else 0.0
        rows.append(
            [
                what,
                shared,
                f"{calls:.0f}",
                f"{1000 * total / max(calls, 1):.1f}",
                f"{1000 * total / trials:.0f}",
            ]
        )
    rows.append(
        ["**sweep's own work (the rows with no)**", "", "", "", f"**{1000 * own / trials:.0f}**"]
    )
    head = (
        f"Per-trial overhead of sweep: (b) minus (a') (the same models on the same batches), "
        f"medians, in ms per trial ({trials} trials):"
    )
    parts = "What (b)'s stopwatches measured (timed_sweep.py; median run), in ms per trial:"
    header = ["part of (b)", "in (a') too", "calls", "ms each", "ms per trial"]
    return head + "\n\n" + diff + "\n\n" + parts + "\n\n" + table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep every run's files here")
    parser.add_argument("--ways", help="only these, e.g. \"a',b\" (the tables need a, a', b)")
    args = parser.parse_args()
    setup = Setup(seed=args.seed, epochs=args.epochs, patience=args.patience)
    only = None if args.ways is None else args.ways.split(",")
    if only is not None and not {"a", "a'", "b"} <= set(only):
        parser.error(f"--ways must include a, a' and b, got {args.ways}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = run_all_ways(setup, args.repeats, args.workdir or Path(tmp), only)
        print(format_overhead(runs, setup) + "\n\n" + per_trial_overhead(runs))


if __name__ == "__main__":
    main()
