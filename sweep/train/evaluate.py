"""A model scored on the data ``load_data`` returned, of whatever input kind: the
validation part (export's check) and the test part (after a sweep, as the tutorials
report it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

from sweep.core.record import StudyAttr, from_trial, write_study
from sweep.train.feeds import evaluate_kwargs

if TYPE_CHECKING:
    import optuna


def evaluate(model: Any, data: Any, part: int, batch_size: int) -> dict[str, float]:
    """``model.evaluate`` on data part 1 (validation) or 2 (test), of whatever input kind."""
    x, y, w = (
        (data.x_val, data.y_val, data.w_val)
        if part == 1
        else (data.x_test, data.y_test, data.w_test)
    )
    kwargs = evaluate_kwargs(data.kinds[part], x, y, w, batch_size=batch_size)
    logs = model.evaluate(**kwargs, verbose=0, return_dict=True)
    return {k: float(v) for k, v in logs.items()}


def validation_score(model: Any, data: Any, metric: str, batch_size: int) -> float:
    """``metric`` of the model on the validation part."""
    return evaluate(model, data, 1, batch_size)[metric]


def test_scores(model: Any, data: Any, batch: int) -> dict[str, float]:
    """The model's metrics on the test part ``load_data`` returned."""
    return evaluate(model, data, 2, batch)


def best_on_test(study: optuna.Study, data: Any) -> tuple[int, dict[str, float]] | None:
    """The best complete trial's checkpoint scored on the test data, after a sweep (as the
    tutorials report it); also kept on the study as ``test_score``. None without test
    data or a complete trial with its checkpoint."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not data.has_test or not complete:
        return None
    best = study.best_trial
    rec = from_trial(best)
    checkpoint = rec.checkpoint
    if not checkpoint or not checkpoint.is_file():
        return None
    model = keras.saving.load_model(checkpoint, safe_mode=True)
    scores = test_scores(model, data, int(rec.batch_size or 32))
    write_study(study, StudyAttr.TEST_SCORE, {"trial": best.number, "scores": scores})
    return best.number, scores
