"""KerasTuner HyperModels as search spaces, unchanged: build(hp), fit(hp, model, ...),
conditional_scope and hp.Choice-controlled branches; real training, real SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_space
from test_trial_semantics import reload_score, validation_arrays

# Written the way the KerasTuner guide writes a HyperModel ("Getting started" and
# "Tune model training": a Choice-controlled branch under conditional_scope, and a fit
# that tunes the batch size). Only load_data and FIT_LOG are ours: the log lets the test
# see what the harness handed to fit.
GUIDE_HYPERMODEL = """
import json
import os

import keras
import keras_tuner
import numpy as np
from keras import layers

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 2.0, size=(3, 8))
    y = rng.integers(0, 3, size=240)
    x = (centers[y] + rng.normal(0.0, 1.5, size=(240, 8))).astype("float32")
    return x, keras.utils.to_categorical(y, 3)


class MyHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential()
        model.add(keras.Input(shape=(8,)))
        model_type = hp.Choice("model_type", ["mlp", "wide"])
        with hp.conditional_scope("model_type", ["mlp"]):
            if model_type == "mlp":
                for i in range(hp.Int("num_layers", 1, 2)):
                    model.add(layers.Dense(hp.Int(f"units_{i}", 4, 16, step=4), activation="relu"))
        with hp.conditional_scope("model_type", ["wide"]):
            if model_type == "wide":
                model.add(layers.Dense(hp.Int("wide_units", 32, 64, step=32), activation="relu"))
        if hp.Boolean("dropout"):
            model.add(layers.Dropout(rate=0.25))
        model.add(layers.Dense(3, activation="softmax"))
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        batch_size = hp.Choice("batch_size", [16, 32])
        with open(os.environ["FIT_LOG"], "a") as log:
            log.write(json.dumps({"batch_size": batch_size, "kwargs": sorted(kwargs)}) + "\\n")
        return model.fit(*args, batch_size=batch_size, **kwargs)
"""

SETTINGS: dict[str, Any] = {
    "monitor": "val_accuracy",
    "epochs": 5,
    "patience": 2,
    "trials": 4,
    "first_trial": "defaults",
}


def _write(folder: Path, name: str, source: str, settings: dict[str, Any]) -> Path:
    """The space with exactly these settings (write_space would add the tiny defaults,
    batch_size among them)."""
    return write_space(folder, name, source=source.replace("{settings!r}", repr(settings)))


def _trials(folder: Path, name: str) -> list[Any]:
    import optuna

    storage = f"sqlite:///{folder / 'results' / name / 'study.db'}"
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def test_guide_hypermodel_runs_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    log = tmp_path / "fit.jsonl"
    monkeypatch.setenv("FIT_LOG", str(log))
    space = _write(tmp_path, "guide", GUIDE_HYPERMODEL, SETTINGS)
    code, out, err = run_cli("run", str(space), "--seed", "3", "--plain", cwd=tmp_path)
    assert code == 0, err + out
    trials = _trials(tmp_path, "guide")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    # trial 0 is KerasTuner's defaults: the first Choice value, Int min, Boolean False
    assert trials[0].params == {
        "model_type": "mlp",
        "num_layers": 1,
        "units_0": 4,
        "dropout": False,
        "lr": 1e-3,
        "batch_size": 16,
    }
    for t in trials:  # conditional hyperparameters exist only in their branch
        if t.params["model_type"] == "mlp":
            assert "wide_units" not in t.params
            assert {f"units_{i}" for i in range(t.params["num_layers"])} <= set(t.params)
        else:
            assert "num_layers" not in t.params and "units_0" not in t.params
            assert "wide_units" in t.params
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # one probe call (KerasTuner defaults) before the trials, then one per trial
    assert len(calls) == 1 + len(trials)
    assert [c["batch_size"] for c in calls[1:]] == [t.params["batch_size"] for t in trials]
    for call in calls[1:]:
        assert {"callbacks", "validation_data", "epochs", "initial_epoch"} <= set(call["kwargs"])
        assert "batch_size" not in call["kwargs"]  # the fit chooses it
    # the best checkpoint is the model that scored best_score on the validation data
    best = max(trials, key=lambda t: t.user_attrs["best_score"])
    xv, yv = validation_arrays(space)
    score = reload_score(best.user_attrs["checkpoint"], "val_accuracy", xv, yv)
    assert score == pytest.approx(best.user_attrs["best_score"], abs=1e-6)
    code, table, _ = run_cli("table", "guide", "--format", "csv", cwd=tmp_path)
    assert code == 0 and "param_batch_size" in table and "param_wide_units" in table


BUILD_ONLY = """
import keras
import keras_tuner
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(160, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


class Only(keras_tuner.HyperModel):  # a class, not an instance: the harness makes one
    def build(self, hp):
        model = keras.Sequential(
            [keras.Input(shape=(4,)), keras.layers.Dense(hp.Int("units", 2, 8, step=2)),
             keras.layers.Dense(2, activation="softmax")]
        )
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
"""


def test_hypermodel_class_without_fit_uses_the_harness_feed(tmp_path: Path) -> None:
    space = write_space(tmp_path, "only", settings={"trials": 2, "epochs": 3}, source=BUILD_ONLY)
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 0, err + out
    trials = _trials(tmp_path, "only")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert all(t.user_attrs["batch_size"] == 32 for t in trials)  # the settings' batch size
    assert all("units" in t.params for t in trials)


BROKEN_FIT = GUIDE_HYPERMODEL.replace(
    "return model.fit(*args, batch_size=batch_size, **kwargs)",
    "return model.fit(*args, batch_size=batch_size, epochs=2, verbose=0)",
)

TWO_HYPERMODELS = BUILD_ONLY + "\n\nclass Other(Only):\n    pass\n"

BOTH = BUILD_ONLY + "\n\ndef build_model(hp):\n    return Only().build(hp)\n"


@pytest.mark.parametrize(
    ("source", "settings", "needle"),
    [
        (BROKEN_FIT, {}, "pass **kwargs on to model.fit"),
        (GUIDE_HYPERMODEL, {"batch_size": 64}, "remove it from SETTINGS/--batch-size or from"),
        (TWO_HYPERMODELS, {}, "found several (Only, Other)"),
        (BOTH, {}, "found both"),
    ],
    ids=["fit-drops-callbacks", "batch-size-twice", "two-hypermodels", "build-model-and-hm"],
)
def test_hypermodel_mistakes_are_one_line_errors_before_any_trial(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    settings: dict[str, Any],
    needle: str,
) -> None:
    monkeypatch.setenv("FIT_LOG", str(tmp_path / "fit.jsonl"))
    space = _write(tmp_path, "bad", source, {**SETTINGS, **settings})
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
    db = tmp_path / "results" / "bad" / "study.db"
    assert not db.exists() or _trials(tmp_path, "bad") == []
