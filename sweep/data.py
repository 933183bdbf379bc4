"""A space's data: what ``load_data()`` returned, checked and split the way Keras splits it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweep.errors import ConfigError

Pair = tuple[Any, Any]

_SHAPES = (
    "(x, y), or ((x, y), (x_val, y_val)), or ((x, y), (x_val, y_val), (x_test, y_test)); "
    "use None for a missing validation pair"
)


@dataclass(frozen=True)
class Data:
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any = None
    y_test: Any = None
    validation: str = "given"  # "given" by load_data, or "split" from validation_split

    @property
    def has_test(self) -> bool:
        return self.x_test is not None


def _is_pair(obj: Any) -> bool:
    return isinstance(obj, tuple | list) and len(obj) == 2 and not _is_pair_of_pairs(obj)


def _is_pair_of_pairs(obj: Any) -> bool:
    return (
        isinstance(obj, tuple | list)
        and len(obj) >= 1
        and all(part is None or (isinstance(part, tuple | list) and len(part) == 2) for part in obj)
        and isinstance(obj[0], tuple | list)
    )


def length(arr: Any) -> int:
    if isinstance(arr, dict):
        return length(next(iter(arr.values())))
    if isinstance(arr, list | tuple):
        return length(arr[0])
    return int(np.shape(arr)[0])


def _slice(a: Any, start: int, end: int) -> Any:
    if isinstance(a, dict):
        return {k: _slice(v, start, end) for k, v in a.items()}
    if isinstance(a, list | tuple):
        return type(a)(_slice(v, start, end) for v in a)
    return a[start:end]


def head(a: Any, n: int) -> Any:
    """The first ``n`` samples of an array (or a dict/list of arrays)."""
    return _slice(a, 0, min(n, length(a)))


def train_validation_split(x: Any, y: Any, validation_split: float) -> tuple[Pair, Pair]:
    """Split exactly as ``Model.fit(validation_split=...)`` does: the last fraction, unshuffled."""
    n = length(x)
    split_at = math.floor(n * (1.0 - validation_split))
    if split_at in (0, n):
        raise ConfigError(
            f"validation_split={validation_split} leaves {split_at} of {n} samples for "
            "training; expected both parts non-empty; give load_data more samples or change "
            "--validation-split"
        )

    return (
        (_slice(x, 0, split_at), _slice(y, 0, split_at)),
        (_slice(x, split_at, n), _slice(y, split_at, n)),
    )


def prepare_data(raw: Any, *, validation_split: float, source: Path) -> Data:
    """Normalise what ``load_data()`` returned; split off validation data when none was given."""
    origin = f"search space {source}: load_data()"
    if _is_pair(raw):
        parts: list[Any] = [tuple(raw)]
    elif _is_pair_of_pairs(raw) and len(raw) <= 3:
        parts = [None if p is None else tuple(p) for p in raw]
    else:
        raise ConfigError(f"{origin} returned {type(raw).__name__}; expected {_SHAPES}")
    while len(parts) < 3:
        parts.append(None)
    train, val, test = parts
    for label, pair in (("training", train), ("validation", val), ("test", test)):
        if pair is None:
            continue
        try:
            nx, ny = length(pair[0]), length(pair[1])
        except (TypeError, IndexError, StopIteration):
            raise ConfigError(
                f"{origin}: the {label} pair must hold arrays, got "
                f"{type(pair[0]).__name__} and {type(pair[1]).__name__}; return NumPy arrays"
            ) from None
        if nx != ny or nx == 0:
            raise ConfigError(
                f"{origin}: the {label} arrays must be non-empty and of equal length, "
                f"got x with {nx} and y with {ny} samples; return one label per sample"
            )
    assert train is not None
    x, y = train
    xt, yt = test if test is not None else (None, None)
    if val is not None:
        return Data(x, y, val[0], val[1], xt, yt, validation="given")
    if validation_split <= 0:
        return Data(x, y, None, None, xt, yt, validation="none")
    (x, y), (xv, yv) = train_validation_split(x, y, validation_split)
    return Data(x, y, xv, yv, xt, yt, validation="split")


def cast_as_keras_fit(a: Any, floatx: str) -> Any:
    """``a`` as ``Model.fit`` hands it to TensorFlow (keras' ``convert_to_sliceable``):
    floating NumPy arrays and pandas frames/series of another float type become
    ``floatx``, pandas becomes NumPy (a Series a column); dicts, lists and tuples are
    walked; anything else is left as it is."""
    if isinstance(a, dict):
        return {k: cast_as_keras_fit(v, floatx) for k, v in a.items()}
    if isinstance(a, list | tuple):
        return type(a)(cast_as_keras_fit(v, floatx) for v in a)

    def other_float(dtype: Any) -> bool:
        return dtype is not object and np.issubdtype(dtype, np.floating) and dtype != floatx

    kind = type(a).__name__
    if kind == "DataFrame" and type(a).__module__.startswith("pandas"):
        frame = a.astype(floatx) if any(other_float(d) for d in a.dtypes.values) else a
        return frame.to_numpy()
    if kind == "Series" and type(a).__module__.startswith("pandas"):
        series = a.astype(floatx) if other_float(a.dtype) else a
        return np.expand_dims(series.to_numpy(), axis=-1)
    if isinstance(a, np.ndarray) and other_float(a.dtype):
        return a.astype(floatx)
    return a
