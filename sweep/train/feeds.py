"""Per-kind training feeds, keyed by (seed, epoch) wherever sweep controls the order.

- arrays: ``sweep.train.feed.epoch_feed`` (a permutation per (seed, epoch)); memory-mapped
  arrays (``--jobs`` workers) are gathered batch by batch with NumPy
  (``sweep.train.memmap``),
  in the same order, never copied whole into a tensor;
- a PyDataset: its batches in an order drawn per (seed, epoch) (``OrderedBatches``);
- a tf.data dataset that does not shuffle itself: shuffled per epoch with a buffer of
  ``shuffle_buffer`` seeded by (seed, epoch); one that shuffles is used as it is;
- a generator function: called afresh for each epoch, ``steps_per_epoch`` batches each.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from sweep.core.errors import ConfigError
from sweep.space.data import Data, head
from sweep.space.inputs import InputKind
from sweep.train.feed import epoch_feed, epoch_order
from sweep.train.memmap import is_memmapped, memmap_feed

PROBE_BATCHES = 2


class OrderedBatches(keras.utils.PyDataset):  # type: ignore[misc]
    """A user's PyDataset, its batches in an order drawn per (seed, epoch): item ``i`` is
    batch ``order(initial_epoch + i // steps)[i % steps]`` (infinite, so the order is a
    function of the index alone, with the user's workers too)."""

    def __init__(self, inner: Any, *, seed: int, initial_epoch: int, steps: int | None) -> None:
        super().__init__(
            workers=inner.workers,
            use_multiprocessing=inner.use_multiprocessing,
            max_queue_size=inner.max_queue_size,
        )
        self.inner = inner
        self.n = len(inner)
        self.seed = seed
        self.initial_epoch = initial_epoch
        self.steps = min(steps or self.n, self.n)

    @property
    def num_batches(self) -> int | None:
        return None

    def __getitem__(self, i: int) -> Any:
        epoch = self.initial_epoch + i // self.steps
        return self.inner[int(epoch_order(self.seed, epoch, self.n)[i % self.steps])]

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()


def _stages(ds: Any) -> list[str]:
    """The class names of a tf.data pipeline's stages, this one first."""
    names, todo, seen = [], [ds], set()
    while todo:
        d = todo.pop(0)
        if id(d) in seen:
            continue
        seen.add(id(d))
        names.append(type(d).__name__)
        todo.extend(getattr(d, "_inputs", lambda: [])())
    return names


def shuffles(ds: Any) -> bool:
    """Whether a tf.data pipeline shuffles somewhere (then sweep leaves its order alone)."""
    return any("Shuffle" in name for name in _stages(ds))


def is_batched(ds: Any) -> bool:
    """A dataset is taken as batched when every element's first dimension is unknown
    (what ``.batch()`` makes) or it was made by ``.batch``."""
    for name in _stages(ds):
        if "Unbatch" in name:
            return False
        if "Batch" in name:
            return True
    shapes = [s.shape for s in tf.nest.flatten(ds.element_spec) if hasattr(s, "shape")]
    return bool(shapes) and all(s.rank and s[0] is None for s in shapes)


def batches_of(ds: Any, batch_size: int) -> Any:
    return ds if is_batched(ds) else ds.batch(batch_size)


def count_steps(ds: Any, *, what: str) -> int:
    n = int(ds.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise ConfigError(
            f"the {what} tf.data dataset is infinite; give steps_per_epoch (validation_steps "
            "for validation) in fit_options(hp), or end it (.take(n))"
        )
    if n < 0:  # unknown: count once
        n = int(ds.reduce(np.int64(0), lambda c, _: c + 1))
    return n


def dataset_feed(
    ds: Any,
    *,
    batch_size: int,
    seed: int,
    initial_epoch: int,
    epochs: int,
    buffer: int,
    steps: int | None,
) -> tuple[Any, int]:
    own_order = shuffles(ds)

    def one_epoch(epoch: int) -> Any:
        d = ds if own_order else ds.shuffle(buffer, seed=seed * 1_000_003 + epoch)
        d = batches_of(d, batch_size)
        return d if steps is None else d.take(steps)

    n = steps or count_steps(batches_of(ds, batch_size), what="training")
    feed = one_epoch(initial_epoch)
    for epoch in range(initial_epoch + 1, epochs):  # seeds are Python ints: one per epoch
        feed = feed.concatenate(one_epoch(epoch))
    return feed.prefetch(2), n


def weighted(batch: Any, class_weight: dict[int, float] | None) -> Any:
    """``(x, y)`` with ``class_weight`` as Keras applies it: per-sample weights of the class
    (the argmax of one-hot labels); Keras refuses class_weight for generators itself."""
    if class_weight is None:
        return batch
    x, y = batch[0], np.asarray(batch[1])
    labels = y if y.ndim == 1 or y.shape[-1] == 1 else np.argmax(y, axis=-1)
    w = np.asarray([class_weight[int(c)] for c in labels.reshape(-1)], dtype="float32")
    return (x, batch[1], w)


def generator_feed(
    fn: Callable[[], Any],
    *,
    steps: int,
    first: int,
    last: int | None,
    class_weight: dict[int, float] | None = None,
) -> Iterator[Any]:
    """``steps`` batches of a fresh ``fn()`` per epoch, epochs ``first .. last-1`` (forever
    when ``last`` is None)."""
    for epoch in itertools.count(first) if last is None else range(first, last):
        it = iter(fn())
        for k in range(steps):
            try:
                yield weighted(next(it), class_weight)
            except StopIteration:
                raise ConfigError(
                    f"the generator function ran out after {k} batches in epoch {epoch + 1}, "
                    f"and steps_per_epoch is {steps}; lower steps_per_epoch (or "
                    "validation_steps) in fit_options(hp)"
                ) from None


def as_dataset(make: Callable[[], Iterator[Any]], first: Any) -> Any:
    """A tf.data dataset that calls ``make()`` afresh each time it is iterated (Keras'
    own generator adapter replays its peeked batches on every new iteration)."""

    def spec(a: Any) -> Any:
        a = np.asarray(a)
        return tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype))

    signature = tf.nest.map_structure(spec, tuple(first))
    return tf.data.Dataset.from_generator(
        lambda: (tuple(b) for b in make()), output_signature=signature
    )


def training_input(
    data: Data,
    *,
    batch_size: int,
    seed: int,
    initial_epoch: int,
    epochs: int,
    buffer: int,
    options: dict[str, Any],
) -> tuple[Any, int]:
    """The feed of epochs ``initial_epoch .. epochs-1`` and its steps per epoch."""
    kind, x = data.kinds[0], data.x_train
    steps = options.get("steps_per_epoch")
    if kind is InputKind.ARRAYS:
        arrays = (x, data.y_train, data.w_train)
        if is_memmapped(arrays):
            return memmap_feed(
                arrays,
                batch_size=batch_size,
                seed=seed,
                initial_epoch=initial_epoch,
                epochs=epochs,
                steps=steps,
            )
        return epoch_feed(
            x,
            data.y_train,
            batch_size=batch_size,
            seed=seed,
            initial_epoch=initial_epoch,
            epochs=epochs,
            w=data.w_train,
            steps=steps,
        )
    if kind is InputKind.DATASET:
        return dataset_feed(
            x,
            batch_size=batch_size,
            seed=seed,
            initial_epoch=initial_epoch,
            epochs=epochs,
            buffer=buffer,
            steps=steps,
        )
    if kind is InputKind.PYDATASET:
        feed = OrderedBatches(x, seed=seed, initial_epoch=initial_epoch, steps=steps)
        return feed, feed.steps
    if steps is None:
        raise ConfigError(
            "the training data is a generator function: give steps_per_epoch (batches per "
            "epoch) in fit_options(hp)"
        )
    cw = options.get("class_weight")
    first = weighted(next(iter(x())), cw)
    make = lambda: generator_feed(x, steps=steps, first=initial_epoch, last=epochs, class_weight=cw)  # noqa: E731
    return as_dataset(make, first).prefetch(2), steps


def validation_kwargs(data: Data, *, batch_size: int, options: dict[str, Any]) -> dict[str, Any]:
    """fit's validation_data (and validation_steps/_batch_size) for the validation part."""
    kind, x = data.kinds[1], data.x_val
    steps = options.get("validation_steps")
    vbatch = options.get("validation_batch_size") or batch_size
    if kind is None or x is None:
        return {}
    if kind is InputKind.ARRAYS:
        arrays = (x, data.y_val, data.w_val)
        if is_memmapped(arrays):
            return {"validation_data": memmap_feed(arrays, batch_size=vbatch, seed=None)[0]}
        value = tuple(a for a in arrays if a is not None)
        return {"validation_data": value, "validation_batch_size": vbatch}
    if kind is InputKind.DATASET:
        return {"validation_data": batches_of(x, vbatch), "validation_steps": steps}
    if kind is InputKind.PYDATASET:
        return {"validation_data": x, "validation_steps": steps}
    if steps is None:  # refused before (sweep.train.finite): it may never end
        return {"validation_data": as_dataset(lambda: iter(x()), next(iter(x())))}
    # Keras keeps one validation iterator across epochs when validation_steps is given:
    # each epoch reads the first validation_steps batches of a fresh call
    fresh = lambda: generator_feed(x, steps=steps, first=0, last=None)  # noqa: E731
    return {
        "validation_data": as_dataset(fresh, next(iter(x()))),
        "validation_steps": steps,
    }


def evaluate_kwargs(
    kind: InputKind | None, x: Any, y: Any, w: Any, *, batch_size: int
) -> dict[str, Any]:
    """``model.evaluate`` keywords that score a part as fit's validation scored it."""
    if kind is InputKind.ARRAYS:
        if is_memmapped((x, y, w)):
            return {"x": memmap_feed((x, y, w), batch_size=batch_size, seed=None)[0]}
        return {"x": x, "y": y, "sample_weight": w, "batch_size": batch_size}
    if kind is InputKind.DATASET:
        return {"x": batches_of(x, batch_size)}
    if kind is InputKind.PYDATASET:
        return {"x": x}
    return {"x": iter(x())}


def probe_kwargs(data: Data) -> tuple[dict[str, Any], Any]:
    """A few batches of the training and validation input: (fit keywords, validation)."""
    n = 8
    val = None
    if data.kinds[1] is not None and data.x_val is not None:
        val = _few(data.kinds[1], data.x_val, data.y_val, data.w_val, n)
    train = _few(data.kinds[0], data.x_train, data.y_train, data.w_train, n)
    if data.kinds[0] is InputKind.ARRAYS:
        names = ("x", "y", "sample_weight")
        return {**dict(zip(names, train, strict=False)), "batch_size": n}, val
    return {"x": train}, val


def _few(kind: InputKind | None, x: Any, y: Any, w: Any, n: int) -> Any:
    if kind is InputKind.ARRAYS:
        return tuple(
            np.asarray(head(a, n)) if not isinstance(a, dict | list | tuple) else head(a, n)
            for a in (x, y, w)
            if a is not None
        )
    if kind is InputKind.DATASET:
        return batches_of(x, n).take(PROBE_BATCHES)
    if kind is InputKind.PYDATASET:
        return FewBatches([x[i] for i in range(min(PROBE_BATCHES, len(x)))])
    return FewBatches(list(itertools.islice(iter(x()), PROBE_BATCHES)))


class FewBatches(keras.utils.PyDataset):  # type: ignore[misc]
    def __init__(self, batches: list[Any]) -> None:
        super().__init__()
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Any:
        return self.batches[i]
