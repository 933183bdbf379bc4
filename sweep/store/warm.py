"""Filling Optuna's trial cache fast, before a session's first ``ask``.

In front of an RDB storage Optuna keeps every trial in memory (``_CachedStorage``) and
reads them all, whole, the first time a sampler or ``ask`` needs them: through the ORM,
about 20 s of CPU for 10,000 trials x 50 epochs before the first trial of a resumed
sweep starts. This reads the same rows with ``sweep.store.reading``'s plain SELECTs (a few
seconds) and hands Optuna the very ``FrozenTrial``s it would have built, marking them
read exactly as its own first read does; from then on Optuna reads only new and
unfinished trials, as before. If this Optuna keeps its cache differently, nothing is
done and Optuna reads as it always did.

No TensorFlow here.
"""

from __future__ import annotations

import json
from typing import Any

from sweep.store.reading import _models, _raw, changed, rdb

WARM_FROM = 200  # fewer trials than this: Optuna's own read is quick enough


def _cache(study: Any) -> Any:
    """Optuna's cache in front of the study's RDB storage, if it is empty, else None."""
    try:
        from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
    except ImportError:
        return None
    storage = study._storage
    if not isinstance(storage, _CachedStorage) or rdb(study) is None:
        return None
    if not all(hasattr(storage, a) for a in ("_studies", "_lock", "_add_trials_to_cache")):
        return None
    info = storage._studies.get(study._study_id)
    if info is None:
        info = storage._studies[study._study_id] = _StudyInfo()
    if info.trials or info.last_finished_trial_id != -1:
        return None  # read already
    return storage


def warm(study: Any, *, at_least: int = WARM_FROM) -> int:
    """Fill the cache of a study with ``at_least`` trials; return how many were added."""
    from sweep.store.reading import finished_count

    storage = _cache(study)
    if storage is None or len(study.directions) != 1 or finished_count(study) < at_least:
        return 0
    frozen = frozen_trials(study)
    with storage._lock:
        info = storage._studies[study._study_id]
        if info.trials or info.last_finished_trial_id != -1:
            return 0  # another thread read them meanwhile
        storage._add_trials_to_cache(study._study_id, frozen)
        for t in frozen:  # as _CachedStorage._read_trials_from_remote_storage marks them
            if t.state.is_finished():
                info.last_finished_trial_id = max(info.last_finished_trial_id, t._trial_id)
            else:
                info.unfinished_trial_ids.add(t._trial_id)
    return len(frozen)


def frozen_trials(study: Any) -> list[Any]:
    """Every trial of the study, whole, as Optuna's RDBStorage builds it."""
    from optuna.trial import FrozenTrial

    views = changed(study, all_curves=True)
    system = system_attrs(study)
    return [
        FrozenTrial(
            number=v.number,
            state=v.state,
            value=None,
            values=None if v.value is None else [v.value],
            datetime_start=v.datetime_start,
            datetime_complete=v.datetime_complete,
            params=v.params,
            distributions=v.distributions,
            user_attrs=v.user_attrs,
            system_attrs=system.get(v._trial_id, {}),
            intermediate_values=v.intermediate_values,
            trial_id=v._trial_id,
        )
        for v in views
    ]


def system_attrs(study: Any) -> dict[int, dict[str, Any]]:
    """Every trial's system attrs (Optuna's own), by trial id."""
    storage = rdb(study)
    assert storage is not None, "system_attrs() reads an RDB storage"
    import sqlalchemy as sa

    m = _models()
    t, a = m.TrialModel.__table__, m.TrialSystemAttributeModel.__table__
    query = (
        sa.select(a.c.trial_id, a.c.key, a.c.value_json)
        .join(t, t.c.trial_id == a.c.trial_id)
        .where(t.c.study_id == study._study_id)
    )
    found: dict[int, dict[str, Any]] = {}
    with storage.engine.connect() as conn:
        for tid, key, text in _raw(conn, query):
            found.setdefault(int(tid), {})[key] = json.loads(text)
    return found
