from __future__ import annotations

import keras
import numpy as np

SETTINGS = {
    "monitor": "val_loss",
    "epochs": 3,
    "batch_size": 32,
    "validation_split": 0.25,
    "patience": 1,
    "trials": 3,
}


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
            keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


_CALLS = [0]
_build = build_model


def build_model(hp):  # noqa: F811  the probe is call 1, trial 0 call 2, trial 1 call 3: it fails
    _CALLS[0] += 1
    if _CALLS[0] == 3:
        raise RuntimeError("made to fail (tests/data/old_study)")
    return _build(hp)
