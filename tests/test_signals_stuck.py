"""No hang, every signal obeyed (issue 23, items 1-4).

- an input that never ends (an infinite or unknown-length tf.data, a generator function)
  without its steps is refused before any trial, in one line naming the setting (exit 2);
  with the steps it trains;
- a trial stuck in one long call into TensorFlow: the second SIGTERM/SIGINT exits at once
  (130), nothing recorded lost;
- SIGTERM at any moment just after start-up: exit 130, one line, no traceback, no trial
  started after it;
- ``--jobs 2`` and SIGTERM to the command: every worker hears it, none starts a trial
  after it, exit 130.

Real Keras training, real Optuna SQLite studies, real processes and signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from conftest import run_cli, sweep_subprocess, write_space

# --------------------------------------------------------------------------- inputs that never end

ENDLESS = """
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

SETTINGS = {{"monitor": "val_loss", "epochs": 2, "batch_size": 16, "patience": 2, "trials": 1}}
CASE = {case!r}
STEPS = {steps!r}


def arrays(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 8)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def forever(x, y):
    def batches():
        while True:
            yield x[:16], y[:16]
    return batches


def load_data():
    (x, y), (xv, yv) = arrays(0), arrays(1)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(16)
    if CASE == "repeat":
        return train.repeat(), val
    if CASE == "unknown":
        spec = (tf.TensorSpec((None, 8), tf.float32), tf.TensorSpec((None,), tf.int64))
        return tf.data.Dataset.from_generator(forever(x, y), output_signature=spec), val
    if CASE == "val-repeat":
        return train, val.repeat()
    if CASE == "val-generator":
        return train, forever(xv, yv)
    if CASE == "generator":
        return forever(x, y), val
    raise AssertionError(CASE)


def fit_options(hp):
    return STEPS


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
"""

# case: (the setting the line must name, what makes it train)
CASES = {
    "repeat": ("steps_per_epoch", {"steps_per_epoch": 4}),
    "unknown": ("steps_per_epoch", {"steps_per_epoch": 4}),
    "val-repeat": ("validation_steps", {"validation_steps": 4}),
    "val-generator": ("validation_steps", {"validation_steps": 4}),
    "generator": ("steps_per_epoch", {"steps_per_epoch": 4}),
}


def endless_space(folder: Path, case: str, steps: dict[str, int]) -> Path:
    source = ENDLESS.format(case=case, steps=steps)
    return write_space(folder, "endless", source=source)


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_input_that_never_ends_is_refused_before_any_trial(tmp_path: Path, case: str) -> None:
    """In a process of its own with a deadline: the old code sat at `trial 0 started`."""
    setting, _ = CASES[case]
    space = endless_space(tmp_path, case, {})
    done = sweep_subprocess("run", str(space), "--plain", cwd=tmp_path, timeout=180)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("sweep: error: search space"), done.stderr
    assert setting in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    assert "trial 0 started" not in done.stdout  # refused before any trial
    db = tmp_path / "results" / "endless" / "study.db"
    if db.exists():
        study = optuna.load_study(study_name="endless", storage=f"sqlite:///{db}")
        assert study.trials == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_input_that_never_ends_trains_with_its_steps(tmp_path: Path, case: str) -> None:
    _, steps = CASES[case]
    space = endless_space(tmp_path, case, steps)
    code, out, err = run_cli("run", str(space), "--plain", cwd=tmp_path)
    assert code == 0, err
    assert "1/1 trials finished" in out
    history = tmp_path / "results" / "endless" / "trials" / "0" / "history.csv"
    assert len(history.read_text().splitlines()) == 3  # a header and both epochs


# ----------------------------------------------------------------------- a trial stuck in one call

STUCK = """
from __future__ import annotations

import time
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

SETTINGS = {{"monitor": "val_loss", "epochs": 3, "batch_size": 8, "patience": 3, "trials": 1}}
CALLS = []


def batches():
    # calls: the probe's, the feed's first batch, epoch 1's, epoch 2's (stuck: the main
    # thread waits inside TensorFlow for a batch that takes minutes)
    CALLS.append(1)
    rng = np.random.default_rng(0)
    for i in range(4):
        if len(CALLS) == 4 and i == 1:
            Path({stuck!r}).write_text("stuck")
            time.sleep(600)
        x = rng.normal(size=(8, 8)).astype("float32")
        yield x, (x[:, 0] > 0).astype("int64")


def load_data():
    rng = np.random.default_rng(1)
    xv = rng.normal(size=(16, 8)).astype("float32")
    return batches, (xv, (xv[:, 0] > 0).astype("int64"))


def fit_options(hp):
    return {{"steps_per_epoch": 4}}


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
"""


def start(folder: Path, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", "run", *argv, "--plain"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def wait_until(proc: subprocess.Popen[str], ready: Callable[[], bool], limit: float = 240) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        assert proc.poll() is None, f"the sweep ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "timed out waiting for the sweep"
        time.sleep(0.05)


def ended(proc: subprocess.Popen[str], within: float) -> tuple[str, str]:
    """The process's output once it ended; killed (and the test failed) if it didn't."""
    try:
        return proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"still running {within} s after the signals") from None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_exits_at_once_while_a_trial_is_stuck(tmp_path: Path, signum: int) -> None:
    stuck = tmp_path / "stuck"
    space = write_space(tmp_path, "stuck", source=STUCK.format(stuck=str(stuck)))
    proc = start(tmp_path, str(space))
    wait_until(proc, stuck.exists)
    time.sleep(0.5)  # the main thread is inside TensorFlow, waiting for the batch
    os.kill(proc.pid, signum)
    time.sleep(0.5)
    os.kill(proc.pid, signum)
    _, err = ended(proc, within=20)
    assert proc.returncode == 130, err
    assert "stopping after this epoch" in err and "stopped now" in err
    assert "Traceback" not in err
    root = tmp_path / "results" / "stuck"
    db = f"sqlite:///{root / 'study.db'}"
    (trial,) = optuna.load_study(study_name="stuck", storage=db).trials
    assert trial.state == optuna.trial.TrialState.RUNNING  # resumable, nothing lost
    assert list(trial.intermediate_values) == [1]  # epoch 1 was recorded
    history = (root / "trials" / "0" / "history.csv").read_text().splitlines()
    assert len(history) == 2  # a header and epoch 1, whole
    assert (root / "trials.csv").read_text().startswith("trial,state,")  # whole


# ------------------------------------------------------------------ SIGTERM just after start-up


def test_sigterm_just_after_the_study_line_stops_the_run(tmp_path: Path) -> None:
    """Sent at several moments between the study line and the first trial (the window
    where it was raised inside a weakref callback, printed as ignored, and lost)."""
    for delay in (0.0, 0.05, 0.1, 0.2):
        folder = tmp_path / str(delay)
        folder.mkdir()
        space = write_space(folder, settings={"trials": 3, "epochs": 3})
        proc = start(folder, str(space))
        assert proc.stdout is not None
        seen = ""
        while " study tiny:" not in seen:
            line = proc.stdout.readline()
            assert line, f"no study line: {seen}{proc.communicate()}"
            seen += line
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        out, err = ended(proc, within=60)
        assert (proc.returncode, err) == (
            130,
            "sweep: interrupted; run the same command again to continue\n",
        ), (delay, out, err)
        assert "started" not in seen + out, (delay, out)  # no trial started after it
        db = f"sqlite:///{folder / 'results' / 'tiny' / 'study.db'}"
        assert optuna.load_study(study_name="tiny", storage=db).trials == []


# ------------------------------------------------------------------ --jobs 2 and SIGTERM


def test_sigterm_to_a_jobs_2_run_reaches_every_worker(tmp_path: Path) -> None:
    """SIGTERM to the command alone (not its process group): the other worker hears it
    too, finishes its epoch, starts no trial and resumes no orphan; exit 130."""
    from test_resume import SLOW, SLOW_SPACE

    settings = {**SLOW, "epochs": 30, "patience": 30, "trials": 6}
    space = write_space(tmp_path, source=SLOW_SPACE, settings=settings)
    proc = start(tmp_path, str(space), "--jobs", "2", "--force-jobs")
    root = tmp_path / "results" / "tiny"

    def log() -> str:
        path = root / "sweep.log"
        return path.read_text() if path.exists() else ""

    wait_until(proc, lambda: log().count(" epoch 1/30:") >= 2)  # both trials are training
    os.kill(proc.pid, signal.SIGTERM)
    _, err = ended(proc, within=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    db = f"sqlite:///{root / 'study.db'}"
    trials = optuna.load_study(study_name="tiny", storage=db).trials
    assert len(trials) == 2, [t.number for t in trials]  # no trial started after it
    assert all(t.state == optuna.trial.TrialState.RUNNING for t in trials)  # resumable
    assert "left running by a process that is gone" not in log()  # no orphan resumed
    for t in trials:  # each stopped at an epoch's end, with that epoch recorded
        assert len(t.intermediate_values) >= 1
        history = (root / "trials" / str(t.number) / "history.csv").read_text()
        assert len(history.splitlines()) == len(t.intermediate_values) + 1
        pid = int(str(t.user_attrs["worker"]).rsplit(":", 1)[1])
        assert not Path(f"/proc/{pid}").exists() or pid == proc.pid  # no worker left
    assert not list(root.glob(".stop-*"))  # the stop file is removed
