"""Reading a study fast: only what a command shows.

Optuna's ``get_trials()`` builds every trial whole, every epoch's intermediate value
included, which at 10,000 trials x 50 epochs takes tens of seconds. On an RDB storage
(SQLite, PostgreSQL, MySQL) this module reads Optuna's own tables with read-only
SELECTs through the storage's engine: the trials without their intermediate values,
counts by state, the best trial, and curves only for the trials asked for. Other
storages (journal file, in-memory) hold the study in memory already: there it falls
back to ``get_trials``. The storage stays the one truth; nothing here writes.

No TensorFlow here.
"""

from __future__ import annotations

import datetime
import json
import math
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Optuna's finished states (``TrialState.is_finished()``) by name, for SQL and the counts
# by state; a trial object answers ``trial.state.is_finished()`` itself. Not computed from
# TrialState: importing Optuna here would import it (and tqdm) for every reader.
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
_CHUNK = 500  # trial ids per IN (...) list
_UNSEEN = object()


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


def rdb(study: Any) -> Any:
    """The study's ``RDBStorage`` (unwrapped from Optuna's cache), or None."""
    from optuna.storages import RDBStorage

    storage = study._storage
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, RDBStorage) else None


def _models() -> Any:
    from optuna.storages._rdb import models

    return models


def _local(value: datetime.datetime | None) -> datetime.datetime | None:
    """Naive UTC (as RDBStorage stores it) to naive local time (as FrozenTrial has it)."""
    if value is None:
        return None
    return value.replace(tzinfo=datetime.UTC).astimezone().replace(tzinfo=None)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _raw(conn: Any, query: Any) -> list[Any]:
    """``query``'s rows as the database driver returns them (values inlined: ids, names
    and state names only): SQLAlchemy's row processing costs more than the query."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _rows(conn: Any, query: Any, column: Any, ids: list[int] | None) -> Iterator[Any]:
    """``query``'s rows, for the trial ids ``ids`` (None: the query as it is)."""
    if ids is None:
        yield from _raw(conn, query)
        return
    for part in _chunks(ids):
        yield from _raw(conn, query.where(column.in_(part)))


def _state(name: Any) -> Any:
    from optuna.trial import TrialState

    return name if isinstance(name, TrialState) else TrialState[str(name)]


def _when(value: Any) -> datetime.datetime | None:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return _local(value)


def _base_views(
    conn: Any, study_id: int, cache: TrialCache | None = None, ids: list[int] | None = None
) -> list[TrialView]:
    """The study's trials (number, state, times); with a ``cache``, only those that may
    have changed since: newer than every cached one, or not finished when last read;
    with ``ids``, only those."""
    import sqlalchemy as sa

    t = _models().TrialModel.__table__
    query = sa.select(
        t.c.trial_id, t.c.number, t.c.state, t.c.datetime_start, t.c.datetime_complete
    ).where(t.c.study_id == study_id)
    if ids is not None:
        query = query.where(t.c.trial_id.in_(sorted(set(ids))))
    if cache is not None and cache.finished:
        changed = [t.c.trial_id > max(cache.finished)]
        if conn.dialect.name != "sqlite":
            # Elsewhere a trial may commit after one with a larger id: any unfinished one
            # (SQLite has one writer at a time, so ids are committed in order there).
            changed.append(t.c.state.notin_(FINISHED))
        if cache.unfinished:
            changed.append(t.c.trial_id.in_(sorted(cache.unfinished)))
        query = query.where(sa.or_(*changed))
    return [
        TrialView(
            number=int(number),
            _trial_id=int(tid),
            state=_state(state),
            datetime_start=_when(start),
            datetime_complete=_when(end),
        )
        for tid, number, state, start, end in _raw(conn, query.order_by(t.c.number))
    ]


def _fill(
    conn: Any,
    study_id: int,
    views: dict[int, TrialView],
    ids: list[int] | None,
    keys: Collection[str] | None,
) -> None:
    """Values, params and user attrs (``keys`` only, if given) of ``views`` (all of the
    study's if ``ids`` is None)."""
    import sqlalchemy as sa
    from optuna.distributions import json_to_distribution

    m = _models()
    t = m.TrialModel.__table__
    in_study = t.c.study_id == study_id
    v = m.TrialValueModel.__table__
    query = sa.select(v.c.trial_id, v.c.value, v.c.value_type).where(v.c.objective == 0)
    if ids is None:
        query = query.join(t, t.c.trial_id == v.c.trial_id).where(in_study)
    kinds = m.TrialValueModel.TrialValueType
    for tid, value, kind in _rows(conn, query, v.c.trial_id, ids):
        kind = kind if isinstance(kind, kinds) else kinds[str(kind)]
        views[tid].value = m.TrialValueModel.stored_repr_to_value(value, kind)
    p = m.TrialParamModel.__table__
    query = sa.select(p.c.trial_id, p.c.param_name, p.c.param_value, p.c.distribution_json)
    if ids is None:
        query = query.join(t, t.c.trial_id == p.c.trial_id).where(in_study)
    dists: dict[str, Any] = {}
    for tid, name, value, text in _rows(conn, query.order_by(p.c.param_id), p.c.trial_id, ids):
        dist = dists.get(text) or dists.setdefault(text, json_to_distribution(text))
        views[tid].params[name] = dist.to_external_repr(value)
        views[tid].distributions[name] = dist
    a = m.TrialUserAttributeModel.__table__
    query = sa.select(a.c.trial_id, a.c.key, a.c.value_json)
    if keys is not None:
        query = query.where(a.c.key.in_(sorted(keys)))
    if ids is None:
        query = query.join(t, t.c.trial_id == a.c.trial_id).where(in_study)
    decoded: dict[str, Any] = {}  # many trials hold the same texts ("val_accuracy", 4, null)
    for tid, key, text in _rows(conn, query, a.c.trial_id, ids):
        value = decoded.get(text, _UNSEEN)
        if value is _UNSEEN:
            value = json.loads(text)
            if not isinstance(value, dict | list):  # shared only if immutable
                decoded[text] = value
        views[tid].user_attrs[key] = value


def _curves(conn: Any, ids: list[int]) -> dict[int, dict[int, float]]:
    import sqlalchemy as sa

    m = _models()
    i = m.TrialIntermediateValueModel.__table__
    special = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}
    query = sa.select(i.c.trial_id, i.c.step, i.c.intermediate_value, i.c.intermediate_value_type)
    found: dict[int, dict[int, float]] = {tid: {} for tid in ids}
    for tid, step, value, kind in _rows(conn, query, i.c.trial_id, ids):
        if value is None:
            value = special.get(getattr(kind, "name", str(kind)), math.nan)
        found[tid][int(step)] = float(value)
    return found


def trials(
    study: Any,
    *,
    curves: Iterable[int] = (),
    cache: TrialCache | None = None,
    keys: Collection[str] | None = None,
) -> list[Any]:
    """Every trial of the study by number, as ``TrialView`` (RDB) or ``FrozenTrial``:
    running trials and the trial numbers in ``curves`` with their intermediate values,
    the others without (on an RDB storage). ``cache``: finished trials read before;
    ``keys``: the user attrs to read (None: all)."""
    storage = rdb(study)
    if storage is None:
        return list(study.get_trials(deepcopy=False))
    known = list(cache.finished.values()) if cache is not None else []
    new = changed(study, cache=cache, keys=keys, curves=curves)
    return sorted([*known, *new], key=lambda v: v.number)


def changed(
    study: Any,
    *,
    cache: TrialCache | None = None,
    keys: Collection[str] | None = None,
    curves: Iterable[int] = (),
    all_curves: bool = False,
) -> list[Any]:
    """The trials not in ``cache`` (new, or not finished when last read), by number,
    with their intermediate values if running or in ``curves`` (or every one's, with
    ``all_curves``; a finished trial in ``curves`` and in the cache keeps its
    intermediate values as read before). On a storage that is not an RDB: every trial,
    from ``get_trials``."""
    storage = rdb(study)
    if storage is None:
        return list(study.get_trials(deepcopy=False))
    wanted = set(curves)
    with storage.engine.connect() as conn:
        known = cache.finished if cache is not None else {}
        new = {v._trial_id: v for v in _base_views(conn, study._study_id, cache)}
        everything = not known and len(new) > _CHUNK
        _fill(conn, study._study_id, new, None if everything else list(new), keys)
        need = [
            tid
            for tid, v in new.items()
            if all_curves or v.state.name == "RUNNING" or v.number in wanted
        ]
        if wanted:
            need += [tid for tid, v in known.items() if v.number in wanted]
        for tid, steps in _curves(conn, need).items():
            (new.get(tid) or known[tid]).intermediate_values = steps
    if cache is not None:
        cache.finished.update({tid: v for tid, v in new.items() if v.state.is_finished()})
        cache.unfinished = {tid for tid, v in new.items() if not v.state.is_finished()}
    return list(new.values())


class TrialCache:
    """Finished trials already read (they never change): a running sweep's table rewrite
    reads only the new and the running trials, at trial 10,000 as at trial 10."""

    def __init__(self) -> None:
        self.finished: dict[int, TrialView] = {}
        self.unfinished: set[int] = set()  # trial ids not finished when last read


def curves(study: Any, numbers: Iterable[int]) -> dict[int, dict[int, float]]:
    """Each listed trial's intermediate values (epoch -> value), by trial number."""
    wanted = set(numbers)
    storage = rdb(study)
    if storage is None:
        return {
            t.number: dict(t.intermediate_values)
            for t in study.get_trials(deepcopy=False)
            if t.number in wanted
        }
    import sqlalchemy as sa

    t = _models().TrialModel.__table__
    with storage.engine.connect() as conn:
        query = sa.select(t.c.trial_id, t.c.number).where(t.c.study_id == study._study_id)
        ids = {int(tid): int(n) for tid, n in _raw(conn, query) if n in wanted}
        found = _curves(conn, list(ids))
    return {ids[tid]: steps for tid, steps in found.items()}


def state_counts(study: Any) -> Counter[str]:
    """Trials by Optuna state name (COMPLETE, RUNNING, ...): one COUNT on an RDB storage."""
    storage = rdb(study)
    if storage is None:
        return Counter(t.state.name for t in study.get_trials(deepcopy=False))
    import sqlalchemy as sa

    t = _models().TrialModel.__table__
    query = (
        sa.select(t.c.state, sa.func.count())
        .where(t.c.study_id == study._study_id)
        .group_by(t.c.state)
    )
    with storage.engine.connect() as conn:
        return Counter({_state(state).name: int(n) for state, n in _raw(conn, query)})


def finished_count(study: Any) -> int:
    counts = state_counts(study)
    return sum(counts[s] for s in FINISHED)


def best(study: Any) -> tuple[int, float] | None:
    """The best complete trial's (number, value), or None: Optuna's own best-trial query."""
    storage = rdb(study)
    try:
        trial = study.best_trial if storage is None else storage.get_best_trial(study._study_id)
    except ValueError:  # no complete trial yet
        return None
    return int(trial.number), float(trial.value)


def running(study: Any) -> list[Any]:
    """The running trials, whole (few): filtered by state in the storage."""
    from optuna.trial import TrialState

    return by_state(study, TrialState.RUNNING)


def by_state(study: Any, state: Any) -> list[Any]:
    """The study's trials in one state, whole; an RDB storage selects them by state
    (Optuna's cache in front of it would read every trial first)."""
    storage = rdb(study)
    if storage is None:
        return list(study.get_trials(deepcopy=False, states=(state,)))
    found = storage.get_all_trials(study._study_id, deepcopy=False, states=(state,))
    return sorted(found, key=lambda t: t.number)


def waiting(study: Any) -> list[Any]:
    """The waiting (enqueued) trials, filtered by state in the storage."""
    from optuna.trial import TrialState

    return by_state(study, TrialState.WAITING)
