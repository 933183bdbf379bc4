"""IMDB sentiment with a 1-D convnet, the classic keras/examples imdb_cnn.py, as a search space.

The model and data are those of the classic Keras example imdb_cnn.py
(keras-team/keras, examples/imdb_cnn.py, Keras 2): the 5,000 most frequent words,
reviews padded to 400 words with pad_sequences; Embedding(5000, 50) - Dropout(0.2) -
Conv1D(250, 3, valid, relu, strides 1) - GlobalMaxPooling1D - Dense(250) -
Dropout(0.2) - ReLU - Dense(1, sigmoid) (350,751 parameters); binary crossentropy,
Adam, batch size 32. Training is run the way the common EarlyStopping +
ModelCheckpoint version of it runs: validation_split 0.2, EarlyStopping on val_loss
(mode min, patience 30, min_delta 0.0001), the best model kept, and the best model's
test accuracy reported. (The original trained 2 epochs with the test set as
validation data; 100 epochs here leave patience 30 room to act.)

The tutorial's fixed choices are hyperparameters whose KerasTuner defaults are the
tutorial's values, and the first trial uses the defaults: trial 0 *is* the tutorial.

    embedding_dim 50, filters 250, kernel_size 3, hidden_units 250, dropout 0.2
    (both Dropout layers), batch_size 32

Data: keras.datasets.imdb (the Keras cache, ~/.keras/datasets/imdb.npz, or
$KERAS_HOME/datasets/), or a local .npz in the same raw layout passed as
``--data-path FILE`` (or ``"data_path"`` in SETTINGS); either way it goes through
imdb.load_data's processing (seed 113 shuffle, start/OOV characters, index_from 3,
num_words 5000).
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner

from sweep.space.datasets import load_imdb

MAX_FEATURES = 5000  # vocabulary: the most frequent words, the rest become OOV (2)
MAXLEN = 400  # every review padded (or cut, at the front) to 400 words

SETTINGS = {
    "monitor": "val_loss",
    "mode": "min",
    "epochs": 100,
    "validation_split": 0.2,
    "patience": 30,
    "min_delta": 0.0001,
    "first_trial": "defaults",  # trial 0 is the tutorial
    "trials": 10,
}


def load_data(data_path: str | None = None) -> Any:
    """The example's preprocessing; no validation pair, so validation_split 0.2 applies."""
    (x_train, y_train), (x_test, y_test) = load_imdb(data_path, num_words=MAX_FEATURES)
    x_train = keras.utils.pad_sequences(x_train, maxlen=MAXLEN)
    x_test = keras.utils.pad_sequences(x_test, maxlen=MAXLEN)
    return (x_train, y_train), None, (x_test, y_test)


class ImdbConv1D(keras_tuner.HyperModel):
    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2)
        model = keras.Sequential(
            [
                keras.Input(shape=(MAXLEN,)),
                # An efficient embedding layer mapping the vocabulary indices into
                # embedding_dim dimensions.
                keras.layers.Embedding(
                    MAX_FEATURES, hp.Int("embedding_dim", 25, 100, step=25, default=50)
                ),
                keras.layers.Dropout(dropout),
                # A Convolution1D, which will learn `filters` word group filters of
                # size `kernel_size`.
                keras.layers.Conv1D(
                    hp.Int("filters", 50, 500, step=50, default=250),
                    hp.Int("kernel_size", 2, 7, default=3),
                    padding="valid",
                    activation="relu",
                    strides=1,
                ),
                keras.layers.GlobalMaxPooling1D(),
                # A vanilla hidden layer.
                keras.layers.Dense(hp.Int("hidden_units", 50, 500, step=50, default=250)),
                keras.layers.Dropout(dropout),
                keras.layers.Activation("relu"),
                # A single unit output layer, squashed with a sigmoid.
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(
            loss="binary_crossentropy",
            optimizer=keras.optimizers.Adam(),  # the example's "adam": learning rate 1e-3
            metrics=["accuracy"],
        )
        return model

    def fit(
        self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any
    ) -> Any:
        batch_size = hp.Choice("batch_size", [16, 32, 64, 128], default=32)
        return model.fit(*args, batch_size=batch_size, **kwargs)


hypermodel = ImdbConv1D()
