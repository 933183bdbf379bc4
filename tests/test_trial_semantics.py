"""One trial's guarantees, checked against real Keras training.

- best = the epoch with the best monitored value (earliest on ties), and best.keras
  is that epoch's model: reloading it reproduces best_score on the validation data;
- with min_delta > 0 that can differ from EarlyStopping's own best_epoch;
- epoch numbers are 1-based, like Keras' "Epoch 3/20", checked against a plain
  Keras fit with EarlyStopping;
- a missing monitor stops the sweep at once; a NaN loss or an exception fails only
  that trial.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
import optuna
import pytest
from conftest import run_cli, write_space
from keras.src.trainers.data_adapters.array_slicing import train_validation_split

from sweep.space.files import load_space
from sweep.train.feed import epoch_feed


def load_study(folder: Path, name: str) -> optuna.Study:
    db = folder / "results" / name / "study.db"
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def validation_arrays(space_path: Path) -> tuple[Any, Any]:
    """The validation data exactly as Keras' fit(validation_split=...) would cut it."""
    space = load_space(str(space_path))
    x, y = space.load_data()
    _, (xv, yv) = train_validation_split((x, y), space.settings.validation_split)
    return xv, yv


def reload_score(checkpoint: str, monitor: str, xv: Any, yv: Any) -> float:
    model = keras.saving.load_model(checkpoint, safe_mode=True)
    logs = model.evaluate(xv, yv, batch_size=32, verbose=0, return_dict=True)
    return float(logs[monitor.removeprefix("val_")])


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy"])
def test_reloaded_checkpoint_reproduces_best_score(tmp_path: Path, monitor: str) -> None:
    space = write_space(tmp_path, settings={"monitor": monitor, "epochs": 8, "trials": 2})
    code, _, err = run_cli("run", str(space), "--seed", "3", cwd=tmp_path)
    assert code == 0, err
    rows = read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert [r["state"] for r in rows] == ["complete", "complete"]
    xv, yv = validation_arrays(space)
    for row in rows:
        history = read_csv(Path(row["checkpoint"]).parent / "history.csv")
        values = [float(h[monitor]) for h in history]
        pick = min if monitor == "val_loss" else max
        # best is the earliest epoch with the best value among the epochs trained
        assert int(row["best_epoch"]) == values.index(pick(values)) + 1
        assert float(row["best_score"]) == pytest.approx(pick(values), abs=0)
        assert reload_score(row["checkpoint"], monitor, xv, yv) == pytest.approx(
            float(row["best_score"]), rel=1e-5, abs=1e-6
        )


MIN_DELTA_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 2.0, size=(3, 8))
    y = rng.integers(0, 3, size=240)
    x = (centers[y] + rng.normal(0.0, 1.5, size=(240, 8))).astype("float32")
    return x, y.astype("int64")


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input(shape=(8,)),
            keras.layers.Dense(hp.Fixed("units", 16), activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Fixed("lr", 0.01)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
"""


def test_min_delta_best_differs_from_early_stopping_best_epoch(tmp_path: Path) -> None:
    # A min_delta far larger than any epoch-to-epoch gain: EarlyStopping never sees an
    # improvement after epoch 1, so its best_epoch stays 1 while val_loss keeps falling.
    settings = {"monitor": "val_loss", "min_delta": 5.0, "patience": 3, "epochs": 10, "trials": 1}
    space = write_space(tmp_path, source=MIN_DELTA_SPACE, settings=settings)
    code, _, err = run_cli("run", str(space), "--seed", "0", cwd=tmp_path)
    assert code == 0, err
    trial = load_study(tmp_path, "tiny").trials[0]
    attrs = trial.user_attrs
    assert attrs["keras_best_epoch"] == 1  # EarlyStopping's view, honouring min_delta
    assert attrs["stop_epoch"] == 4 and attrs["early_stopped"] is True
    history = read_csv(Path(attrs["checkpoint"]).parent / "history.csv")
    losses = [float(h["val_loss"]) for h in history]
    assert attrs["best_epoch"] == losses.index(min(losses)) + 1
    assert attrs["best_epoch"] != attrs["keras_best_epoch"]
    assert attrs["best_score"] < losses[0]
    xv, yv = validation_arrays(space)
    assert reload_score(attrs["checkpoint"], "val_loss", xv, yv) == pytest.approx(
        attrs["best_score"], rel=1e-5, abs=1e-6
    )
    # ...and the checkpoint is not epoch 1's model (EarlyStopping's best)
    assert reload_score(attrs["checkpoint"], "val_loss", xv, yv) != pytest.approx(
        losses[0], rel=1e-4
    )


def test_epoch_numbers_are_one_based_like_keras(tmp_path: Path) -> None:
    """Same seed, deterministic ops: a plain Keras fit with EarlyStopping gives the same run."""
    settings = {"monitor": "val_accuracy", "patience": 1, "epochs": 30, "trials": 1}
    space = write_space(tmp_path, settings=settings)
    code, _, err = run_cli("run", str(space), "--seed", "5", "--deterministic", cwd=tmp_path)
    assert code == 0, err
    trial = load_study(tmp_path, "tiny").trials[0]
    attrs = trial.user_attrs

    loaded = load_space(str(space))
    x, y = loaded.load_data()
    keras.backend.clear_session()
    keras.utils.set_random_seed(5)  # the driver seeds trial n with seed + n
    hp = keras_tuner.HyperParameters()
    hp.values.update(trial.params)
    model = loaded.build_model(hp)
    stopper = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=1)
    # the same data: Keras' validation split, and sweep's epoch-keyed shuffle of the rest
    (xt, yt), validation = train_validation_split((x, y), 0.25)
    feed, steps = epoch_feed(xt, yt, batch_size=32, seed=5, initial_epoch=0, epochs=30)
    history = model.fit(
        feed,
        steps_per_epoch=steps,
        epochs=30,
        validation_data=validation,
        callbacks=[stopper],
        verbose=0,
    )
    assert stopper.stopped_epoch > 0, "the reference run must stop early for this test to bite"
    ran = len(history.history["val_accuracy"])
    assert attrs["stop_epoch"] == stopper.stopped_epoch + 1 == ran
    assert attrs["keras_best_epoch"] == stopper.best_epoch + 1
    assert attrs["early_stopped"] is True
    ours = read_csv(Path(attrs["checkpoint"]).parent / "history.csv")
    assert [int(r["epoch"]) for r in ours] == list(range(1, ran + 1))
    np.testing.assert_allclose(
        [float(r["val_accuracy"]) for r in ours], history.history["val_accuracy"], rtol=1e-6
    )
    # every epoch's monitored value reached Optuna, under the same 1-based epoch numbers
    assert trial.intermediate_values == pytest.approx(
        {int(r["epoch"]): float(r["val_accuracy"]) for r in ours}
    )


@pytest.mark.parametrize("mode", ["auto", "max"])
def test_missing_monitor_is_caught_before_any_trial(tmp_path: Path, mode: str) -> None:
    space = write_space(tmp_path, settings={"monitor": "val_acc", "mode": mode, "trials": 5})
    code, _, err = run_cli("run", str(space), cwd=tmp_path)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sweep: error:")
    assert "'val_acc'" in err and "val_accuracy" in err and "val_loss" in err
    db = tmp_path / "results" / "tiny" / "study.db"
    assert not db.exists() or not load_study(tmp_path, "tiny").trials


SOMETIMES_UNLOGGED = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, activation="sigmoid")])
    metrics = ["accuracy"] if hp.Boolean("log_accuracy", default=True) else []
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=metrics)
    return model
"""


def test_missing_monitor_in_a_trial_stops_the_sweep_at_its_first_epoch(tmp_path: Path) -> None:
    # The defaults log val_accuracy, so the pre-flight check passes; the trial with
    # log_accuracy=False does not. Keras would only warn; we stop after that one epoch.
    settings = {"monitor": "val_accuracy", "mode": "max", "trials": 2, "sampler": "grid"}
    space = write_space(tmp_path, source=SOMETIMES_UNLOGGED, settings=settings)
    code, _, err = run_cli("run", str(space), "--seed", "0", cwd=tmp_path)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sweep: error:")
    assert "'val_accuracy'" in err and "val_loss" in err
    trials = load_study(tmp_path, "tiny").trials
    bad = [t for t in trials if t.params["log_accuracy"] is False]
    assert len(bad) == 1 and trials[-1] is not None and trials[-1].number == bad[0].number
    assert bad[0].state == optuna.trial.TrialState.FAIL
    assert "val_accuracy" in bad[0].user_attrs["error"]
    assert bad[0].user_attrs["stop_epoch"] == 0  # it raised inside the first epoch's end
    rows = read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    failed = [r for r in rows if r["state"] == "failed"]
    assert len(failed) == 1 and "val_accuracy" in failed[0]["error"]


def test_val_monitor_without_validation_data_says_so(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"monitor": "val_loss", "validation_split": 0.0})
    code, _, err = run_cli("run", str(space), cwd=tmp_path)
    assert code == 2
    assert "no validation data" in err and "'val_loss'" in err


FAULTY_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def build_model(hp):
    fault = hp.Choice("fault", ["none", "nan", "raise"])
    if fault == "raise":
        raise ValueError("this configuration cannot be built")
    layers = [keras.Input(shape=(4,)), keras.layers.Dense(1, activation="sigmoid")]
    if fault == "nan":
        layers.append(keras.layers.Lambda(lambda t: t * float("nan")))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model
"""


def test_nan_loss_and_exceptions_fail_only_their_trial(tmp_path: Path) -> None:
    settings = {"monitor": "val_loss", "epochs": 3, "trials": 3, "sampler": "grid"}
    space = write_space(tmp_path, source=FAULTY_SPACE, settings=settings)
    code, out, err = run_cli("run", str(space), cwd=tmp_path)
    assert code == 0, err
    by_fault = {t.params["fault"]: t for t in load_study(tmp_path, "tiny").trials}
    assert set(by_fault) == {"none", "nan", "raise"}
    assert by_fault["none"].state == optuna.trial.TrialState.COMPLETE
    assert by_fault["nan"].state == optuna.trial.TrialState.FAIL
    assert by_fault["nan"].user_attrs["error"] == "loss became nan at epoch 1"
    assert by_fault["raise"].state == optuna.trial.TrialState.FAIL
    assert by_fault["raise"].user_attrs["error"] == (
        "ValueError: this configuration cannot be built"
    )
    rows = {r["param_fault"]: r for r in read_csv(tmp_path / "results" / "tiny" / "trials.csv")}
    assert rows["nan"]["state"] == "failed" and "nan" in rows["nan"]["error"]
    assert rows["none"]["error"] == "" and not math.isnan(float(rows["none"]["best_score"]))
    assert "failed" in out  # the person sees it too
