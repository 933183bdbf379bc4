"""``sweep status``: the counts by state, the time spent, the best trial, the running,
interrupted and not exactly resumed trials.

On an RDB storage it reads only those: the counts and the time span are one query each,
and only the best, the running and the noted trials are read as rows (``sweep.store.reading``),
so it takes about as long on 10,000 trials as on 10. Other storages read every trial.

No TensorFlow here.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.core.record import State, from_trial
from sweep.store.results import READ_KEYS, rows_of


@dataclass(frozen=True)
class Status:
    study: str
    direction: str
    counts: dict[str, int]
    best: dict[str, Any] | None
    running: list[dict[str, Any]]
    interrupted: list[dict[str, Any]]  # running trials whose process is gone
    spent_s: float
    resume_notes: list[dict[str, Any]] = field(default_factory=list)  # resumes not exact
    callback_stops: list[dict[str, Any]] = field(default_factory=list)  # stop_reason callback


@dataclass(frozen=True)
class _Read:
    """What status needs, however it was read."""

    counts: Counter[str]
    trials: list[Any]  # at least the best, the running and the noted trials
    span: tuple[float, float] | None  # first start, last end (now if any runs)


def status(study: Any, *, folder: Path | None = None) -> Status:
    from sweep.store.reading import rdb

    read = _read_selected(study) if rdb(study) is not None else _read_all(study)
    rows = rows_of(read.trials, study.direction.name.lower())
    complete = [r for r in rows if r["state"] == "complete"]
    gone = set()
    if folder is not None and folder.is_dir():
        from sweep.store.ownership import owner_alive

        for t in read.trials:
            if t.state.name != "RUNNING":
                continue
            owner = from_trial(t).owner
            if owner and not owner_alive(folder, owner):
                gone.add(t.number)
    first, last = read.span or (0.0, 0.0)
    return Status(
        study=study.study_name,
        direction=study.direction.name.lower(),
        counts=dict(read.counts),
        best=complete[0] if complete else None,
        running=[r for r in rows if r["state"] == "running" and r["trial"] not in gone],
        interrupted=[r for r in rows if r["trial"] in gone],
        spent_s=last - first,
        resume_notes=[r for r in rows if r.get("resume_note")],
        callback_stops=[r for r in rows if r.get("stopped_by")],
    )


def _read_all(study: Any) -> _Read:
    trials = list(study.get_trials(deepcopy=False))
    counts = Counter(State.of(t.state).value for t in trials)
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start]
    ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete]
    if counts[State.RUNNING.value]:
        ends.append(time.time())
    span = (min(starts), max(ends)) if starts and ends else None
    return _Read(counts=counts, trials=trials, span=span)


def _read_selected(study: Any) -> _Read:
    from optuna.trial import TrialState

    from sweep.store.lookups import noted, selected, time_span
    from sweep.store.reading import state_counts

    counts = Counter(
        {State.of(TrialState[name]).value: n for name, n in state_counts(study).items()}
    )
    span = time_span(study)
    if span is not None and counts[State.RUNNING.value]:
        span = (span[0], time.time())
    return _Read(
        counts=counts,
        trials=selected(
            study, [*noted(study, "resume_note"), *noted(study, "stopped_by")], keys=READ_KEYS
        ),
        span=span,
    )
