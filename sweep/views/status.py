"""``sweep status``: the counts by state, the time spent, the best trial, the running,
interrupted and not exactly resumed trials.

On an RDB storage it reads only those: the counts and the time span are one query each,
and only the best, the running and the noted trials are read as rows (the study's
``StudyReader``), so it takes about as long on 10,000 trials as on 10. Other storages read
every trial.

No TensorFlow here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.record import State, from_trial
from sweep.store.reading import StudyReader
from sweep.store.results import READ_KEYS, rows_of

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Status:
    study: str
    direction: str  # Optuna's name: minimize or maximize
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


def status(study: optuna.Study, *, folder: Path | None = None) -> Status:
    from sweep.store.storage import reader_for

    reader = reader_for(study)
    read = _read(reader)
    rows = rows_of(read.trials, reader.direction)
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
        direction=reader.direction.optuna,
        counts=dict(read.counts),
        best=complete[0] if complete else None,
        running=[r for r in rows if r["state"] == "running" and r["trial"] not in gone],
        interrupted=[r for r in rows if r["trial"] in gone],
        spent_s=last - first,
        resume_notes=[r for r in rows if r.get("resume_note")],
        callback_stops=[r for r in rows if r.get("stopped_by")],
    )


def _read(reader: StudyReader) -> _Read:
    from optuna.trial import TrialState

    counts = Counter(
        {State.of(TrialState[name]).value: n for name, n in reader.state_counts().items()}
    )
    return _Read(
        counts=counts,
        trials=reader.selected(["resume_note", "stopped_by"], keys=READ_KEYS),
        span=reader.time_span(running=counts[State.RUNNING.value] > 0),
    )
