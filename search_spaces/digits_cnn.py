"""The offline default: a small CNN on scikit-learn's bundled 8x8 digits (no download).

1,797 images; the last 20% of the shuffled set is held out by validation_split,
exactly as Keras' ``fit(validation_split=0.2)`` would.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.datasets import load_digits

SETTINGS = {
    "monitor": "val_accuracy",
    "mode": "auto",  # resolved as Keras does: max for accuracy
    "epochs": 30,
    "batch_size": 32,
    "validation_split": 0.2,
    "patience": 4,
    "min_delta": 0.0,
    "trials": 8,
}


def load_data() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]  # (1797, 8, 8, 1) in [0, 1]
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))  # fixed shuffle, same every run
    return x[order], y[order]


def build_model(hp) -> keras.Model:  # hp: keras_tuner.HyperParameters
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Conv2D(hp.Int("filters", 8, 32, step=8), 3, padding="same", activation="relu")(
        inputs
    )
    if hp.Boolean("second_conv"):
        with hp.conditional_scope("second_conv", [True]):
            x = keras.layers.Conv2D(
                hp.Int("filters_2", 8, 32, step=8), 3, padding="same", activation="relu"
            )(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1))(x)
    x = keras.layers.Dense(hp.Choice("units", [32, 64, 128]), activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
