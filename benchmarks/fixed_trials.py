"""The fixed set of trials every overhead benchmark runs: the 8 configurations of the digits
grid (benchmarks/digits_grid.py), each with its own Keras seed, the same data, batch size,
validation split, monitor and early stopping.

`sweep run --seed S` gives trial n the Keras seed S + n, and its grid sampler (seeded with
S) decides which configuration trial n gets. `schedule` computes that pairing without
training, with sweep's own sampler, so the other ways can give each configuration the
seed sweep gives it: all four ways then train the same 8 models. Imports no TensorFlow.
"""

from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
SPACE = HERE / "digits_grid.py"

# The grid digits_grid.build_model spans, in the order sweep's grid_space lists it.
GRID: dict[str, list[Any]] = {
    "filters": [8, 16],
    "units": [32, 64],
    "learning_rate": [1e-3, 3e-3],
}
MONITOR = "val_accuracy"
MODE = "max"
BATCH_SIZE = 32
VALIDATION_SPLIT = 0.2


@dataclass(frozen=True)
class Setup:
    """What every way is given: the same for all four."""

    seed: int = 0
    epochs: int = 30
    patience: int = 3

    def args(self) -> list[str]:
        """The same values as command-line flags (ways.py and `sweep run` take the same)."""
        flags = {"--seed": self.seed, "--epochs": self.epochs, "--patience": self.patience}
        return [part for flag, value in flags.items() for part in (flag, str(value))]


def config_key(config: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(config[name] for name in GRID)


def schedule(seed: int) -> list[tuple[int, dict[str, Any]]]:
    """(Keras seed, configuration) of trials 0..7 as `sweep run --seed seed` runs them."""
    import optuna

    from sweep.execution.samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        sampler=make_sampler("grid", seed=seed, grid=GRID),
        direction="maximize",
    )
    order = []
    for number in range(len(all_configs())):
        trial = study.ask()
        config = {name: trial.suggest_categorical(name, values) for name, values in GRID.items()}
        study.tell(trial, 0.0)
        order.append((seed + number, config))
    assert sorted(config_key(c) for _, c in order) == sorted(map(config_key, all_configs()))
    return order


def all_configs() -> list[dict[str, Any]]:
    return [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]


class FixedHP:
    """A stand-in for KerasTuner's `hp` that answers every Choice with a fixed value, so
    the plain loop and the Optuna objective build with digits_grid.build_model unchanged."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def Choice(self, name: str, values: list[Any], **_: Any) -> Any:
        assert self.config[name] in values
        return self.config[name]


def load_space() -> ModuleType:
    spec = importlib.util.spec_from_file_location("digits_grid", SPACE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
