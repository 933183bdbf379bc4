"""Running the same command again after a kill: it finishes (no worker waits forever on
an orphan another worker claimed), a refused rerun changes nothing, a changed space is
refused unless allowed, a damaged resume point restarts its trial, and the study is the
one an uninterrupted run would have made.

Real sweeps in subprocesses, killed with SIGKILL (process group); the helpers are
test_resume's.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from conftest import run_cli, write_space
from test_resume import (
    SLOW,
    SLOW_SPACE,
    assert_whole_files,
    epochs_done,
    kill,
    read_rows,
    start,
    study,
    wait_for,
)

COMPLETE = optuna.trial.TrialState.COMPLETE
RUNNING = optuna.trial.TrialState.RUNNING


def finish_within(
    folder: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``sweep run`` to the end; a rerun that hangs fails the test (and is killed)."""
    proc = start(folder, *args)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        pytest.fail(f"sweep run {' '.join(args)} did not finish within {timeout} s (hung)")
    assert proc.returncode == 0, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


SLEEPY_EPOCHS = """

def callbacks(hp):
    import time

    return [keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: time.sleep(1.0))]
"""


def test_rerun_after_killing_two_workers_finishes(tmp_path: Path) -> None:
    """kill -9 a --jobs 2 sweep while both trials run: the same command again resumes both
    and ends; so does a --jobs 1 rerun, which meets two orphans of another process."""
    killed = tmp_path / "killed"
    killed.mkdir()
    # The parent (worker 0) starts its trial at once while the other worker still imports
    # TensorFlow: epochs that take a second (a callback that sleeps, no CPU) keep the
    # parent's trial running until the other worker has started the second one.
    write_space(
        killed,
        source=SLOW_SPACE,
        settings={**SLOW, "epochs": 8, "patience": 9, "trials": 2},
        extra=SLEEPY_EPOCHS,
    )
    proc = start(killed, "--jobs", "2", "--seed", "3")
    wait_for(proc, lambda: epochs_done(killed, 0) >= 1 and epochs_done(killed, 1) >= 1, timeout=300)
    kill(proc)
    assert [t.state for t in study(killed).trials] == [RUNNING, RUNNING]
    single = tmp_path / "single"
    shutil.copytree(killed, single)
    for folder, jobs in ((killed, "2"), (single, "1")):
        finish_within(folder, "--jobs", jobs, "--seed", "3")
        trials = study(folder).trials
        assert [t.number for t in trials] == [0, 1], jobs
        assert [t.state for t in trials] == [COMPLETE, COMPLETE], jobs
        assert all(t.user_attrs["resumed_from"] >= 1 for t in trials), jobs
        assert_whole_files(folder)


# ------------------------------------------------------------------ one killed sweep, reused

KILLED_SETTINGS = {**SLOW, "epochs": 3, "patience": 9, "trials": 4, "sampler": "random"}
ORIGINAL = ("--seed", "0", "--deterministic")


@pytest.fixture(scope="module")
def killed_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sweep killed with SIGKILL in trial 0 after 2 of its 3 epochs (read-only:
    copy it). Its command is ``sweep run tiny.py --seed 0 --deterministic``."""
    folder = tmp_path_factory.mktemp("killed")
    write_space(folder, source=SLOW_SPACE, settings=KILLED_SETTINGS)
    proc = start(folder, *ORIGINAL)
    wait_for(proc, lambda: epochs_done(folder, 0) >= 2)
    kill(proc)
    return folder


def copy_of(killed: Path, to: Path) -> Path:
    shutil.copytree(killed, to)
    return to


def resume_folder(folder: Path) -> Path:
    return folder / "results" / "tiny" / "trials" / "0" / "resume"


def snapshot(folder: Path) -> tuple[object, ...]:
    """What a refused rerun must leave as it was: trial 0 in the study, its resume point."""
    (trial,) = study(folder).trials
    files = {p.name: p.read_bytes() for p in resume_folder(folder).iterdir()}
    return trial.state, trial.user_attrs, trial.intermediate_values, files


def rerun(folder: Path, *args: str) -> tuple[int, str, str]:
    """The same command in this process (no --deterministic here: it would turn op
    determinism on for the whole test process; a resume's settings don't include it)."""
    return run_cli("run", str(folder / "tiny.py"), "--seed", "0", *args, cwd=folder)


def test_a_refused_rerun_changes_nothing(killed_sweep: Path, tmp_path: Path) -> None:
    folder = copy_of(killed_sweep, tmp_path / "f")
    before = snapshot(folder)
    code, _, err = rerun(folder, "--epochs", "11", "--trials", "1")
    assert code == 2, err
    assert err == (
        "sweep: error: trial 0 was started with max_epochs=3, this run has 11; resume it "
        "with the same settings, or use a new --study\n"
    )
    assert snapshot(folder) == before  # still RUNNING, same owner, same resume point
    assert before[0] == RUNNING and epochs_done(folder, 0) >= 2
    code, out, err = rerun(folder, "--trials", "1")  # the original command resumes it
    assert code == 0, err
    assert "trial 0 was left running by a process that is gone; resuming it" in out
    (trial,) = study(folder).trials
    assert trial.state == COMPLETE and trial.user_attrs["resumed_from"] >= 2


def test_a_changed_space_is_refused_unless_allowed(killed_sweep: Path, tmp_path: Path) -> None:
    folder = copy_of(killed_sweep, tmp_path / "f")
    before = snapshot(folder)
    space = folder / "tiny.py"
    original = space.read_text()
    space.write_text(original.replace('activation="relu"', 'activation="tanh"'))
    code, _, err = rerun(folder, "--trials", "1")
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert err.startswith(
        "sweep: error: trial 0 was interrupted under another version of its space: the space "
        f"file's source changed ({killed_sweep / 'tiny.py'} -> {space.resolve()}, sha256 "
    ), err  # (the path differs too: this is a copy of the killed sweep's folder)
    assert err.endswith(
        "; run it with the same space to resume it, use a new --study NAME, or pass "
        "--allow-space-change to resume it anyway (the table marks it space_changed)\n"
    ), err
    assert snapshot(folder) == before
    # another file under the same study name, with a changed setting too
    other = folder / "other.py"
    other.write_text(space.read_text())
    code, _, err = run_cli(
        "run",
        str(other),
        "--study",
        "tiny",
        "--seed",
        "0",
        "--validation-split",
        "0.3",
        cwd=folder,
    )
    assert code == 2, err
    assert f"source changed ({killed_sweep / 'tiny.py'} -> {other.resolve()}, sha256 " in err
    assert "; settings changed: validation_split 0.25 -> 0.3; run it with the same space" in err
    assert snapshot(folder) == before
    # allowed: it resumes, is marked, and the next trial records the new fingerprint
    code, _, err = rerun(folder, "--trials", "2", "--allow-space-change")
    assert code == 0, err
    first, second = study(folder).trials
    assert first.state == second.state == COMPLETE
    assert first.user_attrs["resumed_from"] >= 2 and first.user_attrs["space_changed"] is True
    assert "space_changed" not in second.user_attrs
    old, new = first.user_attrs["space_fingerprint"], second.user_attrs["space_fingerprint"]
    assert old["source"] != new["source"]
    assert study(folder).user_attrs["space_fingerprint"] == new
    rows = {r["trial"]: r for r in read_rows(folder / "results" / "tiny" / "trials.csv")}
    assert (rows["0"]["space_changed"], rows["1"]["space_changed"]) == ("true", "false")
    assert list(rows["0"])[-2:] == ["space_changed", "error"]


@pytest.mark.parametrize("damage", ["garbage_state", "truncated_vars", "missing_vars"])
def test_a_damaged_resume_point_restarts_the_trial(
    killed_sweep: Path, tmp_path: Path, damage: str
) -> None:
    folder = copy_of(killed_sweep, tmp_path / "f")
    resume = resume_folder(folder)
    (variables,) = resume.glob("vars-*.npz")
    damaged = {"garbage_state": resume / "state.json"}.get(damage, variables)
    if damage == "garbage_state":
        damaged.write_bytes(b"\xff\xfe{not json")
    elif damage == "truncated_vars":
        damaged.write_bytes(damaged.read_bytes()[:100])
    else:
        damaged.unlink()
    code, out, err = rerun(folder, "--trials", "1")
    assert code == 0, err
    (trial,) = study(folder).trials
    assert trial.state == COMPLETE and "error" not in trial.user_attrs
    assert trial.user_attrs.get("resumed_from", 0) == 0  # restarted from scratch
    assert trial.user_attrs["stop_epoch"] == 3
    line = f"trial 0: its resume point is damaged ({damaged}: "
    assert line in out and "restarting the trial from scratch" in out
    assert line in (folder / "results" / "tiny" / "sweep.log").read_text()
    assert_whole_files(folder)


def table_facts(folder: Path) -> list[tuple[str, ...]]:
    keys = ("trial", "state", "param_units", "param_dropout", "param_lr")
    keys += ("best_score", "best_epoch", "stop_epoch")
    rows = read_rows(folder / "results" / "tiny" / "trials.csv")
    return sorted(tuple(r[k] for k in keys) for r in rows)


@pytest.fixture(scope="module")
def straight_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The killed sweep's command run uninterrupted: the table every rerun must give."""
    straight = tmp_path_factory.mktemp("straight")
    write_space(straight, source=SLOW_SPACE, settings=KILLED_SETTINGS)
    finish_within(straight, *ORIGINAL)
    return straight


def test_a_killed_sweep_is_the_sweep_it_would_have_been(
    killed_sweep: Path, straight_sweep: Path, tmp_path: Path
) -> None:
    """--seed 0 --deterministic: uninterrupted, and killed twice (in trial 0, then in a
    trial asked after the first kill), the same table. (Killed between two trials is this
    too: the rerun's fresh process asks trials 1 and 2 anew.)"""
    straight = straight_sweep
    killed = copy_of(killed_sweep, tmp_path / "killed")
    proc = start(killed, *ORIGINAL)
    wait_for(proc, lambda: epochs_done(killed, 2) >= 1)
    kill(proc)
    finish_within(killed, *ORIGINAL)
    facts = table_facts(killed)
    assert len(facts) == 4 and all(f[1] == "complete" for f in facts)
    assert facts == table_facts(straight)


# build_model of trial N waits while the file hold-N exists (after writing held-N), before
# it asks for a hyperparameter: a kill there leaves trial N running with no params.
HOLDING_SPACE = SLOW_SPACE.replace(
    "def build_model(hp):\n",
    """def build_model(hp):
    import time
    from pathlib import Path

    number = getattr(getattr(hp, "trial", None), "number", None)
    if number is not None and Path(f"hold-{number}").exists():
        Path(f"held-{number}").write_text("")
        while Path(f"hold-{number}").exists():
            time.sleep(0.05)
""",
)


def test_killed_before_a_trial_sampled_the_rerun_samples_what_it_would_have(
    straight_sweep: Path, tmp_path: Path
) -> None:
    """Killed right after `trial 1 started`, before build_model asked for a value: the
    resumed trial 1 samples, from the sampler reseeded for (seed, 1), the values an
    uninterrupted run gave it (it got other ones), and the table is the straight run's."""
    killed = tmp_path / "killed"
    killed.mkdir()
    assert "hold-" not in SLOW_SPACE and "hold-" in HOLDING_SPACE
    write_space(killed, source=HOLDING_SPACE, settings=KILLED_SETTINGS)
    (killed / "hold-1").write_text("")
    proc = start(killed, *ORIGINAL)
    wait_for(proc, lambda: (killed / "held-1").exists())
    kill(proc)
    assert "trial 1 started" in (killed / "results" / "tiny" / "sweep.log").read_text()
    trials = study(killed).trials
    assert [t.state for t in trials] == [COMPLETE, RUNNING] and trials[1].params == {}
    (killed / "hold-1").unlink()
    finish_within(killed, *ORIGINAL)
    facts = table_facts(killed)
    assert len(facts) == 4 and all(f[1] == "complete" for f in facts)
    assert facts == table_facts(straight_sweep)


def test_samplers_reseeded_per_trial_number_ask_the_same_after_a_restart() -> None:
    """No training: the asks of an uninterrupted study, and of one whose sampler is
    recreated (a new process) twice, are the same for tpe, grid and cmaes."""
    from sweep.execution.samplers import make_sampler, next_number, reseed_for_trial

    xs = [i / 2 for i in range(-6, 7)]
    grid = {"x": xs, "y": list(range(5))}

    def asks(name: str, restarts: tuple[int, ...]) -> list[dict[str, object]]:
        storage = optuna.storages.InMemoryStorage()
        optuna.create_study(study_name="s", storage=storage)
        s = None
        for number in range(14):  # past TPE's 10 random startup trials
            if s is None or number in restarts:
                s = optuna.load_study(
                    study_name="s", storage=storage, sampler=make_sampler(name, seed=0, grid=grid)
                )
            reseed_for_trial(s.sampler, 0, next_number(s.get_trials()))
            t = s.ask()
            x = t.suggest_float("x", -3, 3, step=0.5)
            y = t.suggest_int("y", 0, 4)
            s.tell(t, (x - 1) ** 2 + y)
        return [t.params for t in s.trials]

    for name in ("tpe", "grid", "cmaes"):
        straight = asks(name, ())
        assert asks(name, (3, 11)) == straight, name
        assert len({tuple(p.values()) for p in straight}) > 3, name  # it did sample
