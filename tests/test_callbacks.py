"""The user's own callbacks (``callbacks(hp)``): sweep's own kinds refused before any
trial, and their state carried over exactly when a trial resumes (ReduceLROnPlateau's
counters, a user callback's ``get_state``/``set_state``), or the trial says it was not."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import run_cli, write_space
from test_resume import SLOW, SLOW_SPACE, epochs_done, finish, kill, start, study, wait_for

from sweep.core.errors import Interrupted
from sweep.space.data import prepare_data
from sweep.space.files import load_space
from sweep.train.trial import TrialJob, run_trial

REFUSED = {
    "EarlyStopping": "use the patience, min_delta, baseline and start_from_epoch settings",
    "ModelCheckpoint": "the best checkpoint is sweep's own: trials/<n>/best.keras",
    "BackupAndRestore": "resuming is sweep's own",
    "TensorBoard": "use --tensorboard",
}
MADE = {
    "EarlyStopping": "keras.callbacks.EarlyStopping(patience=1)",
    "ModelCheckpoint": "keras.callbacks.ModelCheckpoint('x.keras')",
    "BackupAndRestore": "keras.callbacks.BackupAndRestore('backup')",
    "TensorBoard": "keras.callbacks.TensorBoard('logs')",
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_sweeps_own_callbacks_are_refused_before_any_trial(tmp_path: Path, kind: str) -> None:
    extra = f"\n\ndef callbacks(hp):\n    return [{MADE[kind]}]\n"
    write_space(tmp_path, extra=extra)
    code, _, err = run_cli("run", "tiny.py", cwd=tmp_path)
    assert code == 2
    head = f"sweep: error: search space tiny.py: callbacks(hp) returned a {kind}; "
    assert err.startswith(head) and REFUSED[kind] in err, err
    assert err.count("\n") == 1 and err.endswith("; remove it from callbacks(hp)\n")
    assert not (tmp_path / "results" / "tiny" / "trials").exists()


COUNTING = """

class Counter(keras.callbacks.Callback):
    \"\"\"Counts epochs; keeps the count across a resume through the protocol.\"\"\"

    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_train_begin(self, logs=None):
        self.epochs = 0  # like Keras' own callbacks: reset at the start of fit

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        logs["epochs_counted"] = float(self.epochs)

    def get_state(self):
        return {"epochs": self.epochs}

    def set_state(self, state):
        self.epochs = state["epochs"]


class Forgetful(keras.callbacks.Callback):
    pass


def callbacks(hp):
    return [Counter(), Forgetful(), keras.callbacks.TerminateOnNaN()]
"""


def _trial_run(folder: Path, trial: Any, stop_after: int | None) -> Any:
    space = load_space(str(folder / "tiny.py"))
    s = space.settings
    data = prepare_data(
        space.call_load_data(), validation_split=s.validation_split, source=space.path
    )
    state = {"epochs": 0}

    def stop() -> str | None:
        state["epochs"] += 1
        return "interrupted" if stop_after is not None and state["epochs"] >= stop_after else None

    return run_trial(
        TrialJob(
            trial,
            space=space,
            data=data,
            settings=s,
            mode="min",
            trial_dir=folder / "trial",
            seed=3,
            stop_request=stop,
        )
    )


def test_a_user_callback_keeps_its_state_through_the_protocol(tmp_path: Path) -> None:
    """A trial stopped after 2 epochs and resumed: the protocol's state is in state.json,
    handed back after on_train_begin (the counter goes on from 2, not 0), and the callback
    without the protocol is named in resume_note."""
    write_space(tmp_path, settings={"epochs": 4, "patience": 10}, extra=COUNTING)
    (tmp_path / "results" / "tiny").mkdir(parents=True)
    db = f"sqlite:///{tmp_path / 'results' / 'tiny' / 'study.db'}"
    st = optuna.create_study(study_name="tiny", storage=db)
    trial = st.ask()
    with pytest.raises(Interrupted):
        _trial_run(tmp_path, trial, stop_after=2)
    saved = json.loads((tmp_path / "trial" / "resume" / "state.json").read_text())
    assert saved["callbacks"] == [{"class": "Counter", "state": {"epochs": 2}}, None, None]
    assert "resume_note" not in trial.user_attrs
    _trial_run(tmp_path, trial, stop_after=None)
    history = (tmp_path / "trial" / "history.csv").read_text().splitlines()
    counted = [float(line.split(",")[-1]) for line in history[1:]]
    assert history[0].endswith(",epochs_counted") and counted == [1.0, 2.0, 3.0, 4.0]
    assert trial.user_attrs["resumed_from"] == 2
    note = "callback Forgetful has no get_state/set_state: its state restarted"
    assert trial.user_attrs["resume_note"] == note
    st.tell(trial, 0.5)
    code, out, _ = run_cli("status", "tiny", cwd=tmp_path)
    assert code == 0 and f"resumed: trial 0 from epoch 2, not exactly: {note}\n" in out
    code, out, _ = run_cli("table", "tiny", "--format", "csv", cwd=tmp_path)
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert (row["resumed_from"], row["resume_note"]) == ("2", note)


PLATEAU = """

def callbacks(hp):
    return [
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", patience=2, factor=0.5, min_delta=10.0
        )
    ]
"""


def test_reduce_lr_on_plateau_resumes_exactly_after_kill(tmp_path: Path) -> None:
    """ReduceLROnPlateau (every epoch a plateau: min_delta=10) halves the learning rate
    every second epoch; killed with SIGKILL after the rate has dropped and resumed, the
    history (with the logged learning_rate) is byte-identical to an uninterrupted run."""
    settings = {**SLOW, "epochs": 6, "patience": 20, "trials": 1}
    histories = {}
    for name in ("straight", "killed"):
        folder = tmp_path / name
        folder.mkdir()
        write_space(folder, source=SLOW_SPACE, settings=settings, extra=PLATEAU)
        args = ("--deterministic", "--seed", "7")
        if name == "killed":
            proc = start(folder, *args)
            wait_for(proc, lambda f=folder: epochs_done(f, 0) >= 4)
            kill(proc)
        finish(folder, *args)
        (trial,) = study(folder).trials
        assert trial.state == optuna.trial.TrialState.COMPLETE
        histories[name] = (folder / "results" / "tiny" / "trials" / "0" / "history.csv").read_text()
        if name == "killed":
            assert trial.user_attrs["resumed_from"] >= 4
            assert "resume_note" not in trial.user_attrs
    rows = [line.split(",") for line in histories["straight"].splitlines()]
    rates = [float(r[rows[0].index("learning_rate")]) for r in rows[1:]]
    assert rates[3] == rates[0] / 2 and rates[-1] == rates[0] / 4  # halved after 3, 5
    assert histories["killed"] == histories["straight"]


def test_sweep_run_takes_callbacks_for_functions_only(tmp_path: Path) -> None:
    """``sweep.run(build_model=..., callbacks=...)``: the callbacks reach the trial (the
    learning rate ReduceLROnPlateau logs is in history.csv); with a space file, refused."""
    import keras
    from test_api import build_model, load_data

    import sweep

    def callbacks(hp: Any) -> list[Any]:
        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1)]

    study = sweep.run(
        build_model=build_model,
        load_data=load_data,
        callbacks=callbacks,
        study="cb",
        results=tmp_path / "results",
        trials=1,
        epochs=2,
        validation_split=0.25,
        progress=False,
    )
    (record,) = study.trials
    history = (tmp_path / "results" / "cb" / "trials" / "0" / "history.csv").read_text()
    assert record.state == "complete" and "learning_rate" in history.splitlines()[0]
    write_space(tmp_path)
    with pytest.raises(sweep.ConfigError) as err:
        sweep.run(tmp_path / "tiny.py", callbacks=callbacks, results=tmp_path / "results")
    assert str(err.value) == (
        "sweep.run(): callbacks= goes with build_model=/load_data=, got a space file; "
        "define callbacks(hp) in the space file instead"
    )
