"""Memory-mapped arrays (what ``--jobs`` workers train on) fed batch by batch.

The arrays are never copied whole into a tensor: two of tf.data's threads gather the
next batches from the file with NumPy while the model trains on this one, in the order
``sweep.train.feed.epoch_feed`` gives in-memory arrays, a function of (seed, epoch).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import tensorflow as tf

from sweep.space.data import length
from sweep.train.feed import PREFETCH, epoch_order


def is_memmapped(a: Any) -> bool:
    if isinstance(a, dict):
        return any(is_memmapped(v) for v in a.values())
    if isinstance(a, list | tuple):
        return any(is_memmapped(v) for v in a)
    return isinstance(a, np.memmap)


class _Gather:
    """Batch ``i`` of a memory-mapped feed, read with NumPy: batch ``i % steps`` of epoch
    ``initial_epoch + i // steps``'s permutation (``seed=None``: the rows in order)."""

    def __init__(
        self, leaves: list[Any], *, batch_size: int, seed: int | None, initial_epoch: int
    ) -> None:
        self.leaves = leaves
        self.n = length(leaves[0])
        self.batch_size = batch_size
        self.seed = seed
        self.initial_epoch = initial_epoch
        self.steps = math.ceil(self.n / batch_size)
        self.lock = threading.Lock()
        self.order: tuple[int, np.ndarray] | None = None

    def index(self, i: int) -> np.ndarray:
        j = i % self.steps
        if self.seed is None:
            return np.arange(j * self.batch_size, min(self.n, (j + 1) * self.batch_size))
        epoch = self.initial_epoch + i // self.steps
        with self.lock:  # tf.data's map threads share the epoch's permutation
            if self.order is None or self.order[0] != epoch:
                self.order = (epoch, epoch_order(self.seed, epoch, self.n))
            order = self.order[1]
        return order[j * self.batch_size : (j + 1) * self.batch_size]

    def __call__(self, i: Any) -> list[np.ndarray]:
        index = self.index(int(i))
        return [np.asarray(leaf[index]) for leaf in self.leaves]


def memmap_feed(
    arrays: tuple[Any, ...],
    *,
    batch_size: int,
    seed: int | None,
    initial_epoch: int = 0,
    epochs: int = 1,
    steps: int | None = None,
) -> tuple[Any, int]:
    """A tf.data feed of (memory-mapped) arrays, never copied whole into a tensor: two
    of tf.data's threads gather the next batches with NumPy while the model trains on
    this one (in order). With a ``seed``: epochs ``initial_epoch .. epochs-1``, ``steps``
    batches of each epoch's permutation (as ``epoch_feed`` orders in-memory arrays);
    without: the rows in order, once (validation, evaluation). Returns the feed and its
    steps per epoch."""
    structure = tuple(a for a in arrays if a is not None)
    leaves = tf.nest.flatten(structure)
    gather = _Gather(leaves, batch_size=batch_size, seed=seed, initial_epoch=initial_epoch)
    per_epoch = min(steps or gather.steps, gather.steps)
    total = gather.steps if seed is None else (epochs - initial_epoch) * gather.steps
    dtypes = [tf.as_dtype(leaf.dtype) for leaf in leaves]
    shapes = [(None, *np.shape(leaf)[1:]) for leaf in leaves]

    def fetch(i: Any) -> Any:
        batch = tf.numpy_function(gather, [i], dtypes, stateful=False)
        for tensor, shape in zip(batch, shapes, strict=True):
            tensor.set_shape(shape)
        return tf.nest.pack_sequence_as(structure, batch)

    batches = tf.data.Dataset.range(total)
    if seed is not None and per_epoch < gather.steps:  # steps_per_epoch: each epoch's first
        batches = batches.filter(lambda i: i % gather.steps < per_epoch)
    feed = batches.map(fetch, num_parallel_calls=2, deterministic=True)
    options = tf.data.Options()
    options.autotune.enabled = False  # as epoch_feed: an early stop cancels it at once
    return feed.prefetch(PREFETCH).with_options(options), per_epoch
