"""KerasTuner code runs unchanged (issue 13): fit returning the objective, Tuner arguments
as settings and as a Tuner object, float64/pandas data, epochs tuned in fit, uncompiled
models for custom loops, the same name under different conditions, a static space,
FatalError / FailedTrialError / max_retries_per_trial, errors that name their cause, and
export on data that changes between calls.

Each space is written the way KerasTuner's guides and tests write it; only load_data is
ours (small arrays, no network), and CALLS counts fit calls where a test needs it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import run_cli, write_space
from test_trial_semantics import read_csv

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATA = """
def load_data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 2.0, size=(3, 8))
    y = rng.integers(0, 3, size=160)
    x = centers[y] + rng.normal(0.0, 1.5, size=(160, 8))  # float64, as np.random gives
    return x, y
"""

# "Tune hyperparameters in your custom training loop": build() is not compiled, fit()
# never calls model.fit and returns the objective (here a float, then a dict).
CUSTOM_LOOP = (
    """
import os

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

SETTINGS = {settings!r}
"""
    + DATA
    + """

class MyHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        return keras.Sequential(
            [keras.Input(shape=(8,)), keras.layers.Dense(hp.Int("units", 4, 8, step=4),
             activation="relu"), keras.layers.Dense(3)]
        )

    def fit(self, hp, model, x, y, validation_data, callbacks=None, **kwargs):
        batch_size = hp.Int("batch_size", 16, 32, step=16)
        train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
        x_val, y_val = validation_data
        optimizer = keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-2, sampling="log"))
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        for epoch in range(2):
            for images, labels in train_ds:
                with tf.GradientTape() as tape:
                    loss = loss_fn(labels, model(images, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
        val_loss = float(loss_fn(y_val, model(x_val)))
        with open(os.environ["CALLS"], "a") as log:
            log.write(f"{val_loss!r}\\n")
        if sum(1 for _ in open(os.environ["CALLS"])) == 3:  # the second trial: a dict
            return {"val_loss": val_loss, "loss": float(loss)}
        return val_loss
"""
)


def _trials(folder: Path, name: str) -> list[Any]:
    storage = f"sqlite:///{folder / 'results' / name / 'study.db'}"
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def _write(folder: Path, name: str, source: str, settings: dict[str, Any]) -> Path:
    return write_space(folder, name, source=source.replace("{settings!r}", repr(settings)))


def test_custom_training_loop_fit_returns_the_objective(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("CALLS", str(calls))
    space = _write(tmp_path, "loop", CUSTOM_LOOP, {"epochs": 2, "trials": 2})
    code, out, err = run_cli("run", str(space), "--seed", "1", "--plain", cwd=tmp_path)
    assert code == 0, err + out
    assert out.count("a custom training loop") == 1, out  # once per sweep
    trials = _trials(tmp_path, "loop")
    returned = [float(v) for v in calls.read_text().split()][1:]  # after the probe's call
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for t, value in zip(trials, returned, strict=True):
        assert t.value == value and t.user_attrs["best_score"] == value  # fit's float / dict
        assert t.user_attrs["objective_source"] == "fit"
        assert t.user_attrs["best_epoch"] == t.user_attrs["stop_epoch"] == 2  # the epochs
        assert Path(t.user_attrs["checkpoint"]).is_file()  # the model as fit left it
    rows = read_csv(tmp_path / "results" / "loop" / "trials.csv")
    assert {r["objective_source"] for r in rows} == {"fit"}


def test_fit_return_values_follow_keras_tuner(tmp_path: Path) -> None:
    """KerasTuner's convert_to_metrics_dict: a number, a dict by the objective's name, a
    History at its best epoch (the mode decides); anything else says what it got."""
    import keras

    from sweep.space.hypermodel import FitObjective, fit_direction, objective_from_fit

    history = keras.callbacks.History()
    history.history = {"val_loss": [0.5, 0.3, 0.4], "val_accuracy": [0.6, 0.9, 0.9]}
    assert objective_from_fit(np.float32(0.25), "val_loss", "min") == FitObjective(0.25, None, None)
    assert objective_from_fit({"val_mae": 2.0}, "val_mae", "min").value == 2.0  # type: ignore[union-attr]
    assert objective_from_fit(history, "val_loss", "min") == FitObjective(0.3, 2, 3)
    assert objective_from_fit(history, "val_accuracy", "max") == FitObjective(0.9, 2, 3)
    missing = objective_from_fit({"loss": 1}, "val_mae", "min")
    assert "without 'val_mae' (it has: loss)" in str(missing)
    assert objective_from_fit(None, "val_loss", "min") == "returned NoneType"
    assert fit_direction("val_accuracy") == "max" and fit_direction("my_metric") == "min"


# KerasTuner's hyperparameters_test: the same name under different conditions; a static
# space declared up front and read with hp.get; a Tuner object left in the file.
TUNER_FILE = (
    """
import keras
import keras_tuner
import numpy as np

SETTINGS = {settings!r}
"""
    + DATA
    + """

hp = keras_tuner.HyperParameters()
hp.Int("num_layers", 1, 2)


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(8,))])
    for _ in range(hp.get("num_layers")):
        model.add(keras.layers.Dense(8, activation="relu"))
    a = hp.Choice("a", [2, 3])
    with hp.conditional_scope("a", [2]):
        if a == 2:
            width = hp.Fixed("b", 4)
    with hp.conditional_scope("a", [3]):
        if a == 3:
            width = hp.Fixed("b", 5)
    model.add(keras.layers.Dense(width, activation="relu"))
    model.add(keras.layers.Dense(3, activation="softmax"))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


tuner = keras_tuner.GridSearch(
    build_model,
    hyperparameters=hp,
    objective=keras_tuner.Objective("val_accuracy", direction="max"),
    max_trials=4,
    directory="my_dir",
    project_name="helloworld",
)
# tuner.search(x, y, epochs=2, validation_split=0.2)  # sweep runs the search
"""
)


def test_tuner_object_static_space_and_the_same_name_under_two_conditions(
    tmp_path: Path,
) -> None:
    space = _write(tmp_path, "grid", TUNER_FILE, {"epochs": 2, "batch_size": 32})
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 0, err + out
    assert "GridSearch in" in out and "objective" not in err, out
    assert "monitor=val_accuracy, mode=max, trials=4, sampler=grid" in out, out
    assert "my_dir/helloworld is not used" in out
    # nothing outside the results folder: constructing the Tuner made no my_dir/
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.py", "results"]
    trials = _trials(tmp_path, "grid")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert all(t.user_attrs["monitor"] == "val_accuracy" for t in trials)
    rows = read_csv(tmp_path / "results" / "grid" / "trials.csv")
    assert {(r["param_a"], r["param_b"]) for r in rows} == {("2", "4"), ("3", "5")}
    assert {r["param_num_layers"] for r in rows} == {"1", "2"}  # declared up front
    assert "param_b[a=3]" not in rows[0]


# KerasTuner's guide ("Tune model training") style: the fit chooses its epochs and
# changes the data (a slice stands in for the guide's resize); FailedTrialError and
# max_retries_per_trial from "Handling failed trials in KerasTuner".
RETRYING = (
    """
import os

import keras
import keras_tuner
import numpy as np

SETTINGS = {settings!r}
"""
    + DATA
    + """

class MyHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3,
                                  activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, validation_data=None, **kwargs):
        with open(os.environ["CALLS"], "a") as log:
            log.write("call\\n")
        calls = sum(1 for _ in open(os.environ["CALLS"]))
        if calls == int(os.environ.get("FATAL_AT", 0)):
            raise keras_tuner.errors.FatalValueError("the data server is gone")
        if calls == 2:
            raise RuntimeError("flaky: the first run of trial 0")
        if calls == 4:
            raise keras_tuner.errors.FailedTrialError("this model is too large")
        x_val, y_val = validation_data
        return model.fit(x[:, :4], y, validation_data=(x_val[:, :4], y_val),
                         epochs=hp.Int("epochs", 2, 3), **kwargs)
"""
)


def test_retries_failed_trials_epochs_in_fit_and_export_of_transformed_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("CALLS", str(calls))
    settings = {"objective": "val_accuracy", "max_trials": 3, "max_retries_per_trial": 1}
    space = _write(tmp_path, "retry", RETRYING, {**settings, "executions_per_trial": 1})
    code, out, err = run_cli("run", str(space), "--seed", "2", "--plain", cwd=tmp_path)
    assert code == 0, err + out
    # probe, trial 0 (raises), its retry, trial 1 (FailedTrialError: not retried), trial 2
    assert len(calls.read_text().split()) == 5
    assert "rerunning it from scratch (retry 1 of 1" in out, out
    trials = _trials(tmp_path, "retry")
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert "FailedTrialError: this model is too large" in trials[1].user_attrs["error"]
    for t in (trials[0], trials[2]):  # the fit's epochs win over sweep's
        assert t.user_attrs["max_epochs"] == t.params["epochs"] == t.user_attrs["stop_epoch"]
        assert t.user_attrs["monitor"] == "val_accuracy" and t.user_attrs["mode"] == "max"
    assert trials[0].user_attrs["retries"] == 1
    code, out, err = run_cli("export", "retry", "--out", "m.keras", cwd=tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert err.count("\n") == 1 and "the HyperModel's fit changes the data" in err, err


def test_fatal_error_stops_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLS", str(tmp_path / "calls.txt"))
    monkeypatch.setenv("FATAL_AT", "2")  # trial 0's fit
    settings = {"objective": "val_accuracy", "trials": 3, "max_retries_per_trial": 2}
    space = _write(tmp_path, "fatal", RETRYING, settings)
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 1, err + out
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "trial 0 raised FatalValueError: the data server is gone" in err
    assert [t.state.name for t in _trials(tmp_path, "fatal")] == ["FAIL"]  # not retried


# float64 NumPy/pandas data and a custom metric mixing dtypes: Keras' fit casts the data
# to float32, and so does sweep's feed.
FLOAT64 = """
import keras
import keras_tuner
import numpy as np
import pandas as pd
import tensorflow as tf

SETTINGS = {settings!r}
SETTINGS["objective"] = keras_tuner.Objective("val_gap", direction="min")


def load_data():
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.random((96, 3)), columns=["a", "b", "c"])
    return x, x.to_numpy() @ np.array([1.0, -2.0, 0.5])


def gap(y_true, y_pred):
    return tf.reduce_mean(tf.math.squared_difference(y_true, y_pred[:, 0]))


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(hp.Int("units", 2, 4)),
                              keras.layers.Dense(1)])
    model.compile("adam", loss="mse", metrics=[gap])
    return model
"""


def test_float64_and_pandas_data_are_cast_as_keras_fit_casts_them(tmp_path: Path) -> None:
    space = _write(tmp_path, "f64", FLOAT64, {"epochs": 2, "max_trials": 2})
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 0, err + out
    rows = read_csv(tmp_path / "results" / "f64" / "trials.csv")
    assert [r["state"] for r in rows] == ["complete", "complete"], rows
    assert {r["monitor"] for r in rows} == {"val_gap"}
    assert {r["objective_source"] for r in rows} == {"monitor"}


LABELS = """
import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    y[{bad}] = 7  # outside the softmax range of two classes
    return x, y


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model
"""


# With labels outside the softmax range, TensorFlow's graph fails in whichever op runs
# into them first (the loss, a gather, the gradient's segment sum: it varies from run to
# run on CPU). Whichever it is, the line that names the cause must be kept, with its op,
# not TensorFlow's first line ("Graph execution error:").
CAUSES = re.compile(
    r"InvalidArgumentError: (?!Graph execution error)[^;]*"
    r"(label value of 7|= 7 is not in \[0, 2\)|segment_ids\[\d+\] = \d+ is out of range)"
    r"[^;]*\(op [A-Za-z0-9_]+\)"
)


def test_errors_keep_the_line_that_names_the_cause(tmp_path: Path) -> None:
    # every label bad: the probe fails, and names model.fit, not build_model
    space = _write(tmp_path, "all", LABELS.replace("{bad}", ":"), {"epochs": 2})
    code, _, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1, err
    assert "model.fit on 8 samples raised " in err and CAUSES.search(err), err
    assert "build_model(hp) raised" not in err and "Graph execution error" not in err
    # the probe's 8 samples are fine, the rest are not: each trial fails with the cause
    space = _write(tmp_path, "late", LABELS.replace("{bad}", "16:40"), {"epochs": 2, "trials": 2})
    code, out, err = run_cli("run", str(space), "--plain", "--max-failures", "2", cwd=tmp_path)
    assert code == 1, err + out
    rows = read_csv(tmp_path / "results" / "late" / "trials.csv")
    assert [r["state"] for r in rows] == ["failed", "failed"]
    for row in rows:
        assert CAUSES.match(row["error"]), row["error"]
        assert len(row["error"]) <= 300


UNSEEDED = """
import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    x = np.random.rand(64, 4).astype("float32")  # a new draw on every call, as the guides do
    return x, (x[:, 0] > 0.5).astype("int64")


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""


def test_export_says_when_load_data_returns_other_data(tmp_path: Path) -> None:
    space = _write(tmp_path, "rand", UNSEEDED, {"epochs": 2, "trials": 1})
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 0, err + out
    code, _, err = run_cli("export", "rand", "--out", "m.keras", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "load_data() returns other validation data than when the sweep ran" in err
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"overwrite": True}, "setting 'overwrite' is KerasTuner's; sweep never overwrites"),
        ({"directory": "my_dir"}, "sweep writes under --results DIR"),
        ({"project_name": "p"}, "sweep names the study with --study NAME"),
        ({"executions_per_trial": 0}, "'executions_per_trial' expected a whole number >= 1"),
        ({"objective": 3}, "setting 'objective' expected a metric name or keras_tuner.Objective"),
        ({"objective": "val_loss", "monitor": "loss"}, "both 'objective' and 'monitor'"),
        ({"max_retries_per_trial": -1}, "'max_retries_per_trial' expected a whole number >= 0"),
    ],
)
def test_tuner_arguments_sweep_has_its_own_equivalent_for(
    tmp_path: Path, settings: dict[str, Any], needle: str
) -> None:
    space = write_space(tmp_path, settings=settings)
    code, _, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1, err
    assert needle in err, err
    assert not os.path.exists(tmp_path / "results" / "tiny" / "study.db")
