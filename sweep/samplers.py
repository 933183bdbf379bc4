"""Optuna samplers by name, and the grid a KerasTuner space spans."""

from __future__ import annotations

import importlib.util
from typing import Any

from sweep.errors import ConfigError


def grid_space(hps: list[Any]) -> dict[str, list[Any]]:
    """The finite values of every hyperparameter seen, for Optuna's GridSampler."""
    from sweep.hparams import listed_values

    grid: dict[str, list[Any]] = {}
    for hp in hps:
        if type(hp).__name__ == "Fixed":
            continue  # one value: Optuna never asks the sampler (and one name may have two)
        values = listed_values(hp)
        if values is None:
            raise ConfigError(
                f"--sampler grid: hyperparameter {hp.name!r} ({type(hp).__name__} without a "
                "step) has no finite set of values; give it a step, make it a Choice, or use "
                "another sampler"
            )
        grid.setdefault(hp.name, [])
        grid[hp.name].extend(v for v in values if v not in grid[hp.name])
    return grid


def grid_size(grid: dict[str, list[Any]]) -> int:
    size = 1
    for values in grid.values():
        size *= len(values)
    return size


def _grid_sampler_class() -> Any:
    import optuna

    class AskTellGridSampler(optuna.samplers.GridSampler):
        """GridSampler calls ``study.stop()`` when the grid is used up, which raises outside
        ``study.optimize``. The driver stops at the grid's size itself, so skip that."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass

    return AskTellGridSampler


def make_sampler(name: str, *, seed: int | None, grid: dict[str, list[Any]] | None = None) -> Any:
    import optuna

    samplers = optuna.samplers
    if name == "tpe":
        return samplers.TPESampler(seed=seed)
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "grid":
        assert grid is not None
        return _grid_sampler_class()(grid, seed=seed)
    if name == "cmaes":
        if importlib.util.find_spec("cmaes") is None:
            raise ConfigError("--sampler cmaes needs the cmaes package; pip install cmaes")
        return samplers.CmaEsSampler(seed=seed)
    if name == "gp":
        if importlib.util.find_spec("torch") is None:
            raise ConfigError(
                "--sampler gp needs PyTorch, which is not installed; pip install torch, "
                "or use --sampler tpe"
            )
        return samplers.GPSampler(seed=seed)
    raise ConfigError(f"--sampler: expected one of tpe, random, grid, cmaes, gp, got {name!r}")
