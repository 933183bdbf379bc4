"""A trial as the storage has it now, through Optuna's storage API: the few calls that
need Optuna's private attributes (a study's ``_storage``, a trial's ``_trial_id``) live
here and in the rest of ``sweep.store``, nowhere else (``tests/test_layout.py`` checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweep.core.record import write_stored

if TYPE_CHECKING:  # Optuna is imported where a study is opened, not by importing this
    import optuna
    from optuna.trial import FrozenTrial


def stored(trial: optuna.Trial) -> FrozenTrial:
    """A running trial (one this process asks and tells) as the storage has it now."""
    found: FrozenTrial = trial.study._storage.get_trial(trial._trial_id)
    return found


def stored_again(study: optuna.Study, trial: FrozenTrial) -> FrozenTrial:
    """``trial`` read again whole (a light view of it may leave attrs out)."""
    found: FrozenTrial = study._storage.get_trial(trial._trial_id)
    return found


def stored_by_number(study: optuna.Study, number: int) -> FrozenTrial:
    storage = study._storage
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    found: FrozenTrial = storage.get_trial(trial_id)
    return found


def handle(study: optuna.Study, trial: FrozenTrial) -> optuna.Trial:
    """A trial left running by a process that is gone, as a ``Trial`` this process can
    report to and tell (what ``study.ask()`` returns for a new one)."""
    import optuna

    return optuna.trial.Trial(study, trial._trial_id)


def record_on(study: optuna.Study, trial: FrozenTrial, **facts: Any) -> None:
    """Record ``facts`` on a trial this process has no handle on."""
    write_stored(study._storage, trial._trial_id, **facts)
