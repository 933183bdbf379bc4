"""Reading a study fast (sweep/reading.py): the same facts as Optuna's ``get_trials``,
without every intermediate value, and a running sweep's table rewritten from the new
trials only. Real SQLite studies (the shared finished sweep, and a copy changed here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna

from sweep import reading
from sweep.results import READ_KEYS, TableCache, table_rows, to_csv, write_table
from sweep.storage import load_existing_study


def _study(folder: Path) -> optuna.Study:
    return load_existing_study("tiny", results_dir=folder / "results", storage=None)


def test_views_hold_what_get_trials_holds_without_the_curves(finished_sweep: Path) -> None:
    study = _study(finished_sweep)
    whole = study.get_trials(deepcopy=False)
    views = reading.trials(study)
    assert reading.rdb(study) is not None  # the SQL path, not the get_trials fallback
    assert [v.number for v in views] == [t.number for t in whole]
    for v, t in zip(views, whole, strict=True):
        assert (v.state, v.value, v.params, v.user_attrs) == (
            t.state,
            t.value,
            t.params,
            t.user_attrs,
        )
        assert (v.datetime_start, v.datetime_complete) == (t.datetime_start, t.datetime_complete)
        assert v.distributions == t.distributions
        assert v.intermediate_values == {}  # finished and not asked for: not read
    assert reading.curves(study, [1]) == {1: dict(whole[1].intermediate_values)}
    asked = reading.trials(study, curves=[2], keys={"best_score"})
    assert asked[2].intermediate_values == whole[2].intermediate_values
    assert set(asked[0].user_attrs) == {"best_score"}
    assert reading.state_counts(study) == {"COMPLETE": 3}
    assert reading.best(study) == (study.best_trial.number, study.best_trial.value)


def test_running_sweep_table_reads_only_new_trials(finished_sweep: Path, tmp_path: Path) -> None:
    shutil.copytree(finished_sweep, tmp_path / "s")
    study = _study(tmp_path / "s")
    cache, path = TableCache(), tmp_path / "trials.csv"
    first = write_table(study, path, cache)
    kept = dict(cache.trials.finished)
    assert len(kept) == 3
    trial = study.ask()  # a new running trial, then it finishes
    trial.set_user_attr("best_score", 0.5)
    assert [r["state"] for r in table_rows(study, cache)].count("running") == 1
    study.tell(trial, 0.5)
    rows = write_table(study, path, cache)
    assert all(cache.trials.finished[tid] is view for tid, view in kept.items())  # not reread
    assert len(cache.trials.finished) == 4
    assert rows == table_rows(study) and len(rows) == len(first) + 1
    assert path.read_text() == to_csv(table_rows(study))
    assert set(cache.trials.finished[trial._trial_id].user_attrs) <= READ_KEYS
