"""The command's output and the table, byte for byte, against tables checked in: on the
study an earlier release recorded (tests/data/old_study) and on a fresh seeded
``--deterministic`` sweep. A refactoring must not change them; a change that means to
rewrites them with ``python tests/test_same_output.py`` and says so in its commit.

The commands run as subprocesses (``python -m sweep``), so the expected files can be
made by any version of the package. Columns that differ from run to run (the duration,
the worker, the checkpoint's absolute path) are left out, and the run's folder is
written ``<folder>``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / "tests" / "data" / "expected_output"
OLD = REPO / "tests" / "data" / "old_study"
VOLATILE = ("duration_s", "worker", "checkpoint")

FRESH_SPACE = """
import keras
import numpy as np

SETTINGS = {"monitor": "val_loss", "epochs": 4, "batch_size": 32, "validation_split": 0.25,
            "patience": 1, "trials": 3}


def load_data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 2.0, size=(3, 8))
    y = rng.integers(0, 3, size=240)
    x = (centers[y] + rng.normal(0.0, 1.5, size=(240, 8))).astype("float32")
    return x, y.astype("int64")


def build_model(hp):
    model = keras.Sequential([
        keras.Input(shape=(8,)),
        keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
"""


def _sweep(*argv: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sweep", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.replace(str(cwd), "<folder>")


def _steady(table: str) -> str:
    """A CSV table without the columns that differ from run to run."""
    rows = list(csv.DictReader(io.StringIO(table)))
    out = io.StringIO()
    if rows:
        names = [c for c in rows[0] if c not in VOLATILE]
        writer = csv.DictWriter(out, names, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def outputs(work: Path) -> dict[str, str]:
    """Every output compared, by the name of its expected file; ``work``: an empty folder."""
    old = work / "old_study"
    shutil.copytree(OLD, old)
    found = {
        "old_table.csv": _steady(_sweep("table", "tiny", "--format", "csv", cwd=old)),
        "old_table.md": _sweep("table", "tiny", "--format", "markdown", cwd=old),
        "old_table.json": _sweep("table", "tiny", "--format", "json", cwd=old),
        "old_status.txt": _sweep("status", "tiny", cwd=old),
        "old_compare.txt": _sweep("compare", "tiny", "--patience", "1,2", cwd=old),
        "old_stopping.csv": (old / "results/tiny/stopping.csv").read_text(encoding="utf-8"),
    }
    fresh = work / "fresh"
    fresh.mkdir()
    (fresh / "tiny.py").write_text(textwrap.dedent(FRESH_SPACE), encoding="utf-8")
    _sweep("run", "tiny.py", "--seed", "3", "--deterministic", "--plain", cwd=fresh)
    trials = (fresh / "results/tiny/trials.csv").read_text(encoding="utf-8")
    found["fresh_trials.csv"] = _steady(trials)
    found["fresh_table.csv"] = _steady(_sweep("table", "tiny", "--format", "csv", cwd=fresh))
    found["fresh_compare.txt"] = _sweep("compare", "tiny", "--patience", "1", cwd=fresh)
    return found


def test_the_output_is_the_same_as_the_tables_checked_in(tmp_path: Path) -> None:
    found = outputs(tmp_path)
    assert sorted(p.name for p in EXPECTED.iterdir()) == sorted(found)
    for name, text in found.items():
        assert text == (EXPECTED / name).read_text(encoding="utf-8"), name


if __name__ == "__main__":  # rewrite the expected files with this checkout's package
    EXPECTED.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in outputs(Path(scratch)).items():
            (EXPECTED / name).write_text(text, encoding="utf-8")
            print(f"wrote {EXPECTED / name}")
