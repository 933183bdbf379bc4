"""Running the same command again after a kill: it finishes (no worker waits forever on
an orphan another worker claimed), a refused rerun changes nothing, a changed space is
refused unless allowed, a damaged resume point restarts its trial, and the study is the
one an uninterrupted run would have made.

Real sweeps in subprocesses, killed with SIGKILL (process group); the helpers are
test_resume's.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from conftest import write_space
from test_resume import (
    SLOW,
    SLOW_SPACE,
    assert_whole_files,
    epochs_done,
    kill,
    start,
    study,
    wait_for,
)

COMPLETE = optuna.trial.TrialState.COMPLETE
RUNNING = optuna.trial.TrialState.RUNNING


def finish_within(
    folder: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``sweep run`` to the end; a rerun that hangs fails the test (and is killed)."""
    proc = start(folder, *args)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        pytest.fail(f"sweep run {' '.join(args)} did not finish within {timeout} s (hung)")
    assert proc.returncode == 0, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_rerun_after_killing_two_workers_finishes(tmp_path: Path) -> None:
    """kill -9 a --jobs 2 sweep while both trials run: the same command again resumes both
    and ends; so does a --jobs 1 rerun, which meets two orphans of another process."""
    killed = tmp_path / "killed"
    killed.mkdir()
    write_space(
        killed, source=SLOW_SPACE, settings={**SLOW, "epochs": 3, "patience": 9, "trials": 2}
    )
    proc = start(killed, "--jobs", "2", "--seed", "3")
    wait_for(proc, lambda: epochs_done(killed, 0) >= 1 and epochs_done(killed, 1) >= 1, timeout=300)
    kill(proc)
    assert [t.state for t in study(killed).trials] == [RUNNING, RUNNING]
    single = tmp_path / "single"
    shutil.copytree(killed, single)
    for folder, jobs in ((killed, "2"), (single, "1")):
        finish_within(folder, "--jobs", jobs, "--seed", "3")
        trials = study(folder).trials
        assert [t.number for t in trials] == [0, 1], jobs
        assert [t.state for t in trials] == [COMPLETE, COMPLETE], jobs
        assert all(t.user_attrs["resumed_from"] >= 1 for t in trials), jobs
        assert_whole_files(folder)
