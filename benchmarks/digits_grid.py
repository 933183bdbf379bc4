"""The digits CNN with a finite grid of 8 configurations, for benchmarks: every trial
trains exactly `epochs` epochs (patience larger than epochs), so runs compare equal work."""

from __future__ import annotations

import keras
import numpy as np
from sklearn.datasets import load_digits

SETTINGS = {
    "monitor": "val_accuracy",
    "mode": "max",
    "epochs": 8,
    "patience": 1000,
    "batch_size": 32,
    "validation_split": 0.2,
    "trials": 8,
    "sampler": "grid",
}


def load_data() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], digits.target.astype("int64")[order]


def build_model(hp) -> keras.Model:  # type: ignore[no-untyped-def]
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Conv2D(hp.Choice("filters", [8, 16]), 3, padding="same", activation="relu")(
        inputs
    )
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(hp.Choice("units", [32, 64]), activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-3, 3e-3])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
