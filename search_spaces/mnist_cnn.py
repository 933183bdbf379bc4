"""MNIST, the Keras example "Simple MNIST convnet", as a search space.

The model and data are those of the Keras example "Simple MNIST convnet"
(https://keras.io/examples/vision/mnist_convnet/, keras-io
examples/vision/mnist_convnet.py): pixels scaled to [0, 1] as float32 and shaped
28x28x1, one-hot labels; Conv2D(32, 3, relu) - MaxPooling2D(2) - Conv2D(64, 3, relu) -
MaxPooling2D(2) - Flatten - Dropout(0.5) - Dense(10, softmax) (34,826 parameters);
categorical crossentropy, Adam, batch size 128. Training is run the way the common
EarlyStopping + ModelCheckpoint version of it runs: 20 epochs, validation_split 0.2,
EarlyStopping on val_accuracy (mode max, patience 3), the best model kept, and the
best model's test accuracy reported. (The Keras example itself trains 15 epochs with
validation_split 0.1 and no callbacks.)

The tutorial's fixed choices are hyperparameters whose KerasTuner defaults are the
tutorial's values, and the first trial uses the defaults: trial 0 *is* the tutorial.

    filters_1 32, filters_2 64, dropout 0.5, learning_rate 1e-3 (Adam's default),
    batch_size 128

Data: keras.datasets.mnist (the Keras cache, ~/.keras/datasets/mnist.npz, or
$KERAS_HOME/datasets/), or a local .npz in the same layout passed as
``--data-path FILE`` (or ``"data_path"`` in SETTINGS).
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner
import numpy as np

from sweep.space.datasets import load_mnist

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)

SETTINGS = {
    "monitor": "val_accuracy",
    "mode": "max",
    "epochs": 20,
    "validation_split": 0.2,
    "patience": 3,
    "min_delta": 0.0,
    "first_trial": "defaults",  # trial 0 is the tutorial
    "trials": 10,
}


def load_data(data_path: str | None = None) -> Any:
    """The example's preprocessing; no validation pair, so validation_split 0.2 applies."""
    (x_train, y_train), (x_test, y_test) = load_mnist(data_path)
    # Scale images to the [0, 1] range, and make sure images have shape (28, 28, 1).
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    # Convert class vectors to binary class matrices.
    y_train = keras.utils.to_categorical(y_train, NUM_CLASSES)
    y_test = keras.utils.to_categorical(y_test, NUM_CLASSES)
    return (x_train, y_train), None, (x_test, y_test)


class MnistCNN(keras_tuner.HyperModel):
    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input(shape=INPUT_SHAPE),
                keras.layers.Conv2D(
                    hp.Int("filters_1", 16, 64, step=16, default=32),
                    kernel_size=(3, 3),
                    activation="relu",
                ),
                keras.layers.MaxPooling2D(pool_size=(2, 2)),
                keras.layers.Conv2D(
                    hp.Int("filters_2", 32, 128, step=32, default=64),
                    kernel_size=(3, 3),
                    activation="relu",
                ),
                keras.layers.MaxPooling2D(pool_size=(2, 2)),
                keras.layers.Flatten(),
                keras.layers.Dropout(hp.Float("dropout", 0.0, 0.7, step=0.1, default=0.5)),
                keras.layers.Dense(NUM_CLASSES, activation="softmax"),
            ]
        )
        learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
        model.compile(
            loss="categorical_crossentropy",
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            metrics=["accuracy"],
        )
        return model

    def fit(
        self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any
    ) -> Any:
        batch_size = hp.Choice("batch_size", [32, 64, 128, 256], default=128)
        return model.fit(*args, batch_size=batch_size, **kwargs)


hypermodel = MnistCNN()
