"""Input kinds (issue 15), side by side in one run; printed ratios, never a timed test.

1. ms per epoch on the digits CNN for arrays, memory-mapped arrays, a tf.data pipeline, a
   PyDataset and a generator: sweep's feed (sweep.train.feeds, as run_trial uses it)
   against a plain ``model.fit`` given the same input (target: ratio <= 1.05);
2. peak resident memory per process (psutil, the process tree polled) of ``sweep run
   --jobs 1`` and ``--jobs 2`` on a float32 dataset memory-mapped from a file the
   benchmark makes (2 GB; --quick: 64 MB), against the dataset's size (target: no process
   above size + 1.5 GB).

    python benchmarks/inputs.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import psutil
import tensorflow as tf
from measure import table
from sklearn.datasets import load_digits

from sweep.space.data import Data
from sweep.space.inputs import InputKind
from sweep.train.feeds import training_input

BATCH = 32


class Clock(keras.callbacks.Callback):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.times.append(time.perf_counter() - self.t)


def cnn() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


class Batches(keras.utils.PyDataset):  # type: ignore[misc]
    def __init__(self, x: Any, y: Any) -> None:
        super().__init__()
        self.x, self.y = x, y

    def __len__(self) -> int:
        return -(-len(self.x) // BATCH)

    def __getitem__(self, i: int) -> Any:
        return self.x[i * BATCH : (i + 1) * BATCH], self.y[i * BATCH : (i + 1) * BATCH]


def digits(repeat: int) -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    return np.tile(x, (repeat, 1, 1, 1)), np.tile(d.target, repeat)


def ms_per_epoch(x: Any, epochs: int, **kwargs: Any) -> float:
    model, clock = cnn(), Clock()
    model.fit(x, epochs=epochs, callbacks=[clock], verbose=0, **kwargs)
    return 1000 * float(np.median(clock.times[1:]))


def kinds(x: np.ndarray, y: np.ndarray, folder: Path) -> dict[str, tuple[Data, dict[str, Any]]]:
    """Each kind: (what sweep gets, plain fit's keywords on the same input)."""
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    xm, ym = np.load(folder / "x.npy", mmap_mode="r"), np.load(folder / "y.npy", mmap_mode="r")
    steps = -(-len(x) // BATCH)

    def gen() -> Any:
        for i in range(steps):
            yield x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]

    def forever() -> Any:
        while True:
            yield from gen()

    ds = tf.data.Dataset.from_tensor_slices((x, y))

    def data(kind: InputKind, a: Any, b: Any = None) -> Data:
        return Data(a, b, None, None, kinds=(kind, None, None))

    return {
        "arrays": (data(InputKind.ARRAYS, x, y), {"x": x, "y": y, "batch_size": BATCH}),
        "memmapped arrays": (
            data(InputKind.ARRAYS, xm, ym),
            {"x": xm, "y": ym, "batch_size": BATCH},
        ),
        "tf.data": (data(InputKind.DATASET, ds), {"x": ds.shuffle(1024).batch(BATCH)}),
        "PyDataset": (data(InputKind.PYDATASET, Batches(x, y)), {"x": Batches(x, y)}),
        "generator": (
            data(InputKind.GENERATOR, gen),
            {"x": forever(), "steps_per_epoch": steps, "shuffle": False},
        ),
    }


def sweep_ms_per_epoch(name: str, data: Data, n: int, epochs: int) -> float:
    options = {"steps_per_epoch": -(-n // BATCH)} if name == "generator" else {}
    feed, steps = training_input(
        data,
        batch_size=BATCH,
        seed=0,
        initial_epoch=0,
        epochs=epochs,
        buffer=1024,
        options=options,
    )
    return ms_per_epoch(feed, epochs, steps_per_epoch=steps, shuffle=False)


def measure_speed(quick: bool, repeats: int = 2) -> tuple[str, dict[str, tuple[list, list]]]:
    """Per kind, every repetition's ms per epoch (median of epochs 2..) of plain fit and of
    sweep's feed, the two alternating (plain first, then sweep first)."""
    epochs = 4 if quick else 12
    x, y = digits(1 if quick else 4)
    found: dict[str, tuple[list, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, plain) in kinds(x, y, Path(tmp)).items():
            print(f"  inputs: {name}", file=sys.stderr, flush=True)
            plain_ms: list[float] = []
            sweep_ms: list[float] = []
            for r in range(1 if quick else repeats):
                for mine in (False, True) if r % 2 == 0 else (True, False):
                    if mine:
                        sweep_ms.append(sweep_ms_per_epoch(name, data, len(x), epochs))
                    else:
                        plain_ms.append(ms_per_epoch(epochs=epochs, **plain))
            found[name] = (plain_ms, sweep_ms)
    what = f"digits CNN, {len(x)} samples, batch {BATCH}, {epochs} epochs"
    return what, found


def format_speed(what: str, found: dict[str, tuple[list, list]]) -> str:
    rows = []
    for name, (plain, mine) in found.items():
        ratio = statistics.median(mine) / statistics.median(plain)
        rows.append(
            [
                name,
                ", ".join(f"{v:.1f}" for v in plain),
                ", ".join(f"{v:.1f}" for v in mine),
                f"**{ratio:.2f}**",
            ]
        )
    head = (
        f"Table 7a, ms per epoch by input kind ({what}; median of epochs 2.., every "
        "repetition; plain `model.fit` given the same input against sweep's feed of it, "
        "alternating; target: sweep / plain <= 1.05)"
    )
    return head + "\n\n" + table(["input", "plain fit ms", "sweep ms", "sweep / plain"], rows)


SPACE = """
import keras
import numpy as np

SETTINGS = {{"epochs": 1, "trials": {trials}, "batch_size": 4096, "validation_split": 0.1}}


def load_data():
    x = np.load({x!r}, mmap_mode="r")
    return x, np.load({y!r}, mmap_mode="r")


def fit_options(hp):
    return {{"steps_per_epoch": 20}}


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(256,)), keras.layers.Dense(hp.Int("u", 4, 8)),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model
"""


def peak_rss(cmd: list[str], cwd: Path) -> dict[int, int]:
    """Peak RSS of every process of the tree ``cmd`` starts, polled every 0.1 s."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root, peaks = psutil.Process(proc.pid), {}
    while proc.poll() is None:
        try:
            for p in [root, *root.children(recursive=True)]:
                peaks[p.pid] = max(peaks.get(p.pid, 0), p.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.read().decode() if proc.stderr else "sweep failed")
    return peaks


def measure_memory(quick: bool) -> str:
    """Peak RSS per process of `sweep run --jobs 1` and `--jobs 2` on a memory-mapped
    float32 dataset (2 GB; --quick: 64 MB), as a table."""
    size = (64 if quick else 2048) * 2**20
    rows = size // (256 * 4)
    gb = 2**30
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        x = np.lib.format.open_memmap(folder / "x.npy", "w+", "float32", (rows, 256))
        for start in range(0, rows, 65536):
            x[start : start + 65536] = np.random.default_rng(start).normal(
                size=(min(65536, rows - start), 256)
            )
        x.flush()
        np.save(folder / "y.npy", np.asarray(x[:, 0]).copy())
        del x
        for jobs in (1, 2):
            print(f"  inputs: memory, --jobs {jobs}", file=sys.stderr, flush=True)
            space = folder / f"big{jobs}.py"
            space.write_text(
                SPACE.format(trials=jobs, x=str(folder / "x.npy"), y=str(folder / "y.npy"))
            )
            cmd = [sys.executable, "-m", "sweep", "run", str(space), "--jobs", str(jobs)]
            peaks = peak_rss([*cmd, "--force-jobs"], folder)
            big = sorted(peaks.values(), reverse=True)[: jobs + 1]
            found.append(
                [
                    f"`--jobs {jobs}`",
                    ", ".join(f"{v / gb:.2f}" for v in big),
                    f"{big[0] / size:.2f}",
                    "yes" if any(v > size + 1.5 * gb for v in big) else "**no**",
                ]
            )
    head = (
        f"Table 7b, peak resident memory per process (psutil), `sweep run` on a "
        f"{size / gb:.2f} GB float32 dataset memory-mapped from a file (target: no process "
        "above dataset + 1.5 GB)"
    )
    heads = ["run", "largest processes GB", "largest / dataset", "any above dataset + 1.5 GB"]
    return head + "\n\n" + table(heads, found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer epochs")
    args = parser.parse_args()
    print(format_speed(*measure_speed(args.quick)) + "\n")
    print(measure_memory(args.quick))


if __name__ == "__main__":
    main()
