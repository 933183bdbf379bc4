"""Reading a few trials of a large study: the best, the running and the noted ones,
the study's time span, and the best so far for a display that asks again and again.

On an RDB storage only (``sweep.store.reading`` falls back to ``get_trials`` elsewhere, and so
do the callers of these). No TensorFlow here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable
from typing import Any

from sweep.store.reading import (
    TrialCache,
    _base_views,
    _curves,
    _fill,
    _models,
    _raw,
    _when,
    best,
    changed,
    rdb,
)


def selected(study: Any, ids: Iterable[int], *, keys: Collection[str] | None = None) -> list[Any]:
    """The best complete trial, the running ones and the trials ``ids``, by number (on an
    RDB storage; they should be few: each is read with its values, params and attrs)."""
    storage = rdb(study)
    assert storage is not None, "selected() reads an RDB storage"
    import sqlalchemy as sa

    t = _models().TrialModel.__table__
    query = sa.select(t.c.trial_id).where(t.c.study_id == study._study_id, t.c.state == "RUNNING")
    wanted = set(ids)
    with storage.engine.connect() as conn:
        wanted.update(int(tid) for (tid,) in _raw(conn, query))
        with contextlib.suppress(ValueError):  # no complete trial yet
            wanted.add(storage._get_best_trial_id(study._study_id, study.direction))
        views = {v._trial_id: v for v in _base_views(conn, study._study_id, ids=list(wanted))}
        _fill(conn, study._study_id, views, list(views), keys)
        running = [tid for tid, v in views.items() if v.state.name == "RUNNING"]
        for tid, steps in _curves(conn, running).items():
            views[tid].intermediate_values = steps
    return sorted(views.values(), key=lambda v: v.number)


def noted(study: Any, key: str) -> list[int]:
    """The ids of the study's trials whose user attr ``key`` is set and not empty."""
    storage = rdb(study)
    assert storage is not None, "noted() reads an RDB storage"
    import sqlalchemy as sa

    m = _models()
    t, a = m.TrialModel.__table__, m.TrialUserAttributeModel.__table__
    query = (
        sa.select(a.c.trial_id)
        .join(t, t.c.trial_id == a.c.trial_id)
        .where(t.c.study_id == study._study_id, a.c.key == key)
        .where(a.c.value_json.notin_(['""', "null", "false"]))
    )
    with storage.engine.connect() as conn:
        return [int(tid) for (tid,) in _raw(conn, query)]


def time_span(study: Any) -> tuple[float, float] | None:
    """The first trial start and the last trial end (POSIX seconds), or None."""
    storage = rdb(study)
    assert storage is not None, "time_span() reads an RDB storage"
    import sqlalchemy as sa

    t = _models().TrialModel.__table__
    query = sa.select(sa.func.min(t.c.datetime_start), sa.func.max(t.c.datetime_complete)).where(
        t.c.study_id == study._study_id
    )
    with storage.engine.connect() as conn:
        ((first, last),) = _raw(conn, query)
    start, end = _when(first), _when(last)
    if start is None or end is None:
        return None
    return start.timestamp(), end.timestamp()


class BestCache:
    """The best complete trial so far, for a display that asks again and again: each
    call reads only the trials new or unfinished since the last (``changed``), so it
    costs about the same at trial 10,000 as at trial 10 (Optuna's best-trial query
    sorts every value). Ties go to the earlier trial."""

    def __init__(self) -> None:
        self.trials = TrialCache()
        self.found: tuple[int, float] | None = None

    def best(self, study: Any) -> tuple[int, float] | None:
        if rdb(study) is None:
            return best(study)
        sign = 1.0 if study.direction.name == "MAXIMIZE" else -1.0
        for v in changed(study, cache=self.trials, keys=()):
            if v.state.name != "COMPLETE" or v.value is None:
                continue
            if self.found is None or sign * v.value > sign * self.found[1]:
                self.found = (int(v.number), float(v.value))
        return self.found
