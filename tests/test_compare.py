"""Comparing early-stopping settings: replay on recorded curves is what Keras would have
done (checked against real fits), censoring is reported, not guessed; calibration
trials and sweepable patience/min_delta."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import optuna
import pytest
from conftest import run_cli, write_space

from sweep.views.stopping import StopRule, replay

FIXED_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 1.0, size=(3, 8))
    y = rng.integers(0, 3, size=300)
    x = (centers[y] + rng.normal(0.0, 1.5, size=(300, 8))).astype("float32")
    return x, y.astype("int64")


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input(shape=(8,)),
            keras.layers.Dense(hp.Fixed("units", 16), activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Fixed("lr", 0.03)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
"""

EPOCHS = 14
SETTINGS = {"monitor": "val_loss", "epochs": EPOCHS, "trials": 1, "validation_split": 0.3}


def trial0(folder: Path, study: str) -> optuna.trial.FrozenTrial:
    db = folder / "results" / study / "study.db"
    return optuna.load_study(study_name=study, storage=f"sqlite:///{db}").trials[0]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One calibration trial: early stopping off, the whole curve recorded."""
    folder = tmp_path_factory.mktemp("calibrated")
    space = write_space(folder, source=FIXED_SPACE, settings=SETTINGS)
    args = ("--calibrate", "1", "--deterministic", "--seed", "4", "--study", "cal")
    code, _, err = run_cli("run", str(space), *args, cwd=folder)
    assert code == 0, err
    return folder


def test_calibration_trials_train_to_max_epochs_and_are_marked(calibrated: Path) -> None:
    t = trial0(calibrated, "cal")
    assert t.user_attrs["calibration"] is True
    assert t.user_attrs["stop_epoch"] == EPOCHS and t.user_attrs["early_stopped"] is False
    rows = list(csv.DictReader((calibrated / "results" / "cal" / "trials.csv").open()))
    assert rows[0]["calibration"] == "true" and rows[0]["stop_reason"] == "max_epochs"


@pytest.mark.parametrize(
    "patience, min_delta", [(0, 0.0), (1, 0.0), (2, 0.01), (1, 0.05), (3, 0.0)]
)
def test_replay_is_exactly_what_a_real_fit_does(
    calibrated: Path, patience: int, min_delta: float
) -> None:
    """The same trial (same seed, deterministic ops) trained for real with a stricter
    setting stops where the replay on the calibration curve says, with the same best."""
    curve_trial = trial0(calibrated, "cal")
    curve = [curve_trial.intermediate_values[e] for e in range(1, EPOCHS + 1)]
    expected = replay(
        curve, StopRule(mode="min", patience=patience, min_delta=min_delta), max_epochs=EPOCHS
    )
    assert not expected.censored
    study = f"p{patience}d{min_delta}"
    args = ("--deterministic", "--seed", "4", "--study", study)
    args += ("--patience", str(patience), "--min-delta", str(min_delta))
    code, _, err = run_cli("run", "tiny.py", *args, cwd=calibrated)
    assert code == 0, err
    real = trial0(calibrated, study).user_attrs
    assert real["stop_epoch"] == expected.stop_epoch
    assert real["early_stopped"] == expected.early_stopped
    assert real["best_epoch"] == expected.best_epoch
    assert real["best_score"] == expected.best_score  # exactly: the same float
    assert real["keras_best_epoch"] == expected.keras_best_epoch


def test_compare_reports_censoring_and_writes_its_files(tmp_path: Path) -> None:
    # trials with patience 1: most stop early, so a looser setting is censored for them
    space = write_space(tmp_path, source=FIXED_SPACE, settings={**SETTINGS, "trials": 2})
    assert run_cli("run", str(space), "--patience", "1", "--calibrate", "1", cwd=tmp_path)[0] == 0
    code, out, err = run_cli(
        "compare",
        "tiny",
        "--patience",
        "0,1,8",
        "--min-delta",
        "0",
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert code == 0, err
    rows = {int(r["patience"]): r for r in csv.DictReader(io.StringIO(out))}
    stopped_early = trial0(tmp_path, "tiny")  # the calibration trial ran to max_epochs...
    assert stopped_early.user_attrs["calibration"] is True
    second = optuna.load_study(
        study_name="tiny", storage=f"sqlite:///{tmp_path / 'results/tiny/study.db'}"
    ).trials[1]
    censored_for_8 = 1 if second.user_attrs["early_stopped"] else 0
    assert rows[8]["censored"] == str(censored_for_8)
    assert rows[1]["censored"] == "0" and rows[0]["censored"] == "0"  # stricter: exact
    assert float(rows[0]["epochs_saved_pct"]) >= float(rows[1]["epochs_saved_pct"])
    assert float(rows[1]["mean_regret"]) >= 0.0
    folder = tmp_path / "results" / "tiny"
    assert (folder / "stopping.csv").read_text() == out
    assert (folder / "stopping.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, table, _ = run_cli("compare", "tiny", cwd=tmp_path)  # the default grid
    assert code == 0 and "censored" in table and "best stays" in table


def test_patience_and_min_delta_can_be_swept(tmp_path: Path) -> None:
    space = write_space(tmp_path, source=FIXED_SPACE, settings={**SETTINGS, "trials": 9})
    code, _, err = run_cli(
        "run",
        str(space),
        "--patience",
        "1,3",
        "--min-delta",
        "0,0.01",
        "--sampler",
        "grid",
        "--epochs",
        "4",
        cwd=tmp_path,
    )
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "results" / "tiny" / "trials.csv").open()))
    assert len(rows) == 4  # the grid: units and lr fixed, 2 patience x 2 min_delta
    combos = {(r["param_patience"], r["param_min_delta"]) for r in rows}
    assert combos == {("1", "0.0"), ("1", "0.01"), ("3", "0.0"), ("3", "0.01")}
    for r in rows:  # each trial ran with the values it drew
        assert r["patience"] == r["param_patience"] and r["min_delta"] == r["param_min_delta"]


def test_a_bad_patience_list_is_a_usage_error(tmp_path: Path) -> None:
    space = write_space(tmp_path)
    code, _, err = run_cli("run", str(space), "--patience", "2,x", cwd=tmp_path)
    assert code == 2 and "whole number" in err
