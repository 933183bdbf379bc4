"""Optuna's pruners by name: cross-trial early stopping, checked at each epoch end.

A pruner compares a trial's monitored value at epoch N with other trials' values at
epoch N (the intermediate values the recorder reports, 1-based steps) and may stop
it. The recorder asks only after the epoch's resume point and best checkpoint are
saved and only if EarlyStopping did not stop the trial in that epoch, so a pruned
trial keeps its best checkpoint, best_score, best_epoch and stop_epoch like any other.
"""

from __future__ import annotations

from typing import Any

from sweep.core.errors import ConfigError


def make_pruner(name: str, *, max_epochs: int) -> Any:
    """``none``: never prune. ``median``/``percentile``: Optuna's MedianPruner and
    PercentilePruner(25) (5 trials first, then a trial below the median, or outside the
    best 25%, at the same epoch is pruned). ``hyperband``: HyperbandPruner over 1 to
    ``max_epochs`` epochs. ``asha``: SuccessiveHalvingPruner (asynchronous successive
    halving), Optuna's defaults."""
    import optuna

    pruners = optuna.pruners
    if name == "none":
        return pruners.NopPruner()
    if name == "median":
        return pruners.MedianPruner(n_startup_trials=5)
    if name == "percentile":
        return pruners.PercentilePruner(25.0, n_startup_trials=5)
    if name == "hyperband":
        return pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs)
    if name == "asha":
        return pruners.SuccessiveHalvingPruner()
    raise ConfigError(
        f"--pruner: expected one of none, median, percentile, hyperband, asha, got {name!r}"
    )
