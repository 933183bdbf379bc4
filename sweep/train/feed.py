"""Training data order as a function of (seed, epoch).

Keras shuffles with a stateful RNG, so epoch k's order depends on every epoch
before it in the same process: a trial resumed at epoch k would see other
batches than the uninterrupted run. Here epoch e's permutation is
``stateless_shuffle(range(n), seed=(seed, e))``; the batches are then gathered
the way Keras' own array adapter gathers them (a tf.data pipeline), so a resumed
trial trains on exactly the batches it would have trained on.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from sweep.space.data import cast_as_keras_fit, length

PREFETCH = 2  # batches prepared ahead of the training step


def epoch_feed(
    x: Any,
    y: Any,
    *,
    batch_size: int,
    seed: int,
    initial_epoch: int,
    epochs: int,
    w: Any = None,
    steps: int | None = None,
) -> tuple[Any, int]:
    """A dataset of the batches of epochs ``initial_epoch .. epochs-1``, and steps per epoch
    (``w``: sample weights, gathered with the same indices; ``steps``: each epoch trains
    the first ``steps`` batches of its own permutation, so a resumed trial still trains
    on what the uninterrupted one would have)."""
    floatx = keras.config.floatx()
    x, y = cast_as_keras_fit(x, floatx), cast_as_keras_fit(y, floatx)  # as Model.fit does
    n = length(x)
    steps = min(steps or math.ceil(n / batch_size), math.ceil(n / batch_size))
    arrays = tf.data.Dataset.from_tensors((x, y) if w is None else (x, y, w)).repeat()
    key = tf.constant(seed, tf.int64)

    def one_epoch(epoch: Any) -> Any:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([key, epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).take(steps)

    indices = tf.data.Dataset.range(initial_epoch, epochs).flat_map(one_epoch)

    def gather(index: Any, data: Any) -> Any:
        return tf.nest.map_structure(lambda a: tf.gather(a, index, axis=0), data)

    batches = tf.data.Dataset.zip((indices, arrays)).map(gather)
    # A fixed prefetch and no autotuning: the feed holds every remaining epoch, so a trial
    # that stops early cancels it mid-stream, and with tf.data's autotuning on, that
    # cancellation held up fit()'s return for up to 2.5 s, at random (1 trial in 5 here).
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(PREFETCH).with_options(options), steps


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """A permutation of ``range(n)``, a function of (seed, epoch) only: the one
    ``epoch_feed`` uses, so memory-mapped arrays train in the same order."""
    order = tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.constant([seed, epoch], tf.int64)
    )
    return np.asarray(order)
