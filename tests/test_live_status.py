"""`sweep status` and `sweep table` read the study while another process is writing it."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_cli, write_space


def test_status_and_table_while_a_sweep_runs(tmp_path: Path) -> None:
    # a trial that can't end by itself (the test kills it): status must catch it running
    space = write_space(tmp_path, settings={"trials": 1, "epochs": 100000, "patience": 100000})
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep", "run", str(space)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        db = tmp_path / "results" / "tiny" / "study.db"
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                code, status, _ = run_cli("status", "tiny", cwd=tmp_path)
                if code == 0 and "running: trial 0, epoch" in status and "epoch 0/" not in status:
                    break
            time.sleep(0.5)
        assert proc.poll() is None, f"the sweep ended early with {proc.returncode}"
        assert "running: trial 0, epoch" in status, status
        assert "1 running" in status
        code, out, err = run_cli("table", "tiny", "--format", "csv", cwd=tmp_path)
        assert code == 0, err
        (row,) = list(csv.DictReader(io.StringIO(out)))
        assert row["state"] == "running" and int(row["stop_epoch"]) >= 1
        assert row["max_epochs"] == "100000"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
