"""Optuna samplers by name, and the grid a KerasTuner space spans."""

from __future__ import annotations

import importlib.util
from typing import Any

from sweep.core.errors import ConfigError


def grid_space(hps: list[Any]) -> dict[str, list[Any]]:
    """The finite values of every hyperparameter seen, for Optuna's GridSampler."""
    from sweep.train.hparams import listed_values

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


# Where Optuna 5.0's samplers keep their randomness: LazyRandomState attributes, and
# inner samplers (TPE's startup trials, CMA-ES's independent parameters).
_RNG_ATTRS = ("_rng", "_cma_rng")
_INNER_SAMPLERS = ("_random_sampler", "_independent_sampler")


def sampler_seed(seed: int, number: int, stream: int = 0) -> int:
    """The sampler's seed for trial ``number``: from the sweep's seed and the number only."""
    import numpy as np

    return int(np.random.SeedSequence([seed, number, stream]).generate_state(1)[0])


def reseed_for_trial(sampler: Any, seed: int | None, number: int, *, stream: int = 0) -> None:
    """Set the sampler's random state for the trial numbered ``number``, before it is asked.

    The suggestions for trial n then depend on (seed, n) and the trials before it, not
    on how many processes asked before: a sweep killed and resumed asks what an
    uninterrupted one would have (with one worker; several race for the numbers).
    Grid's shuffle of its grid, done once with ``seed``, is left as it is."""
    if seed is None:
        return
    from optuna.samplers._lazy_random_state import LazyRandomState

    for attr in _RNG_ATTRS:
        lazy = getattr(sampler, attr, None)
        if isinstance(lazy, LazyRandomState):
            lazy.rng.seed(sampler_seed(seed, number, stream))
    for offset, attr in enumerate(_INNER_SAMPLERS, start=1):
        inner = getattr(sampler, attr, None)
        if inner is not None:
            reseed_for_trial(inner, seed, number, stream=stream + 10 * offset)


def next_number(trials: list[Any]) -> int:
    """The number ``study.ask()`` gives next: the first waiting (enqueued) trial's, or a new one."""
    waiting = [t.number for t in trials if t.state.name == "WAITING"]
    return min(waiting) if waiting else len(trials)
