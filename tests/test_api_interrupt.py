"""Ctrl+C in a caller that is not the ``sweep`` command (a script, a notebook kernel):
KeyboardInterrupt in the caller, never an exit of its process, the trial resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from conftest import write_space
from test_resume import SLOW, SLOW_SPACE, epochs_done, read_rows, wait_for

import sweep

SCRIPT = """
import sys
import sweep
try:
    sweep.run(sys.argv[1], progress=False)
except KeyboardInterrupt:
    print("caught KeyboardInterrupt; the script goes on", flush=True)
"""


def start_script(folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(folder / "tiny.py")],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def the_trial(folder: Path) -> optuna.trial.FrozenTrial:
    db = folder / "results" / "tiny" / "study.db"
    (trial,) = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    return trial


def _log(folder: Path) -> str:
    log = folder / "results" / "tiny" / "sweep.log"
    return log.read_text() if log.exists() else ""


def test_one_interrupt_stops_at_the_epoch_and_raises_in_the_caller(tmp_path: Path) -> None:
    write_space(tmp_path, source=SLOW_SPACE, settings={**SLOW, "epochs": 30, "patience": 30})
    proc = start_script(tmp_path)
    wait_for(proc, lambda: epochs_done(tmp_path, 0) >= 2)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "caught KeyboardInterrupt; the script goes on" in out
    assert "stopping after this epoch" in err
    done = epochs_done(tmp_path, 0)
    assert the_trial(tmp_path).state == optuna.trial.TrialState.RUNNING  # resumable
    history = read_rows(tmp_path / "results" / "tiny" / "trials" / "0" / "history.csv")
    assert len(history) == done >= 2  # the epoch in progress finished and was recorded


def test_second_interrupt_raises_at_once_and_the_process_survives(tmp_path: Path) -> None:
    settings = {**SLOW, "epochs": 1, "trials": 1, "batch_size": 1}
    # 7,200 steps of one sample: an epoch of several seconds even on a fast machine (with
    # SLOW_SPACE's 1,800 one epoch could end before the two interrupts, 1.3 s in)
    source = SLOW_SPACE.replace("2400", "9600")
    write_space(tmp_path, source=source, settings=settings)
    proc = start_script(tmp_path)
    wait_for(proc, lambda: "trial 0 started" in _log(tmp_path))
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    # os._exit(130) (what the sweep command does) would give 130 and no line from the script
    assert proc.returncode == 0, err
    assert "caught KeyboardInterrupt; the script goes on" in out
    assert "sweep: stopped now; run the same call again to resume" in err
    assert epochs_done(tmp_path, 0) == 0  # it did not wait for the epoch to end
    assert the_trial(tmp_path).state == optuna.trial.TrialState.RUNNING

    # the same call again takes the trial over and finishes it
    study = sweep.run(tmp_path / "tiny.py", results=tmp_path / "results", progress=False)
    assert [(r.number, r.state) for r in study.trials] == [(0, "complete")]
    assert "trial 0 was left running by a process that is gone; resuming it" in _log(tmp_path)
