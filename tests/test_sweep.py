"""The sweep end to end: the study, continuing it, the results table, status, samplers, budget."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import optuna
import pytest
from conftest import run_cli, write_space

EXPECTED_COLUMNS = [
    "trial",
    "state",
    "param_units",
    "param_lr",
    "monitor",
    "mode",
    "best_score",
    "best_execution",
    "best_execution_score",
    "best_epoch",
    "stop_epoch",
    "max_epochs",
    "early_stopped",
    "stop_reason",
    "stopped_by",
    "patience",
    "min_delta",
    "calibration",
    "objective_source",
    "duration_s",
    "worker",
    "device",
    "checkpoint",
    "resumed_from",
    "resume_note",
    "space_changed",
    "error",
]


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_table_columns_are_named_exactly(finished_sweep: Path) -> None:
    text = (finished_sweep / "results" / "tiny" / "trials.csv").read_text()
    assert next(csv.reader(io.StringIO(text))) == EXPECTED_COLUMNS
    rows = read_csv(text)
    assert len(rows) == 3
    for row in rows:
        assert row["state"] == "complete"
        assert row["monitor"] == "val_loss" and row["mode"] == "min"
        assert row["max_epochs"] == "5" and row["patience"] == "2" and row["min_delta"] == "0.0"
        assert 1 <= int(row["best_epoch"]) <= int(row["stop_epoch"]) <= 5
        # early_stopped: EarlyStopping ended it before max_epochs
        assert row["early_stopped"] == ("true" if int(row["stop_epoch"]) < 5 else "false")
        assert row["device"] == "CPU"  # no GPU here, none asked for
        early = row["early_stopped"] == "true"
        assert row["stop_reason"] == ("early_stopping" if early else "max_epochs")
        assert Path(row["checkpoint"]).is_file() and row["error"] == ""
        assert float(row["duration_s"]) > 0


def test_table_is_best_first_and_matches_trials_csv(finished_sweep: Path) -> None:
    code, out, err = run_cli("table", "tiny", "--format", "csv", cwd=finished_sweep)
    assert code == 0, err
    assert out == (finished_sweep / "results" / "tiny" / "trials.csv").read_text()
    scores = [float(r["best_score"]) for r in read_csv(out)]
    assert scores == sorted(scores)  # val_loss: lower is better
    study = optuna.load_study(
        study_name="tiny", storage=f"sqlite:///{finished_sweep / 'results/tiny/study.db'}"
    )
    assert int(read_csv(out)[0]["trial"]) == study.best_trial.number


def test_table_formats(finished_sweep: Path) -> None:
    code, out, _ = run_cli("table", "tiny", "--format", "json", cwd=finished_sweep)
    assert code == 0
    rows = json.loads(out)
    assert [r["trial"] for r in rows] == [
        int(r["trial"])
        for r in read_csv(run_cli("table", "tiny", "--format", "csv", cwd=finished_sweep)[1])
    ]
    assert set(EXPECTED_COLUMNS) == set(rows[0])
    code, out, _ = run_cli("table", "tiny", "--format", "markdown", cwd=finished_sweep)
    lines = out.splitlines()
    assert lines[0].startswith("| trial | state | param_units") and len(lines) == 2 + 3
    code, out, _ = run_cli("table", "tiny", cwd=finished_sweep)
    assert code == 0 and "best_score" in out and out.count("complete") == 3


def test_status_summarises(finished_sweep: Path) -> None:
    code, out, err = run_cli("status", "tiny", cwd=finished_sweep)
    assert code == 0, err
    first = read_csv((finished_sweep / "results" / "tiny" / "trials.csv").read_text())[0]
    assert "3 complete" in out
    assert f"best: trial {first['trial']} val_loss=" in out
    assert "time spent" in out


def test_sweep_log_has_every_epoch(finished_sweep: Path) -> None:
    log = (finished_sweep / "results" / "tiny" / "sweep.log").read_text()
    assert "trial 0 epoch 1/5: val_loss=" in log and "trial 2 complete" in log


def test_running_again_continues_the_study(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 2, "epochs": 2})
    assert run_cli("run", str(space), "--seed", "1", cwd=tmp_path)[0] == 0
    db = tmp_path / "results" / "tiny" / "study.db"
    before = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    # the same command again: nothing to do, the study already has 2 finished trials
    code, out, _ = run_cli("run", str(space), "--seed", "1", cwd=tmp_path)
    assert code == 0 and "2/2 trials finished" in out
    # a larger target: 3 more, numbered on, the first two untouched
    code, out, _ = run_cli("run", str(space), "--seed", "1", "--trials", "5", cwd=tmp_path)
    assert code == 0
    after = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    assert [t.number for t in after] == [0, 1, 2, 3, 4]
    assert [(t.params, t.value) for t in after[:2]] == [(t.params, t.value) for t in before]
    # a resumed session must not replay the same suggestions (the sampler is re-seeded)
    assert after[2].params != after[0].params
    rows = read_csv((tmp_path / "results" / "tiny" / "trials.csv").read_text())
    assert sorted(int(r["trial"]) for r in rows) == [0, 1, 2, 3, 4]


def test_changing_the_monitor_of_an_existing_study_is_refused(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 1, "epochs": 2})
    assert run_cli("run", str(space), cwd=tmp_path)[0] == 0
    code, _, err = run_cli(
        "run", str(space), "--monitor", "val_accuracy", "--trials", "2", cwd=tmp_path
    )
    assert code == 2
    assert "was created for val_loss (min)" in err and "val_accuracy (max)" in err
    assert "--study" in err
    db = tmp_path / "results" / "tiny" / "study.db"
    assert len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials) == 1


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "grid"])
def test_samplers(tmp_path: Path, sampler: str) -> None:
    space = write_space(tmp_path, source=GRIDDABLE, settings={"trials": 3, "epochs": 2})
    code, _, err = run_cli("run", str(space), "--sampler", sampler, "--seed", "0", cwd=tmp_path)
    assert code == 0, err
    db = tmp_path / "results" / "tiny" / "study.db"
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    if sampler == "grid":  # a grid visits distinct points
        assert len({tuple(sorted(t.params.items())) for t in trials}) == 3


def test_grid_stops_when_the_grid_is_used_up(tmp_path: Path) -> None:
    space = write_space(tmp_path, source=GRIDDABLE, settings={"trials": 50, "epochs": 1})
    code, out, err = run_cli("run", str(space), "--sampler", "grid", cwd=tmp_path)
    assert code == 0, err
    assert "4/4 trials finished" in out  # units {4, 8} x lr {0.01, 0.03}


def test_gp_sampler_without_torch_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("sweep")  # always there; the branch below depends on torch
    import importlib.util

    space = write_space(tmp_path, source=GRIDDABLE, settings={"trials": 1, "epochs": 1})
    code, _, err = run_cli("run", str(space), "--sampler", "gp", cwd=tmp_path)
    if importlib.util.find_spec("torch") is None:
        assert code == 2 and "PyTorch" in err and "pip install torch" in err
    else:
        assert code == 0, err


def test_grid_needs_finite_values(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 1})  # lr is a log-uniform Float
    code, _, err = run_cli("run", str(space), "--sampler", "grid", cwd=tmp_path)
    assert code == 2 and "'lr'" in err and "step" in err


def test_timeout_stops_starting_trials(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 50, "epochs": 2})
    # the budget counts from the start of the command (imports and the pre-flight check too)
    code, out, err = run_cli("run", str(space), "--timeout", "10s", cwd=tmp_path)
    assert code == 0, err
    assert "time budget spent" in out
    db = tmp_path / "results" / "tiny" / "study.db"
    n = len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials)
    assert 1 <= n < 50


def test_study_and_results_flags(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 1, "epochs": 1})
    code, out, _ = run_cli(
        "run", str(space), "--study", "other", "--results", "elsewhere", cwd=tmp_path
    )
    assert code == 0
    assert (tmp_path / "elsewhere" / "other" / "study.db").is_file()
    assert (tmp_path / "elsewhere" / "other" / "trials" / "0" / "best.keras").is_file()
    code, out, _ = run_cli(
        "table", "other", "--results", "elsewhere", "--format", "csv", cwd=tmp_path
    )
    assert code == 0 and len(read_csv(out)) == 1
    code, _, err = run_cli("table", "other", cwd=tmp_path)
    assert code == 2 and "results/other/study.db" in err


def test_a_deleted_checkpoint_shows_as_empty(finished_sweep: Path) -> None:
    rows = read_csv((finished_sweep / "results" / "tiny" / "trials.csv").read_text())
    victim, number = Path(rows[0]["checkpoint"]), rows[0]["trial"]
    backup = victim.read_bytes()
    victim.unlink()
    try:
        _, out, _ = run_cli("table", "tiny", "--format", "csv", cwd=finished_sweep)
        now = {r["trial"]: r for r in read_csv(out)}
        assert now[number]["checkpoint"] == ""
        assert all(r["checkpoint"] for t, r in now.items() if t != number)
    finally:
        victim.write_bytes(backup)


GRIDDABLE = """
from __future__ import annotations

import keras
import numpy as np

SETTINGS = {settings!r}


def load_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64")


def build_model(hp):
    model = keras.Sequential(
        [
            keras.Input(shape=(6,)),
            keras.layers.Dense(hp.Choice("units", [4, 8]), activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Choice("lr", [0.01, 0.03])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
"""
