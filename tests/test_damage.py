"""A full disk, damaged files, odd folders, too many jobs, an early SIGTERM: one line,
nothing lost, and the same command carries on.

- out of space mid-trial (a real small tmpfs as the results folder): the sweep stops at
  once (exit 1) with one line naming the folder, the trial stays RUNNING and resumable,
  and once space is freed the same command resumes it and finishes; report, compare and
  export on a full disk say so in one line;
- a damaged study.db (truncated, not SQLite, malformed) is called damaged (exit 2);
- --results naming a file or a read-only folder (a real read-only mount), export
  destinations of the wrong kind: one line, exit 2, nothing changed; a killed export
  leaves a named partial that the next export removes;
- --jobs beyond the cores runs one worker per core (and says so), beyond the memory is
  refused, unless --force-jobs;
- SIGTERM while TensorFlow imports or the data loads: one line, exit 130;
- a damaged history.csv leaves its curve out of the report, with a note.

Real Keras training, real Optuna SQLite storage, real processes, signals and mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import write_space

# A model whose resume point is about 1 MB an epoch (Adam's moments included).
WIDE_SPACE = """
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
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-3, sampling="log")),
        loss="sparse_categorical_crossentropy",
    )
    return model
"""


def sweep(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def needs_root(what: str) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} needs root in CI")
        pytest.skip(f"{what} needs root (the tests mount filesystems)")


@contextlib.contextmanager
def mounted(point: Path, *options: str) -> Iterator[Path]:
    """A real tmpfs at ``point`` (mount -t tmpfs -o OPTIONS), unmounted afterwards."""
    needs_root("mounting a tmpfs")
    point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=True)


def fill(path: Path) -> None:
    """Write zeros to ``path`` until its filesystem has no byte left."""
    chunk = b"\0" * (1 << 16)
    with path.open("wb", buffering=0) as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0")


def epochs_done(trial_dir: Path) -> int:
    try:
        return int(json.loads((trial_dir / "resume" / "state.json").read_text())["epochs_done"])
    except (OSError, ValueError, KeyError):
        return 0


DISK_FULL = re.compile(
    r"^sweep: error: disk full: out of space writing to (\S+) \(([^)]*) free(?:, about (.*) "
    r"needed)?\); trial 0 stays resumable from its last completed epoch; free some space and "
    r"run the same command again to continue\n$"
)


def test_full_disk_stops_the_sweep_and_the_same_command_resumes(tmp_path: Path) -> None:
    settings = {"epochs": 15, "patience": 15, "trials": 2, "sampler": "random"}
    space = write_space(tmp_path, source=WIDE_SPACE, settings=settings)
    with mounted(tmp_path / "disk", "size=24m") as disk:
        results = disk / "results"
        argv = ("run", str(space), "--results", str(results), "--seed", "3", "--plain")
        proc = sweep(*argv, cwd=tmp_path)
        trial_dir = results / "tiny" / "trials" / "0"
        deadline = time.monotonic() + 300
        while epochs_done(trial_dir) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "trial 0 never reached epoch 2"
            time.sleep(0.02)
        filler = disk / "filler"
        fill(filler)  # mid-trial: the next epoch's resume point cannot be written
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        match = DISK_FULL.match(err)
        assert match, err
        assert Path(match[1]).is_relative_to(disk)
        study = optuna.load_study(
            study_name="tiny", storage=f"sqlite:///{results / 'tiny' / 'study.db'}"
        )
        # at once: no other trial started; trial 0 is not failed but resumable
        assert [t.state.name for t in study.trials] == ["RUNNING"]
        committed = epochs_done(trial_dir)
        assert 2 <= committed < 15
        assert (trial_dir / "best.keras").is_file()
        filler.unlink()
        again = sweep(*argv, cwd=tmp_path)
        out, err = again.communicate(timeout=600)
        assert again.returncode == 0, err
        assert "trial 0 was left running by a process that is gone; resuming it" in out
        study = optuna.load_study(
            study_name="tiny", storage=f"sqlite:///{results / 'tiny' / 'study.db'}"
        )
        assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
        first = study.trials[0].user_attrs
        assert first["resumed_from"] == committed and first["stop_epoch"] == 15


def test_report_compare_and_export_on_a_full_disk_say_so_in_one_line(
    finished_sweep: Path, tmp_path: Path
) -> None:
    from conftest import run_cli

    with mounted(tmp_path / "disk", "size=8m") as disk:
        results = disk / "results"
        shutil.copytree(finished_sweep / "results", results)
        for generated in ("report.html", "stopping.csv", "stopping.png"):
            (results / "tiny" / generated).unlink(missing_ok=True)
        fill(disk / "filler")
        line = re.compile(
            rf"^sweep: error: disk full: out of space writing to {re.escape(str(disk))}\S* "
            r"\(0 bytes free\); free some space and run the same command again to continue\n$"
        )
        where = ("--results", str(results))
        for argv in (
            ("report", "tiny", *where),
            ("compare", "tiny", *where),
            ("export", "tiny", *where, "--out", str(disk / "winner.keras")),
        ):
            code, _, err = run_cli(*argv, cwd=tmp_path)
            assert (code, bool(line.match(err))) == (1, True), (argv, err)
        assert not (disk / "winner.keras").exists()
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "results"]


# --------------------------------------------------------------------------- study.db damaged

READERS = ("table", "status", "report", "compare", "export")


def reader_argv(command: str, results: Path, tmp_path: Path) -> list[str]:
    extra = ["--out", str(tmp_path / "winner.keras")] if command == "export" else []
    return [command, "tiny", "--results", str(results), *extra]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda b: b[: len(b) // 2], r"it is truncated: \d+ of \d+ bytes"),
        (lambda b: b"\x00\xff garbage" * 50, "it is not an SQLite database"),
        (
            lambda b: b[:8192] + b"\xa5" * (len(b) - 16384) + b[-8192:],
            "SQLite says: database disk image is malformed",
        ),
    ],
    ids=["truncated", "not-sqlite", "malformed"],
)
def test_a_damaged_study_db_is_called_damaged(
    finished_sweep: Path, tmp_path: Path, damage: object, why: str
) -> None:
    from conftest import run_cli

    results = tmp_path / "results"
    shutil.copytree(finished_sweep / "results", results)
    db = results / "tiny" / "study.db"
    db.write_bytes(damage(db.read_bytes()))  # type: ignore[operator]
    damaged = db.read_bytes()
    line = re.compile(
        rf"^sweep: error: study 'tiny': {re.escape(str(db))} is damaged \({why}\) and cannot "
        rf"be read; the checkpoints and histories under {re.escape(str(db.parent))}/trials/ are "
        r"intact; restore study.db from a backup, or run the sweep again with --study NEW\n$"
    )
    for command in READERS:
        code, _, err = run_cli(*reader_argv(command, results, tmp_path), cwd=tmp_path)
        assert (code, bool(line.match(err))) == (2, True), (command, err)
    assert db.read_bytes() == damaged  # nothing tried to repair it
    assert not (tmp_path / "winner.keras").exists()


def test_an_empty_study_db_is_still_being_created(finished_sweep: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    results = tmp_path / "results"
    shutil.copytree(finished_sweep / "results", results)
    (results / "tiny" / "study.db").write_bytes(b"")
    code, _, err = run_cli("table", "tiny", "--results", str(results), cwd=tmp_path)
    assert code == 2 and "is being created right now; try again in a moment" in err, err


# --------------------------------------------------------------------------- odd folders


def test_results_naming_a_file(finished_sweep: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    afile = tmp_path / "notes.txt"
    afile.write_text("not a folder\n")
    line = (
        f"sweep: error: --results {afile}: expected a folder, found a file; pass a folder "
        "(it is created if missing)\n"
    )
    for argv in (
        ("run", str(finished_sweep / "tiny.py"), "--results", str(afile)),
        ("table", "tiny", "--results", str(afile)),
    ):
        assert run_cli(*argv, cwd=tmp_path) == (2, "", line)
    assert afile.read_text() == "not a folder\n"


def test_a_read_only_results_folder(finished_sweep: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    with mounted(tmp_path / "disk", "size=8m") as disk:
        shutil.copytree(finished_sweep / "results", disk / "results")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        results, folder = disk / "results", disk / "results" / "tiny"
        before = sorted(p.name for p in folder.iterdir())
        space = str(finished_sweep / "tiny.py")
        cases = {
            ("run", space, "--results", str(results)): (
                f"sweep: error: --results {results}: cannot write to {folder} (read-only or no "
                "permission); pass a writable folder\n"
            ),
            ("run", space, "--results", str(disk / "new")): (
                f"sweep: error: --results {disk / 'new'}: cannot create {disk / 'new' / 'tiny'} "
                "(Read-only file system); pass a writable folder\n"
            ),
            ("report", "tiny", "--results", str(results)): (
                f"sweep: error: cannot write to {folder} (Read-only file system); "
                "pass a writable folder (--results, --out)\n"
            ),
        }
        for argv, line in cases.items():
            assert run_cli(*argv, cwd=tmp_path) == (2, "", line)
        assert sorted(p.name for p in folder.iterdir()) == before


def test_export_checks_every_destination_before_moving_anything(
    finished_sweep: Path, tmp_path: Path
) -> None:
    from conftest import run_cli

    where = ("--results", str(finished_sweep / "results"), "--force")
    folder = tmp_path / "winner.keras"
    (folder / "inside").mkdir(parents=True)
    code, _, err = run_cli("export", "tiny", "--out", str(folder), *where, cwd=tmp_path)
    assert (code, err) == (
        2,
        f"sweep: error: --out {folder}: {folder} is a folder, and the export writes a file "
        "there; --force replaces only an earlier export: remove it, or choose another path\n",
    )
    assert [p.name for p in folder.iterdir()] == ["inside"]
    out = tmp_path / "other.keras"
    (tmp_path / "other.keras.json").mkdir()
    code, _, err = run_cli("export", "tiny", "--out", str(out), *where, cwd=tmp_path)
    assert code == 2 and f"{out}.json is a folder, and the export writes a file" in err, err
    assert not out.exists()  # the model was not moved into place without its card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.keras.json", "winner.keras"]


def test_a_killed_export_leaves_a_named_partial_that_the_next_export_removes(
    finished_sweep: Path, tmp_path: Path
) -> None:
    from conftest import run_cli

    out = tmp_path / "exports" / "winner"
    out.parent.mkdir()
    partial = out.parent / ".winner.sweep-export-partial"
    argv = ("export", "tiny", "--results", str(finished_sweep / "results"), "--out", str(out))
    proc = sweep(*argv, "--format", "savedmodel", cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not partial.exists():  # the SavedModel is being written and checked (seconds)
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the export never staged its model"
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    assert [p.name for p in out.parent.iterdir()] == [partial.name]  # says what it is
    code, _, err = run_cli(*argv, "--format", "savedmodel", cwd=tmp_path)
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == ["winner", "winner.json"]
    keras_out = out.parent / "winner.keras"
    (out.parent / ".winner.sweep-export-partial.keras").write_bytes(b"left by a kill")
    code, _, err = run_cli(*argv[:-1], str(keras_out), cwd=tmp_path)
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "winner",
        "winner.json",
        "winner.keras",
        "winner.keras.json",
    ]


# --------------------------------------------------------------------------- --jobs bounded

GB = 1024**3


def test_jobs_beyond_the_cores_run_one_worker_per_core_and_memory_is_checked() -> None:
    from sweep.core.errors import ConfigError
    from sweep.execution.capacity import jobs_to_start

    roomy = {"per_worker": GB // 2, "available": 20 * GB}
    assert jobs_to_start(4, cores=2, force=False, on_cpu=True, **roomy) == (
        2,
        "--jobs 4: running 2 workers, one per core of this machine's 2: the trials train on "
        "the CPU, where more workers only take turns on the cores and each costs a TensorFlow "
        "start-up and its memory; pass --force-jobs to start 4",
    )
    assert jobs_to_start(2, cores=2, force=False, on_cpu=True, **roomy) == (2, None)
    assert jobs_to_start(4, cores=2, force=False, on_cpu=False, **roomy) == (4, None)  # GPUs
    assert jobs_to_start(4, cores=2, force=True, on_cpu=True, **roomy) == (4, None)
    assert jobs_to_start(3, cores=1, force=False, on_cpu=True, **roomy)[0] == 1
    tight = {"per_worker": GB, "available": 5 * GB // 2}
    with pytest.raises(ConfigError) as memory:
        jobs_to_start(8, cores=16, force=False, on_cpu=True, **tight)
    assert str(memory.value) == (
        "--jobs 8: each worker needs about 1024 MB (TensorFlow and the data) and 2560 MB of "
        "memory are available, enough for 2; use fewer --jobs, or pass --force-jobs to start 8 "
        "anyway"
    )
    # the cap comes first: 64 asked on 2 cores are 2 workers, and those fit
    assert jobs_to_start(64, cores=2, force=False, on_cpu=True, **tight)[0] == 2
    assert jobs_to_start(8, cores=16, force=True, on_cpu=True, **tight) == (8, None)
    one = jobs_to_start(1, cores=1, per_worker=GB, available=0, force=False, on_cpu=True)
    assert one == (1, None)  # one process: no check


def test_jobs_64_runs_one_worker_per_core_and_says_so(finished_sweep: Path, tmp_path: Path) -> None:
    """On a copy of a finished study: `sweep run --jobs 64` and `sweep worker --jobs 64`
    say they run one worker per core, and the study is left as it was."""
    from conftest import run_cli

    shutil.copytree(finished_sweep, tmp_path, dirs_exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    folder = tmp_path / "results" / "tiny"
    table = (folder / "trials.csv").read_text()
    note = f"--jobs 64: running {cores} workers, one per core of this machine's {cores}: "
    code, out, err = run_cli("run", "tiny.py", "--jobs", "64", cwd=tmp_path)
    assert code == 0, err
    assert note in out + err and "pass --force-jobs to start 64" in out + err
    assert "3/3 trials finished" in out
    storage = f"sqlite:///{folder / 'study.db'}"
    code, out, err = run_cli("worker", "tiny", "--storage", storage, "--jobs", "64", cwd=tmp_path)
    assert code == 0, err
    assert note in out + err
    log = (folder / "sweep.log").read_text()
    assert log.count(note) == 2  # both in the log too
    assert (folder / "trials.csv").read_text() == table  # nothing trained, nothing changed


# --------------------------------------------------------------------------- SIGTERM at start-up

SLOW_DATA = """
import time
from pathlib import Path

_tiny_load_data = load_data


def load_data():
    Path("loading").write_text("now")
    time.sleep(120)
    return _tiny_load_data()
"""


def tensorflow_loading(pid: int) -> bool:
    try:
        return "tensorflow" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("moment", ["tensorflow-import", "data-load"])
def test_sigterm_during_start_up_is_one_line_and_130(tmp_path: Path, moment: str) -> None:
    import signal

    space = write_space(tmp_path, extra=SLOW_DATA)
    proc = sweep("run", str(space), cwd=tmp_path)
    if moment == "data-load":
        ready = (tmp_path / "loading").exists
    else:
        ready = lambda: tensorflow_loading(proc.pid)  # noqa: E731  its libraries are mapping
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"never reached {moment}"
        time.sleep(0.01)
    assert not (tmp_path / "results" / "tiny" / "study.db").exists()  # before any trial
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (
        130,
        "sweep: interrupted; run the same command again to continue\n",
    )


# --------------------------------------------------------------------------- damaged history.csv


def copy_with_own_trial_dirs(finished_sweep: Path, tmp_path: Path) -> Path:
    """A copy of the finished sweep whose trials point at the copy's own trial folders.

    The study records each trial's folder as an absolute path; Optuna refuses to change a
    finished trial's attrs, so the copy's SQLite rows are rewritten directly."""
    import sqlite3

    results = tmp_path / "results"
    shutil.copytree(finished_sweep / "results", results)
    (results / "tiny" / "report.html").unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(results / "tiny" / "study.db")) as db:
        db.execute(
            "UPDATE trial_user_attributes SET value_json = replace(value_json, ?, ?) "
            "WHERE key IN ('trial_dir', 'checkpoint')",
            (json.dumps(str(finished_sweep))[1:-1], json.dumps(str(tmp_path))[1:-1]),
        )
        db.commit()
    return results


def test_report_with_damaged_histories_leaves_their_curves_out(
    finished_sweep: Path, tmp_path: Path
) -> None:
    from conftest import run_cli

    results = copy_with_own_trial_dirs(finished_sweep, tmp_path)
    trials = results / "tiny" / "trials"
    empty = trials / "0" / "history.csv"
    lines = empty.read_text().splitlines()
    lines[2] = "," + lines[2].split(",", 1)[1]  # epoch 2's epoch cell empty
    empty.write_text("\n".join(lines) + "\n")
    binary = trials / "1" / "history.csv"
    binary.write_bytes(binary.read_bytes()[:40] + b"\xff\xfe\x00\x81" + binary.read_bytes()[40:])
    code, _, err = run_cli("report", "tiny", "--results", str(results), cwd=tmp_path)
    assert (code, err) == (0, ""), err
    page = (results / "tiny" / "report.html").read_text()
    for number, path, why in (
        (0, empty, "ValueError: invalid literal for int() with base 10: &#x27;&#x27;"),
        (1, binary, "UnicodeDecodeError: &#x27;utf-8&#x27; codec can&#x27;t decode byte 0xff"),
    ):
        note = f"Trial {number}&#x27;s learning curve is left out: {path} is damaged ({why}"
        assert note in page
    assert 'alt="learning curves of the best 1 trials"' in page  # trial 2's is drawn
    (trials / "2" / "history.csv").write_bytes(b"\x00\xff\xfe")
    code, _, err = run_cli("report", "tiny", "--results", str(results), cwd=tmp_path)
    assert (code, err) == (0, "")
    page = (results / "tiny" / "report.html").read_text()
    assert "No learning curve could be drawn." in page and 'id="results"' in page
