"""Wrong results (issue 23): settings `sweep compare` must refuse, a callback's stop
recorded as such, an `--executions-per-trial` study exported and verified, `--gpus` naming
a GPU that is not there refused, and the device column saying where a trial trained."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write_space
from test_resume import kill, read_rows, start, wait_for

import sweep
from sweep.core.errors import ConfigError

# --- item 12: sweep compare checks patience and min_delta as sweep run does ---------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--min-delta", "nan", "--min-delta: expected a number >= 0, or a list of them, got [nan]"),
        (
            "--min-delta",
            "0,inf",
            "--min-delta: expected a number >= 0, or a list of them, got [0.0, inf]",
        ),
        (
            "--patience",
            "-1",
            "argument --patience: expected a whole number >= 0, got -1; see 'sweep compare --help'",
        ),
        (
            "--patience",
            "1e99",
            "argument --patience: expected a whole number, got '1e99'; see 'sweep compare --help'",
        ),
    ],
)
def test_compare_cli_refuses_what_run_refuses(
    finished_sweep: Path, flag: str, value: str, message: str
) -> None:
    results = str(finished_sweep / "results")
    code, out, err = run_cli(
        "compare", "tiny", f"{flag}={value}", "--results", results, cwd=Path(".")
    )
    assert (code, out, err) == (2, "", f"sweep: error: {message}\n")
    # sweep run says the same of the same value (the run flags take one value or a list)
    if flag == "--min-delta":
        code, _, err = run_cli(
            "run",
            str(finished_sweep / "tiny.py"),
            f"{flag}={value}",
            "--results",
            results,
            cwd=Path("."),
        )
        assert (code, err) == (2, f"sweep: error: {message.replace('[nan]', 'nan')}\n")


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        (
            {"patience": [-1]},
            "--patience: expected a whole number >= 0, or a list of them, got [-1]",
        ),
        (
            {"patience": [1e99]},
            "--patience: expected a whole number >= 0, or a list of them, got [1e+99]",
        ),
        ({"patience": 2.5}, "--patience: expected a whole number >= 0, or a list of them, got 2.5"),
        (
            {"min_delta": [float("nan")]},
            "--min-delta: expected a number >= 0, or a list of them, got [nan]",
        ),
        ({"min_delta": -0.1}, "--min-delta: expected a number >= 0, or a list of them, got -0.1"),
    ],
)
def test_compare_api_refuses_what_run_refuses(
    finished_sweep: Path, tmp_path: Path, keywords: dict[str, object], message: str
) -> None:
    study = sweep.load("tiny", results=finished_sweep / "results")
    with pytest.raises(ConfigError) as caught:
        study.compare(**keywords)  # type: ignore[arg-type]
    assert str(caught.value) == message
    with pytest.raises(ConfigError) as caught:  # sweep.run: the same words for the same value
        sweep.run(finished_sweep / "tiny.py", results=tmp_path, **keywords)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert not list(tmp_path.rglob("study.db"))


def test_compare_takes_a_huge_whole_patience(finished_sweep: Path, tmp_path: Path) -> None:
    """A patience beyond any curve never runs out (it was an OverflowError traceback)."""
    shutil.copytree(finished_sweep / "results", tmp_path / "results")
    huge = 10**99
    code, out, err = run_cli(
        "compare",
        "tiny",
        "--patience",
        str(huge),
        "--min-delta",
        "0",
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert code == 0, err
    (row,) = csv.DictReader(io.StringIO(out.split("\nwritten:")[0]))
    assert row["patience"] == str(huge) and row["censored"] == "0"  # 5 of 5 epochs: all ran out
    frame = sweep.load("tiny", results=tmp_path / "results").compare(patience=[huge], min_delta=0)
    assert frame["uncensored"].tolist() == [3] and frame["patience"].tolist() == [huge]


# --- item 10: an --executions-per-trial study exports, verified against its execution ------


def test_an_executions_study_exports_verified_against_its_execution(tmp_path: Path) -> None:
    """The checkpoint is the best execution's model and the table's best_score the mean of
    the executions': export verifies the model against its execution's own score (it
    compared it with the mean, and refused every such study)."""
    import json

    from test_trial_semantics import read_csv, reload_score, validation_arrays

    space = write_space(tmp_path, settings={"epochs": 3, "trials": 1, "patience": 3})
    args = ("--seed", "3", "--executions-per-trial", "2")
    code, _, err = run_cli("run", str(space), *args, cwd=tmp_path)
    assert code == 0, err
    (row,) = read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    mean, own = float(row["best_score"]), float(row["best_execution_score"])
    assert mean != own  # two executions, two scores: the mean is neither
    out = tmp_path / "winner.keras"
    code, printed, err = run_cli("export", "tiny", "--out", str(out), cwd=tmp_path)
    assert code == 0, err
    best = row["best_execution"]
    assert f"the table says {own:.6g} (execution {best}'s own best; the trial's best_score " in (
        printed
    )
    assert f"{mean:.6g} is the mean of 2 executions)" in printed
    card = json.loads((tmp_path / "winner.keras.json").read_text())
    assert card["best_score"] == mean and card["executions"] == 2
    assert (card["best_execution"], card["best_execution_score"]) == (int(best), own)
    assert card["verified_score"] == pytest.approx(own, rel=1e-5)
    assert "mean of the best scores of 2 executions" in card["score_note"]
    xv, yv = validation_arrays(space)  # independently: what was written scores its own
    assert reload_score(str(out), "val_loss", xv, yv) == pytest.approx(own, rel=1e-5)


# --- item 9: a callback that stops training is the trial's stop_reason, by name ------------

STOPPING_CALLBACKS = """

class StopAfter(keras.callbacks.Callback):
    \"\"\"Stops training after epoch 2, then (on_train_end, after sweep's resume point of
    that epoch) waits while the file hold-<trial> exists.\"\"\"

    def __init__(self, trial):
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= 2:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        import time
        from pathlib import Path

        if Path(f"hold-{self.trial}").exists():
            Path(f"held-{self.trial}").write_text("")
            while Path(f"hold-{self.trial}").exists():
                time.sleep(0.05)


def callbacks(hp):
    trial = getattr(getattr(hp, "trial", None), "number", None)
    return [keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: None), StopAfter(trial)]
"""


def test_a_callback_that_stops_training_is_recorded_as_such(tmp_path: Path) -> None:
    """StopAfter (the second of two callbacks) stops every trial after epoch 2 of 6: the
    table and status say `callback`, by StopAfter (it said max_epochs); trial 0, killed
    with SIGKILL after its last resume point and before its record, resumes as stopped
    (it trained on to epoch 3); compare counts the curves as whole (it censored them)."""
    settings = {"epochs": 6, "patience": 6, "trials": 2}
    write_space(tmp_path, settings=settings, extra=STOPPING_CALLBACKS)
    (tmp_path / "hold-0").write_text("")
    proc = start(tmp_path, "--seed", "1")
    wait_for(proc, lambda: (tmp_path / "held-0").exists())
    kill(proc)
    (tmp_path / "hold-0").unlink()
    code, out, err = run_cli("run", "tiny.py", "--seed", "1", cwd=tmp_path)
    assert code == 0, err
    assert "trial 0 was left running by a process that is gone; resuming it" in out
    rows = read_rows(tmp_path / "results" / "tiny" / "trials.csv")
    assert sorted(r["trial"] for r in rows) == ["0", "1"]
    for r in rows:
        assert (r["state"], r["stop_reason"], r["stopped_by"]) == (
            "complete",
            "callback",
            "StopAfter",
        )
        assert (r["stop_epoch"], r["max_epochs"], r["early_stopped"]) == ("2", "6", "false")
    code, out, err = run_cli("status", "tiny", cwd=tmp_path)
    assert code == 0, err
    for n in (0, 1):
        line = f"stopped by a callback: trial {n} at epoch 2/6, by StopAfter (not early stopping)"
        assert line in out.splitlines()
    code, out, err = run_cli("table", "tiny", "--format", "csv", cwd=tmp_path)
    assert code == 0 and "callback,StopAfter" in out
    # replayed under a patience that never stops it, each curve ends where StopAfter ended it
    cmp = ("compare", "tiny", "--patience", "3,6", "--min-delta", "0", "--format", "csv")
    code, out, err = run_cli(*cmp, cwd=tmp_path)
    assert code == 0, err
    for setting in csv.DictReader(io.StringIO(out.split("\nwritten:")[0])):
        assert (setting["uncensored"], setting["censored"]) == ("2", "0")
        assert float(setting["mean_epochs"]) == 2.0


# --- item 11: --gpus naming a GPU that is not there; the device column is the truth -------

# A driver listing that TensorFlow cannot use: an `nvidia-smi` on PATH that lists two GPUs.
# A mock (the only one here) because no GPU is possible on this machine: it stands for a
# machine whose driver lists GPUs that this TensorFlow does not see (a CPU-only build, a
# missing CUDA library), which is what the check in the training process is for.
FAKE_SMI = """#!/bin/sh
echo "GPU 0: NVIDIA A100 (UUID: GPU-aaa)"
echo "GPU 1: NVIDIA A100 (UUID: GPU-bbb)"
"""


def _run(folder: Path, *args: str, smi: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if smi:
        bin_dir = folder / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "nvidia-smi").write_text(FAKE_SMI)
        (bin_dir / "nvidia-smi").chmod(0o755)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [sys.executable, "-m", "sweep", "run", "tiny.py", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_gpus_naming_a_gpu_that_is_not_there_is_refused(tmp_path: Path) -> None:
    """--gpus 5 on a machine with no GPU trained on the CPU and the table said GPU:5."""
    write_space(tmp_path, settings={"trials": 1, "epochs": 2})
    done = _run(tmp_path, "--gpus", "5", smi=False)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.endswith(
        "sweep: error: --gpus 5: this machine has no GPU (nvidia-smi -L lists none, "
        "CUDA_VISIBLE_DEVICES=(unset)); use --gpus none or leave it out\n"
    )
    assert "Traceback" not in done.stderr and not (tmp_path / "results").exists()


def test_gpus_the_driver_lists_but_tensorflow_does_not_see(tmp_path: Path) -> None:
    """The check in the process that trains, with TensorFlow's own list: --gpus 1 (which
    the driver lists) is refused before any trial; without --gpus the trial trains on the
    CPU with a warning, and the device column says CPU (it said GPU:0)."""
    write_space(tmp_path, settings={"trials": 1, "epochs": 2})
    done = _run(tmp_path, "--gpus", "1", smi=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.endswith(
        "sweep: error: --gpus 1: this machine has no GPU (TensorFlow sees none); "
        "use --gpus none or leave it out\n"
    )
    assert "trial 0 started" not in (tmp_path / "results" / "tiny" / "sweep.log").read_text()
    assert not (tmp_path / "results" / "tiny" / "study.db").exists()
    done = _run(tmp_path, "--plain", smi=True)
    assert done.returncode == 0, done.stderr
    warning = (
        "warning: GPU:0 is listed, but this machine has no GPU (TensorFlow sees none): its "
        "trials train on the CPU"
    )
    assert warning in done.stdout
    (row,) = read_rows(tmp_path / "results" / "tiny" / "trials.csv")
    assert (row["state"], row["device"]) == ("complete", "CPU")
