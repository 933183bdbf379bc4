"""No hang, every signal obeyed (issue 23, items 1-4).

- an input that never ends (an infinite or unknown-length tf.data, a generator function)
  without its steps is refused before any trial, in one line naming the setting (exit 2);
  with the steps it trains;
- a trial stuck in one long call into TensorFlow: the second SIGTERM/SIGINT exits at once
  (130), nothing recorded lost;
- SIGTERM at any moment just after start-up: exit 130, one line, no traceback, no trial
  started after it;
- ``--jobs 2`` and SIGTERM to the command: every worker hears it, none starts a trial
  after it, exit 130.

Real Keras training, real Optuna SQLite studies, real processes and signals.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import run_cli, sweep_subprocess, write_space

# --------------------------------------------------------------------------- inputs that never end

ENDLESS = """
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

SETTINGS = {{"monitor": "val_loss", "epochs": 2, "batch_size": 16, "patience": 2, "trials": 1}}
CASE = {case!r}
STEPS = {steps!r}


def arrays(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 8)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def forever(x, y):
    def batches():
        while True:
            yield x[:16], y[:16]
    return batches


def load_data():
    (x, y), (xv, yv) = arrays(0), arrays(1)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(16)
    if CASE == "repeat":
        return train.repeat(), val
    if CASE == "unknown":
        spec = (tf.TensorSpec((None, 8), tf.float32), tf.TensorSpec((None,), tf.int64))
        return tf.data.Dataset.from_generator(forever(x, y), output_signature=spec), val
    if CASE == "val-repeat":
        return train, val.repeat()
    if CASE == "val-generator":
        return train, forever(xv, yv)
    if CASE == "generator":
        return forever(x, y), val
    raise AssertionError(CASE)


def fit_options(hp):
    return STEPS


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
"""

# case: (the setting the line must name, what makes it train)
CASES = {
    "repeat": ("steps_per_epoch", {"steps_per_epoch": 4}),
    "unknown": ("steps_per_epoch", {"steps_per_epoch": 4}),
    "val-repeat": ("validation_steps", {"validation_steps": 4}),
    "val-generator": ("validation_steps", {"validation_steps": 4}),
    "generator": ("steps_per_epoch", {"steps_per_epoch": 4}),
}


def endless_space(folder: Path, case: str, steps: dict[str, int]) -> Path:
    source = ENDLESS.format(case=case, steps=steps)
    return write_space(folder, "endless", source=source)


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_input_that_never_ends_is_refused_before_any_trial(tmp_path: Path, case: str) -> None:
    """In a process of its own with a deadline: the old code sat at `trial 0 started`."""
    setting, _ = CASES[case]
    space = endless_space(tmp_path, case, {})
    done = sweep_subprocess("run", str(space), "--plain", cwd=tmp_path, timeout=180)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("sweep: error: search space"), done.stderr
    assert setting in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    assert "trial 0 started" not in done.stdout  # refused before any trial
    db = tmp_path / "results" / "endless" / "study.db"
    if db.exists():
        study = optuna.load_study(study_name="endless", storage=f"sqlite:///{db}")
        assert study.trials == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_input_that_never_ends_trains_with_its_steps(tmp_path: Path, case: str) -> None:
    _, steps = CASES[case]
    space = endless_space(tmp_path, case, steps)
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 0, err
    assert "1/1 trials finished" in out
    history = tmp_path / "results" / "endless" / "trials" / "0" / "history.csv"
    assert len(history.read_text().splitlines()) == 3  # a header and both epochs
