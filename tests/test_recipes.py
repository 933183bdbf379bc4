"""The two tutorial recipes (search_spaces/mnist_cnn.py, search_spaces/imdb_conv1d.py) and
their data (sweep/space/datasets.py), on synthetic files of the real shapes and dtypes.

Nothing here downloads. Keras' own loaders only read their cache file if its sha256 is
the real dataset's, so a synthetic file can only reach them through a patched
``get_file`` (see ``keras_reads``); sweep reads it through ``--data-path``.

The end-to-end tests (``-k e2e``, also marked slow) run ``sweep run`` on the recipes;
they need the harness's ``--data-path``, HyperModel and ``first_trial`` support.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import keras
import keras_tuner
import numpy as np
import optuna
import pytest
from conftest import REPO, run_cli, sweep_subprocess

from sweep.core.errors import ConfigError
from sweep.space.datasets import keras_cache_file, load_imdb, load_mnist

SPACES = REPO / "search_spaces"
CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens: a download attempt fails at once

MNIST_DEFAULTS = {
    "filters_1": 32,
    "filters_2": 64,
    "dropout": 0.5,
    "learning_rate": 1e-3,
    "batch_size": 128,
}
IMDB_DEFAULTS = {
    "embedding_dim": 50,
    "filters": 250,
    "kernel_size": 3,
    "hidden_units": 250,
    "dropout": 0.2,
    "batch_size": 32,
}


# -- synthetic files in Keras' layouts ----------------------------------------------------


def mnist_arrays(n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Keras' mnist.npz layout: uint8 (N, 28, 28) pixels 0..255, uint8 labels 0..9.

    Each digit gets a bright 6x6 patch at its own place, so a model can learn something.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, 10, size=n).astype("uint8")
        x = rng.integers(0, 80, size=(n, 28, 28)).astype("uint8")
        for i, digit in enumerate(y):
            row, col = 2 + 8 * (int(digit) // 4), 2 + 8 * (int(digit) % 4)
            x[i, row : row + 6, col : col + 6] = 255
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    return out


def imdb_sequences(rng: np.random.Generator, n: int, *, max_len: int = 600) -> np.ndarray:
    """An object array of Python int lists (word ranks from 1), like Keras' imdb.npz."""
    lengths = rng.integers(1, max_len + 1, size=n)
    return ragged([[int(w) for w in rng.integers(1, 9000, size=k)] for k in lengths])


def imdb_arrays(n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Keras' imdb.npz layout: x_* object arrays of int lists, y_* int64 labels 0/1."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": imdb_sequences(rng, n_train),
        "y_train": rng.integers(0, 2, size=n_train).astype("int64"),
        "x_test": imdb_sequences(rng, n_test),
        "y_test": rng.integers(0, 2, size=n_test).astype("int64"),
    }


def ragged(lists: list[list[Any]]) -> np.ndarray:
    """A 1-D object array holding the lists themselves (as np.array would not)."""
    out = np.empty(len(lists), dtype=object)
    for i, item in enumerate(lists):
        out[i] = item
    return out


def write_npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)  # object arrays are pickled, as in Keras' file
    return path


@pytest.fixture(scope="module")
def mnist_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz(tmp_path_factory.mktemp("mnist") / "mnist.npz", **mnist_arrays(120, 40))


@pytest.fixture(scope="module")
def imdb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz(tmp_path_factory.mktemp("imdb") / "imdb.npz", **imdb_arrays(60, 40))


@contextmanager
def keras_reads(dataset: str, path: Path) -> Iterator[None]:
    """Make ``keras.datasets.<dataset>.load_data`` read ``path`` instead of its cache.

    A mock, because the real thing is impossible here: Keras' ``get_file`` accepts a
    cached file only if its sha256 is the real dataset's, and otherwise downloads it
    (no network here, and no download allowed). Patching the ``get_file`` name the
    dataset module imported keeps everything after it -- the reading and all the
    processing under test -- Keras' own code.
    """
    module = sys.modules[f"keras.src.datasets.{dataset}"]
    with mock.patch.object(module, "get_file", return_value=str(path)) as patched:
        yield
    assert patched.called


def assert_same(ours: Any, theirs: Any) -> None:
    """Equal values, dtypes, shapes and element types (object arrays of int lists too)."""
    (oxt, oyt), (oxs, oys) = ours
    (txt, tyt), (txs, tys) = theirs
    for a, b in ((oxt, txt), (oyt, tyt), (oxs, txs), (oys, tys)):
        assert type(a) is type(b) is np.ndarray
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype == object:
            assert [list(s) for s in a] == [list(s) for s in b]
            assert {type(w) for s in a for w in s} == {type(w) for s in b for w in s}
        else:
            np.testing.assert_array_equal(a, b)


def one_line(exc: pytest.ExceptionInfo[ConfigError], *words: str) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    for word in words:
        assert word in text, text
    return text


def load_recipe(name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"recipe_{name}", SPACES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- (a) the loaders return what Keras returns ---------------------------------------------


def test_mnist_file_loads_as_keras_loads_it(mnist_file: Path) -> None:
    with keras_reads("mnist", mnist_file):
        theirs = keras.datasets.mnist.load_data()
    ours = load_mnist(str(mnist_file))
    assert_same(ours, theirs)
    assert ours[0][0].dtype == np.uint8 and ours[0][0].shape == (120, 28, 28)


@pytest.mark.parametrize(
    "options",
    [
        {},  # num_words None: Keras takes the largest index, which itself becomes OOV
        {"num_words": 5000},  # the recipe
        {"num_words": 5000, "skip_top": 20, "maxlen": 400},
        {"start_char": None, "index_from": 0},
        {"start_char": None, "index_from": 2, "num_words": 3000, "maxlen": 300},
        {"oov_char": None, "num_words": 100, "index_from": 5, "seed": 7},
        {"num_words": 0, "skip_top": 3, "maxlen": 50, "start_char": 9},  # 0: all words
    ],
)
def test_imdb_file_loads_as_keras_loads_it(imdb_file: Path, options: dict[str, Any]) -> None:
    with keras_reads("imdb", imdb_file):
        theirs = keras.datasets.imdb.load_data(**options)
    assert_same(load_imdb(str(imdb_file), **options), theirs)


def test_imdb_equal_lengths_give_keras_2d_object_array(tmp_path: Path) -> None:
    """np.array(lists, dtype=object) is 2-D when all lists are as long: Keras' quirk, kept."""
    rng = np.random.default_rng(1)
    x = ragged([[int(w) for w in rng.integers(1, 50, size=5)] for _ in range(6)])
    labels = np.array([0, 1, 0, 1, 1, 0], dtype="int64")
    path = write_npz(tmp_path / "same.npz", x_train=x, y_train=labels, x_test=x, y_test=labels)
    with keras_reads("imdb", path):
        theirs = keras.datasets.imdb.load_data()
    ours = load_imdb(str(path))
    assert ours[0][0].shape == (6, 6)
    assert_same(ours, theirs)


def test_imdb_maxlen_that_keeps_nothing_is_an_error_as_in_keras(imdb_file: Path) -> None:
    with keras_reads("imdb", imdb_file), pytest.raises(ValueError, match="maxlen"):
        keras.datasets.imdb.load_data(maxlen=1)
    with pytest.raises(ConfigError) as exc:
        load_imdb(str(imdb_file), maxlen=1)
    one_line(exc, "maxlen=1", "--data-path")


def test_recipe_data_is_the_tutorials_preprocessing(mnist_file: Path, imdb_file: Path) -> None:
    """load_data(data_path) = Keras' loader + the tutorial's own lines, test pair kept."""
    mnist = load_recipe("mnist_cnn")
    (x, y), val, (xt, yt) = mnist.load_data(data_path=str(mnist_file))
    with keras_reads("mnist", mnist_file):
        (kx, ky), (kxt, kyt) = keras.datasets.mnist.load_data()
    assert val is None  # validation_split 0.2 applies
    assert x.dtype == np.float32 and x.shape == (120, 28, 28, 1) and xt.shape == (40, 28, 28, 1)
    np.testing.assert_array_equal(x, np.expand_dims(kx.astype("float32") / 255, -1))
    np.testing.assert_array_equal(y, keras.utils.to_categorical(ky, 10))
    np.testing.assert_array_equal(yt, keras.utils.to_categorical(kyt, 10))
    assert x.min() >= 0.0 and x.max() == 1.0 and y.shape == (120, 10)

    imdb = load_recipe("imdb_conv1d")
    (x, y), val, (xt, yt) = imdb.load_data(data_path=str(imdb_file))
    with keras_reads("imdb", imdb_file):
        (kx, ky), (kxt, kyt) = keras.datasets.imdb.load_data(num_words=5000)
    assert val is None
    assert x.shape == (60, 400) and xt.shape == (40, 400) and x.dtype == np.int32
    np.testing.assert_array_equal(x, keras.utils.pad_sequences(kx, maxlen=400))
    np.testing.assert_array_equal(xt, keras.utils.pad_sequences(kxt, maxlen=400))
    np.testing.assert_array_equal(y, ky)
    assert y.dtype == np.int64 and x.min() >= 0 and x.max() < 5000
    assert (x == 2).any()  # words beyond the 5,000 became OOV


# -- (b) one-line errors -------------------------------------------------------------------


def test_missing_file_directory_and_not_an_npz(tmp_path: Path) -> None:
    for loader in (load_mnist, load_imdb):
        with pytest.raises(ConfigError) as exc:
            loader(str(tmp_path / "nowhere.npz"))
        one_line(exc, "nowhere.npz", "no such file", "--data-path FILE", "x_train, y_train")
        with pytest.raises(ConfigError) as exc:
            loader(str(tmp_path))
        one_line(exc, "found a directory", "--data-path")
    text = tmp_path / "notes.npz"
    text.write_text("not an archive\n")
    with pytest.raises(ConfigError) as exc:
        load_mnist(str(text))
    one_line(exc, "not a .npz archive", "--data-path")


def test_wrong_arrays(tmp_path: Path) -> None:
    good = mnist_arrays(8, 4)

    def mnist_error(**changes: Any) -> str:
        arrays = {k: v for k, v in {**good, **changes}.items() if v is not None}
        path = write_npz(tmp_path / "m.npz", **arrays)
        with pytest.raises(ConfigError) as exc:
            load_mnist(str(path))
        return one_line(exc, "MNIST --data-path", "--data-path FILE")

    assert "missing y_test" in mnist_error(y_test=None)
    assert "found x_test, x_train, y_train" in mnist_error(y_test=None)
    assert "(N, 28, 28)" in mnist_error(x_train=np.zeros((8, 32, 32), "uint8"))
    assert "float32 (8, 28, 28)" in mnist_error(x_train=np.zeros((8, 28, 28), "float32"))
    too_bright = np.zeros((4, 28, 28), "int64")
    too_bright[0, 0, 0] = 300
    assert "pixels from 0 to 300" in mnist_error(x_test=too_bright)
    assert "labels from 0 to 10" in mnist_error(y_train=np.array([0, 1, 2, 3, 4, 5, 6, 10]))
    assert "7 labels for 8 samples" in mnist_error(y_train=good["y_train"][:7])
    objects = ragged([[1], [2], [3], [4]])
    assert "Object arrays cannot be loaded" in mnist_error(y_test=objects)

    imdb = imdb_arrays(6, 4)

    def imdb_error(**changes: Any) -> str:
        path = write_npz(tmp_path / "i.npz", **{**imdb, **changes})
        with pytest.raises(ConfigError) as exc:
            load_imdb(str(path), num_words=5000)
        return one_line(exc, "IMDB --data-path", "--data-path FILE")

    assert "int64 (6, 400)" in imdb_error(x_train=np.ones((6, 400), "int64"))
    assert "words of type float" in imdb_error(x_train=ragged([[1.0, 2.5]] * 6))
    assert "negative word index -4" in imdb_error(x_test=ragged([[1, -4]] * 4))
    assert "labels from 0 to 2" in imdb_error(y_train=np.array([0, 1, 2, 0, 1, 0]))
    # a pickle that names anything but numpy's array rebuilders is refused, not run
    hostile = ragged([[Decimal(1)]] * 4)
    assert "refusing to load decimal.Decimal" in imdb_error(x_test=hostile)


NO_DATA_PROBE = """
import json, sys
from sweep.space.datasets import load_imdb, load_mnist
from sweep.core.errors import ConfigError
out = {}
for name, loader in (("mnist", load_mnist), ("imdb", load_imdb)):
    try:
        loader(None)
        out[name] = None
    except ConfigError as exc:
        out[name] = str(exc)
print(json.dumps(out))
"""


def offline_env(keras_home: Path) -> dict[str, str]:
    """An empty Keras cache, and every proxy variable on a closed port: a download
    attempt is refused at once instead of reaching (or waiting for) the network."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update({name: CLOSED_PORT for name in ("https_proxy", "http_proxy")})
    env.update({name.upper(): CLOSED_PORT for name in ("https_proxy", "http_proxy")})
    env.update(KERAS_HOME=str(keras_home), TF_CPP_MIN_LOG_LEVEL="2")
    return env


def test_no_cache_and_no_network_is_one_line_naming_the_cache_and_data_path(
    tmp_path: Path,
) -> None:
    home = tmp_path / "keras_home"
    # IMDB: a file in the cache that is not the real one; Keras rejects it by its hash,
    # tries to download it again, and deletes it when that fails.
    (home / "datasets").mkdir(parents=True)
    write_npz(home / "datasets" / "imdb.npz", **imdb_arrays(4, 4))
    proc = subprocess.run(
        [sys.executable, "-c", NO_DATA_PROBE],
        env=offline_env(home),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    errors = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("mnist", "imdb"):
        text = errors[name]
        assert text is not None and "\n" not in text, text
        cache = home / "datasets" / f"{name}.npz"
        assert str(cache) in text and "--data-path FILE" in text, text
        assert text.startswith(f"{name.upper()}: expected the Keras cache file"), text
        assert "Connection refused" in text, text
        assert "x_train, y_train, x_test, y_test" in text, text
    assert "found no such file" in errors["mnist"]
    assert "found a file Keras did not accept" in errors["imdb"]
    assert not (home / "datasets" / "imdb.npz").exists()  # Keras removed it
    assert not (home / "datasets" / "mnist.npz").exists()


def test_cache_path_is_where_get_file_looks() -> None:
    """The path named in the error is the one keras.utils.get_file uses: a file put
    there (with no hash to check) is found in the cache and returned as it is."""
    name = f"sweep-test-{os.getpid()}.txt"
    where = keras_cache_file(name)
    existed = where.parent.exists()
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text("probe\n")
    try:
        # a closed port as origin: if get_file looked elsewhere it would fail, not download
        found = keras.utils.get_file(name, origin=f"{CLOSED_PORT}/{name}")
    finally:
        where.unlink()
        if not existed:
            where.parent.rmdir()
    assert Path(found) == where


# -- (c) the models at the KerasTuner defaults are the tutorials' ---------------------------


def layer_summary(model: keras.Model) -> list[tuple[str, dict[str, Any]]]:
    keys = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "pool_size",
        "units",
        "rate",
        "activation",
        "input_dim",
        "output_dim",
    )
    return [
        (type(layer).__name__, {k: v for k, v in layer.get_config().items() if k in keys})
        for layer in model.layers
    ]


def assert_adam_default(model: keras.Model, loss: str) -> None:
    config = model.get_compile_config()
    assert config["loss"] == loss and config["metrics"] == ["accuracy"]
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    ours = dict(config["optimizer"]["config"])
    adam = keras.optimizers.Adam().get_config()  # the tutorials' optimizer="adam"
    del ours["name"], adam["name"]
    assert ours == adam
    assert ours["learning_rate"] == pytest.approx(1e-3)


class CountBatches(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1


def test_mnist_defaults_are_simple_mnist_convnet() -> None:
    recipe = load_recipe("mnist_cnn")
    assert isinstance(recipe.hypermodel, keras_tuner.HyperModel)
    hp = keras_tuner.HyperParameters()
    model = recipe.hypermodel.build(hp)
    assert model.input_shape == (None, 28, 28, 1)
    assert layer_summary(model) == [
        ("Conv2D", conv2d(32)),
        ("MaxPooling2D", {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}),
        ("Conv2D", conv2d(64)),
        ("MaxPooling2D", {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}),
        ("Flatten", {}),
        ("Dropout", {"rate": 0.5}),
        ("Dense", {"units": 10, "activation": "softmax"}),
    ]
    assert model.count_params() == 34_826  # as the example's model.summary() reports
    assert_adam_default(model, "categorical_crossentropy")
    # fit picks the batch size: 128 by default, so 256 samples are 2 batches
    counter = CountBatches()
    x = np.zeros((256, 28, 28, 1), "float32")
    y = keras.utils.to_categorical(np.arange(256) % 10, 10)
    recipe.hypermodel.fit(hp, model, x, y, epochs=1, verbose=0, callbacks=[counter])
    assert counter.batches == 2
    assert hp.values == MNIST_DEFAULTS


def conv2d(filters: int) -> dict[str, Any]:
    return {
        "filters": filters,
        "kernel_size": (3, 3),
        "strides": (1, 1),
        "padding": "valid",
        "activation": "relu",
    }


def test_imdb_defaults_are_imdb_cnn() -> None:
    recipe = load_recipe("imdb_conv1d")
    assert isinstance(recipe.hypermodel, keras_tuner.HyperModel)
    hp = keras_tuner.HyperParameters()
    model = recipe.hypermodel.build(hp)
    assert model.input_shape == (None, 400)
    assert layer_summary(model) == [
        ("Embedding", {"input_dim": 5000, "output_dim": 50}),
        ("Dropout", {"rate": 0.2}),
        (
            "Conv1D",
            {
                "filters": 250,
                "kernel_size": (3,),
                "strides": (1,),
                "padding": "valid",
                "activation": "relu",
            },
        ),
        ("GlobalMaxPooling1D", {}),
        ("Dense", {"units": 250, "activation": "linear"}),
        ("Dropout", {"rate": 0.2}),
        ("Activation", {"activation": "relu"}),
        ("Dense", {"units": 1, "activation": "sigmoid"}),
    ]
    assert model.count_params() == 350_751  # 250,000 + 37,750 + 62,750 + 251
    assert_adam_default(model, "binary_crossentropy")
    counter = CountBatches()
    x = np.ones((64, 400), "int32")
    y = (np.arange(64) % 2).astype("int64")
    recipe.hypermodel.fit(hp, model, x, y, epochs=1, verbose=0, callbacks=[counter])
    assert counter.batches == 2  # batch size 32
    assert hp.values == IMDB_DEFAULTS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "mnist_cnn",
            {
                "monitor": "val_accuracy",
                "mode": "max",
                "epochs": 20,
                "validation_split": 0.2,
                "patience": 3,
                "min_delta": 0.0,
            },
        ),
        (
            "imdb_conv1d",
            {
                "monitor": "val_loss",
                "mode": "min",
                "validation_split": 0.2,
                "patience": 30,
                "min_delta": 0.0001,
            },
        ),
    ],
)
def test_settings_are_the_tutorials(name: str, expected: dict[str, Any]) -> None:
    settings = load_recipe(name).SETTINGS
    assert {k: settings[k] for k in expected} == expected
    assert settings["first_trial"] == "defaults"
    assert "batch_size" not in settings  # chosen by the HyperModel's fit
    assert settings["epochs"] > settings["patience"]


# -- end to end: sweep run on the recipes (needs the harness's --data-path, HyperModel and
#    first_trial support) ---------------------------------------------------------------

e2e = pytest.mark.slow


def study_of(folder: Path, name: str) -> optuna.Study:
    url = f"sqlite:///{folder / 'results' / name / 'study.db'}"
    return optuna.load_study(study_name=name, storage=url)


def assert_ran_the_tutorial(
    folder: Path, name: str, defaults: dict[str, Any], printed: str, input_shape: tuple[Any, ...]
) -> None:
    rows = list(csv.DictReader((folder / "results" / name / "trials.csv").open()))
    assert len(rows) == 2 and {r["state"] for r in rows} == {"complete"}, rows
    study = study_of(folder, name)
    first = study.trials[0]
    assert first.params.keys() == defaults.keys()
    for key, value in defaults.items():
        assert first.params[key] == pytest.approx(value, rel=1e-12), key
    for row in rows:
        checkpoint = Path(row["checkpoint"])
        checkpoint = checkpoint if checkpoint.is_absolute() else folder / checkpoint
        assert checkpoint.name == "best.keras" and checkpoint.is_file()
        model = keras.saving.load_model(checkpoint, safe_mode=True)
        assert model.input_shape == input_shape
    log = (folder / "results" / name / "sweep.log").read_text()
    pattern = r"test data: trial (\d+)'s best model scores .*accuracy=[0-9.]+"
    assert re.search(pattern, printed) or re.search(pattern, log), printed
    test_score = study.user_attrs["test_score"]
    assert test_score["trial"] == study.best_trial.number
    assert 0.0 <= test_score["scores"]["accuracy"] <= 1.0


@e2e
def test_e2e_mnist_recipe(tmp_path: Path, mnist_file: Path) -> None:
    argv = ["run", str(SPACES / "mnist_cnn.py"), "--data-path", str(mnist_file)]
    code, out, err = run_cli(*argv, "--epochs", "2", "--trials", "2", "--seed", "0", cwd=tmp_path)
    assert code == 0, err
    assert_ran_the_tutorial(tmp_path, "mnist_cnn", MNIST_DEFAULTS, out + err, (None, 28, 28, 1))


@e2e
def test_e2e_imdb_recipe(tmp_path: Path, imdb_file: Path) -> None:
    argv = ["run", str(SPACES / "imdb_conv1d.py"), "--data-path", str(imdb_file)]
    code, out, err = run_cli(*argv, "--epochs", "2", "--trials", "2", "--seed", "0", cwd=tmp_path)
    assert code == 0, err
    assert_ran_the_tutorial(tmp_path, "imdb_conv1d", IMDB_DEFAULTS, out + err, (None, 400))


@e2e
def test_e2e_data_path_in_settings(tmp_path: Path, mnist_file: Path) -> None:
    """The data-path setting works from the space file too (SETTINGS["data_path"])."""
    source = (SPACES / "mnist_cnn.py").read_text()
    anchor = '"first_trial": "defaults",'
    assert anchor in source
    space = tmp_path / "mnist_local.py"
    space.write_text(source.replace(anchor, f"{anchor} 'data_path': {str(mnist_file)!r},"))
    code, _, err = run_cli(
        "run", str(space), "--epochs", "1", "--trials", "1", "--seed", "0", cwd=tmp_path
    )
    assert code == 0, err
    assert study_of(tmp_path, "mnist_local").trials[0].params == pytest.approx(MNIST_DEFAULTS)


@e2e
@pytest.mark.parametrize("name", ["mnist_cnn", "imdb_conv1d"])
def test_e2e_no_data_fails_before_any_trial(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --data-path, an empty Keras cache and no network: one line, exit 2, no trial."""
    home = tmp_path / "keras_home"
    for key in list(os.environ):
        if key.lower() == "no_proxy":
            monkeypatch.delenv(key)
    for key, value in offline_env(home).items():
        monkeypatch.setenv(key, value)
    proc = sweep_subprocess("run", str(SPACES / f"{name}.py"), cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sweep: error: ")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    line = errors[0]
    assert str(home / "datasets" / f"{name.split('_')[0]}.npz") in line, line
    assert "--data-path FILE" in line, line
    study_dir = tmp_path / "results" / name
    table = study_dir / "trials.csv"
    assert not table.exists() or len(list(csv.DictReader(table.open()))) == 0
    if (study_dir / "study.db").exists():
        url = f"sqlite:///{study_dir / 'study.db'}"
        for study in optuna.get_all_study_names(url):
            assert optuna.load_study(study_name=study, storage=url).trials == []


def test_synthetic_files_have_keras_layout(mnist_file: Path, imdb_file: Path) -> None:
    """The fixtures are what the real files hold (names, dtypes, ragged object arrays)."""
    with zipfile.ZipFile(mnist_file) as archive:
        assert sorted(archive.namelist()) == [
            "x_test.npy",
            "x_train.npy",
            "y_test.npy",
            "y_train.npy",
        ]
    with np.load(mnist_file) as f:
        assert f["x_train"].dtype == np.uint8 and f["y_train"].dtype == np.uint8
    with np.load(imdb_file, allow_pickle=True) as f:
        x = f["x_train"]
        assert x.dtype == object and x.ndim == 1 and type(x[0]) is list
        assert type(x[0][0]) is int and max(len(s) for s in x) <= 600
        assert max(max(s) for s in x) > 5000 and f["y_train"].dtype == np.int64
