"""Overnight-proof: kill -9, Ctrl+C and SIGTERM at any moment lose nothing finished,
leave no half-written file, and running the same command again carries on, down to
the epoch, with the same result as if nothing had happened."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import keras
import optuna
import pytest
from conftest import run_cli, write_space

from sweep.store.ownership import Worker

# Epochs of about half a second, so a signal can land in the middle of a trial.
SLOW_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2400, 32)).astype("float32")
    y = (x[:, :4].sum(axis=1) + 0.5 * rng.normal(size=2400) > 0).astype("int64")
    return x, y


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input(shape=(32,)),
            keras.layers.Dense(hp.Int("units", 16, 64, step=16), activation="relu"),
            keras.layers.Dropout(hp.Float("dropout", 0.1, 0.5)),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
"""

SLOW = {"monitor": "val_loss", "batch_size": 8, "validation_split": 0.25}


def start(folder: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", "run", str(folder / "tiny.py"), *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def finish(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = start(folder, *args)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        assert proc.poll() is None, f"the sweep ended early: {proc.communicate()[1]}"
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the sweep")


def epochs_done(folder: Path, trial: int) -> int:
    state = folder / "results" / "tiny" / "trials" / str(trial) / "resume" / "state.json"
    try:
        return int(json.loads(state.read_text())["epochs_done"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def epoch_lines(folder: Path) -> int:
    log = folder / "results" / "tiny" / "sweep.log"
    return log.read_text().count(" epoch ") if log.exists() else 0


def study(folder: Path) -> optuna.Study:
    db = folder / "results" / "tiny" / "study.db"
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def assert_whole_files(folder: Path) -> None:
    """Every best.keras present loads, every CSV parses and is consistent."""
    root = folder / "results" / "tiny"
    for checkpoint in root.glob("trials/*/best.keras"):
        keras.saving.load_model(checkpoint)
    for history in root.glob("trials/*/history.csv"):
        rows = read_rows(history)
        assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
        assert all(r["val_loss"] for r in rows)
    if (root / "trials.csv").exists():
        rows = read_rows(root / "trials.csv")
        assert all(r["state"] in ("complete", "failed", "running", "pruned") for r in rows)


def kill(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def test_deterministic_resume_after_kill_is_exact(tmp_path: Path) -> None:
    """The same trial run uninterrupted, and killed with SIGKILL then resumed: same row,
    same history, to the last bit."""
    settings = {**SLOW, "epochs": 9, "patience": 3, "trials": 1}
    runs = {}
    for name in ("straight", "killed"):
        folder = tmp_path / name
        folder.mkdir()
        write_space(folder, source=SLOW_SPACE, settings=settings)
        args = ("--deterministic", "--seed", "7")
        if name == "killed":
            proc = start(folder, *args)
            wait_for(proc, lambda f=folder: epochs_done(f, 0) >= 3)
            kill(proc)
            (left,) = study(folder).trials
            assert left.state == optuna.trial.TrialState.RUNNING  # a ghost, until resumed
            assert_whole_files(folder)
            out = finish(folder, *args).stdout
            assert "trial 0 was left running by a process that is gone; resuming it" in out
        else:
            finish(folder, *args)
        (trial,) = study(folder).trials
        history = (folder / "results" / "tiny" / "trials" / "0" / "history.csv").read_text()
        runs[name] = (trial, history)
    (straight, straight_history), (killed, killed_history) = runs["straight"], runs["killed"]
    assert killed.user_attrs["resumed_from"] >= 3
    assert killed.state == straight.state == optuna.trial.TrialState.COMPLETE
    assert killed.params == straight.params
    for key in ("best_score", "best_epoch", "stop_epoch", "early_stopped", "stop_reason"):
        assert killed.user_attrs[key] == straight.user_attrs[key], key
    assert killed.value == straight.value
    assert killed_history == straight_history  # every epoch's every log, exactly
    assert killed.intermediate_values == straight.intermediate_values
    assert not (tmp_path / "killed" / "results" / "tiny" / "trials" / "0" / "resume").exists()


def test_kill_at_several_moments_loses_nothing(tmp_path: Path) -> None:
    write_space(tmp_path, source=SLOW_SPACE, settings={**SLOW, "epochs": 4, "trials": 3})
    for moment in (1, 5, 9):  # epoch lines in sweep.log when the kill lands
        proc = start(tmp_path, "--seed", "1")
        target = epoch_lines(tmp_path) + moment % 4 + 1
        wait_for(proc, lambda target=target: epoch_lines(tmp_path) >= target)
        time.sleep(0.05 * moment)  # vary where inside the epoch the kill lands
        kill(proc)
        assert_whole_files(tmp_path)
    finish(tmp_path, "--seed", "1")
    assert_whole_files(tmp_path)
    trials = study(tmp_path).trials
    assert [t.number for t in trials] == [0, 1, 2]  # resumed, not restarted as new trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert any(t.user_attrs.get("resumed_from", 0) > 0 for t in trials)
    rows = read_rows(tmp_path / "results" / "tiny" / "trials.csv")
    assert sorted(r["state"] for r in rows) == ["complete"] * 3
    for t in trials:
        history = read_rows(Path(t.user_attrs["checkpoint"]).parent / "history.csv")
        assert len(history) == t.user_attrs["stop_epoch"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_finishes_the_epoch_and_leaves_the_trial_resumable(
    tmp_path: Path, signum: int
) -> None:
    # a patience that can't run out: EarlyStopping must not end the trial in the same epoch
    settings = {**SLOW, "epochs": 30, "patience": 30, "trials": 2}
    write_space(tmp_path, source=SLOW_SPACE, settings=settings)
    proc = start(tmp_path)
    wait_for(proc, lambda: epochs_done(tmp_path, 0) >= 2)
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "stopping after this epoch" in err
    done = epochs_done(tmp_path, 0)
    assert done >= 2
    (trial,) = study(tmp_path).trials
    assert trial.state == optuna.trial.TrialState.RUNNING  # resumable, not failed
    history = read_rows(tmp_path / "results" / "tiny" / "trials" / "0" / "history.csv")
    assert len(history) == done  # the epoch in progress finished and was recorded
    rows = read_rows(tmp_path / "results" / "tiny" / "trials.csv")
    assert [r["state"] for r in rows] == ["running"]
    assert_whole_files(tmp_path)
    code, status, _ = run_cli("status", "tiny", cwd=tmp_path)
    assert code == 0
    assert f"interrupted: trial 0 at epoch {done}/30" in status and "running:" not in status
    if signum != signal.SIGINT:
        return  # resuming after it is the same for both signals: checked once, for SIGINT
    finish(tmp_path, "--epochs", "30")
    trials = study(tmp_path).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert trials[0].user_attrs["resumed_from"] == done


def test_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    settings = {**SLOW, "epochs": 5, "trials": 1, "batch_size": 1}  # epochs of several seconds
    write_space(tmp_path, source=SLOW_SPACE, settings=settings)
    proc = start(tmp_path)
    wait_for(proc, lambda: "trial 0 started" in _log(tmp_path))
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    sent = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130
    assert "stopped now" in err
    assert epochs_done(tmp_path, 0) == 0  # it did not wait for the epoch to end
    assert took < 3.0, took
    assert_whole_files(tmp_path)


def _log(folder: Path) -> str:
    log = folder / "results" / "tiny" / "sweep.log"
    return log.read_text() if log.exists() else ""


def test_a_live_owner_keeps_its_trial(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    s = optuna.create_study(study_name="s", storage=storage)
    first, second = Worker(tmp_path), Worker(tmp_path)
    owned = s.ask()
    first.mark(owned)
    s.ask()  # asked a moment ago, not yet marked: left alone (grace period)
    assert second.orphans(s) == []
    first.close()  # its process is gone, as far as the lock can tell
    found = second.orphans(s)
    assert [t.number for t in found] == [owned.number]  # not the unmarked one
    assert s.trials[owned.number].user_attrs["owner"] == first.id  # found, not claimed
    second.claim(s, found[0])
    assert s.trials[owned.number].user_attrs["owner"] == second.id
    assert Worker(tmp_path).orphans(s) == []  # second is alive and owns it now
    second.close()


def test_a_worker_claims_only_the_orphan_it_runs(tmp_path: Path) -> None:
    """Two orphans (a killed --jobs 2 run): claiming one leaves the other to the next worker,
    or to the same worker once it is done with the first (the --jobs 1 rerun)."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    s = optuna.create_study(study_name="s", storage=storage)
    dead = Worker(tmp_path)
    for _ in range(2):
        dead.mark(s.ask())
    dead.close()
    first, second = Worker(tmp_path), Worker(tmp_path)
    with first.claiming():
        found = first.orphans(s)
        assert [t.number for t in found] == [0, 1]
        first.claim(s, found[0])
    assert [t.number for t in second.orphans(s)] == [1]  # still an orphan, for anyone
    assert [t.number for t in first.orphans(s)] == [1]
    first.close()
    second.close()


SLOW_HYPERMODEL = SLOW_SPACE.replace(
    "def build_model(hp):", "class Slow(keras_tuner.HyperModel):\n  def build(self, hp):"
).replace("import keras\n", "import keras\nimport keras_tuner\n", 1) + (
    "\n  def fit(self, hp, model, *args, **kwargs):\n"
    "    return model.fit(*args, batch_size=hp.Choice('batch_size', [8]), **kwargs)\n"
)


def test_hypermodel_with_its_own_fit_resumes_from_its_last_epoch(tmp_path: Path) -> None:
    """A HyperModel's fit gets initial_epoch through **kwargs: a killed trial continues at
    its last committed epoch, with one history row per epoch and a consistent best."""
    settings = {k: v for k, v in SLOW.items() if k != "batch_size"}
    source = SLOW_HYPERMODEL.replace("{settings!r}", repr({**settings, "epochs": 6, "trials": 1}))
    write_space(tmp_path, source=source)
    proc = start(tmp_path, "--seed", "2")
    wait_for(proc, lambda: epochs_done(tmp_path, 0) >= 2)
    kill(proc)
    out = finish(tmp_path, "--seed", "2").stdout
    assert "trial 0 was left running by a process that is gone; resuming it" in out
    (trial,) = study(tmp_path).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.params["batch_size"] == 8
    assert trial.user_attrs["resumed_from"] >= 2
    stop = trial.user_attrs["stop_epoch"]
    assert sorted(trial.intermediate_values) == list(range(1, stop + 1))
    assert_whole_files(tmp_path)  # history.csv epochs are 1..stop_epoch, no repeats
    steps = trial.intermediate_values
    assert trial.user_attrs["best_epoch"] == min(steps, key=lambda e: (steps[e], e))
