"""Shared test helpers: tiny search-space files with real Keras models and real data."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]

# A small, fast, real problem: 3 well-separated classes of points in 8 dimensions.
TINY_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 2.0, size=(3, 8))
    y = rng.integers(0, 3, size=240)
    x = (centers[y] + rng.normal(0.0, 1.5, size=(240, 8))).astype("float32")
    return x, y.astype("int64")


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input(shape=(8,)),
            keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
"""

TINY_SETTINGS: dict[str, Any] = {
    "monitor": "val_loss",
    "epochs": 6,
    "batch_size": 32,
    "validation_split": 0.25,
    "patience": 2,
    "trials": 2,
}


def write_space(
    folder: Path,
    name: str = "tiny",
    *,
    settings: dict[str, Any] | None = None,
    source: str | None = None,
    extra: str = "",
) -> Path:
    """Write a search-space file; ``source`` replaces the tiny default, ``extra`` is appended."""
    merged = dict(TINY_SETTINGS)
    merged.update(settings or {})
    text = (source if source is not None else TINY_SPACE).replace("{settings!r}", repr(merged))
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(text) + textwrap.dedent(extra), encoding="utf-8")
    return path


@pytest.fixture
def tiny_space(tmp_path: Path) -> Path:
    return write_space(tmp_path)


_BATCHES = """class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size=BATCH, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]
"""


def batches_source(batch_size: int) -> str:
    """Space-file source of ``Batches``, a PyDataset over arrays ``x``, ``y`` in order
    (``batch_size`` its default), for the space files the input tests write."""
    return _BATCHES.replace("BATCH", str(batch_size))


def run_cli(*argv: str, cwd: Path) -> tuple[int, str, str]:
    """Run ``sweep.cli.main.main`` here (shares the TensorFlow import), capturing output."""
    import io
    from contextlib import redirect_stderr

    from sweep.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with redirect_stderr(err):
            code = main(list(argv), out=out)
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def sweep_subprocess(*argv: str, cwd: Path, timeout: float = 300) -> Any:
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "sweep", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 3-trial sweep of the tiny space, run once per test session (read-only for tests)."""
    folder = tmp_path_factory.mktemp("finished")
    space = write_space(folder, settings={"trials": 3, "epochs": 5})
    code, _, err = run_cli("run", str(space), "--seed", "11", cwd=folder)
    assert code == 0, err
    return folder


@pytest.fixture(scope="session")
def postgres_base() -> Any:
    """A real PostgreSQL server for the session; skipped only outside CI if not installed."""
    from pg import postgres_server

    with postgres_server() as base:
        if base is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is not installed; .ci/run must install it")
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
        yield base


@pytest.fixture
def postgres_url(postgres_base: str) -> str:
    from pg import new_database

    return new_database(postgres_base)
