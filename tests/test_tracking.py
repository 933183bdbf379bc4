"""``--tensorboard`` and ``--mlflow``: a real sweep, killed mid-trial and resumed, read back
with TensorBoard's own event reader and with ``MlflowClient`` from a real ``mlflow server``;
a server that is down; a missing extra."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import run_cli, write_space
from test_resume import SLOW, SLOW_SPACE, epochs_done, finish, start

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real MLflow tracking server for the module: SQLite store, local artifact root."""
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--workers",
            "1",
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "server.log").open("w"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            if r.status == 200:
                break
        assert proc.poll() is None, (folder / "server.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "mlflow server did not start"
        time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGKILL)  # a throwaway server: no need to wait for a clean stop
    proc.wait(timeout=30)


def history(folder: Path, trial: int) -> list[dict[str, float]]:
    path = folder / "results" / "tiny" / "trials" / str(trial) / "history.csv"
    with path.open(newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def tb_run(run: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, Any], Any]:
    """Scalars (tag -> [(step, value)]), the hparams session values and the experiment, as
    TensorBoard's own reader and the HParams plugin's metadata parsing see them."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata
    from tensorboard.util import tensor_util

    scalars: dict[str, list[tuple[int, float]]] = {}
    session: dict[str, Any] = {}
    experiment = None
    for path in sorted(run.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for v in event.summary.value:
                content = v.metadata.plugin_data.content
                if v.tag == metadata.SESSION_START_INFO_TAG:
                    info = metadata.parse_session_start_info_plugin_data(content)
                    for name, value in info.hparams.items():
                        kind = value.WhichOneof("kind")
                        session[name] = getattr(value, kind)
                elif v.tag == metadata.EXPERIMENT_TAG:
                    experiment = metadata.parse_experiment_plugin_data(content)
                elif v.metadata.plugin_data.plugin_name == "scalars":
                    value = float(tensor_util.make_ndarray(v.tensor))
                    scalars.setdefault(v.tag, []).append((event.step, value))
    return scalars, session, experiment


def test_tensorboard_and_mlflow_after_a_kill(tmp_path: Path, mlflow_server: str) -> None:
    from mlflow.tracking import MlflowClient

    write_space(
        tmp_path, settings={**SLOW, "epochs": 3, "patience": 3, "trials": 2}, source=SLOW_SPACE
    )
    args = (
        "--seed",
        "0",
        "--plain",
        "--tensorboard",
        "--mlflow",
        mlflow_server,
        "--mlflow-artifacts",
    )
    proc = start(tmp_path, *args)
    deadline = time.monotonic() + 300
    while epochs_done(tmp_path, 0) < 1:  # kill -9 in the middle of trial 0
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    finish(tmp_path, *args)

    study = optuna.load_study(
        study_name="tiny", storage=f"sqlite:///{tmp_path / 'results/tiny/study.db'}"
    )
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert trials[0].user_attrs["resumed_from"] >= 1  # it really was resumed
    tb = tmp_path / "results" / "tiny" / "tensorboard"
    _, _, experiment = tb_run(tb)
    domains = {h.name: h for h in experiment.hparam_infos}
    assert sorted(domains) == ["dropout", "lr", "units"]
    assert [v.number_value for v in domains["units"].domain_discrete.values] == [16, 32, 48, 64]
    assert (domains["lr"].domain_interval.min_value, domains["lr"].domain_interval.max_value) == (
        pytest.approx(1e-3),
        pytest.approx(1e-2),
    )
    assert sorted(m.name.tag for m in experiment.metric_infos) == [
        "best_epoch",
        "best_score",
        "stop_epoch",
    ]
    client = MlflowClient(tracking_uri=mlflow_server)
    parent = study.user_attrs["mlflow_parent_run_id"]
    assert client.get_run(parent).info.status == "FINISHED"  # the study has all its trials
    experiment_id = client.get_run(parent).info.experiment_id
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert len(children) == 2  # one run per trial: the resumed one continued its own
    for t in trials:
        rows = history(tmp_path, t.number)
        epochs = [int(r["epoch"]) for r in rows]
        assert epochs == list(range(1, t.user_attrs["stop_epoch"] + 1))
        scalars, session, _ = tb_run(tb / str(t.number))
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert scalars[key] == [  # every epoch once, equal to history.csv (float32)
                (e, float(np.float32(r[key]))) for e, r in zip(epochs, rows, strict=True)
            ]
        assert session == pytest.approx(t.params)
        for name in ("best_score", "best_epoch", "stop_epoch"):
            assert scalars[name] == [
                (t.user_attrs["stop_epoch"], float(np.float32(t.user_attrs[name])))
            ]
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.run_id in {c.info.run_id for c in children}
        assert run.data.params == {k: str(v) for k, v in t.params.items()}
        assert run.data.tags["sweep.state"] == "complete"
        assert run.data.tags["stop_reason"] == t.user_attrs["stop_reason"]
        assert run.info.status == "FINISHED"
        for key in ("loss", "val_loss"):
            logged = sorted(
                (m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)
            )
            assert logged == [(e, pytest.approx(r[key])) for e, r in zip(epochs, rows, strict=True)]
        for name in ("best_score", "best_epoch", "stop_epoch"):
            assert run.data.metrics[name] == pytest.approx(t.user_attrs[name])
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["best.keras"]


def test_a_tracking_server_that_is_down_warns_once_per_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the Python API's keywords (the CLI's flags are the test above)."""
    import sweep

    space = write_space(tmp_path, settings={"epochs": 2, "trials": 2})
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.chdir(tmp_path)
    study = sweep.run(space, mlflow=down, tensorboard=True, results=tmp_path / "results")
    out = capsys.readouterr().out
    assert [r.state for r in study.trials] == ["complete", "complete"]
    for n in (0, 1):
        assert out.count(f"warning: MLflow logging for trial {n} failed (") == 1
        assert list((tmp_path / "results" / "tiny" / "tensorboard" / str(n)).glob("events.*"))
    assert "the trial goes on without it" in out


def test_missing_tensorboard_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uninstalling a package from the shared test environment is not possible here:
    ``sys.modules[name] = None`` is how Python itself marks a module as not importable."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    space = write_space(tmp_path)
    code, _, err = run_cli("run", str(space), "--tensorboard", cwd=tmp_path)
    assert code == 2
    assert err == (
        "sweep: error: --tensorboard: expected the tensorboard package, found it not "
        "installed; install it with pip install -e '.[tensorboard]'\n"
    )
    assert not (tmp_path / "results" / "tiny" / "trials").exists()  # before any trial
