"""Overnight-proof sweeps: what keeps a long unattended sweep safe and readable.

- ``--max-failures N``: N failed trials in a row stop the sweep (exit 1) with one line
  naming the last trial and its error; a success in between resets the count;
- running out of memory inside a trial is a failed trial like any other;
- ``--timeout``: no trial starts after the budget, and the running one stops at the
  next epoch boundary with its best checkpoint, marked as stopped by the budget;
- ``--keep-checkpoints K``: only the K best complete trials keep ``best.keras``;
- progress: plain timestamped lines when not on a terminal (and with ``--plain``),
  a live display on a terminal, and everything in ``results/<study>/sweep.log``.

Real Keras training on tiny data, real Optuna SQLite storage, real processes.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import optuna
import pytest
from conftest import run_cli, write_space
from test_trial_semantics import reload_score, validation_arrays

STAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
STAMPED = re.compile(rf"^({STAMP}) (.*)$")
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")


def load_study(folder: Path, name: str = "tiny") -> optuna.Study:
    db = folder / "results" / name / "study.db"
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def read_rows(folder: Path, name: str = "tiny") -> list[dict[str, str]]:
    with (folder / "results" / name / "trials.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def read_history(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- --max-failures

UNLUCKY_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def build_model(hp):
    x = hp.Float("x", 0.0, 1.0)  # KerasTuner's default is 0.0: the pre-flight build works
    if x > 0:
        raise ValueError(f"unlucky x={x!r}")
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
"""

TOO_MANY = re.compile(
    r"^sweep: error: (\d+) trials failed in a row, the last \(trial (\d+)\) with: (.*?); "
)


@pytest.mark.parametrize(("flag", "limit"), [(["--max-failures", "3"], 3), ([], 5)])
def test_failures_in_a_row_stop_the_sweep(tmp_path: Path, flag: list[str], limit: int) -> None:
    settings = {"trials": 20, "epochs": 1, "sampler": "random"}
    space = write_space(tmp_path, source=UNLUCKY_SPACE, settings=settings)
    code, out, err = run_cli("run", str(space), "--seed", "0", *flag, cwd=tmp_path)
    assert code == 1, err
    assert err.count("\n") == 1, err
    match = TOO_MANY.match(err)
    assert match, err
    trials = load_study(tmp_path).trials
    # it stopped at the limit, not at the 20 trials asked for
    assert len(trials) == limit
    assert all(t.state == optuna.trial.TrialState.FAIL for t in trials)
    last = trials[-1]
    assert int(match[1]) == limit and int(match[2]) == last.number == limit - 1
    # the message carries the last trial's own error (each trial's x differs)
    assert match[3] == last.user_attrs["error"] == f"ValueError: unlucky x={last.params['x']!r}"
    assert "--max-failures" in err  # says how to go on
    rows = read_rows(tmp_path)
    assert len(rows) == limit
    for row in rows:
        assert row["state"] == "failed" and row["stop_reason"] == "failed"
        assert row["error"] == f"ValueError: unlucky x={row['param_x']}"
    assert out.count("failed after") == limit  # each failure was shown as it happened


COUNTED_SPACE = """
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

SETTINGS = {settings!r}

# Builds counted on disk; build 1 is the pre-flight check, build n + 2 is trial n.
FAIL_AT = {2, 3, 5, 6, 7, 8}


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def build_model(hp):
    counter = Path(__file__).with_name("builds.txt")
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    if n in FAIL_AT:
        raise RuntimeError(f"build {n} fails")
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
"""


def test_a_success_resets_the_failure_count(tmp_path: Path) -> None:
    # trials 0, 1 fail, 2 succeeds, 3, 4, 5 fail: 5 failures in all, but only 3 in a row
    space = write_space(tmp_path, source=COUNTED_SPACE, settings={"trials": 10, "epochs": 1})
    code, _, err = run_cli("run", str(space), "--max-failures", "3", cwd=tmp_path)
    assert code == 1, err
    states = [t.state.name for t in load_study(tmp_path).trials]
    assert states == ["FAIL", "FAIL", "COMPLETE", "FAIL", "FAIL", "FAIL"]
    match = TOO_MANY.match(err)
    assert match, err
    assert (match[1], match[2], match[3]) == ("3", "5", "RuntimeError: build 7 fails")


def test_max_failures_must_be_at_least_one(tmp_path: Path) -> None:
    space = write_space(tmp_path, source=UNLUCKY_SPACE)
    code, _, err = run_cli("run", str(space), "--max-failures", "0", cwd=tmp_path)
    assert code == 2 and "--max-failures" in err and ">= 1" in err
    assert not (tmp_path / "results").exists()


# --------------------------------------------------------------------------- out of memory

OOM_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}

HUGE = (2**20, 2**20, 64)  # 2**46 floats: 256 TiB


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def build_model(hp):
    oom = hp.Choice("oom", ["none", "tensor_in_build", "array_in_build", "tensor_in_fit"])
    if oom == "tensor_in_build":
        keras.ops.zeros(HUGE)  # TensorFlow refuses at once: ResourceExhaustedError
    if oom == "array_in_build":
        np.empty(HUGE)  # numpy refuses at once: MemoryError
    layers = [keras.Input(shape=(4,))]
    if oom == "tensor_in_fit":
        # a runtime value broadcast to HUGE: the training step itself cannot allocate it
        # (a constant would be folded by Grappler and fail differently)
        layers.append(
            keras.layers.Lambda(
                lambda t: t + keras.ops.mean(keras.ops.broadcast_to(keras.ops.mean(t), HUGE))
            )
        )
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
"""


def test_out_of_memory_fails_only_its_trial(tmp_path: Path) -> None:
    # These allocations are refused up front (checked: well under a second, no memory used),
    # which is the out-of-memory a process survives; a kernel OOM kill is test_resume's.
    settings = {"trials": 4, "epochs": 2, "sampler": "grid"}
    space = write_space(tmp_path, source=OOM_SPACE, settings=settings)
    code, out, err = run_cli("run", str(space), cwd=tmp_path)
    assert code == 0, err
    by_value = {t.params["oom"]: t for t in load_study(tmp_path).trials}
    assert set(by_value) == {"none", "tensor_in_build", "array_in_build", "tensor_in_fit"}
    assert by_value["none"].state == optuna.trial.TrialState.COMPLETE
    expected = {
        "tensor_in_build": "ResourceExhaustedError: ",
        "array_in_build": "MemoryError: ",
        "tensor_in_fit": "ResourceExhaustedError: ",
    }
    for value, prefix in expected.items():
        trial = by_value[value]
        assert trial.state == optuna.trial.TrialState.FAIL, value
        assert trial.user_attrs["error"].startswith(prefix), trial.user_attrs["error"]
    assert "OOM" in by_value["tensor_in_build"].user_attrs["error"]
    assert by_value["tensor_in_fit"].user_attrs["stop_epoch"] == 0
    rows = {r["param_oom"]: r for r in read_rows(tmp_path)}
    assert rows["none"]["state"] == "complete" and Path(rows["none"]["checkpoint"]).is_file()
    for value, prefix in expected.items():
        assert rows[value]["state"] == "failed" and rows[value]["error"].startswith(prefix)
    assert "4/4 trials finished" in out


# --------------------------------------------------------------------------- --timeout


def test_budget_stops_the_running_trial_at_an_epoch_boundary(tmp_path: Path) -> None:
    # Only the budget can stop this trial: 2000 epochs, patience 2000.
    settings = {"trials": 5, "epochs": 2000, "patience": 2000}
    space = write_space(tmp_path, settings=settings)
    code, out, err = run_cli("run", str(space), "--seed", "2", "--timeout", "10s", cwd=tmp_path)
    assert code == 0, err
    assert "time budget spent" in out
    study = load_study(tmp_path)
    trials = study.trials
    assert len(trials) == 1  # no trial started after the budget
    # The budget's end as the sweep set it (start-up, which a busy machine slows, is inside
    # it); the trial ends at the first epoch boundary past it, an epoch here is milliseconds.
    # (Measured against the process's wall time this failed on a busy CI machine: 29 s.)
    deadline = json.loads(study.user_attrs["sweep_plan"])["deadline"]
    (trial,) = trials
    assert trial.datetime_start.timestamp() < deadline
    late = trial.datetime_complete.timestamp() - deadline
    assert 0 <= late < 5, f"the running trial ended {late:.1f} s after the budget"
    (row,) = read_rows(tmp_path)
    assert row["state"] == "complete"
    assert row["stop_reason"] == "budget" and row["early_stopped"] == "false"
    stop_epoch = int(row["stop_epoch"])
    assert 1 <= int(row["best_epoch"]) <= stop_epoch < int(row["max_epochs"]) == 2000
    assert f"stopped at epoch {stop_epoch} by time budget" in out
    checkpoint = tmp_path / "results" / "tiny" / "trials" / "0" / "best.keras"
    assert row["checkpoint"] == str(checkpoint.resolve()) and checkpoint.is_file()
    history = read_history(checkpoint.parent / "history.csv")
    assert [int(h["epoch"]) for h in history] == list(range(1, stop_epoch + 1))
    losses = [float(h["val_loss"]) for h in history]
    assert int(row["best_epoch"]) == losses.index(min(losses)) + 1
    assert float(row["best_score"]) == min(losses)
    assert trials[0].value == min(losses)
    xv, yv = validation_arrays(space)
    assert reload_score(row["checkpoint"], "val_loss", xv, yv) == pytest.approx(
        min(losses), rel=1e-5, abs=1e-6
    )


# --------------------------------------------------------------------------- --keep-checkpoints


@pytest.mark.parametrize(
    ("monitor", "keep", "trials"),
    [("val_loss", 2, 4), ("val_accuracy", 1, 3), ("val_loss", 0, 2), ("val_loss", None, 3)],
)
def test_keep_checkpoints(tmp_path: Path, monitor: str, keep: int | None, trials: int) -> None:
    settings = {"trials": trials, "epochs": 2, "monitor": monitor}
    space = write_space(tmp_path, settings=settings)
    flag = [] if keep is None else ["--keep-checkpoints", str(keep)]
    code, out, err = run_cli("run", str(space), "--seed", "4", *flag, cwd=tmp_path)
    assert code == 0, err
    done = load_study(tmp_path).trials
    assert len(done) == trials and all(t.state.name == "COMPLETE" for t in done)
    # best first in the study's direction, the earlier trial on ties
    sign = -1 if monitor == "val_accuracy" else 1
    ranked = sorted(done, key=lambda t: (sign * t.user_attrs["best_score"], t.number))
    kept = {t.number for t in (ranked if keep is None else ranked[:keep])}
    folder = tmp_path / "results" / "tiny" / "trials"
    on_disk = {n for n in range(trials) if (folder / str(n) / "best.keras").is_file()}
    assert on_disk == kept
    rows = {int(r["trial"]): r for r in read_rows(tmp_path)}
    assert set(rows) == set(range(trials))
    for n, row in rows.items():
        if n in kept:
            assert row["checkpoint"] == str((folder / str(n) / "best.keras").resolve())
        else:
            assert row["checkpoint"] == ""
        assert (folder / str(n) / "history.csv").is_file()  # only the model goes
    if keep == 0:
        assert "checkpoint (deleted)" in out


LATE_NAN_SPACE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


class LateNaN(keras.layers.Layer):
    # identity for the first 4 training steps (2 epochs here), NaN from then on

    def build(self, shape):
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, t, training=False):
        if training:
            self.steps.assign_add(1.0)
        return t * keras.ops.where(self.steps > 4, float("nan"), 1.0)


def build_model(hp):
    layers = [keras.Input(shape=(4,))]
    if hp.Choice("fault", ["none", "late_nan"]) == "late_nan":
        layers.append(LateNaN())
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
"""


def test_keep_checkpoints_deletes_failed_trials_checkpoints(tmp_path: Path) -> None:
    settings = {"trials": 2, "epochs": 4, "patience": 10, "sampler": "grid"}
    space = write_space(tmp_path, source=LATE_NAN_SPACE, settings=settings)
    code, _, err = run_cli("run", str(space), "--keep-checkpoints", "5", cwd=tmp_path)
    assert code == 0, err
    by_fault = {t.params["fault"]: t for t in load_study(tmp_path).trials}
    failed, complete = by_fault["late_nan"], by_fault["none"]
    assert failed.state.name == "FAIL" and complete.state.name == "COMPLETE"
    assert failed.user_attrs["error"] == "loss became nan at epoch 3"
    # the failed trial had a best model (epochs 1-2 were fine), and it is gone
    assert failed.user_attrs["best_epoch"] in (1, 2)
    assert not Path(failed.user_attrs["checkpoint"]).exists()
    assert Path(complete.user_attrs["checkpoint"]).is_file()  # top 5 of 1 complete trial
    rows = {r["param_fault"]: r for r in read_rows(tmp_path)}
    assert rows["late_nan"]["checkpoint"] == "" and rows["none"]["checkpoint"] != ""


# --------------------------------------------------------------------------- progress


def test_plain_progress_when_not_on_a_terminal(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 2, "epochs": 3, "patience": 5})
    before = dt.datetime.now().replace(microsecond=0)
    code, out, err = run_cli("run", str(space), "--seed", "6", cwd=tmp_path)
    after = dt.datetime.now()
    assert code == 0, err
    progress, _, summary = out.partition("\n\n")
    assert "2/2 trials finished" in summary
    lines = progress.splitlines()
    texts = []
    for line in lines:
        match = STAMPED.match(line)
        assert match, f"not a timestamped line: {line!r}"
        assert before <= dt.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S") <= after
        texts.append(match[2])
    rows = {int(r["trial"]): r for r in read_rows(tmp_path)}
    for n, row in rows.items():
        history = read_history(Path(row["checkpoint"]).parent / "history.csv")
        assert len(history) == 3
        best = None
        for h in history:
            value = float(h["val_loss"])
            best = value if best is None else min(best, value)
            epoch_line = f"trial {n} epoch {h['epoch']}/3: val_loss={value:.6g} (best {best:.6g})"
            assert texts.count(epoch_line) == 1, epoch_line
        ended = [t for t in texts if t.startswith(f"trial {n} complete: ")]
        assert len(ended) == 1, texts
        score = re.escape(f"{float(row['best_score']):.6g}")
        assert re.fullmatch(
            rf"trial {n} complete: best val_loss={score} at epoch {row['best_epoch']}, "
            r"stopped at epoch 3 \(\S+\)",
            ended[0],
        ), ended[0]
    assert sum(" epoch " in t and ": val_loss=" in t for t in texts) == 6
    # everything shown also went to sweep.log, in the same order
    log = (tmp_path / "results" / "tiny" / "sweep.log").read_text(encoding="utf-8")
    logged = []
    for line in log.splitlines():
        match = STAMPED.match(line)
        assert match, f"not a timestamped line in sweep.log: {line!r}"
        logged.append(match[2])
    assert logged[:-1] == texts
    # ...and it closes with how the session ended
    assert logged[-1].startswith("sweep ended: 2/2 trials finished (target reached); best: trial ")


def test_sweep_log_says_why_the_sweep_stopped(tmp_path: Path) -> None:
    # README: sweep.log holds "every line printed". The morning after, the log should say
    # that the sweep stopped on repeated failures, not just end after the last trial.
    settings = {"trials": 20, "epochs": 1, "sampler": "random"}
    space = write_space(tmp_path, source=UNLUCKY_SPACE, settings=settings)
    code, _, err = run_cli("run", str(space), "--seed", "0", "--max-failures", "2", cwd=tmp_path)
    assert code == 1 and "2 trials failed in a row" in err
    log = (tmp_path / "results" / "tiny" / "sweep.log").read_text(encoding="utf-8")
    assert "trial 1 failed after" in log
    assert "2 trials failed in a row" in log


def run_on_terminal(*argv: str, cwd: Path, timeout: float = 180) -> tuple[int, str]:
    """Run ``sweep`` as a subprocess whose stdout and stderr are a pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep", *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail("sweep on a terminal did not finish in time")
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def run_here_on_terminal(*argv: str, cwd: Path) -> tuple[int, str]:
    """``sweep.cli.main.main`` in this process, its output a real pseudo-terminal."""
    import io
    import threading
    from contextlib import redirect_stderr

    from sweep.cli.main import main

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal was closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with open(slave, "w", encoding="utf-8") as out, redirect_stderr(io.StringIO()):
            code = main(list(argv), out=out)
    finally:
        os.chdir(old)
    reader.join(timeout=10)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def test_live_display_on_a_terminal(tmp_path: Path) -> None:
    # enough epochs for the display (4 refreshes a second) to show each trial running
    space = write_space(tmp_path, settings={"trials": 2, "epochs": 12, "patience": 20})
    code, screen = run_on_terminal("run", str(space), "--seed", "1", cwd=tmp_path)
    assert code == 0, screen
    assert "\x1b[" in screen  # the display draws with escape sequences
    text = ANSI.sub("", screen).replace("\r", "")
    assert "trials 0/2" in text and "trials 1/2" in text
    assert "running: trial 0" in text and "running: trial 1" in text
    assert re.search(r"epoch \d+/12  val_loss=", text)
    assert "best: trial" in text
    assert re.search(r"elapsed \d", text)
    assert "remaining ?" in text and "remaining ~" in text
    # finished trials scroll above the display, as plain lines
    for n in (0, 1):
        assert re.search(rf"trial {n} complete: best val_loss=\S+ at epoch \d+", text), text
    # no per-epoch lines on the terminal, and no timestamps: that is the plain output
    assert "trial 0 epoch 1/12" not in text
    assert not re.search(rf"^{STAMP} ", text, re.MULTILINE)
    assert "2/2 trials finished (target reached)" in text
    # the log has every epoch all the same
    log = (tmp_path / "results" / "tiny" / "sweep.log").read_text(encoding="utf-8")
    assert "trial 1 epoch 12/12: val_loss=" in log


def test_plain_flag_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    space = write_space(tmp_path, settings={"trials": 2, "epochs": 3, "patience": 5})
    code, screen = run_here_on_terminal("run", str(space), "--seed", "1", "--plain", cwd=tmp_path)
    assert code == 0, screen
    text = screen.replace("\r\n", "\n")
    assert "\x1b" not in text  # no live display drawn
    progress, _, summary = text.partition("\n\n")
    assert "2/2 trials finished" in summary
    lines = progress.splitlines()
    assert lines and all(STAMPED.match(line) for line in lines), lines
    for n in (0, 1):
        for epoch in (1, 2, 3):
            assert any(f" trial {n} epoch {epoch}/3: val_loss=" in line for line in lines)
        assert sum(f" trial {n} complete: best val_loss=" in line for line in lines) == 1
    assert "running: trial" not in text and "remaining" not in text


GOOD_THEN_BAD_SPACE = """
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def build_model(hp):
    # Builds counted on disk: build 1 is the first run's pre-flight check, build 2 its
    # trial 0, which learns; every later trial cannot (zero weights, learning rate 0), so
    # its val_loss stays log(2), worse than trial 0's.
    counter = Path(__file__).with_name("builds.txt")
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    good = n <= 2
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(1, "sigmoid", kernel_initializer="zeros")]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.1 if good else 0.0), loss="binary_crossentropy")
    return model
"""


def test_live_display_best_so_far_counts_earlier_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    settings = {"trials": 1, "epochs": 5, "patience": 10, "validation_split": 0.25}
    space = write_space(tmp_path, source=GOOD_THEN_BAD_SPACE, settings=settings)
    assert run_cli("run", str(space), cwd=tmp_path)[0] == 0
    code, raw = run_here_on_terminal("run", str(space), "--trials", "2", cwd=tmp_path)
    assert code == 0, raw
    screen = ANSI.sub("", raw).replace("\r", "")
    first, second = load_study(tmp_path).trials
    assert first.value < second.value == pytest.approx(0.693147, abs=1e-5)
    assert "trials 1/2" in screen and "running: trial 1" in screen
    # the summary printed at the end has it right...
    assert re.search(r"best trials:\s+trial 0: val_loss=", screen), screen
    # ...the live display should too: trial 0 is the best trial so far
    assert "best: trial 0" in screen and "best: trial 1" not in screen
