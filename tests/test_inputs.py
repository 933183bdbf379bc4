"""Real training inputs (issue 15): image_dataset_from_directory over PNG files written
here, a tf.data pipeline, a PyDataset, a generator function, sample weights, class_weight
via fit_options, refused kinds. Every kind runs with --jobs 1 and with --jobs 2 (where a
worker process other than the parent must train a trial), and the best checkpoint
reproduces best_score on the validation input of every kind (sweep export verifies it).

The model has one fixed hyperparameter value and a trial's seed is a function of
(--seed, trial number), so trial k trains alike in every sweep of the same data: sweeps
are compared trial by trial (the weights, class_weight and --jobs 2 checks)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from conftest import batches_source, run_cli, write_space

if TYPE_CHECKING:
    from sweep.core.record import TrialRecord

SOURCE = """
from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

LOADED = time.time()
KIND = {kind!r}
MARKS = {marks!r}
SETTINGS = {{"epochs": 2, "trials": 2, "batch_size": 8, "monitor": "val_loss", "patience": 5}}
BALANCE = {{0: 0.2, 1: 5.0}}  # class_weight; the same as the sample weights below


def arrays(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int64")
    return x, y


def weights(y):
    return np.where(y == 1, BALANCE[1], BALANCE[0]).astype("float32")


{batches}

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
    if KIND in ("generator", "plaingenerator"):
        return generator_of(x, y), generator_of(xv, yv)
    if KIND == "weights":
        return (x, y, weights(y)), (xv, yv, weights(yv))
    if KIND in ("classweight", "plain"):  # the validation data weighted as for "weights"
        return (x, y), (xv, yv, weights(yv))
    if KIND == "bad":
        return iter([(x, y)]), None
    return (x, y), (xv, yv)


def fit_options(hp):
    if KIND == "generator":
        return {{"steps_per_epoch": 6, "validation_steps": 3, "class_weight": BALANCE}}
    if KIND == "plaingenerator":
        return {{"steps_per_epoch": 6, "validation_steps": 3}}
    if KIND == "classweight":
        return {{"class_weight": BALANCE}}
    if KIND == "badoptions":
        return {{"validation_freq": 2}}
    return {{}}


def callbacks(hp):
    # --jobs 2: each trial marks MARKS with its process id when it starts, and its epochs
    # end only once two processes have (a sleep, no CPU; at most 3 minutes a process): the
    # parent, worker 0, cannot run both trials itself while the other worker starts up
    if MARKS is None:
        return []

    def started(logs):
        open(os.path.join(MARKS, str(os.getpid())), "w").close()

    def wait(epoch, logs):
        while len(os.listdir(MARKS)) < 2 and time.time() < LOADED + 180:
            time.sleep(0.1)

    return [keras.callbacks.LambdaCallback(on_train_begin=started, on_epoch_end=wait)]


def build_model(hp):
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Rescaling(1 / 255.0 if KIND == "images" else 1.0),
        keras.layers.Flatten(),
        keras.layers.Dense(hp.Choice("units", [8]), activation="relu"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""

ARRAYS = ("weights", "classweight", "plain")  # the kinds --jobs 2 memory-maps


def space(folder: Path, kind: str, marks: Path | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = SOURCE.format(
        kind=kind, marks=None if marks is None else str(marks), batches=batches_source(8)
    )
    return write_space(folder, kind, source=source)


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


def trials(folder: Path, kind: str) -> list[TrialRecord]:
    import optuna

    from sweep.core.record import TrialRecord

    db = folder / "results" / kind / "study.db"
    study = optuna.load_study(study_name=kind, storage=f"sqlite:///{db}")
    return [TrialRecord.from_trial(t) for t in study.trials]


def scores(folder: Path, kind: str) -> list[float | None]:
    """Each trial's best_score, by trial number."""
    return [t.best_score for t in trials(folder, kind)]


def sweep_and_export(
    folder: Path, kind: str, jobs: int, *extra: str, export: bool = True
) -> dict[str, object]:
    """``sweep run`` with --jobs ``jobs`` then ``sweep export``, which re-evaluates the best
    checkpoint on the validation input; with --jobs 2, checks that a worker process other
    than this one (the parent) trained a trial."""
    marks = folder / "marks" if jobs == 2 else None
    if marks is not None:
        marks.mkdir(parents=True)
    args = ["--seed", "1", "--jobs", str(jobs), "--force-jobs", *extra]
    code, out, err = run_cli("run", str(space(folder, kind, marks)), *args, cwd=folder)
    assert code == 0, err
    shared = folder / "results" / kind / "data"
    assert ("memory-map the arrays from" in out + err) == (kind in ARRAYS and jobs == 2), out + err
    assert not shared.exists()  # the workers' memmapped copy is removed at the end
    records = trials(folder, kind)
    assert [t.state.value for t in records] == ["complete", "complete"]
    pids = {int(t.worker.rsplit(":", 1)[1]) for t in records}
    if jobs == 1:
        assert pids == {os.getpid()}
    else:  # the worker field is host:pid of the process that ran the trial
        assert pids - {os.getpid()}, f"{kind}: the parent ran every trial itself"
    if not export:
        return {}
    out_file = folder / f"{kind}.keras"
    code, _, err = run_cli(
        "export", kind, "--out", str(out_file), "--results", str(folder / "results"), cwd=folder
    )
    assert code == 0, err  # export re-evaluated the checkpoint on the validation input
    card: dict[str, object] = json.loads(out_file.with_name(out_file.name + ".json").read_text())
    assert card["verified_score"] == pytest.approx(card["best_score"], rel=1e-5)
    return card


@pytest.mark.parametrize("kind", ["images", "tfdata", "pydataset"])
def test_each_kind_sweeps_with_jobs_1_and_2_and_its_best_checkpoint_verifies(
    tmp_path: Path, kind: str
) -> None:
    extra: list[str] = []
    if kind == "images":
        write_pngs(tmp_path / "pngs")
        extra = ["--data-path", str(tmp_path / "pngs")]
    for jobs in (1, 2):
        card = sweep_and_export(tmp_path / str(jobs), kind, jobs, *extra)
        fp = card["data_fingerprint"]
        assert isinstance(fp, dict) and "not fingerprinted" in str(fp["train"])
    if kind == "images":
        return  # its pipeline shuffles itself: the data order is not a function of the seed
    # trial k trained alike in the parent (--jobs 1) and in a worker (--jobs 2)
    assert scores(tmp_path / "2", kind) == pytest.approx(scores(tmp_path / "1", kind), rel=1e-4)


def test_sample_weights_and_class_weight_change_the_result(tmp_path: Path) -> None:
    """Arrays with sample weights (--jobs 1 and --jobs 2: the workers train on the
    memmapped copy, weights included) and class_weight via fit_options (the same weights,
    per class; --jobs 2, the generator test has it with both): trial by trial they train
    alike, and unlike the same arrays unweighted."""
    weighted: dict[tuple[str, int], list[float | None]] = {}
    for kind, jobs in (("weights", 1), ("weights", 2), ("classweight", 2)):
        sweep_and_export(tmp_path / f"{kind}{jobs}", kind, jobs)
        weighted[kind, jobs] = scores(tmp_path / f"{kind}{jobs}", kind)
    # the same data, training unweighted (a reference: not exported)
    sweep_and_export(tmp_path / "plain", "plain", 1, export=False)
    plain = scores(tmp_path / "plain", "plain")
    first = weighted["weights", 1]
    for key, found in weighted.items():
        assert found == pytest.approx(first, rel=1e-4), key
    for w, p in zip(first, plain, strict=True):
        assert w != pytest.approx(p, rel=1e-3)


def test_generator_with_class_weight_with_jobs_1_and_2(tmp_path: Path) -> None:
    """A generator function (class_weight via fit_options, which sweep's feed applies to
    its batches) with --jobs 1 and --jobs 2: trial by trial alike, and unlike the same
    generator without class_weight."""
    for jobs in (1, 2):
        card = sweep_and_export(tmp_path / str(jobs), "generator", jobs)
        assert "not fingerprinted" in str(card["data_fingerprint"])
    sweep_and_export(tmp_path / "plain", "plaingenerator", 1, export=False)
    balanced = scores(tmp_path / "1", "generator")
    assert scores(tmp_path / "2", "generator") == pytest.approx(balanced, rel=1e-4)
    for b, p in zip(balanced, scores(tmp_path / "plain", "plaingenerator"), strict=True):
        assert b != pytest.approx(p, rel=1e-3)


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

    from sweep.space.data import Data
    from sweep.space.inputs import InputKind
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


def test_memory_mapped_arrays_feed_the_batches_of_in_memory_arrays(tmp_path: Path) -> None:
    """--jobs workers read the arrays memory-mapped: batch for batch what the parent's
    in-memory feed trains on, from epoch 0 and resumed at epoch 2, all or some steps."""
    from sweep.space.data import Data
    from sweep.space.inputs import InputKind
    from sweep.train.feeds import training_input

    x = np.arange(40, dtype="float32").reshape(20, 2)
    y, w = np.arange(20), np.linspace(0.5, 1.5, 20).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w.npy", w)
    mapped = [np.load(tmp_path / f"{n}.npy", mmap_mode="r") for n in ("x", "y", "w")]

    def batches(arrays: list[object], start: int, options: dict[str, int]) -> list[list[object]]:
        kinds = (InputKind.ARRAYS, None, None)
        data = Data(arrays[0], arrays[1], None, None, w_train=arrays[2], kinds=kinds)
        feed, steps = training_input(
            data, batch_size=6, seed=3, initial_epoch=start, epochs=4, buffer=20, options=options
        )
        found = [[t.numpy().tolist() for t in b] for b in feed]
        assert len(found) == (4 - start) * steps
        return found

    for options in ({}, {"steps_per_epoch": 2}):
        in_memory = batches([x, y, w], 0, options)
        assert batches(mapped, 0, options) == in_memory
        assert batches(mapped, 2, options) == in_memory[len(in_memory) // 2 :]
