"""``--executions-per-trial N``: each trial trains N times; its score is the mean of the
executions' best scores, its checkpoint the best execution's model; a kill in an
execution resumes that execution, keeping the finished ones."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import optuna
import pytest
from conftest import run_cli, write_space
from test_resume import SLOW, SLOW_SPACE, finish, kill, start, study, wait_for
from test_trial_semantics import read_csv, reload_score, validation_arrays


def test_two_executions_score_the_mean_and_keep_the_best_model(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"epochs": 5, "trials": 1, "patience": 10})
    code, _, err = run_cli(
        "run", str(space), "--seed", "3", "--executions-per-trial", "2", cwd=tmp_path
    )
    assert code == 0, err
    trial_dir = tmp_path / "results" / "tiny" / "trials" / "0"
    bests = []
    for e in (0, 1):
        history = read_csv(trial_dir / "executions" / str(e) / "history.csv")
        bests.append(min(float(h["val_loss"]) for h in history))
    assert bests[0] != bests[1]  # two initialisations, two seeds
    (row,) = read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    best = bests.index(min(bests))
    assert float(row["best_score"]) == math.fsum(bests) / 2
    assert (int(row["best_execution"]), float(row["best_execution_score"])) == (best, bests[best])
    (trial,) = optuna.load_study(
        study_name="tiny", storage=f"sqlite:///{tmp_path / 'results' / 'tiny' / 'study.db'}"
    ).trials
    assert trial.value == math.fsum(bests) / 2  # the objective Optuna sees is the mean
    assert Path(row["checkpoint"]) == (trial_dir / "best.keras").resolve()
    best_history = (trial_dir / "executions" / str(best) / "history.csv").read_text()
    assert (trial_dir / "history.csv").read_text() == best_history
    xv, yv = validation_arrays(space)
    score = reload_score(row["checkpoint"], "val_loss", xv, yv)
    assert abs(score - bests[best]) <= 1e-5 * abs(bests[best]) + 1e-6
    # sweep compare replays each execution's curve: at the recorded setting, both are
    # uncensored and their replayed bests are the executions' own
    cmp = ("compare", "tiny", "--patience", "10", "--min-delta", "0", "--format", "csv")
    code, out, err = run_cli(*cmp, cwd=tmp_path)
    assert code == 0, err
    (setting,) = list(csv.DictReader(io.StringIO(out.split("\nwritten:")[0])))
    assert (setting["uncensored"], setting["censored"]) == ("2", "0")
    assert float(setting["mean_best_score"]) == pytest.approx(sum(bests) / 2, rel=1e-12)


def test_pruning_with_several_executions_is_refused(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"pruner": "median"})
    code, _, err = run_cli("run", str(space), "--executions-per-trial", "2", cwd=tmp_path)
    assert code == 2
    assert err == (
        f"sweep: error: search space {space}: executions_per_trial=2 with pruner 'median': "
        "a pruner judges one curve per trial, expected pruner 'none'; drop --pruner or set "
        "--executions-per-trial 1\n"
    )


def _execution_epochs(folder: Path, execution: int) -> int:
    state = (
        folder
        / "results"
        / "tiny"
        / "trials"
        / "0"
        / "executions"
        / str(execution)
        / "resume"
        / "state.json"
    )
    try:
        return int(json.loads(state.read_text())["epochs_done"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_a_kill_in_the_second_execution_resumes_it(tmp_path: Path) -> None:
    write_space(tmp_path, source=SLOW_SPACE, settings={**SLOW, "epochs": 4, "trials": 1})
    args = ("--seed", "7", "--executions-per-trial", "2")
    proc = start(tmp_path, *args)
    wait_for(proc, lambda: _execution_epochs(tmp_path, 1) >= 2)
    kill(proc)
    first = tmp_path / "results" / "tiny" / "trials" / "0" / "executions" / "0" / "history.csv"
    kept = (first.read_text(), first.stat().st_mtime_ns)
    finish(tmp_path, *args)
    (trial,) = study(tmp_path).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    done = [trial.user_attrs["execution_0"], trial.user_attrs["execution_1"]]
    assert "resumed_from" not in done[0] and done[1]["resumed_from"] >= 2  # not from scratch
    assert (first.read_text(), first.stat().st_mtime_ns) == kept  # execution 0 not rerun
    with first.parent.parent.joinpath("1", "history.csv").open() as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == list(range(1, 5))
    assert trial.value == math.fsum(float(d["best_score"]) for d in done) / 2
    assert trial.user_attrs["resumed_from"] == done[1]["resumed_from"]


def test_an_execution_sees_its_own_curve_not_the_first_ones() -> None:
    # What a resumed execution reads as already reported (sweep.train.trial._resumed): its
    # own curve. It read execution 0's (the one Optuna holds), so epochs a kill kept from
    # execution 1's curve were not reported again on resume.
    from sweep.train.executions import ExecutionTrial

    study = optuna.create_study()
    trial = study.ask()
    first, second = ExecutionTrial(trial, 0), ExecutionTrial(trial, 1)
    for epoch, value in ((1, 0.9), (2, 0.8), (3, 0.7)):
        first.report(value, epoch)
    second.report(0.5, 1)
    assert first.frozen().intermediate_values == {1: 0.9, 2: 0.8, 3: 0.7}
    assert second.frozen().intermediate_values == {1: 0.5}
