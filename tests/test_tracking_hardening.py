"""Trackers hardened (issue 23, items 8, 12b, 17): an MLflow password is shown nowhere
(a real ``mlflow server`` up, and a port where nothing listens), ``MLFLOW_TRACKING_URI``
and MLflow's basic-auth variables; a hyperparameter name MLflow refuses; destinations that
cannot work refused before the study is created."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY_SPACE, run_cli, sweep_subprocess, write_space
from test_tracking import free_port, mlflow_server

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

__all__ = ["mlflow_server"]  # the real server fixture, shared with test_tracking

PASSWORD = "s3cretPW"
ENV_PASSWORD = "envS3cret"
# a hyperparameter name MLflow refuses as a param key (INVALID_PARAMETER_VALUE: the comma)
ODD_SPACE = TINY_SPACE.replace(
    'keras.layers.Dense(3, activation="softmax"),',
    'keras.layers.Dropout(hp.Float("dropout, rate", 0.0, 0.5)),\n'
    '            keras.layers.Dense(3, activation="softmax"),',
)


def with_password(url: str, password: str = PASSWORD) -> str:
    return url.replace("http://", f"http://alice:{password}@")


def everything_written(folder: Path, out: str, err: str) -> str:
    """stdout, stderr, sweep.log, trials.csv and every study and trial attr, as text."""
    study = folder / "results" / "tiny"
    texts = [out, err, (study / "sweep.log").read_text(), (study / "trials.csv").read_text()]
    with sqlite3.connect(study / "study.db") as db:
        for table in ("study_user_attributes", "trial_user_attributes", "study_system_attributes"):
            texts += [f"{k}={v}" for k, v in db.execute(f"SELECT key, value_json FROM {table}")]
    return "\n".join(texts)


def sweep_run(folder: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        return sweep_subprocess("run", "tiny.py", "--plain", "--seed", "0", *args, cwd=folder)
    finally:
        os.environ.clear()
        os.environ.update(old)


@pytest.fixture(scope="module")
def logged(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One real sweep logging to the server with a password in the URL, a hyperparameter
    named ``dropout, rate``."""
    folder = tmp_path_factory.mktemp("logged")
    write_space(folder, settings={"epochs": 2, "trials": 2}, source=ODD_SPACE)
    done = sweep_run(folder, "--mlflow", with_password(mlflow_server))
    assert done.returncode == 0, done.stderr
    return folder, done


def test_a_password_in_the_mlflow_url_is_shown_nowhere(
    logged: tuple[Path, Any], mlflow_server: str
) -> None:
    folder, done = logged
    written = everything_written(folder, done.stdout, done.stderr)
    assert PASSWORD not in written
    assert "View run" not in done.stdout  # MLflow's own link lines hold the full URL
    shown = with_password(mlflow_server, "***")
    assert f"MLflow: the study's run is {shown}/#/experiments/" in done.stdout
    with sqlite3.connect(folder / "results" / "tiny" / "study.db") as db:
        [(stored,)] = db.execute(
            "SELECT value_json FROM study_user_attributes WHERE key = 'sweep_plan'"
        )
    plan = json.loads(json.loads(stored))
    assert plan["overrides"]["mlflow"] == mlflow_server  # a worker's password is its own


def test_a_name_mlflow_refuses_is_mapped_and_nothing_else_is_lost(
    logged: tuple[Path, Any], mlflow_server: str
) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    folder, done = logged
    assert "warning" not in done.stdout
    study = optuna.load_study(
        study_name="tiny", storage=f"sqlite:///{folder / 'results/tiny/study.db'}"
    )
    client = MlflowClient(tracking_uri=mlflow_server)
    for t in study.get_trials():
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.params["dropout_ rate"] == str(t.params["dropout, rate"])
        assert run.data.tags["sweep.name.dropout_ rate"] == "dropout, rate"
        assert run.data.params["units"] == str(t.params["units"])
        assert run.data.metrics["best_score"] == pytest.approx(t.user_attrs["best_score"])
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert sorted(steps) == [1, 2]


def test_a_password_is_hidden_when_the_server_is_down(tmp_path: Path) -> None:
    write_space(tmp_path, settings={"epochs": 2, "trials": 2})
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    done = sweep_run(tmp_path, "--mlflow", with_password(down))
    assert done.returncode == 0, done.stderr  # a server that is down is no config error
    assert (
        done.stdout.count(f"failed (MlflowException: API request to {with_password(down, '***')}/")
        >= 2
    )
    assert PASSWORD not in everything_written(tmp_path, done.stdout, done.stderr)
    assert "2/2 trials finished" in done.stdout


def test_mlflow_alone_takes_the_uri_and_basic_auth_from_the_environment(
    tmp_path: Path, mlflow_server: str
) -> None:
    """MLflow's own variables. No server with authentication can be started here (MLflow's
    basic-auth app needs Flask-WTF, not installed), so the server accepts any credentials:
    this checks that they are taken and shown nowhere, not that the server checks them."""
    from mlflow.tracking import MlflowClient

    write_space(tmp_path, settings={"epochs": 2, "trials": 1})
    env = {
        "MLFLOW_TRACKING_URI": with_password(mlflow_server, ENV_PASSWORD),
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": ENV_PASSWORD,
    }
    done = sweep_run(tmp_path, "--study", "tiny", "--mlflow", env=env)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stdout, done.stdout
    written = everything_written(tmp_path, done.stdout, done.stderr)
    assert ENV_PASSWORD not in written
    assert '\\"mlflow\\": true' in written  # the study keeps "the environment's", no URI
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None  # (the module's other sweeps used the study name too)
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`sweep.trial` = '0'")
    assert runs and all(r.info.status == "FINISHED" for r in runs)


def test_mlflow_alone_without_the_variable_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    space = write_space(tmp_path)
    code, _, err = run_cli("run", str(space), "--mlflow", cwd=tmp_path)
    assert code == 2
    assert err == (
        "sweep: error: --mlflow: expected a tracking URI after it or in MLFLOW_TRACKING_URI, "
        "found neither; pass --mlflow URI or set MLFLOW_TRACKING_URI\n"
    )
    assert not (tmp_path / "results" / "tiny" / "study.db").exists()


NOT_URI = (
    "expected an MLflow tracking URI (http://HOST:PORT, https://..., sqlite:///PATH, "
    "file:///PATH, databricks), got the scheme 'htp'; fix the URI"
)
NO_FOLDER = "found no such folder; fix the path or its permissions"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("htp://alice:pw@127.0.0.1:5000", f"--mlflow htp://alice:***@127.0.0.1:5000: {NOT_URI}"),
        (
            "sqlite:////proc/nope/ml.db",
            f"--mlflow sqlite:////proc/nope/ml.db: expected a writable folder /proc/nope, "
            f"{NO_FOLDER}",
        ),
        (
            "file:///nonexistent/mlruns",
            f"--mlflow file:///nonexistent/mlruns: expected a writable folder /nonexistent, "
            f"{NO_FOLDER}",
        ),
        (
            "sqlite:////sys/ml.db",
            "--mlflow sqlite:////sys/ml.db: expected a writable folder /sys, found that no "
            "file can be created there",
        ),
    ],
    ids=["scheme", "sqlite-no-folder", "file-no-folder", "sqlite-read-only"],
)
def test_an_mlflow_uri_that_cannot_work_is_refused_before_the_study(
    tmp_path: Path, uri: str, shown: str
) -> None:
    space = write_space(tmp_path)
    code, out, err = run_cli("run", str(space), "--mlflow", uri, cwd=tmp_path)
    assert code == 2, out + err
    assert err.startswith(f"sweep: error: {shown}") and err.count("\n") == 1, err
    assert not (tmp_path / "results" / "tiny" / "study.db").exists()
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize("where", ["a-file", "read-only"])
def test_a_tensorboard_folder_that_cannot_be_written_is_refused_before_the_study(
    tmp_path: Path, where: str
) -> None:
    """Tests run as root, which chmod does not stop: a file where the folder goes, and a
    link to /sys, where not even root can create a file."""
    space = write_space(tmp_path)
    folder = tmp_path / "results" / "tiny"
    folder.mkdir(parents=True)
    if where == "a-file":
        (folder / "tensorboard").write_text("not a folder")
        found = "a file"
    else:
        (folder / "tensorboard").symlink_to("/sys")
        found = "that no file can be created there"
    code, out, err = run_cli("run", str(space), "--tensorboard", cwd=tmp_path)
    assert code == 2, out + err
    assert err.startswith(
        f"sweep: error: --tensorboard: expected a writable folder results/tiny/tensorboard, "
        f"found {found}"
    ), err
    assert err.count("\n") == 1
    assert not (folder / "study.db").exists() and not (folder / "trials").exists()


def test_one_item_mlflow_refuses_costs_only_itself(
    mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch MLflow refuses (here a param key with a comma, logged as it is) is logged
    item by item: the others land, the refused one is one warning line."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")  # a loaded test machine
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from sweep.integrations.mlflow_tracking import MlflowTracker

    warned: list[str] = []
    tracker = MlflowTracker(with_password(mlflow_server), study=None, warn=warned.append)
    client = MlflowClient(tracking_uri=mlflow_server)
    run_id = client.create_run(client.create_experiment("refused")).info.run_id
    params = [Param("units", "8"), Param("dropout, rate", "0.1"), Param("lr", "0.01")]
    tracker._log(3, run_id, params=params, metrics=[Metric("loss", 0.5, 0, 1)])
    run = client.get_run(run_id)
    assert run.data.params == {"units": "8", "lr": "0.01"}
    assert run.data.metrics == {"loss": 0.5}
    [line] = warned
    assert line.startswith("warning: MLflow refused trial 3's param 'dropout, rate' (")
    assert line.endswith("); the rest is logged") and PASSWORD not in line
