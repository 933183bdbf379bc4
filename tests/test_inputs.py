"""Real training inputs (issue 15): image_dataset_from_directory over PNG files written
here, a tf.data pipeline, a PyDataset, a generator function, sample weights, class_weight
via fit_options, refused kinds; --jobs 1 and --jobs 2; the best checkpoint reproduces
best_score on the validation input of every kind (sweep export verifies it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_space

SOURCE = """
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

KIND = {kind!r}
SETTINGS = {{"epochs": 2, "trials": 2, "batch_size": 8, "monitor": "val_loss", "patience": 5}}


def arrays(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    return x, y


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size=8, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]


def generator_of(x, y):
    def batches():
        for i in range(0, len(x), 8):
            yield x[i : i + 8], y[i : i + 8]
    return batches


def load_data(data_path=None):
    (x, y), (xv, yv) = arrays(48, 0), arrays(24, 1)
    if KIND == "images":
        opts = dict(image_size=(8, 8), color_mode="grayscale", batch_size=8, label_mode="int")
        load = keras.utils.image_dataset_from_directory
        return load(data_path + "/train", **opts), load(data_path + "/val", shuffle=False, **opts)
    if KIND == "tfdata":
        val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(8)
        return tf.data.Dataset.from_tensor_slices((x, y)), val
    if KIND == "pydataset":
        return Batches(x, y), Batches(xv, yv, workers=2)
    if KIND == "generator":
        return generator_of(x, y), generator_of(xv, yv)
    if KIND == "weights":
        w = np.where(y == 1, 5.0, 0.2).astype("float32")
        return (x, y, w), (xv, yv, np.where(yv == 1, 5.0, 0.2).astype("float32"))
    if KIND == "bad":
        return iter([(x, y)]), None
    return (x, y), (xv, yv)


def fit_options(hp):
    if KIND == "generator":
        return {{"steps_per_epoch": 6, "class_weight": {{0: 1.0, 1: 3.0}}}}
    if KIND == "badoptions":
        return {{"validation_freq": 2}}
    return {{}}


def build_model(hp):
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Rescaling(1 / 255.0 if KIND == "images" else 1.0),
        keras.layers.Flatten(),
        keras.layers.Dense(hp.Int("units", 4, 8, step=4), activation="relu"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""


def space(folder: Path, kind: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_space(folder, kind, source=SOURCE.format(kind=kind))


def write_pngs(root: Path) -> None:
    """A handful of 8x8 grayscale PNGs in two class folders, for train and val."""
    import tensorflow as tf

    rng = np.random.default_rng(2)
    for split, n in (("train", 12), ("val", 6)):
        for label in ("dark", "light"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                base = 40 if label == "dark" else 200
                img = np.clip(base + rng.normal(0, 30, (8, 8, 1)), 0, 255).astype("uint8")
                tf.io.write_file(str(folder / f"{i}.png"), tf.io.encode_png(img))


def sweep_and_export(folder: Path, kind: str, *extra: str) -> dict[str, object]:
    code, out, err = run_cli("run", str(space(folder, kind)), "--seed", "1", *extra, cwd=folder)
    assert code == 0, err
    shared = folder / "results" / kind / "data"
    assert ("memory-map the arrays from" in out + err) == (kind == "weights"), out + err
    assert not shared.exists()  # the workers' memmapped copy is removed at the end
    out_file = folder / f"{kind}.keras"
    code, _, err = run_cli(
        "export", kind, "--out", str(out_file), "--results", str(folder / "results"), cwd=folder
    )
    assert code == 0, err  # export re-evaluated the checkpoint on the validation input
    card: dict[str, object] = json.loads(out_file.with_name(out_file.name + ".json").read_text())
    assert card["verified_score"] == pytest.approx(card["best_score"], rel=1e-5)
    return card


@pytest.mark.parametrize(
    ("kind", "jobs"),
    [("images", "1"), ("tfdata", "2"), ("pydataset", "1"), ("generator", "2")],
)
def test_each_kind_sweeps_and_its_best_checkpoint_verifies(
    tmp_path: Path, kind: str, jobs: str
) -> None:
    extra = ["--jobs", jobs, "--force-jobs"]
    if kind == "images":
        write_pngs(tmp_path / "pngs")
        extra += ["--data-path", str(tmp_path / "pngs")]
    card = sweep_and_export(tmp_path, kind, *extra)
    fp = card["data_fingerprint"]
    assert isinstance(fp, dict) and "not fingerprinted" in str(fp["train"])


def test_sample_weights_change_the_result(tmp_path: Path) -> None:
    # --jobs 2 on arrays: the workers train on the memmapped copy, sample weights included
    weighted = sweep_and_export(tmp_path / "w", "weights", "--jobs", "2", "--force-jobs")
    plain = sweep_and_export(tmp_path / "p", "plain")  # the same data without the weights
    assert weighted["best_score"] != pytest.approx(plain["best_score"], rel=1e-3)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("bad", "the training data is a list_iterator (a generator object is used up"),
        ("badoptions", "fit_options(hp) returned validation_freq=2, which sweep cannot"),
    ],
)
def test_refused_inputs_are_one_line_errors(tmp_path: Path, kind: str, expected: str) -> None:
    code, _, err = run_cli("run", str(space(tmp_path, kind)), cwd=tmp_path)
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_feeds_started_at_epoch_k_replay_the_uninterrupted_batches() -> None:
    """What a resumed trial trains on: for the kinds whose order sweep controls, the feed
    started at epoch 2 yields exactly epochs 2.. of the feed started at 0 (the order is
    a function of (seed, epoch), not of what this process did before)."""
    import keras
    import tensorflow as tf

    from sweep.data import Data
    from sweep.inputs import InputKind
    from sweep.train.feeds import training_input

    x = np.arange(20, dtype="float32")[:, None]
    y = np.arange(20)

    class Batches(keras.utils.PyDataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return x[i * 4 : (i + 1) * 4], y[i * 4 : (i + 1) * 4]

    def labels(kind: InputKind, source: object, start: int) -> list[list[int]]:
        data = Data(source, None, None, None, kinds=(kind, None, None))
        feed, steps = training_input(
            data, batch_size=4, seed=7, initial_epoch=start, epochs=4, buffer=20, options={}
        )
        if kind is InputKind.PYDATASET:
            return [feed[i][1].tolist() for i in range((4 - start) * steps)]
        return [b[1].numpy().tolist() for b in feed]

    for kind, source in (
        (InputKind.DATASET, tf.data.Dataset.from_tensor_slices((x, y))),
        (InputKind.PYDATASET, Batches()),
    ):
        whole, resumed = labels(kind, source, 0), labels(kind, source, 2)
        assert resumed == whole[10:], kind  # 5 batches an epoch
        assert whole[:5] != whole[5:10], kind  # and each epoch has its own order
