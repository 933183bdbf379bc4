"""GPU throughput: trials per hour of a small CNN on synthetic MNIST-shaped data, with 1,
2 and 4 sweep workers sharing one GPU and with --mixed-precision, against a plain Keras
loop training the same trials on that GPU, run side by side in one run, as ratios.

    python benchmarks/gpu.py [--trials 8] [--quick]

Needs a GPU. On a machine without one it prints one line saying so and exits with
status 2 (nothing measured). GPU 0 (TensorFlow's numbering) is the one measured.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

from measure import PYTHON, measure

SPACE = """
import keras
import numpy as np

SETTINGS = {{"trials": {trials}, "epochs": {epochs}, "patience": {epochs}, "batch_size": 128,
            "monitor": "val_loss", "sampler": "random"}}


def load_data():
    rng = np.random.default_rng(0)
    x = rng.random((6000, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, size=6000)
    return x, y


def build_model(hp):
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(hp.Int("filters", 16, 32, step=16), 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", dtype="float32"),
    ])
    model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                  "sparse_categorical_crossentropy")
    return model
"""

PLAIN = """
import os, sys
os.environ["CUDA_VISIBLE_DEVICES"] = "{visible}"
import tensorflow as tf
for gpu in tf.config.list_physical_devices("GPU"):
    tf.config.experimental.set_memory_growth(gpu, True)
import keras
sys.path.insert(0, {folder!r})
import space
x, y = space.load_data()
for trial in range({trials}):
    keras.backend.clear_session()
    hp = __import__("keras_tuner").HyperParameters()
    model = space.build_model(hp)
    model.fit(x, y, batch_size=128, epochs={epochs}, validation_split=0.2, verbose=0,
              callbacks=[keras.callbacks.EarlyStopping(patience={epochs})])
"""


def no_gpu_message() -> str | None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sweep.core.devices import discover_gpus

    if discover_gpus():
        return None
    return (
        "benchmarks/gpu.py: no GPU here (nvidia-smi -L lists none, or CUDA_VISIBLE_DEVICES "
        "hides them); it measures GPU throughput, so nothing was measured; run it on a GPU "
        "machine"
    )


def per_hour(trials: int, seconds: float) -> float:
    return trials * 3600.0 / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="2 trials of 1 epoch")
    args = parser.parse_args()
    message = no_gpu_message()
    if message is not None:
        print(message, file=sys.stderr)
        return 2
    from sweep.core.devices import discover_gpus

    visible = discover_gpus()[0]
    trials, epochs = (2, 1) if args.quick else (args.trials, 5)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "space.py").write_text(SPACE.format(trials=trials, epochs=epochs))
        plain = folder / "plain.py"
        loop = PLAIN.format(visible=visible, folder=str(folder), trials=trials, epochs=epochs)
        plain.write_text(textwrap.dedent(loop))
        rates = {"plain Keras loop": per_hour(trials, measure([PYTHON, str(plain)]).wall)}
        runs = [(f"sweep, {j} worker(s) on GPU 0", ["--jobs", str(j)]) for j in (1, 2, 4)]
        runs.append(("sweep, 1 worker, --mixed-precision", ["--jobs", "1", "--mixed-precision"]))
        for i, (name, extra) in enumerate(runs):
            command = [PYTHON, "-m", "sweep", "run", str(folder / "space.py"), "--gpus", "0"]
            command += ["--study", f"g{i}", "--results", str(folder / "results"), "--plain"]
            command += ["--force-jobs", *extra]
            rates[name] = per_hour(trials, measure(command, cwd=folder).wall)
    base = rates["plain Keras loop"]
    print(f"GPU throughput, {trials} trials of {epochs} epochs (whole commands, start-up in):")
    for name, rate in rates.items():
        print(f"  {name:<40} {rate:8.1f} trials/hour  {rate / base:5.2f}x the plain loop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
