"""Reading a study fast (sweep/store/relational.py): the same facts as Optuna's ``get_trials``,
without every intermediate value, and a running sweep's table rewritten from the new
trials only. Real SQLite studies (the shared finished sweep, and a copy changed here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from sweep.store.reading import GenericReader
from sweep.store.relational import RelationalReader
from sweep.store.results import READ_KEYS, TABLE_KEYS, TableCache, table_rows, to_csv, write_table
from sweep.store.storage import load_existing_study, reader_for


def _study(folder: Path) -> optuna.Study:
    return load_existing_study("tiny", results_dir=folder / "results", storage=None)


def test_views_hold_what_get_trials_holds_without_the_curves(finished_sweep: Path) -> None:
    study = _study(finished_sweep)
    whole = study.get_trials(deepcopy=False)
    reader = reader_for(study)
    views = reader.trials()
    assert isinstance(reader, RelationalReader)  # the SQL path, not the get_trials one
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
    assert reader.curves([1]) == {1: dict(whole[1].intermediate_values)}
    asked = reader.trials(curves=[2], keys={"best_score"})
    assert asked[2].intermediate_values == whole[2].intermediate_values
    assert set(asked[0].user_attrs) == {"best_score"}
    assert reader.state_counts() == {"COMPLETE": 3}
    assert reader.best() == (study.best_trial.number, study.best_trial.value)


def test_running_sweep_table_reads_only_new_trials(finished_sweep: Path, tmp_path: Path) -> None:
    shutil.copytree(finished_sweep, tmp_path / "s")
    study = _study(tmp_path / "s")
    cache, path, reader = TableCache(), tmp_path / "trials.csv", reader_for(study)
    first = write_table(reader, path, cache)
    kept = dict(cache.trials.finished)
    assert len(kept) == 3
    trial = study.ask()  # a new running trial, then it finishes
    trial.set_user_attr("best_score", 0.5)
    assert [r["state"] for r in table_rows(reader, cache)].count("running") == 1
    study.tell(trial, 0.5)
    made = dict(cache.rows)
    rows = write_table(reader, path, cache)
    assert all(cache.trials.finished[tid] is view for tid, view in kept.items())  # not reread
    assert all(cache.rows[n] is row for n, row in made.items())  # nor their rows remade
    assert len(cache.trials.finished) == 4
    assert rows == table_rows(reader) and len(rows) == len(first) + 1
    assert path.read_text() == to_csv(table_rows(reader))
    assert set(cache.trials.finished[trial._trial_id].user_attrs) <= TABLE_KEYS


def test_status_reads_only_what_it_shows_and_says_the_same(
    finished_sweep: Path, tmp_path: Path
) -> None:
    from sweep.views.status import _read, status

    shutil.copytree(finished_sweep, tmp_path / "s")
    study = _study(tmp_path / "s")
    trial = study.ask()  # running, with a note on an inexact resume
    trial.set_user_attr("resume_note", "a callback's state was not saved")
    quick = status(study)  # SQL: counts, span, and only the best, running and noted trials
    whole = _read(GenericReader(study))  # get_trials: every trial
    assert len(whole.trials) == 4
    assert quick.counts == {"complete": 3, "running": 1} == dict(whole.counts)
    assert quick.best is not None and quick.best["trial"] == study.best_trial.number
    assert [r["trial"] for r in quick.running] == [trial.number]
    assert [r["trial"] for r in quick.resume_notes] == [trial.number]
    picked = reader_for(study).selected(["resume_note"], keys=READ_KEYS)
    assert [t.number for t in picked] == sorted({study.best_trial.number, trial.number})
    starts = [t.datetime_start.timestamp() for t in whole.trials]
    assert whole.span is not None and quick.spent_s == pytest.approx(
        whole.span[1] - min(starts), abs=5.0
    )  # to the moment each was read: the running trial counts until now


def test_read_commands_check_the_schema_quickly_and_still_refuse_an_old_one(
    finished_sweep: Path, tmp_path: Path
) -> None:
    import sqlite3

    from conftest import run_cli

    from sweep.store.schema import head_revision

    storage = optuna.storages.RDBStorage(f"sqlite:///{finished_sweep}/results/tiny/study.db")
    assert head_revision() == storage.get_head_version()  # alembic's own answer
    shutil.copytree(finished_sweep, tmp_path / "s")
    db = tmp_path / "s" / "results" / "tiny" / "study.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
    before = db.read_bytes()
    code, out, err = run_cli("table", "tiny", "--results", str(db.parents[1]), cwd=tmp_path)
    assert code == 2 and out == ""
    assert "optuna storage upgrade" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert db.read_bytes() == before  # a read command changes nothing


def test_read_commands_open_the_storage_without_alembic(
    finished_sweep: Path, tmp_path: Path
) -> None:
    """A read command's process never imports alembic; the storage's version manager
    is made when it is used; a storage another thread creates meanwhile is whole."""
    import subprocess
    import sys

    script = f"""
import sys, threading
from pathlib import Path
import optuna
from sweep.store.schema import lazy_version_manager
from sweep.store.storage import load_existing_study
results = Path({str(finished_sweep / "results")!r})
study = load_existing_study("tiny", results_dir=results, storage=None)
print("alembic" in sys.modules)
made = []
with lazy_version_manager():
    t = threading.Thread(target=lambda: made.append(
        optuna.storages.RDBStorage("sqlite:///{tmp_path / "new.db"}")))
    t.start(); t.join()
print("alembic" in sys.modules)  # the other thread's new storage made its manager
storage = study._storage._backend
print(storage._version_manager.get_current_version() == storage.get_head_version())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"]
    new = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'new.db'}")
    assert new.get_current_version() == new.get_head_version()  # its revision recorded


def test_warm_cache_holds_the_trials_optuna_would_read(
    finished_sweep: Path, tmp_path: Path
) -> None:
    from sweep.store.warm import warm

    shutil.copytree(finished_sweep, tmp_path / "s")
    running = _study(tmp_path / "s").ask()  # another worker's running trial
    running.report(0.25, step=1)
    running.set_user_attr("best_score", 0.25)
    study = _study(tmp_path / "s")  # a session's study, before its first ask
    assert warm(study, at_least=10) == 0  # a small study: Optuna's own read
    assert warm(study, at_least=0) == 4
    assert warm(study, at_least=0) == 0  # read already: left to Optuna
    fresh = _study(tmp_path / "s")  # read by Optuna itself
    assert study.get_trials(deepcopy=False) == fresh.get_trials(deepcopy=False)
    study.tell(running.number, 0.5)  # Optuna goes on reading new and unfinished trials only
    later = study.ask()
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    assert states[running.number] == "COMPLETE" and states[later.number] == "RUNNING"
    assert study.get_trials(deepcopy=False) == _study(tmp_path / "s").get_trials(deepcopy=False)


def test_running_sweep_table_without_sql_makes_each_row_once() -> None:
    """A journal or in-memory storage (read with get_trials) keeps the cache too: each
    rewrite's rows are every trial's, once (no training: an in-memory study)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    cache, reader = TableCache(), reader_for(study)
    assert isinstance(reader, GenericReader)
    for value in (0.1, 0.3, 0.2):
        trial = study.ask()
        trial.set_user_attr("best_score", value)
        study.tell(trial, value)
        rows = table_rows(reader, cache)
        assert [r["trial"] for r in rows] == [r["trial"] for r in table_rows(reader)]
    assert [r["trial"] for r in rows] == [1, 2, 0]  # best first
    assert len(cache.trials.finished) == 3
