"""fANOVA importances of a study's parameters (Optuna's evaluator), over at most
``MAX_IMPORTANCE_TRIALS`` complete trials evenly spread over the trial numbers, read
without their curves. No TensorFlow here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

MIN_IMPORTANCE_TRIALS = 5
MAX_IMPORTANCE_TRIALS = 200  # fANOVA over more takes minutes; a spread of 200 is enough


def fanova(study: optuna.Study, complete: list[Any]) -> tuple[list[Any], dict[str, float]]:
    """The trials used (of ``complete``) and each parameter's importance; raises what
    Optuna raises for a study it can't evaluate (e.g. a dynamic search space)."""
    import optuna

    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    used = _spread(complete, MAX_IMPORTANCE_TRIALS)
    found = optuna.importance.get_param_importances(
        _Complete(study, used),  # type: ignore[arg-type]  # duck-typed Study
        evaluator=evaluator,
    )
    return used, dict(found)


def _spread(trials: list[Any], most: int) -> list[Any]:
    """At most ``most`` of ``trials``, evenly spread (fANOVA's time grows with the count)."""
    if len(trials) <= most:
        return trials
    step = len(trials) / most
    return [trials[int(i * step)] for i in range(most)]


class _Complete:
    """The study as fANOVA reads it, with the complete trials already read (without
    their curves): Optuna's ``get_trials`` would read every epoch of every trial."""

    def __init__(self, study: optuna.Study, complete: list[Any]) -> None:
        self._study = study
        self._complete = complete

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = False, states: Any = None) -> list[Any]:
        # Optuna's importance reads complete trials only (its intersection search space
        # too, when asked for every trial)
        if states is not None and {s.name for s in states} != {"COMPLETE"}:
            return list(self._study.get_trials(deepcopy=deepcopy, states=states))
        return list(self._complete)
