"""The one observer interface: the fan-out passes every hook on, in order; a finished
trial's event reads its record; a trial's exception maps to its outcome. No training."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from sweep.core.errors import ConfigError
from sweep.core.observers import (
    EpochEvent,
    Observer,
    Observers,
    SweepEnd,
    SweepEnded,
    TrialBuilt,
    TrialEvent,
    TrialStart,
)
from sweep.core.progress import describe_trial
from sweep.core.record import State, StopReason, TrialRecord
from sweep.execution.session import Outcome


def _hooks(cls: type) -> set[str]:
    return {n for n, f in vars(cls).items() if inspect.isfunction(f) and not n.startswith("_")}


def test_the_fan_out_passes_on_every_hook() -> None:
    """A hook added to Observer and not to Observers would never reach anyone."""
    assert _hooks(Observers) == _hooks(Observer)


class _Seen(Observer):
    def __init__(self, name: str, seen: list[str], attrs: dict[str, Any]) -> None:
        self.name, self.seen, self.attrs = name, seen, attrs

    def trial_started(self, event: TrialStart) -> None:
        self.seen.append(f"{self.name} started {event.trial}")

    def trial_built(self, event: TrialBuilt) -> Mapping[str, Any]:
        self.seen.append(f"{self.name} built {event.trial}")
        return self.attrs

    def epoch_ended(self, event: EpochEvent) -> None:
        self.seen.append(f"{self.name} epoch {event.epoch} {dict(event.logs)}")

    def sweep_ended(self, event: SweepEnded) -> None:
        self.seen.append(f"{self.name} ended: {event.reason}")


def test_observers_are_called_in_order_and_their_attrs_merged() -> None:
    seen: list[str] = []
    first = _Seen("a", seen, {"run": "1", "only_a": True})
    both = Observers(first, Observers(Observer(), _Seen("b", seen, {"run": "2"})))
    both.trial_started(TrialStart(trial=3))
    assert both.trial_built(TrialBuilt(trial=3, params={"units": 8})) == {
        "run": "2",
        "only_a": True,
    }
    event = EpochEvent(
        trial=3, epoch=1, max_epochs=2, monitor="loss", value=0.5, best=0.5, logs={"loss": 0.5}
    )
    both.epoch_ended(event)
    both.sweep_ended(SweepEnded(reason=SweepEnd.TARGET_REACHED))
    both.message("nobody overrides this")
    both.close()
    assert seen == [
        "a started 3",
        "b started 3",
        "a built 3",
        "b built 3",
        "a epoch 1 {'loss': 0.5}",
        "b epoch 1 {'loss': 0.5}",
        "a ended: target reached",
        "b ended: target reached",
    ]


def test_a_finished_trials_event_reads_its_record() -> None:
    record = TrialRecord(
        number=4,
        state=State.COMPLETE,
        best_score=0.25,
        best_epoch=2,
        stop_epoch=3,
        duration_s=1.5,
        stop_reason=StopReason.EARLY_STOPPING,
    )
    event = TrialEvent(record=record, state=State.COMPLETE, monitor="val_loss")
    assert (event.trial, event.best_score, event.best_epoch, event.stop_epoch) == (4, 0.25, 2, 3)
    assert (event.duration_s, event.stop_reason, event.error) == (1.5, "early_stopping", "")
    assert describe_trial(event) == (
        "trial 4 complete: best val_loss=0.25 at epoch 2, stopped at epoch 3 "
        "by early stopping (1.5s)"
    )
    unset = TrialEvent(
        record=TrialRecord(number=5, state=State.FAILED),
        state=State.FAILED,
        monitor="val_loss",
        error="ValueError: no",
    )
    assert (unset.duration_s, unset.stop_reason) == (0.0, "")


def test_a_trials_exception_maps_to_its_outcome() -> None:
    """A configuration error would fail every trial: it stops the sweep once recorded;
    another exception fails the trial only."""
    bad = ConfigError("search space x.py: build_model(hp) must return a keras.Model")
    config = Outcome.failed(7, bad)
    assert (config.state, config.fatal) == (State.FAILED, bad)
    assert "build_model(hp) must return" in config.error
    other = Outcome.failed(7, ValueError("shapes differ"))
    assert (other.state, other.fatal, other.error) == (
        State.FAILED,
        None,
        "ValueError: shapes differ",
    )
