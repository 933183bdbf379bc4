"""The ``StudyReader`` of an RDB storage (SQLite, PostgreSQL, MySQL): Optuna's own tables
read with read-only SELECTs through the storage's engine, only what is asked for.

No TensorFlow here, and no Optuna or SQLAlchemy on import.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sweep.store.reading import (
    EMPTY_NOTES,
    FINISHED,
    BestCache,
    StudyReader,
    TrialCache,
    TrialView,
)

if TYPE_CHECKING:
    import optuna
    from optuna.storages import RDBStorage

_CHUNK = 500  # trial ids per IN (...) list
_UNSEEN = object()


def rdb(study: optuna.Study) -> RDBStorage | None:
    """The study's ``RDBStorage`` (unwrapped from Optuna's cache), or None."""
    from optuna.storages import RDBStorage

    storage = study._storage
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, RDBStorage) else None


def models() -> Any:
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


def raw(conn: Any, query: Any) -> list[Any]:
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
        yield from raw(conn, query)
        return
    for part in _chunks(ids):
        yield from raw(conn, query.where(column.in_(part)))


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

    t = models().TrialModel.__table__
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
        for tid, number, state, start, end in raw(conn, query.order_by(t.c.number))
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

    m = models()
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

    m = models()
    i = m.TrialIntermediateValueModel.__table__
    special = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}
    query = sa.select(i.c.trial_id, i.c.step, i.c.intermediate_value, i.c.intermediate_value_type)
    found: dict[int, dict[int, float]] = {tid: {} for tid in ids}
    for tid, step, value, kind in _rows(conn, query, i.c.trial_id, ids):
        if value is None:
            value = special.get(getattr(kind, "name", str(kind)), math.nan)
        found[tid][int(step)] = float(value)
    return found


class RelationalReader(StudyReader):
    """A study on an RDB storage, read with plain SELECTs: trials without their
    intermediate values unless asked for, counts by state, single trials by state."""

    def __init__(self, study: optuna.Study, storage: RDBStorage) -> None:
        super().__init__(study)
        self.storage = storage
        self.study_id: int = study._study_id

    def changed(
        self,
        *,
        cache: TrialCache | None = None,
        keys: Collection[str] | None = None,
        curves: Iterable[int] = (),
        all_curves: bool = False,
    ) -> list[Any]:
        wanted = set(curves)
        with self.storage.engine.connect() as conn:
            known = cache.finished if cache is not None else {}
            new = {v._trial_id: v for v in _base_views(conn, self.study_id, cache)}
            everything = not known and len(new) > _CHUNK
            _fill(conn, self.study_id, new, None if everything else list(new), keys)
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

    def curves(self, numbers: Iterable[int]) -> dict[int, dict[int, float]]:
        import sqlalchemy as sa

        wanted = set(numbers)
        t = models().TrialModel.__table__
        with self.storage.engine.connect() as conn:
            query = sa.select(t.c.trial_id, t.c.number).where(t.c.study_id == self.study_id)
            ids = {int(tid): int(n) for tid, n in raw(conn, query) if n in wanted}
            found = _curves(conn, list(ids))
        return {ids[tid]: steps for tid, steps in found.items()}

    def state_counts(self) -> Counter[str]:
        """One COUNT, however many trials."""
        import sqlalchemy as sa

        t = models().TrialModel.__table__
        query = (
            sa.select(t.c.state, sa.func.count())
            .where(t.c.study_id == self.study_id)
            .group_by(t.c.state)
        )
        with self.storage.engine.connect() as conn:
            return Counter({_state(state).name: int(n) for state, n in raw(conn, query)})

    def best(self, cache: BestCache | None = None) -> tuple[int, float] | None:
        if cache is not None:
            return self._best_since(cache)
        try:
            trial = self.storage.get_best_trial(self.study_id)
        except ValueError:  # no complete trial yet
            return None
        return int(trial.number), float(trial.value)  # type: ignore[arg-type]

    def _best_since(self, cache: BestCache) -> tuple[int, float] | None:
        sign = self.direction.sign  # lower is better after multiplying
        for v in self.changed(cache=cache.trials, keys=()):
            if v.state.name != "COMPLETE" or v.value is None:
                continue
            if cache.found is None or sign * v.value < sign * cache.found[1]:
                cache.found = (int(v.number), float(v.value))
        return cache.found

    def by_state(self, state: optuna.trial.TrialState) -> list[Any]:
        """Selected by state in the storage (Optuna's cache in front of it would read
        every trial first)."""
        found = self.storage.get_all_trials(self.study_id, deepcopy=False, states=(state,))
        return sorted(found, key=lambda t: t.number)

    def selected(self, notes: Iterable[str], *, keys: Collection[str] | None = None) -> list[Any]:
        """Exactly those (they should be few: each is read with its values, params and
        attrs)."""
        import sqlalchemy as sa

        t = models().TrialModel.__table__
        query = sa.select(t.c.trial_id).where(t.c.study_id == self.study_id, t.c.state == "RUNNING")
        wanted = {tid for key in notes for tid in self.noted(key)}
        with self.storage.engine.connect() as conn:
            wanted.update(int(tid) for (tid,) in raw(conn, query))
            with contextlib.suppress(ValueError):  # no complete trial yet
                wanted.add(self.storage._get_best_trial_id(self.study_id, self.study.direction))
            views = {v._trial_id: v for v in _base_views(conn, self.study_id, ids=list(wanted))}
            _fill(conn, self.study_id, views, list(views), keys)
            running = [tid for tid, v in views.items() if v.state.name == "RUNNING"]
            for tid, steps in _curves(conn, running).items():
                views[tid].intermediate_values = steps
        return sorted(views.values(), key=lambda v: v.number)

    def noted(self, key: str) -> list[int]:
        """The ids of the study's trials whose user attr ``key`` is set and not empty."""
        import sqlalchemy as sa

        m = models()
        t, a = m.TrialModel.__table__, m.TrialUserAttributeModel.__table__
        query = (
            sa.select(a.c.trial_id)
            .join(t, t.c.trial_id == a.c.trial_id)
            .where(t.c.study_id == self.study_id, a.c.key == key)
            .where(a.c.value_json.notin_(EMPTY_NOTES))
        )
        with self.storage.engine.connect() as conn:
            return [int(tid) for (tid,) in raw(conn, query)]

    def time_span(self, *, running: bool) -> tuple[float, float] | None:
        """None until a trial has ended, running or not."""
        import sqlalchemy as sa

        t = models().TrialModel.__table__
        query = sa.select(
            sa.func.min(t.c.datetime_start), sa.func.max(t.c.datetime_complete)
        ).where(t.c.study_id == self.study_id)
        with self.storage.engine.connect() as conn:
            ((first, last),) = raw(conn, query)
        start, end = _when(first), _when(last)
        if start is None or end is None:
            return None
        if running:
            return start.timestamp(), time.time()
        return start.timestamp(), end.timestamp()

    def system_attrs(self) -> dict[int, dict[str, Any]]:
        """Every trial's system attrs (Optuna's own), by trial id."""
        import sqlalchemy as sa

        m = models()
        t, a = m.TrialModel.__table__, m.TrialSystemAttributeModel.__table__
        query = (
            sa.select(a.c.trial_id, a.c.key, a.c.value_json)
            .join(t, t.c.trial_id == a.c.trial_id)
            .where(t.c.study_id == self.study_id)
        )
        found: dict[int, dict[str, Any]] = {}
        with self.storage.engine.connect() as conn:
            for tid, key, text in raw(conn, query):
                found.setdefault(int(tid), {})[key] = json.loads(text)
        return found
