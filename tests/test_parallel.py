"""Trials in parallel: joblib worker processes on one machine on the SQLite default,
`sweep worker` processes on a real PostgreSQL server (one killed mid-trial), and a
Dask LocalCluster."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import optuna
import pytest
from conftest import run_cli, write_space
from pg import PASSWORD
from test_resume import SLOW, SLOW_SPACE

from sweep.store.storage import GRACE_S


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def check_study(folder: Path, trials: list[optuna.trial.FrozenTrial], n: int) -> None:
    """n complete trials, numbered 0..n-1, each with a checkpoint that loads."""
    assert sorted(t.number for t in trials) == list(range(n))
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * n
    for t in trials:
        keras.saving.load_model(t.user_attrs["checkpoint"])


def test_jobs_run_trials_in_worker_processes_on_sqlite(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 8, "epochs": 3})
    code, out, err = run_cli(
        "run", str(space), "--jobs", "4", "--force-jobs", "--seed", "0", cwd=tmp_path
    )  # 4 writers on SQLite, on any machine (without --force-jobs: one per core)
    assert code == 0, err
    assert "database is locked" not in out + err
    db = tmp_path / "results" / "tiny" / "study.db"
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    check_study(tmp_path, trials, 8)  # no lost trial, no duplicate number, no overshoot
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) >= 2  # more than one process ran them, this one (worker 0) too
    assert f":{os.getpid()}" in " ".join(workers)  # it has TensorFlow and the data loaded
    rows = read_rows(tmp_path / "results" / "tiny" / "trials.csv")
    assert {r["worker"] for r in rows} == workers  # the table says which worker ran each
    log = (tmp_path / "results" / "tiny" / "sweep.log").read_text()
    assert "[w1] trial" in log and "[w4] " not in log  # 3 processes besides this one
    assert out.count(" complete: best val_loss=") == 8  # workers' lines reach the terminal


def test_commands_with_workers_exit_once_done(finished_sweep: Path, tmp_path: Path) -> None:
    """`sweep worker --jobs 2` and `sweep run --jobs 2` as commands (their own processes,
    their own exit) on a copy of a finished study end, exit 0, in well under a minute:
    the exit without Python's teardown must still end joblib's executor first (it once
    waited for the executor's thread forever)."""
    import shutil

    from conftest import sweep_subprocess

    shutil.copytree(finished_sweep, tmp_path, dirs_exist_ok=True)
    folder = tmp_path / "results" / "tiny"
    url = f"sqlite:///{folder / 'study.db'}"
    for argv in (
        ("worker", "tiny", "--storage", url, "--jobs", "2", "--force-jobs"),
        ("run", "tiny.py", "--jobs", "2", "--force-jobs"),
    ):
        started = time.monotonic()
        done = sweep_subprocess(*argv, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "3/3 trials finished" in done.stdout + done.stderr
        assert time.monotonic() - started < 60, argv


def start_worker(folder: Path, url: str, host: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", "worker", "tiny", "--storage", url],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "SWEEP_HOST": host, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def test_workers_on_postgres_and_one_killed_mid_trial(tmp_path: Path, postgres_url: str) -> None:
    """A driver and two `sweep worker` processes (each pretending to be its own machine, so
    only Optuna's heartbeat can tell that a worker died) share one study on PostgreSQL."""
    driver_dir, dir_b, dir_c = (tmp_path / n for n in ("driver", "b", "c"))
    for d in (driver_dir, dir_b, dir_c):
        d.mkdir()
    write_space(driver_dir, source=SLOW_SPACE, settings={**SLOW, "epochs": 6, "trials": 6})
    artifacts = tmp_path / "shared"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweep",
            "run",
            "tiny.py",
            "--storage",
            postgres_url,
            "--artifacts",
            str(artifacts),
            "--seed",
            "3",
        ],
        cwd=driver_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "SWEEP_HOST": "host-a"},
    )
    study = None
    deadline = time.monotonic() + 120
    while study is None and time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name="tiny", storage=postgres_url)
            if "sweep_plan" not in study.user_attrs:
                study = None
        except KeyError:
            pass
        time.sleep(0.5)
    assert study is not None, "the driver did not create the study"
    b = start_worker(dir_b, postgres_url, "host-b")
    victim = None
    deadline = time.monotonic() + 180
    while victim is None and time.monotonic() < deadline:
        for t in study.get_trials(deepcopy=False):
            if t.user_attrs.get("owner_host") == "host-b" and len(t.intermediate_values) >= 2:
                victim = t.number
        time.sleep(0.2)
    assert victim is not None, "worker b never got a trial going"
    os.killpg(b.pid, signal.SIGKILL)
    b.communicate()
    c = start_worker(dir_c, postgres_url, "host-c")
    out_c, err_c = c.communicate(timeout=600)
    assert c.returncode == 0, err_c
    out_a, err_a = driver.communicate(timeout=600)
    assert driver.returncode == 0, err_a

    trials = optuna.load_study(study_name="tiny", storage=postgres_url).trials
    check_study(driver_dir, trials, 6)
    retried = trials[victim]
    # found through the heartbeat (its owner was "another machine") and taken over
    assert retried.user_attrs["owner_host"] in ("host-a", "host-c")
    assert retried.user_attrs["resumed_from"] >= 2  # from its last epoch, not from scratch
    assert "left running by a process that is gone" in out_a + out_c
    # worker c joined and left cleanly; whether it got a trial depends on timing
    assert "worker joined study tiny" in out_c and "worker done: 6/6" in out_c
    for t in trials:  # checkpoints live in the shared artifacts folder, where the table points
        assert Path(t.user_attrs["checkpoint"]).is_relative_to(artifacts)
    rows = read_rows(driver_dir / "results" / "tiny" / "trials.csv")
    assert sorted(int(r["trial"]) for r in rows) == list(range(6))
    assert all(Path(r["checkpoint"]).is_file() for r in rows)
    # the password is in none of what was printed or written
    texts = [out_a, err_a, out_c, err_c]
    texts += [p.read_text() for d in (driver_dir, dir_c) for p in d.rglob("*.csv")]
    texts += [p.read_text() for d in (driver_dir, dir_c) for p in d.rglob("sweep.log")]
    assert all(PASSWORD not in text for text in texts)
    assert "sweep:***@127.0.0.1" in out_a
    assert GRACE_S <= 60  # the test waits at least this long for the heartbeat to go stale


def test_a_bad_storage_url_does_not_print_its_password(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 1, "epochs": 1})
    bad = f"postgresql://sweep:{PASSWORD}@127.0.0.1:1/nothing"
    code, out, err = run_cli("run", str(space), "--storage", bad, cwd=tmp_path)
    assert code == 2
    assert PASSWORD not in out + err and "sweep:***@127.0.0.1:1" in err
    code, out, err = run_cli("table", "tiny", "--storage", bad, cwd=tmp_path)
    assert code == 2 and PASSWORD not in out + err


def test_dask_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    space = write_space(tmp_path, settings={"trials": 4, "epochs": 2})
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        code, _out, err = run_cli(
            "run",
            str(space),
            "--backend",
            "dask",
            "--scheduler",
            cluster.scheduler_address,
            cwd=tmp_path,
        )
    assert code == 0, err
    db = tmp_path / "results" / "tiny" / "study.db"
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    check_study(tmp_path, trials, 4)
    pids = {t.user_attrs["worker"].rsplit(":", 1)[1] for t in trials}
    assert str(os.getpid()) not in pids and len(pids) == 2  # the two Dask worker processes


def test_live_display_shows_every_running_trial_and_its_worker(tmp_path: Path) -> None:
    from test_overnight import ANSI, run_on_terminal

    write_space(tmp_path, source=SLOW_SPACE, settings={**SLOW, "epochs": 3, "trials": 2})
    code, raw = run_on_terminal("run", "tiny.py", "--jobs", "2", cwd=tmp_path)
    assert code == 0, raw
    screen = ANSI.sub("", raw).replace("\r", "")
    running = re.findall(r"running: trial (\d+)\s+epoch \d+/3\s+\S+\s+(\S+:\d+)", screen)
    table = read_rows(tmp_path / "results" / "tiny" / "trials.csv")
    ran_by = {int(r["trial"]): r["worker"] for r in table}
    # every trial is shown running, each with the worker process the table says ran it
    assert {int(trial) for trial, _ in running} == set(ran_by) == {0, 1}, screen
    assert all(worker == ran_by[int(trial)] for trial, worker in running)
    # the parent is worker 0 and prints its own trials; the other process's are relayed
    own, relayed = set(), set()
    for number, worker in ran_by.items():
        by_w1 = re.search(rf"\[w1\] trial {number} complete", screen) is not None
        by_parent = re.search(rf"(?m)^(?!.*\[w\d+\]).*trial {number} complete", screen)
        assert by_w1 != (by_parent is not None), screen  # exactly one process finished it
        (relayed if by_w1 else own).add(worker)
    assert len(own) <= 1 and len(relayed) <= 1 and not own & relayed
    assert "trials 2/2" in screen or "2/2 trials finished" in screen
