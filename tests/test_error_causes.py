"""Errors keep their cause (issue 23, items 13 and 14): real sweeps whose generator,
PyDataset or image folder fails mid-epoch, a probe that finds a shape mismatch, and a
``--threads`` value TensorFlow cannot take."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import TINY_SPACE, batches_source, run_cli, write_space

import sweep
from sweep.core.errors import ConfigError

FAILS_AT = 3  # the batch (0-based) of epoch 1 that raises: after the probe's two batches

GENERATOR_SPACE = TINY_SPACE.replace(
    "def load_data():",
    f"""def fit_options(hp):
    return {{"steps_per_epoch": 6}}


def load_data():
    x, y = arrays()

    def batches():
        for k in range(6):
            if k == {FAILS_AT}:
                raise RuntimeError("disk read failed on shard 7")
            yield x[k * 30 : (k + 1) * 30], y[k * 30 : (k + 1) * 30]

    return (batches, (x[180:], y[180:]))


def arrays():""",
)

PYDATASET_SPACE = TINY_SPACE.replace(
    "def load_data():",
    f"""{batches_source(30)}

class Failing(Batches):
    def __getitem__(self, i):
        if i == {FAILS_AT}:
            raise RuntimeError("disk read failed on shard 7")
        return super().__getitem__(i)


def load_data():
    x, y = arrays()
    if VALIDATION:
        return (Batches(x[:180], y[:180]), Failing(x[180:], y[180:], batch_size=10))
    return (Failing(x[:180], y[:180], workers=2), (x[180:], y[180:]))


def arrays():""",
)


IMAGES_SPACE = """
import keras

SETTINGS = {settings!r}


def load_data():
    train = keras.utils.image_dataset_from_directory(
        "images/train", image_size=(8, 8), batch_size=4, shuffle=False
    )
    val = keras.utils.image_dataset_from_directory(
        "images/val", image_size=(8, 8), batch_size=4, shuffle=False
    )
    return train, val


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Int("units", 4, 8, step=4), activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
"""


def rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "results" / "tiny" / "trials.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "source",
    [
        GENERATOR_SPACE,
        PYDATASET_SPACE.replace("VALIDATION", "False"),  # its workers raise
        PYDATASET_SPACE.replace("VALIDATION", "True"),  # the validation PyDataset raises
    ],
    ids=["generator", "pydataset-workers", "pydataset-validation"],
)
def test_an_input_that_raises_keeps_the_users_exception(tmp_path: Path, source: str) -> None:
    space = write_space(tmp_path, settings={"trials": 1, "epochs": 2}, source=source)
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 0, err
    shown = "RuntimeError: disk read failed on shard 7"
    [row] = rows(tmp_path)
    assert row["state"] == "failed"
    assert row["error"] == shown  # the user's type and message, not UnknownError (op PyFunc)
    assert "trial 0 failed after " in out
    failed = next(line for line in out.splitlines() if "trial 0 failed" in line)
    assert failed.endswith(f": {shown}")
    assert "PyFunc" not in out and "stack traces unavailable" not in out


def write_images(folder: Path, *, corrupt: str | None) -> None:
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label in ("a", "b"):
            place = folder / "images" / split / label
            place.mkdir(parents=True)
            for i in range(8):
                keras.utils.save_img(place / f"{i}.png", rng.uniform(0, 255, (8, 8, 3)))
    if corrupt is not None:  # sorted last: the probe's two batches are 8 good images
        (folder / corrupt).write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a PNG at all" * 4)


def test_a_corrupt_image_is_named_with_tensorflows_reason(tmp_path: Path) -> None:
    bad = "images/train/b/zz_bad.png"
    write_images(tmp_path, corrupt=bad)
    space = write_space(tmp_path, settings={"trials": 1, "epochs": 2}, source=IMAGES_SPACE)
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 0, err
    [row] = rows(tmp_path)
    assert row["state"] == "failed"
    assert row["error"].startswith("InvalidArgumentError: Invalid PNG"), row["error"]
    assert "(op DecodeImage)" in row["error"] and "stack traces unavailable" not in row["error"]
    assert row["error"].endswith(f"; file: {bad}"), row["error"]  # as the space file named it
    failed = next(line for line in out.splitlines() if "trial 0 failed" in line)
    assert failed.endswith(row["error"])


SHAPE_SPACE = TINY_SPACE.replace("keras.Input(shape=(8,))", "keras.Input(shape=(5,))")


def test_a_shape_mismatch_found_by_the_probe_names_both_shapes(tmp_path: Path) -> None:
    space = write_space(tmp_path, source=SHAPE_SPACE)
    code, _, err = run_cli("run", str(space), cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"sweep: error: search space {space}: model.fit on 8 samples raised ")
    assert "expected axis -1 of input shape to have value 5" in err
    assert "but received input with shape (8, 8)" in err
    assert "\x1b[" not in err and "Exception encountered" not in err
    assert not (tmp_path / "results" / "tiny" / "study.db").exists()


@pytest.mark.parametrize("threads", ["3000000000", "4097", "2147483648"])
def test_threads_beyond_what_tensorflow_takes_is_a_usage_error(
    tmp_path: Path, threads: str
) -> None:
    space = write_space(tmp_path)
    code, _, err = run_cli("run", str(space), "--threads", threads, cwd=tmp_path)
    assert err == (
        "sweep: error: argument --threads: expected a whole number from 1 to 4096, "
        f"got {threads}; see 'sweep run --help'\n"
    )
    assert code == 2
    assert not (tmp_path / "results").exists()
    code, _, err = run_cli(
        "worker", "tiny", "--storage", "sqlite:///x.db", "--threads", threads, cwd=tmp_path
    )
    assert code == 2 and "expected a whole number from 1 to 4096" in err


def test_threads_out_of_range_in_the_api_is_a_config_error(tmp_path: Path) -> None:
    space = write_space(tmp_path)
    with pytest.raises(
        ConfigError, match=r"^--threads: expected a whole number from 1 to 4096, got 3000000000$"
    ):
        sweep.run(space, threads=3_000_000_000, results=tmp_path / "results", progress=False)
    with pytest.raises(ConfigError, match=r"^--threads: expected a whole number from 1 to 4096"):
        sweep.work("tiny", storage="sqlite:///x.db", threads=2**31, results=tmp_path / "r")
    assert not (tmp_path / "results").exists() and not (tmp_path / "r").exists()
