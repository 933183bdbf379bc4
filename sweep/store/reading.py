"""Reading a study: one ``StudyReader`` per study, chosen when it is opened
(``sweep.store.storage.reader_for``).

Optuna's ``get_trials()`` builds every trial whole, every epoch's intermediate value
included, which at 10,000 trials x 50 epochs takes tens of seconds. On an RDB storage
(SQLite, PostgreSQL, MySQL) the ``RelationalReader`` (``sweep.store.relational``) reads
Optuna's own tables with read-only SELECTs through the storage's engine: the trials
without their intermediate values, counts by state, the best trial, and curves only for
the trials asked for. Other storages (journal file, in-memory) hold the study in memory
already: the ``GenericReader`` here reads them with ``get_trials``. The storage stays
the one truth; nothing here writes.

No TensorFlow here, and no Optuna on import (it imports tqdm): a reader imports it when
it reads.
"""

from __future__ import annotations

import datetime
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweep.core.direction import Direction

if TYPE_CHECKING:  # Optuna is imported where a study is opened, not by importing this
    import optuna

# Optuna's finished states (``TrialState.is_finished()``) by name, for SQL and the counts
# by state; a trial object answers ``trial.state.is_finished()`` itself. Not computed from
# TrialState: importing Optuna here would import it (and tqdm) for every reader.
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
# A user attr that holds one of these (as JSON) is not set, for ``StudyReader.selected``.
EMPTY_NOTES = ('""', "null", "false")


@dataclass
class TrialView:
    """The parts of an Optuna ``FrozenTrial`` the table, status, compare and report read.

    ``intermediate_values`` holds only what was asked for: every epoch for the trials
    whose curves were fetched and for running ones (few), none for the others."""

    number: int
    _trial_id: int
    state: Any  # optuna.trial.TrialState
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    distributions: dict[str, Any] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    datetime_start: datetime.datetime | None = None
    datetime_complete: datetime.datetime | None = None
    intermediate_values: dict[int, float] = field(default_factory=dict)


class TrialCache:
    """Finished trials already read (they never change): a running sweep's table rewrite
    reads only the new and the running trials, at trial 10,000 as at trial 10."""

    def __init__(self) -> None:
        self.finished: dict[int, Any] = {}  # TrialView or FrozenTrial, by trial id
        self.unfinished: set[int] = set()  # trial ids not finished when last read


class BestCache:
    """The best complete trial so far, for a display that asks again and again
    (``StudyReader.best(cache=...)``): on an RDB storage each call reads only the trials
    new or unfinished since the last, so it costs about the same at trial 10,000 as at
    trial 10 (Optuna's best-trial query sorts every value). Ties go to the earlier trial."""

    def __init__(self) -> None:
        self.trials = TrialCache()
        self.found: tuple[int, float] | None = None


class StudyReader(ABC):
    """What sweep reads from a study, each answer as cheap as its storage allows.

    Trials come back as ``TrialView`` (an RDB storage) or ``FrozenTrial`` (the others):
    both have the number, state, value, params, distributions, user attrs, times and
    intermediate values the readers of trials use."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study

    @property
    def direction(self) -> Direction:
        """The study's direction."""
        return Direction.of_study(self.study)

    @abstractmethod
    def changed(
        self,
        *,
        cache: TrialCache | None = None,
        keys: Collection[str] | None = None,
        curves: Iterable[int] = (),
        all_curves: bool = False,
    ) -> list[Any]:
        """The trials not in ``cache`` (new, or not finished when last read), by number,
        with their intermediate values if running or in ``curves`` (or every one's, with
        ``all_curves``; a finished trial in ``curves`` and in the cache keeps its
        intermediate values as read before). ``keys``: the user attrs to read (None:
        all; a reader may read more)."""

    def trials(
        self,
        *,
        curves: Iterable[int] = (),
        cache: TrialCache | None = None,
        keys: Collection[str] | None = None,
    ) -> list[Any]:
        """Every trial of the study by number: running trials and the trial numbers in
        ``curves`` with their intermediate values (the others may come without).
        ``cache``: finished trials read before; ``keys``: the user attrs to read (None:
        all)."""
        known = list(cache.finished.values()) if cache is not None else []
        new = self.changed(cache=cache, keys=keys, curves=curves)
        return sorted([*known, *new], key=lambda v: v.number)

    @abstractmethod
    def curves(self, numbers: Iterable[int]) -> dict[int, dict[int, float]]:
        """Each listed trial's intermediate values (epoch -> value), by trial number."""

    @abstractmethod
    def state_counts(self) -> Counter[str]:
        """Trials by Optuna state name (COMPLETE, RUNNING, ...)."""

    def finished_count(self) -> int:
        counts = self.state_counts()
        return sum(counts[s] for s in FINISHED)

    @abstractmethod
    def best(self, cache: BestCache | None = None) -> tuple[int, float] | None:
        """The best complete trial's (number, value), or None: Optuna's own best-trial
        query; with a ``cache`` (asked again and again), from the trials read since."""

    @abstractmethod
    def by_state(self, state: optuna.trial.TrialState) -> list[Any]:
        """The study's trials in one state, whole, by number."""

    def running(self) -> list[Any]:
        """The running trials, whole (few)."""
        from optuna.trial import TrialState

        return self.by_state(TrialState.RUNNING)

    def waiting(self) -> list[Any]:
        """The waiting (enqueued) trials."""
        from optuna.trial import TrialState

        return self.by_state(TrialState.WAITING)

    @abstractmethod
    def selected(self, notes: Iterable[str], *, keys: Collection[str] | None = None) -> list[Any]:
        """At least the best complete trial, the running ones and those whose user attr
        in ``notes`` is set and not empty, by number (with ``keys``' user attrs); a
        reader that holds every trial anyway returns every one."""

    @abstractmethod
    def time_span(self, *, running: bool) -> tuple[float, float] | None:
        """The first trial start and the last trial end (POSIX seconds), or None;
        ``running``: a trial runs, and the span lasts until now."""


class GenericReader(StudyReader):
    """Any storage (journal file, in-memory), through Optuna's ``get_trials``: such a
    storage holds the study in memory already."""

    def _all(self) -> list[optuna.trial.FrozenTrial]:
        return list(self.study.get_trials(deepcopy=False))

    def changed(
        self,
        *,
        cache: TrialCache | None = None,
        keys: Collection[str] | None = None,
        curves: Iterable[int] = (),
        all_curves: bool = False,
    ) -> list[Any]:
        """Whole trials, every one's intermediate values included."""
        new = self._all()
        if cache is None:
            return new
        new = [t for t in new if t._trial_id not in cache.finished]
        cache.finished.update({t._trial_id: t for t in new if t.state.is_finished()})
        cache.unfinished = {t._trial_id for t in new if not t.state.is_finished()}
        return new

    def curves(self, numbers: Iterable[int]) -> dict[int, dict[int, float]]:
        wanted = set(numbers)
        return {t.number: dict(t.intermediate_values) for t in self._all() if t.number in wanted}

    def state_counts(self) -> Counter[str]:
        return Counter(t.state.name for t in self._all())

    def best(self, cache: BestCache | None = None) -> tuple[int, float] | None:
        try:
            trial = self.study.best_trial
        except ValueError:  # no complete trial yet
            return None
        return int(trial.number), float(trial.value)  # type: ignore[arg-type]

    def by_state(self, state: optuna.trial.TrialState) -> list[Any]:
        return list(self.study.get_trials(deepcopy=False, states=(state,)))

    def selected(self, notes: Iterable[str], *, keys: Collection[str] | None = None) -> list[Any]:
        return self._all()

    def time_span(self, *, running: bool) -> tuple[float, float] | None:
        trials = self._all()
        starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start]
        ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete]
        if running:
            ends.append(time.time())
        return (min(starts), max(ends)) if starts and ends else None
