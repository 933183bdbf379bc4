"""Cross-trial pruning (``--pruner``): Optuna's pruners, with real training and SQLite.

A pruned trial keeps early stopping's guarantees: state pruned, best_score, best_epoch
and stop_epoch from the epochs it trained, and its best checkpoint on disk, scoring
best_score on the validation data.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_space
from test_trial_semantics import reload_score, validation_arrays

SETTINGS: dict[str, Any] = {
    "monitor": "val_loss",
    "epochs": 8,
    "patience": 8,  # early stopping never ends a trial before the pruner can
    "trials": 9,
    "sampler": "random",
}


def _study(folder: Path, name: str) -> Any:
    import optuna

    storage = f"sqlite:///{folder / 'results' / name / 'study.db'}"
    return optuna.load_study(study_name=name, storage=storage)


@pytest.mark.slow
def test_median_pruner_prunes_and_pruned_trials_keep_their_best(tmp_path: Path) -> None:

    space = write_space(tmp_path, settings=SETTINGS)
    code, out, err = run_cli(
        "run",
        str(space),
        "--pruner",
        "median",
        "--deterministic",
        "--seed",
        "0",
        "--plain",
        cwd=tmp_path,
    )  # --seed: the sampler's too (--deterministic seeds only Keras), so the same 9 trials
    assert code == 0, err + out
    study = _study(tmp_path, "tiny")
    trials = study.get_trials()
    states = [t.state.name for t in trials]
    assert states[:5] == ["COMPLETE"] * 5  # MedianPruner's 5 startup trials
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned, f"nothing was pruned: {states}"
    assert set(states) <= {"COMPLETE", "PRUNED"}
    x_val, y_val = validation_arrays(space)
    for t in pruned:
        attrs = t.user_attrs
        steps = t.intermediate_values
        assert attrs["stop_reason"] == "pruned" and attrs["early_stopped"] is False
        assert attrs["stop_epoch"] == max(steps) == len(steps) < SETTINGS["epochs"]
        best_epoch = min(steps, key=lambda e: (steps[e], e))  # earliest on ties
        assert attrs["best_epoch"] == best_epoch
        assert attrs["best_score"] == steps[best_epoch]
        folder = Path(attrs["trial_dir"])
        rows = list(csv.DictReader((folder / "history.csv").open()))
        assert [int(float(r["epoch"])) for r in rows] == list(range(1, attrs["stop_epoch"] + 1))
        assert not (folder / "resume").exists()  # pruned is final: nothing to resume
        loss = reload_score(attrs["checkpoint"], "val_loss", x_val, y_val)
        assert loss == pytest.approx(attrs["best_score"], rel=1e-5)
        assert f"trial {t.number} pruned: best val_loss=" in out
    code, table, _ = run_cli("table", "tiny", "--format", "csv", cwd=tmp_path)
    rows = {int(r["trial"]): r for r in csv.DictReader(table.splitlines())}
    for t in pruned:
        row = rows[t.number]
        assert row["state"] == "pruned" and row["stop_reason"] == "pruned"
        assert float(row["best_score"]) == pytest.approx(t.user_attrs["best_score"])
        assert row["checkpoint"] == t.user_attrs["checkpoint"]
    # sweep compare counts the pruned curves as censored for every setting
    from sweep.views.compare import compare

    results = compare(study, patience=[0, 2], min_delta=[0.0])
    assert all(r.censored >= len(pruned) for r in results), results


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["hyperband", "asha", "percentile"])
def test_other_pruners_run_with_ask_and_tell(tmp_path: Path, pruner: str) -> None:
    """Hyperband's brackets, ASHA's rungs and the percentile rule work in our ask/tell loop
    (TPE, as by default), and every trial ends complete or pruned with a checkpoint."""
    space = write_space(tmp_path, settings={**SETTINGS, "trials": 5, "sampler": "tpe"})
    code, out, err = run_cli("run", str(space), "--pruner", pruner, "--seed", "1", cwd=tmp_path)
    assert code == 0, err + out
    trials = _study(tmp_path, "tiny").get_trials()
    assert len(trials) == 5
    for t in trials:
        assert t.state.name in ("COMPLETE", "PRUNED")
        assert Path(t.user_attrs["checkpoint"]).is_file()
        assert t.user_attrs["best_epoch"] <= t.user_attrs["stop_epoch"]


def test_unknown_pruner_is_a_usage_error(tmp_path: Path) -> None:
    space = write_space(tmp_path)
    code, _out, err = run_cli("run", str(space), "--pruner", "sha", cwd=tmp_path)
    assert code == 2
    assert err.strip() == (
        "sweep: error: --pruner: expected one of none, median, percentile, hyperband, asha, "
        "got 'sha'"
    )
    assert not (tmp_path / "results" / "tiny" / "study.db").exists()


def test_pruner_names_are_optunas_pruners() -> None:
    import optuna

    from sweep.execution.pruning import make_pruner

    expected = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "asha": optuna.pruners.SuccessiveHalvingPruner,
    }
    for name, cls in expected.items():
        assert type(make_pruner(name, max_epochs=8)) is cls
    assert make_pruner("hyperband", max_epochs=8)._max_resource == 8
