"""Table 4, start-up: how long the commands that don't train take (they must not import
TensorFlow), against importing TensorFlow alone, and how long `sweep run` takes to its
first epoch.

    python benchmarks/startup.py [--repeats 5]

On its own it makes a small study first; run_all.py uses table 1's study and takes the
time to the first epoch from table 1's runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from fixed_trials import Setup, schedule
from measure import PYTHON, measure, median, plural, seconds, table
from overhead import WAYS, phases, run_once

SWEEP = [str(Path(PYTHON).parent / "sweep")]

CHECK = """
import contextlib, io, sys
from sweep.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def imports_tensorflow(argv: list[str], cwd: Path) -> bool:
    proc = subprocess.run(
        [PYTHON, "-c", CHECK, *argv], cwd=cwd, capture_output=True, text=True, check=True
    )
    heavy: list[str] = json.loads(proc.stdout.strip().splitlines()[-1].replace("'", '"'))
    return heavy != []


def measure_startup(
    study: str, results: Path, repeats: int
) -> tuple[dict[str, list[float]], dict[str, bool]]:
    """Wall seconds of each command, `repeats` times, alternating; and whether each one
    imports TensorFlow (checked in a separate run)."""
    where = ["--results", str(results)]
    commands = {
        "`sweep --help`": ["--help"],
        f"`sweep table {study}`": ["table", study, *where],
        f"`sweep status {study}`": ["status", study, *where],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    times['`python -c "import tensorflow"` (reference)'] = []
    for _ in range(repeats):
        for name, argv in commands.items():
            times[name].append(measure([*SWEEP, *argv]).wall)
        reference = '`python -c "import tensorflow"` (reference)'
        times[reference].append(measure([PYTHON, "-c", "import tensorflow"]).wall)
    heavy = {name: imports_tensorflow(argv, results) for name, argv in commands.items()}
    return times, heavy


def format_startup(
    times: dict[str, list[float]],
    heavy: dict[str, bool],
    first_epoch: dict[str, list[float]],
) -> str:
    rows = []
    for name, values in times.items():
        imported = "yes" if "tensorflow" in name else ("**yes**" if heavy[name] else "no")
        rows.append([name, seconds(values, 2), f"**{median(values):.2f}**", imported])
    for name, values in first_epoch.items():
        rows.append([name, seconds(values, 2), f"**{median(values):.2f}**", "yes"])
    runs = plural(len(next(iter(times.values()))), "run")
    head = (
        "Table 4, start-up: wall time from launch to exit (to the first epoch for the "
        f"training rows), {runs} each, alternating; medians"
    )
    return head + "\n\n" + table(["command", "s (each run)", "median s", "imports TF"], rows)


def first_epoch_alone(folder: Path) -> dict[str, list[float]]:
    """`sweep run` to the end of its first epoch, when there is no table 1 to take it from."""
    setup = Setup(epochs=2)
    order = folder / "schedule.json"
    order.write_text(json.dumps(schedule(setup.seed)))
    sweep_way = next(w for w in WAYS if w.name == "sweep")
    run = run_once(sweep_way, setup, order, folder, "startup")
    return {
        "`sweep run`: to the first epoch's start": [phases(run.measured)["to first fit"]],
        "`sweep run`: to the first epoch's end": [phases(run.measured)["first epoch end"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        first = first_epoch_alone(folder)
        times, heavy = measure_startup("startup", folder / "startup", args.repeats)
        print(format_startup(times, heavy, first))


if __name__ == "__main__":
    main()
