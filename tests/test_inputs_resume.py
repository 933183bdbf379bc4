"""Issue 15: a trial on a tf.data pipeline (sweep shuffles it per (seed, epoch)) or on a
PyDataset (sweep orders its batches per (seed, epoch)), killed with SIGKILL mid-trial
and resumed under --deterministic, ends with the history of an uninterrupted run, byte
for byte, and its best checkpoint reproduces best_score on the validation input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import optuna
import pytest
from conftest import batches_source, write_space
from test_resume import epochs_done, finish, kill, read_rows, start, study, wait_for

SOURCE = """
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

KIND = {kind!r}
SETTINGS = {{settings!r}}


def arrays(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, :3].sum(axis=1) + 0.5 * rng.normal(size=n) > 0).astype("int64")
    return x, y


{batches}

def load_data():
    (x, y), (xv, yv) = arrays(400, 0), arrays(100, 1)
    if KIND == "tfdata":  # unbatched, no .shuffle: sweep batches and shuffles it
        val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(16)
        return tf.data.Dataset.from_tensor_slices((x, y)), val
    return Batches(x, y, workers=2), Batches(xv, yv, batch_size=16)  # workers: threads


def build_model(hp):
    model = keras.Sequential([
        keras.Input(shape=(8,)),
        keras.layers.Dense(hp.Int("units", 8, 16, step=8), activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
"""

# patience that cannot run out in 6 epochs: the trial always runs to its end
SETTINGS = {"monitor": "val_loss", "batch_size": 4, "epochs": 6, "patience": 6, "trials": 1}
ARGS = ("--seed", "0", "--deterministic")


def validation_loss(space: Path, checkpoint: Path) -> float:
    """The checkpoint evaluated on the space's own validation input."""
    spec = importlib.util.spec_from_file_location("resumed_space", space)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, val = module.load_data()
    model = keras.saving.load_model(checkpoint)
    return float(model.evaluate(val, verbose=0, return_dict=True)["loss"])


@pytest.mark.parametrize("kind", ["tfdata", "pydataset"])
def test_killed_and_resumed_trial_matches_the_uninterrupted_one(tmp_path: Path, kind: str) -> None:
    source = SOURCE.format(kind=kind, batches=batches_source(4))
    runs: dict[str, tuple[optuna.trial.FrozenTrial, str]] = {}
    for name in ("straight", "killed"):
        folder = tmp_path / name
        folder.mkdir()
        space = write_space(folder, source=source, settings=SETTINGS)
        if name == "killed":
            proc = start(folder, *ARGS)
            wait_for(proc, lambda f=folder: epochs_done(f, 0) >= 2)
            kill(proc)
            (left,) = study(folder).trials
            assert left.state == optuna.trial.TrialState.RUNNING  # killed mid-trial
            out = finish(folder, *ARGS).stdout
            assert "trial 0 was left running by a process that is gone; resuming it" in out
        else:
            finish(folder, *ARGS)
        (trial,) = study(folder).trials
        history = (folder / "results" / "tiny" / "trials" / "0" / "history.csv").read_text()
        runs[name] = (trial, history)
    (straight, straight_history), (killed, killed_history) = runs["straight"], runs["killed"]
    (row,) = read_rows(tmp_path / "killed" / "results" / "tiny" / "trials.csv")
    assert int(row["resumed_from"]) >= 2 and not row["resume_note"]
    assert killed.state == straight.state == optuna.trial.TrialState.COMPLETE
    assert killed.params == straight.params
    assert killed.user_attrs["stop_epoch"] == 6
    assert killed_history == straight_history  # every epoch's every log, exactly
    assert killed.user_attrs["best_score"] == straight.user_attrs["best_score"]
    assert killed.user_attrs["best_epoch"] == straight.user_attrs["best_epoch"]
    checkpoint = Path(killed.user_attrs["checkpoint"])
    assert validation_loss(space, checkpoint) == pytest.approx(
        killed.user_attrs["best_score"], rel=1e-5
    )
