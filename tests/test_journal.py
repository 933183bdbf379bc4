"""`--storage journal:PATH`: Optuna's JournalStorage on a file, for clusters with a shared
filesystem and no database. A driver and two `sweep worker` processes, each pretending
to be its own machine (SWEEP_HOST), share one journal file and one artifacts folder;
one worker is killed with SIGKILL mid-trial. A journal keeps no heartbeat: the dead
worker's trial is found through its owner lock in the shared artifacts folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from conftest import run_cli, write_space
from test_parallel import check_study, read_rows, start_worker
from test_resume import SLOW, SLOW_SPACE

from sweep.store.storage import open_storage


def _driver(folder: Path, url: str, artifacts: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sweep", "run", "tiny.py", "--storage", url]
    return subprocess.Popen(
        [*command, "--artifacts", str(artifacts), "--seed", "3"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "SWEEP_HOST": "host-a", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def _wait_for_plan(url: str) -> optuna.Study:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name="tiny", storage=open_storage(url))
            if "sweep_plan" in study.user_attrs:
                return study
        except KeyError:
            pass
        time.sleep(0.5)
    raise AssertionError("the driver did not create the study")


def test_workers_on_a_journal_file_and_one_killed_mid_trial(tmp_path: Path) -> None:
    driver_dir, dir_b, dir_c = (tmp_path / n for n in ("driver", "b", "c"))
    for d in (driver_dir, dir_b, dir_c):
        d.mkdir()
    write_space(driver_dir, source=SLOW_SPACE, settings={**SLOW, "epochs": 6, "trials": 4})
    artifacts, url = tmp_path / "shared", f"journal:{tmp_path / 'study.log'}"
    driver = _driver(driver_dir, url, artifacts)
    study = _wait_for_plan(url)
    b = start_worker(dir_b, url, "host-b")
    victim, deadline = None, time.monotonic() + 240
    while victim is None and time.monotonic() < deadline:
        for t in study.get_trials(deepcopy=False):
            if t.user_attrs.get("owner_host") == "host-b" and len(t.intermediate_values) >= 2:
                victim = t.number
        time.sleep(0.2)
    assert victim is not None, "worker b never got a trial going"
    os.killpg(b.pid, signal.SIGKILL)
    b.communicate()
    c = start_worker(dir_c, url, "host-c")
    out_c, err_c = c.communicate(timeout=900)
    assert c.returncode == 0, err_c
    out_a, err_a = driver.communicate(timeout=900)
    assert driver.returncode == 0, err_a

    trials = optuna.load_study(study_name="tiny", storage=open_storage(url)).trials
    check_study(driver_dir, trials, 4)
    retried = trials[victim]
    # another "machine" found it through the owner lock in the shared folder
    assert retried.user_attrs["owner_host"] in ("host-a", "host-c")
    assert retried.user_attrs["resumed_from"] >= 2  # from its last epoch, not from scratch
    assert "left running by a process that is gone" in out_a + out_c
    assert "worker done: 4/4" in out_c
    rows = read_rows(driver_dir / "results" / "tiny" / "trials.csv")
    assert sorted(int(r["trial"]) for r in rows) == list(range(4))
    # the read commands take the same storage
    code, out, _ = run_cli("status", "tiny", "--storage", url, cwd=driver_dir)
    assert code == 0 and "4 complete" in out


def test_a_journal_storage_without_a_path_is_refused(tmp_path: Path) -> None:
    code, _, err = run_cli("status", "tiny", "--storage", "journal:", cwd=tmp_path)
    assert code == 2
    assert err.strip() == (
        "sweep: error: --storage journal:PATH: expected a file path after 'journal:', got "
        "none; e.g. --storage journal:/shared/sweeps/study.log"
    )
