"""Filling Optuna's trial cache fast, before a session's first ``ask``.

In front of an RDB storage Optuna keeps every trial in memory (``_CachedStorage``) and
reads them all, whole, the first time a sampler or ``ask`` needs them: through the ORM,
about 20 s of CPU for 10,000 trials x 50 epochs before the first trial of a resumed
sweep starts. This reads the same rows with ``sweep.store.relational``'s plain SELECTs (a
few seconds) and hands Optuna the very ``FrozenTrial``s it would have built, marking them
read exactly as its own first read does; from then on Optuna reads only new and
unfinished trials, as before. If this Optuna keeps its cache differently, nothing is
done and Optuna reads as it always did.

No TensorFlow here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweep.store.relational import RelationalReader, rdb

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

WARM_FROM = 200  # fewer trials than this: Optuna's own read is quick enough


def _cache(study: optuna.Study) -> Any:
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


def warm(study: optuna.Study, *, at_least: int = WARM_FROM) -> int:
    """Fill the cache of a study with ``at_least`` trials; return how many were added."""
    storage = _cache(study)
    backend = rdb(study)
    if storage is None or backend is None or len(study.directions) != 1:
        return 0
    reader = RelationalReader(study, backend)
    if reader.finished_count() < at_least:
        return 0
    frozen = frozen_trials(reader)
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


def frozen_trials(reader: RelationalReader) -> list[FrozenTrial]:
    """Every trial of the study, whole, as Optuna's RDBStorage builds it."""
    from optuna.trial import FrozenTrial

    views = reader.changed(all_curves=True)
    system = reader.system_attrs()
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
