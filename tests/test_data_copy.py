"""`--jobs N`'s copy of the arrays under results/<study>/data/ (issue 23, items 7 and 18).

The workers memory-map a copy of the training and validation arrays that the run writes
at its start. A run killed with SIGKILL leaves it behind: the next run removes every copy
whose run is gone (its lock is free), and each run removes its own at its end. The space
is checked first; a full disk while writing leaves no partial copy. Files are named by
position, so a dict input's key may hold a '/'.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import TINY_SPACE, run_cli, write_space
from test_journal_torn import _mount_tmpfs
from test_resume import SLOW, SLOW_SPACE, epoch_lines, kill, start, wait_for

from sweep.core.errors import DiskFullError
from sweep.space.data import Data
from sweep.space.shared import read_shared, write_shared

DICT_SPACE = """
from __future__ import annotations

import warnings

import keras
import numpy as np

SETTINGS = {settings!r}
# Keras' names can't hold '/', so the key and the Input's name differ; Keras says so
warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")


def load_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=ROWS)
    centers = rng.normal(0.0, 2.0, size=(3, 8))
    a = (centers[y] + rng.normal(0.0, 1.5, size=(ROWS, 8))).astype("float32")
    c = (centers[y, :4] + rng.normal(0.0, 1.5, size=(ROWS, 4))).astype("float32")
    return {"a/b": a, "c": c}, y.astype("int64")


def build_model(hp):
    a = keras.Input(shape=(8,), name="a_b")
    c = keras.Input(shape=(4,), name="c")
    h = keras.layers.Concatenate()([a, c])
    h = keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu")(h)
    model = keras.Model({"a/b": a, "c": c}, keras.layers.Dense(3, activation="softmax")(h))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
    )
    return model
"""

# trials of a few seconds: the worker (importing TensorFlow meanwhile) gets one of them
DICT_SETTINGS = {"trials": 3, "epochs": 4, "patience": 4, "batch_size": 16, "sampler": "random"}


def _rows(folder: Path, study: str) -> list[dict[str, str]]:
    with (folder / "results" / study / "trials.csv").open(newline="") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: int(r["trial"]))


def test_dict_inputs_with_a_slash_in_a_key_train_with_jobs_2(tmp_path: Path) -> None:
    """--jobs 2 trains like --jobs 1 on them, and removes its copy at its end."""
    space = write_space(tmp_path, source=DICT_SPACE.replace("ROWS", "2400"), settings=DICT_SETTINGS)
    seeded = ("--seed", "0", "--deterministic")
    code, _, err = run_cli("run", str(space), "--study", "one", *seeded, cwd=tmp_path)
    assert code == 0, err
    jobs = ("--jobs", "2", "--force-jobs")
    code, out, err = run_cli("run", str(space), "--study", "two", *seeded, *jobs, cwd=tmp_path)
    assert code == 0, err
    data = tmp_path / "results" / "two" / "data"
    assert f"the workers memory-map the arrays from {data.resolve()}/" in out
    assert not data.exists()  # removed at the end of the run
    one, two = _rows(tmp_path, "one"), _rows(tmp_path, "two")
    assert len({r["worker"] for r in two}) == 2  # a worker trained on the memory-mapped copy
    for a, b in zip(one, two, strict=True):
        assert (a["param_units"], a["param_lr"], a["state"]) == (
            b["param_units"],
            b["param_lr"],
            "complete",
        )
        assert float(a["best_score"]) == pytest.approx(float(b["best_score"]), rel=1e-5)


def test_the_copy_keeps_the_keys_and_names_files_by_position(tmp_path: Path) -> None:
    x = {"a/b": np.arange(12, dtype="float32").reshape(6, 2), "../c": np.ones((6, 1))}
    data = Data(x, np.arange(6), x, np.arange(6))
    copy = write_shared(data, tmp_path / "data", jobs=2)
    try:
        assert {p.name for p in copy.folder.glob("*.npy")} >= {"x_train.0.npy", "x_train.1.npy"}
        read = read_shared(copy.folder)
        assert list(read.x_train) == ["a/b", "../c"]
        assert np.array_equal(read.x_train["a/b"], x["a/b"])
    finally:
        copy.remove()
    assert not (tmp_path / "data").exists()


def test_a_killed_jobs_2_run_leaves_its_copy_and_the_next_run_removes_it(tmp_path: Path) -> None:
    write_space(tmp_path, source=SLOW_SPACE, settings={**SLOW, "epochs": 4, "trials": 3})
    data = tmp_path / "results" / "tiny" / "data"
    proc = start(tmp_path, "--jobs", "2", "--force-jobs", "--seed", "1")
    wait_for(proc, lambda: epoch_lines(tmp_path) >= 1, timeout=300)  # training
    assert len(list(data.rglob("manifest.json"))) == 1
    kill(proc)  # SIGKILL, the whole process group: the run and its worker
    assert data.is_dir()  # left behind
    code, _, err = run_cli("run", "tiny.py", "--seed", "1", cwd=tmp_path)  # to the end
    assert code == 0, err
    assert not data.exists()
    db = tmp_path / "results" / "tiny" / "study.db"
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3


def test_a_copy_in_use_is_left_alone(tmp_path: Path) -> None:
    """At a run's start, another live run's copy (its lock held) stays; a dead one's goes."""
    root = tmp_path / "results" / "tiny" / "data"
    x = np.zeros((4, 2), dtype="float32")
    alive = write_shared(Data(x, np.arange(4), x, np.arange(4)), root, jobs=2)
    try:
        dead = root / "123-deadbeef"  # a killed run's: its lock file is there, not held
        dead.mkdir()
        (dead / "manifest.json").write_text("{}")
        (root / "123-deadbeef.lock").touch()
        write_space(tmp_path, settings={"trials": 1, "epochs": 1})
        code, _, err = run_cli("run", "tiny.py", cwd=tmp_path)
        assert code == 0, err
        assert (alive.folder / "manifest.json").is_file()
        assert sorted(p.name for p in root.iterdir()) == sorted(
            [alive.folder.name, f"{alive.folder.name}.lock"]
        )
    finally:
        alive.remove()
    assert not root.exists()


BIG_SETTINGS = {"trials": 1, "epochs": 1, "batch_size": 256}


def test_no_space_for_the_copy_is_one_line_before_any_trial(tmp_path: Path) -> None:
    """A real full disk: --results on a 2 MB tmpfs, arrays of about 3.2 MB."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "2m")
    try:
        source = TINY_SPACE.replace("240", "80000")
        space = write_space(tmp_path, source=source, settings=BIG_SETTINGS)
        jobs = ("--jobs", "2", "--force-jobs")
        code, out, err = run_cli("run", str(space), "--results", str(disk), *jobs, cwd=tmp_path)
        assert code == 1, err
        (line,) = err.splitlines()
        data = disk / "tiny" / "data"
        assert line.startswith("sweep: error: --jobs 2: the workers' copy of the arrays needs ")
        assert f"under {data}, " in line and "free some space, or run with --jobs 1" in line
        assert not data.exists() and "trial 0 started" not in out
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)  # SQLite may hold it
        shutil.rmtree(disk, ignore_errors=True)


def test_a_full_disk_while_writing_the_copy_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up between the space check and the writing (another process wrote
    there meanwhile): a real full tmpfs; only the free space the check reads is faked,
    because no test can time another process's writes between the two."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "1m")
    try:
        x = np.zeros((200_000, 4), dtype="float32")  # 3.2 MB
        data = Data(x, np.arange(200_000), x[:10], np.arange(10))
        real = shutil.disk_usage
        monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 40))
        with pytest.raises(DiskFullError) as caught:
            write_shared(data, disk / "data", jobs=2)
        assert str(caught.value).startswith(f"disk full: out of space writing to {disk / 'data'}")
        assert list(disk.iterdir()) == []  # no partial copy, no lock, no data/
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)  # SQLite may hold it
        shutil.rmtree(disk, ignore_errors=True)
