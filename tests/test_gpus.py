"""GPUs (issue 16) on a machine without one: device discovery and the round-robin
assignment (through the discovery function's input), one-line errors, each worker's
CUDA_VISIBLE_DEVICES as its build_model sees it (two GPUs listed by a stand-in
nvidia-smi, which this TensorFlow does not see: the trials train on, and record, the CPU),
the parent probing with every GPU hidden, a trial under
MirroredStrategy over 2 logical CPUs killed with SIGKILL and resumed, and mixed_float16
in every trial of the four workers.

No GPU here: TensorFlow runs the workers on CPU whatever CUDA_VISIBLE_DEVICES says, so
what can be checked is what each process was given before it imported TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
from conftest import run_cli, sweep_subprocess, write_space
from test_resume import SLOW, SLOW_SPACE, epochs_done, kill, read_rows, wait_for
from test_right_results import FAKE_SMI

from sweep.core.devices import (
    HIDDEN,
    parse_memory,
    physical_gpus,
    plan_devices,
    visible_gpus,
)
from sweep.core.errors import ConfigError

SMI = "GPU 0: NVIDIA A100 (UUID: GPU-aaa)\nGPU 1: NVIDIA A100 (UUID: GPU-bbb)\n"
TWO = ["0", "1"]


def test_discovery_reads_nvidia_smi_and_respects_cuda_visible_devices() -> None:
    assert physical_gpus(SMI) == TWO
    assert physical_gpus(None, proc_entries=3) == ["0", "1", "2"]
    assert visible_gpus(TWO, {}) == TWO
    assert visible_gpus(["0", "1", "2", "3"], {"CUDA_VISIBLE_DEVICES": "3,1"}) == ["3", "1"]
    assert visible_gpus(TWO, {"CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert visible_gpus(TWO, {"CUDA_VISIBLE_DEVICES": "1,7,0"}) == ["1"]  # CUDA stops at 7
    assert visible_gpus([], {"CUDA_VISIBLE_DEVICES": "0"}) == []


def test_round_robin_assignment_and_groups() -> None:
    four = plan_devices(None, per_trial=1, memory_mb=None, listed=["0", "1", "2", "3"], env={})
    assert [four.for_worker(i).label for i in range(4)] == ["GPU:0", "GPU:1", "GPU:2", "GPU:3"]
    shared = plan_devices("0,1", per_trial=1, memory_mb=10240, listed=["0", "1", "2"], env={})
    assert [shared.for_worker(i).visible for i in range(4)] == ["0", "1", "0", "1"]
    assert shared.for_worker(3).memory_mb == 10240 and shared.warning is None
    # --gpus numbers are TensorFlow's: with CUDA_VISIBLE_DEVICES=2,3, GPU:1 is physical 3
    narrowed = plan_devices("1", per_trial=1, memory_mb=None, listed=["2", "3"], env={})
    assert (narrowed.for_worker(0).visible, narrowed.for_worker(0).label) == ("3", "GPU:1")
    pairs = plan_devices(None, per_trial=2, memory_mb=None, listed=["0", "1", "2", "3"], env={})
    assert [pairs.for_worker(i).visible for i in range(3)] == ["0,1", "2,3", "0,1"]
    assert pairs.for_worker(1).label == "GPU:2,3" and pairs.for_worker(1).per_trial == 2
    none = plan_devices("none", per_trial=1, memory_mb=None, listed=TWO, env={})
    assert (none.for_worker(5).visible, none.for_worker(5).label) == (HIDDEN, "CPU")
    cpu = plan_devices(None, per_trial=1, memory_mb=None, listed=[], env={})
    assert not cpu.assigned and cpu.for_worker(0).label == "CPU"  # as without GPUs today
    with pytest.raises(ConfigError) as caught:  # issue 23: no GPU there, none used as given
        plan_devices("0,1", per_trial=1, memory_mb=None, listed=[], env={})
    assert str(caught.value) == (
        "--gpus 0,1: this machine has no GPU (nvidia-smi -L lists none, "
        "CUDA_VISIBLE_DEVICES=(unset)); use --gpus none or leave it out"
    )


@pytest.mark.parametrize(
    ("gpus", "per_trial", "listed", "message"),
    [
        (
            "3",
            1,
            TWO,
            "--gpus 3: expected GPU numbers from 0 to 1 (TensorFlow lists 2 GPUs here), got 3; "
            "pick among 0,1",
        ),
        (
            None,
            2,
            ["0"],
            "--gpus-per-trial 2: expected at most 1, the GPUs given to this sweep (GPU:0); "
            "use --gpus-per-trial 1 or more GPUs",
        ),
        (
            "0,x",
            1,
            TWO,
            "--gpus: expected GPU numbers separated by commas (0,1) or 'none', got '0,x'; "
            "see nvidia-smi -L for the numbers",
        ),
    ],
)
def test_device_errors_are_one_line(
    gpus: str | None, per_trial: int, listed: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_devices(gpus, per_trial=per_trial, memory_mb=None, listed=listed, env={})
    assert str(caught.value) == message


def test_gpu_memory_sizes() -> None:
    assert parse_memory("10GB") == 10240
    assert parse_memory("1.5g") == 1536
    assert parse_memory("512MB") == 512
    for bad in ("10XB", "ten GB", "0MB"):
        with pytest.raises(ConfigError) as caught:
            parse_memory(bad)
        assert str(caught.value) == (
            "--gpu-memory: expected a size like 10GB or 512MB (per worker, on each of its "
            f"GPUs), got {bad!r}; write a number followed by GB or MB"
        )


def test_cli_refuses_bad_gpu_options_before_training(tmp_path: Path) -> None:
    space = write_space(tmp_path)
    code, _, err = run_cli("run", str(space), "--gpu-memory", "lots", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("sweep: error: --gpu-memory: expected a size like 10GB")
    code, _, err = run_cli("run", str(space), "--gpus-per-trial", "2", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert err == (
        "sweep: error: --gpus-per-trial 2: expected at least 2 GPUs, found none (nvidia-smi -L "
        "lists none, CUDA_VISIBLE_DEVICES=(unset)); use --gpus-per-trial 1\n"
    )
    assert not (tmp_path / "results" / "tiny" / "study.db").exists()


# build_model writes, for every call, the process and the CUDA_VISIBLE_DEVICES it saw.
SEEN_SPACE = """
from __future__ import annotations

import os
import uuid
from pathlib import Path

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def build_model(hp):
    seen = os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")
    trial = getattr(getattr(hp, "trial", None), "number", "probe")
    Path("seen", uuid.uuid4().hex).write_text(f"{os.getpid()} {trial} {seen}")
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(hp.Int("units", 2, 8)),
         keras.layers.Dense(2, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
"""


def test_four_workers_share_two_gpus_each_trial_on_its_workers_device(tmp_path: Path) -> None:
    write_space(tmp_path, source=SEEN_SPACE, settings={"trials": 6, "epochs": 2})
    (tmp_path / "seen").mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    # no GPU here: a stand-in nvidia-smi lists two (see test_right_results.FAKE_SMI)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvidia-smi").write_text(FAKE_SMI)
    (tmp_path / "bin" / "nvidia-smi").chmod(0o755)
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweep",
            "run",
            "tiny.py",
            *("--jobs", "4"),
            "--force-jobs",
            "--plain",
            "--mixed-precision",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    log = (tmp_path / "results" / "tiny" / "sweep.log").read_text()
    for gpu in ("GPU:0", "GPU:1"):  # each worker says where it really trains
        line = f"warning: {gpu} is listed, but this machine has no GPU (TensorFlow sees none)"
        assert line in log
    seen = [p.read_text().split() for p in (tmp_path / "seen").iterdir()]
    parent = [s for s in seen if int(s[0]) == proc.pid]
    assert parent and all(s[1:] == ["probe", HIDDEN] for s in parent)  # GPUs hidden to probe
    workers: dict[str, set[str]] = {}
    for pid, _, visible in (s for s in seen if int(s[0]) != proc.pid):
        workers.setdefault(pid, set()).add(visible)
    assert all(len(v) == 1 for v in workers.values())  # a worker keeps its one device
    devices = sorted(v for vs in workers.values() for v in vs)
    assert set(devices) <= {"0", "1"} and devices.count("0") <= 2 and devices.count("1") <= 2
    rows = read_rows(tmp_path / "results" / "tiny" / "trials.csv")
    assert len(rows) == 6 and {r["device"] for r in rows} == {"CPU"}  # where they trained
    assert {v for vs in workers.values() for v in vs} == {"0", "1"}  # both devices given
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    for r in rows:  # --mixed-precision: every trial's model in mixed_float16, reloading exactly
        model = keras.saving.load_model(r["checkpoint"])
        assert {layer.dtype_policy.name for layer in model.layers} == {"mixed_float16"}
        score = model.evaluate(x[48:], y[48:], batch_size=32, verbose=0)
        assert score == pytest.approx(float(r["best_score"]), rel=1e-3)
    assert keras.mixed_precision.global_policy().name == "float32"  # this process: untouched


def test_mirrored_strategy_over_logical_cpus_killed_and_resumed(
    tmp_path: Path,
) -> None:
    """One trial spanning 2 (logical CPU) devices: SIGKILL mid-trial, `sweep status` names
    its devices, the rerun resumes it (MirroredVariables restored), the checkpoint
    reproduces best_score."""
    settings = {**SLOW, "epochs": 6, "patience": 6, "trials": 1}
    write_space(tmp_path, source=SLOW_SPACE, settings=settings)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "SWEEP_LOGICAL_CPUS": "2"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    argv = [sys.executable, "-m", "sweep", "run", "tiny.py", "--gpus-per-trial", "2"]
    argv += ["--seed", "3"]
    proc = subprocess.Popen(
        argv,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    wait_for(proc, lambda: epochs_done(tmp_path, 0) >= 2, timeout=300)
    status = sweep_subprocess("status", "tiny", cwd=tmp_path)
    assert "running: trial 0, epoch" in status.stdout and "on CPU:0,1" in status.stdout
    kill(proc)  # SIGKILL, mid-trial
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "trial 0 was left running by a process that is gone; resuming it" in done.stdout
    db = tmp_path / "results" / "tiny" / "study.db"
    (trial,) = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.user_attrs["resumed_from"] >= 2 and trial.user_attrs["device"] == "CPU:0,1"
    model = keras.saving.load_model(trial.user_attrs["checkpoint"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2400, 32)).astype("float32")
    y = (x[:, :4].sum(axis=1) + 0.5 * rng.normal(size=2400) > 0).astype("int64")
    val = slice(1800, None)  # validation_split 0.25: the last quarter
    score = model.evaluate(x[val], y[val], batch_size=SLOW["batch_size"], verbose=0)
    score = score[0] if isinstance(score, list) else score
    assert score == pytest.approx(trial.user_attrs["best_score"], rel=1e-3)
    rows = read_rows(tmp_path / "results" / "tiny" / "trials.csv")
    assert rows[0]["device"] == "CPU:0,1"


def test_sweep_run_takes_the_gpu_options(tmp_path: Path) -> None:
    import sweep

    space = write_space(tmp_path)
    with pytest.raises(ConfigError, match=r"^--gpu-memory: expected a size like 10GB"):
        sweep.run(space, gpu_memory="lots", results=tmp_path / "results", progress=False)
    with pytest.raises(ConfigError, match=r"^--gpus: expected a list of GPU numbers"):
        sweep.run(space, gpus=[0.5], results=tmp_path / "results", progress=False)
    with pytest.raises(ConfigError, match=r"^--gpus-per-trial 2: expected at least 2 GPUs"):
        sweep.run(space, gpus_per_trial=2, results=tmp_path / "results", progress=False)
    assert not (tmp_path / "results" / "tiny" / "study.db").exists()
