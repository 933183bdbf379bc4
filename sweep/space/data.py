"""A space's data: what ``load_data()`` returned, checked and split the way Keras splits it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweep.core.errors import ConfigError
from sweep.space.inputs import InputKind, kind_of, refuse

Pair = tuple[Any, Any]

_SHAPES = (
    "(x, y), or ((x, y), (x_val, y_val)), or ((x, y), (x_val, y_val), (x_test, y_test)); "
    "each part may also be (x, y, sample_weight), a tf.data.Dataset, a keras.utils.PyDataset "
    "or a generator function; use None for a missing validation part"
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
    # sample weights of array parts; for the other kinds x_* holds the input, y_* is None
    w_train: Any = None
    w_val: Any = None
    w_test: Any = None
    kinds: tuple[InputKind, InputKind | None, InputKind | None] = (
        InputKind.ARRAYS,
        InputKind.ARRAYS,
        None,
    )

    @property
    def has_test(self) -> bool:
        return self.x_test is not None

    @property
    def arrays(self) -> bool:
        """Training and validation are arrays (what validation_split and memmaps apply to)."""
        return all(k in (InputKind.ARRAYS, None) for k in self.kinds)


def _is_part(obj: Any) -> bool:
    return kind_of(obj) is not None or (
        isinstance(obj, tuple | list) and len(obj) in (2, 3) and not _is_pair_of_pairs(obj)
    )


def _is_pair_of_pairs(obj: Any) -> bool:
    def part(p: Any) -> bool:
        return (
            p is None
            or kind_of(p) is not None
            or (isinstance(p, tuple | list) and len(p) in (2, 3))
        )

    return (
        isinstance(obj, tuple | list)
        and len(obj) >= 1
        and all(part(p) for p in obj)
        and (kind_of(obj[0]) is not None or isinstance(obj[0], tuple | list))
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


def _check_arrays(origin: str, label: str, part: tuple[Any, ...]) -> None:
    try:
        sizes = [length(a) for a in part]
    except (TypeError, IndexError, StopIteration):
        raise refuse(origin, label, part[0]) from None
    if len(set(sizes)) != 1 or sizes[0] == 0:
        raise ConfigError(
            f"{origin}: the {label} arrays must be non-empty and of equal length, "
            f"got x with {sizes[0]} and y with {sizes[1]} samples"
            + (f" and sample_weight with {sizes[2]}" if len(sizes) > 2 else "")
            + "; return one label per sample"
        )


def _part(origin: str, label: str, raw: Any) -> tuple[InputKind | None, Any, Any, Any]:
    """(kind, x, y, w) of one of training/validation/test."""
    if raw is None:
        return None, None, None, None
    kind = kind_of(raw)
    if kind is not None:
        return kind, raw, None, None
    if not isinstance(raw, tuple | list) or len(raw) not in (2, 3):
        raise refuse(origin, label, raw)
    for a in raw:
        if kind_of(a) is not None:
            raise ConfigError(
                f"{origin}: the {label} part is a tuple holding a {type(a).__name__}; return "
                "the dataset itself (yielding (x, y) or (x, y, w)), not inside a tuple"
            )
    _check_arrays(origin, label, tuple(raw))
    return InputKind.ARRAYS, raw[0], raw[1], raw[2] if len(raw) == 3 else None


def prepare_data(raw: Any, *, validation_split: float, source: Path) -> Data:
    """Normalise what ``load_data()`` returned; split off validation data when none was given."""
    origin = f"search space {source}: load_data()"
    if _is_part(raw):
        parts: list[Any] = [raw]
    elif _is_pair_of_pairs(raw) and len(raw) <= 3:
        parts = list(raw)
    else:
        raise ConfigError(f"{origin} returned {type(raw).__name__}; expected {_SHAPES}")
    while len(parts) < 3:
        parts.append(None)
    labels = ("training", "validation", "test")
    (kt, x, y, w), (kv, xv, yv, wv), (ks, xs, ys, ws) = (
        _part(origin, label, p) for label, p in zip(labels, parts, strict=True)
    )
    if kt is None:
        raise ConfigError(f"{origin} returned no training data; expected {_SHAPES}")
    given = dict(x_test=xs, y_test=ys, w_test=ws)
    if kv is not None:
        return Data(
            x, y, xv, yv, **given, validation="given", w_train=w, w_val=wv, kinds=(kt, kv, ks)
        )
    if validation_split <= 0 or kt is not InputKind.ARRAYS:
        return Data(x, y, None, None, **given, validation="none", w_train=w, kinds=(kt, None, ks))
    (x, y), (xv, yv) = train_validation_split(x, y, validation_split)
    if w is not None:
        (w, _), (wv, _) = train_validation_split(w, w, validation_split)
    return Data(
        x,
        y,
        xv,
        yv,
        **given,
        validation="split",
        w_train=w,
        w_val=wv,
        kinds=(kt, InputKind.ARRAYS, ks),
    )


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


def fingerprint(*arrays: Any) -> str:
    """sha256 over the bytes, shapes and dtypes of the arrays (dicts and lists walked)."""
    digest = hashlib.sha256()

    def feed(a: Any) -> None:
        if a is None:
            digest.update(b"none")
        elif isinstance(a, dict):
            for key in sorted(a):
                digest.update(str(key).encode())
                feed(a[key])
        elif isinstance(a, list | tuple):
            for item in a:
                feed(item)
        else:
            arr = np.ascontiguousarray(a)
            digest.update(f"{arr.dtype}{arr.shape}".encode())
            digest.update(arr.tobytes())

    for a in arrays:
        feed(a)
    return f"sha256:{digest.hexdigest()}"


def data_fingerprint(data: Any, part: int) -> str:
    """``fingerprint`` of an array part; the kind's name for the others (not hashed)."""
    kind = data.kinds[part]
    if kind is not InputKind.ARRAYS:
        return f"{kind.value}: not fingerprinted"
    if part == 0:
        return fingerprint(
            data.x_train, data.y_train, *([data.w_train] if data.w_train is not None else [])
        )
    return fingerprint(data.x_val, data.y_val, *([data.w_val] if data.w_val is not None else []))
