"""The Keras datasets the recipes train on: from the Keras cache, or from a local file.

``load_mnist`` and ``load_imdb`` return exactly what ``keras.datasets.mnist.load_data``
and ``keras.datasets.imdb.load_data`` return. Without a ``data_path`` they *are* those
functions (the Keras cache, ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``, and a
download if the cache is empty); if that fails (no cached file, no network) the error
is one line that says where Keras looked and how to pass a local file instead.

With a ``data_path`` nothing is downloaded: the file is read in the layout Keras'
own ``.npz`` files use (arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``), checked,
and processed as Keras processes its cached file. For IMDB that is the raw index
sequences, shuffled with ``seed`` and re-indexed with ``start_char``, ``index_from``,
``maxlen``, ``num_words``, ``skip_top`` and ``oov_char`` exactly as Keras does it.
A local file cannot go through Keras' loader itself: Keras checks its cached file
against a fixed sha256 and downloads it again when the hash differs.

Keras (and so TensorFlow) is imported only when a loader needs it.
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sweep.core.errors import ConfigError

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
LAYOUT = "a local .npz with arrays x_train, y_train, x_test, y_test in Keras' layout"


def keras_cache_file(fname: str) -> Path:
    """Where ``keras.utils.get_file(fname, ...)`` looks for a dataset file.

    ``get_file`` takes Keras' home (``$KERAS_HOME``, else ``~/.keras``, else
    ``/tmp/.keras`` when the home directory is not writable), falls back to
    ``/tmp/.keras`` when that is not writable, and adds ``datasets/``.
    """
    try:
        from keras.src.backend.config import keras_home

        home = str(keras_home())
    except ImportError:  # pragma: no cover - a Keras that moved it; same rule, by hand
        if "KERAS_HOME" in os.environ:
            home = os.environ["KERAS_HOME"]
        else:
            user = os.path.expanduser("~")
            home = os.path.join(user if os.access(user, os.W_OK) else "/tmp", ".keras")
    base = os.path.expanduser(home)
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return Path(base) / "datasets" / fname


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".strip().rstrip(":")


def _from_keras(name: str, fname: str, load: Callable[[], Split]) -> Split:
    """Keras' own loader; if it fails, one line: expected, where, what happened, the fix."""
    cache = keras_cache_file(fname)
    existed = cache.exists()  # before: Keras deletes a cached file it failed to replace
    try:
        return load()
    except Exception as exc:
        found = (
            "a file Keras did not accept (with another sha256 than Keras expects, Keras "
            "deletes it and downloads the file again)"
            if existed
            else "no such file"
        )
        raise ConfigError(
            f"{name}: expected the Keras cache file {cache}, found {found}, and "
            f"keras.datasets.{name.lower()}.load_data() failed with {_first_line(exc)}; "
            f"pass --data-path FILE, {LAYOUT}"
        ) from None


# -- reading a local .npz ---------------------------------------------------------------

# An object array (IMDB's ragged sequences) can only be stored as a pickle. Like
# Keras' own loader, rebuild it with an unpickler that allows numpy's array
# reconstruction and nothing else, so a crafted file cannot run code.
_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_member(raw: io.BytesIO, *, objects: bool) -> np.ndarray:
    try:
        return np.lib.format.read_array(raw, allow_pickle=False)
    except ValueError:
        if not objects:
            raise
    raw.seek(0)
    version = np.lib.format.read_magic(raw)
    if version[0] == 1:
        np.lib.format.read_array_header_1_0(raw)
    elif version[0] in (2, 3):
        np.lib.format.read_array_header_2_0(raw)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    array = _ArrayUnpickler(raw).load()
    if not isinstance(array, np.ndarray):
        raise ValueError(f"a pickled {type(array).__name__}, not an array")
    return array


def _describe(path: Path, dataset: str) -> str:
    return f"{dataset} --data-path {path}"


def _open_npz(path: str | os.PathLike[str], dataset: str, *, objects: bool) -> dict[str, Any]:
    """The four arrays of a Keras-layout .npz, or a one-line ConfigError."""
    file = Path(path).expanduser()
    where = _describe(file, dataset)
    fix = f"pass --data-path FILE, {LAYOUT}"
    if not file.exists():
        raise ConfigError(f"{where}: expected {LAYOUT}, found no such file; {fix}")
    if not file.is_file():
        raise ConfigError(f"{where}: expected {LAYOUT}, found a directory; {fix}")
    arrays: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(file) as archive:
            for member in archive.namelist():
                key = member.removesuffix(".npy")
                if key in ARRAYS and member.endswith(".npy"):
                    with archive.open(member) as raw:
                        arrays[key] = _read_member(io.BytesIO(raw.read()), objects=objects)
    except zipfile.BadZipFile:
        raise ConfigError(
            f"{where}: expected {LAYOUT}, found a file that is not a .npz archive; {fix}"
        ) from None
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise ConfigError(
            f"{where}: expected {LAYOUT}, found an array numpy cannot read "
            f"({_first_line(exc)}); {fix}"
        ) from None
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        with zipfile.ZipFile(file) as archive:
            names = sorted(m.removesuffix(".npy") for m in archive.namelist())
        raise ConfigError(
            f"{where}: expected arrays {', '.join(ARRAYS)}, found "
            f"{', '.join(names) if names else 'none'} (missing {', '.join(missing)}); {fix}"
        )
    return arrays


def _bad(path: str | os.PathLike[str], dataset: str, expected: str, found: str) -> ConfigError:
    where = _describe(Path(path).expanduser(), dataset)
    return ConfigError(
        f"{where}: expected {expected}, found {found}; pass --data-path FILE, {LAYOUT}"
    )


def _shape(a: np.ndarray) -> str:
    return f"{a.dtype} {a.shape}"


def _check_labels(
    path: str | os.PathLike[str], dataset: str, name: str, y: Any, n: int, values: range
) -> None:
    expected = f"{name} as {n} integer labels in {values.start}..{values.stop - 1}"
    if not isinstance(y, np.ndarray) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        found = _shape(y) if isinstance(y, np.ndarray) else type(y).__name__
        raise _bad(path, dataset, expected, found)
    if len(y) != n:
        raise _bad(path, dataset, expected, f"{len(y)} labels for {n} samples")
    if len(y) and (int(y.min()) < values.start or int(y.max()) >= values.stop):
        raise _bad(path, dataset, expected, f"labels from {int(y.min())} to {int(y.max())}")


# -- MNIST ------------------------------------------------------------------------------


def load_mnist(data_path: str | os.PathLike[str] | None) -> Split:
    """``(x_train, y_train), (x_test, y_test)`` as ``keras.datasets.mnist.load_data()`` gives.

    Keras' layout: ``x`` uint8 ``(N, 28, 28)`` pixels 0..255, ``y`` uint8 ``(N,)`` digits 0..9.
    """
    if data_path is None:

        def keras_mnist() -> Split:
            import keras

            result: Split = keras.datasets.mnist.load_data()
            return result

        return _from_keras("MNIST", "mnist.npz", keras_mnist)
    f = _open_npz(data_path, "MNIST", objects=False)
    for split in ("train", "test"):
        x, y = f[f"x_{split}"], f[f"y_{split}"]
        expected = f"x_{split} as integer pixels 0..255 of shape (N, 28, 28) (uint8 in Keras)"
        if x.ndim != 3 or x.shape[1:] != (28, 28) or not np.issubdtype(x.dtype, np.integer):
            raise _bad(data_path, "MNIST", expected, _shape(x))
        if len(x) == 0:
            raise _bad(data_path, "MNIST", expected, "no samples")
        if int(x.min()) < 0 or int(x.max()) > 255:
            raise _bad(data_path, "MNIST", expected, f"pixels from {x.min()} to {x.max()}")
        _check_labels(data_path, "MNIST", f"y_{split}", y, len(x), range(10))
    return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


# -- IMDB -------------------------------------------------------------------------------


def _check_sequences(path: str | os.PathLike[str], name: str, x: Any) -> None:
    expected = f"{name} as a 1-D object array of word-index lists (ints >= 0)"
    if not isinstance(x, np.ndarray) or x.ndim != 1 or len(x) == 0:
        found = _shape(x) if isinstance(x, np.ndarray) else type(x).__name__
        raise _bad(path, "IMDB", expected, found)
    for seq in x:
        if not isinstance(seq, list | tuple | np.ndarray) or np.ndim(seq) != 1:
            raise _bad(path, "IMDB", expected, f"an element of type {type(seq).__name__}")
    words = itertools.chain.from_iterable(x)
    odd = {t for t in set(map(type, words)) if t is bool or not issubclass(t, int | np.integer)}
    if odd:
        kinds = ", ".join(sorted(t.__name__ for t in odd))
        raise _bad(path, "IMDB", expected, f"words of type {kinds}")
    lowest = min((min(seq) for seq in x if len(seq)), default=0)
    if lowest < 0:
        raise _bad(path, "IMDB", expected, f"a negative word index {lowest}")


def _remove_long_seq(maxlen: int, seq: list[list[int]], label: Any) -> tuple[list[Any], list[Any]]:
    """``keras.src.utils.python_utils.remove_long_seq``: keep sequences shorter than maxlen."""
    new_seq, new_label = [], []
    for x, y in zip(seq, label, strict=False):
        if len(x) < maxlen:
            new_seq.append(x)
            new_label.append(y)
    return new_seq, new_label


def load_imdb(
    data_path: str | os.PathLike[str] | None,
    *,
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
) -> Split:
    """``(x_train, y_train), (x_test, y_test)`` as ``keras.datasets.imdb.load_data(...)`` gives.

    A local file holds the raw sequences, like Keras' ``imdb.npz``: ``x_*`` 1-D object
    arrays of lists of word ranks (1 = the most frequent word), ``y_*`` int64 labels 0/1.
    """
    if data_path is None:

        def keras_imdb() -> Split:
            import keras

            result: Split = keras.datasets.imdb.load_data(
                num_words=num_words,
                skip_top=skip_top,
                maxlen=maxlen,
                seed=seed,
                start_char=start_char,
                oov_char=oov_char,
                index_from=index_from,
            )
            return result

        return _from_keras("IMDB", "imdb.npz", keras_imdb)
    f = _open_npz(data_path, "IMDB", objects=True)
    for split in ("train", "test"):
        _check_sequences(data_path, f"x_{split}", f[f"x_{split}"])
        n = len(f[f"x_{split}"])
        _check_labels(data_path, "IMDB", f"y_{split}", f[f"y_{split}"], n, range(2))

    # From here on, keras/src/datasets/imdb.py load_data (Keras 3.15), step for step.
    x_train: Any = f["x_train"]
    x_test: Any = f["x_test"]
    labels_train: Any = f["y_train"]
    labels_test: Any = f["y_test"]

    rng = np.random.RandomState(seed)
    indices = np.arange(len(x_train))
    rng.shuffle(indices)
    x_train = x_train[indices]
    labels_train = labels_train[indices]

    indices = np.arange(len(x_test))
    rng.shuffle(indices)
    x_test = x_test[indices]
    labels_test = labels_test[indices]

    if start_char is not None:
        x_train = [[start_char] + [w + index_from for w in x] for x in x_train]
        x_test = [[start_char] + [w + index_from for w in x] for x in x_test]
    elif index_from:
        x_train = [[w + index_from for w in x] for x in x_train]
        x_test = [[w + index_from for w in x] for x in x_test]
    else:
        x_train = [[w for w in x] for x in x_train]
        x_test = [[w for w in x] for x in x_test]

    if maxlen:
        x_train, labels_train = _remove_long_seq(maxlen, x_train, labels_train)
        x_test, labels_test = _remove_long_seq(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise _bad(
                data_path,
                "IMDB",
                f"sequences shorter than maxlen={maxlen} in both x_train and x_test",
                f"{len(x_train)} in x_train and {len(x_test)} in x_test",
            )

    xs = x_train + x_test
    labels = np.concatenate([labels_train, labels_test])

    if not num_words:
        num_words = max(max(x) for x in xs)

    # By convention 2 is the out-of-vocabulary word, and index_from (3) reserves
    # 0 (padding), 1 (start), 2 (OOV).
    if oov_char is not None:
        xs = [[w if (skip_top <= w < num_words) else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]

    idx = len(x_train)
    x_train_out, y_train = np.array(xs[:idx], dtype="object"), labels[:idx]
    x_test_out, y_test = np.array(xs[idx:], dtype="object"), labels[idx:]
    return (x_train_out, y_train), (x_test_out, y_test)
