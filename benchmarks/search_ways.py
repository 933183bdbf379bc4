"""The five ways table 6's searches go (benchmarks/search.py), and one search run in
this process: sweep's ways through ``sweep.run``, KerasTuner's ``Hyperband`` with an
epoch budget. search.py runs each in a process of its own (``--one WAY``)."""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure import HERE

SPACE = HERE.parent / "search_spaces" / "digits_cnn.py"
MONITOR = "val_accuracy"


@dataclass(frozen=True)
class Way:
    key: str
    label: str
    sampler: str = "tpe"
    pruner: str = "none"
    kerastuner: bool = False


WAYS = (
    Way("random", "random sampler + early stopping", sampler="random"),
    Way("tpe", "TPE + early stopping"),
    Way("tpe-median", "TPE + early stopping + `--pruner median`", pruner="median"),
    Way("tpe-hyperband", "TPE + early stopping + `--pruner hyperband`", pruner="hyperband"),
    Way("kerastuner", "KerasTuner `Hyperband` (factor 3) + EarlyStopping", kerastuner=True),
)
BY_KEY = {way.key: way for way in WAYS}


def sweep_curves(folder: Path, study: str) -> tuple[list[list[float]], int]:
    """Each trial's val_accuracy per epoch (by trial number), and how many finished."""
    import sweep
    from sweep.core.record import State, TrialRecord

    trials = sorted(sweep.load(study, results=folder).optuna_study.trials, key=lambda t: t.number)
    curves, finished = [], 0
    for trial in trials:
        record = TrialRecord.from_trial(trial)
        if record.state is State.FAILED:
            raise RuntimeError(f"trial {trial.number} failed: {record.error}")
        finished += record.state in (State.COMPLETE, State.PRUNED)
        steps = trial.intermediate_values  # 1-based epochs; a non-finite value is left out
        curves.append(
            [float(steps.get(e, math.nan)) for e in range(1, (record.stop_epoch or 0) + 1)]
        )
    return curves, finished


def run_sweep_way(
    way: Way, seed: int, budget: int, max_epochs: int, folder: Path, threads: int
) -> list[list[float]]:
    """Trials in order until their epochs reach the budget: each round asks for as many
    more trials as the epochs left need at least (each trains at most max_epochs), so no
    trial starts after the budget is spent. A rerun of ``sweep.run`` continues the study
    as one run would (the sampler is reseeded per trial number)."""
    import sweep

    target, used = 0, 0
    curves: list[list[float]] = []
    while used < budget:
        target += max(1, math.ceil((budget - used) / max_epochs))
        sweep.run(
            SPACE,
            trials=target,
            epochs=max_epochs,
            sampler=way.sampler,
            pruner=way.pruner,
            seed=seed,
            jobs=1,
            threads=threads,
            study=way.key,
            results=folder,
            progress=False,
        )
        curves, finished = sweep_curves(folder, way.key)
        if finished < target:
            raise RuntimeError(f"sweep.run stopped at {finished} of {target} trials")
        used = sum(len(c) for c in curves)
        print(f"    {way.key}: {finished} trials, {used} epochs", file=sys.stderr, flush=True)
    return curves


class Tally:
    """Every epoch KerasTuner trained, by fit; shared by every copy of the callback."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.curves: list[list[float]] = []

    def __deepcopy__(self, memo: Any) -> Tally:
        return self  # KerasTuner deep-copies each trial's callbacks

    @property
    def spent(self) -> bool:
        return sum(len(c) for c in self.curves) >= self.budget


class BudgetSpent(Exception):
    pass


def run_kerastuner(
    seed: int, budget: int, max_epochs: int, folder: Path, threads: int
) -> list[list[float]]:
    import importlib.util

    import keras
    import keras_tuner
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    spec = importlib.util.spec_from_file_location("digits_cnn", SPACE)
    assert spec is not None and spec.loader is not None
    space = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(space)
    settings = space.SETTINGS
    tally = Tally(budget)

    class Count(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self, tally: Tally) -> None:
            super().__init__()
            self.tally = tally

        def on_train_begin(self, logs: Any = None) -> None:
            self.tally.curves.append([])

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.tally.curves[-1].append(float((logs or {}).get(MONITOR, math.nan)))
            if self.tally.spent:
                self.model.stop_training = True

    class BudgetHyperband(keras_tuner.Hyperband):  # type: ignore[misc]
        def pre_create_trial(self) -> None:
            if tally.spent:
                raise BudgetSpent
            super().pre_create_trial()

    keras.utils.set_random_seed(seed)
    tuner = BudgetHyperband(
        hypermodel=space.build_model,
        objective=keras_tuner.Objective(MONITOR, "max"),
        max_epochs=max_epochs,
        factor=3,
        hyperband_iterations=budget,  # more than the budget can pay for: it stops first
        seed=seed,
        directory=str(folder),
        project_name="kerastuner",
        overwrite=True,
    )
    x, y = space.load_data()
    stop = keras.callbacks.EarlyStopping(monitor=MONITOR, patience=settings["patience"])
    with contextlib.suppress(BudgetSpent):
        tuner.search(
            x,
            y,
            batch_size=settings["batch_size"],
            validation_split=settings["validation_split"],
            epochs=max_epochs,
            shuffle=True,
            callbacks=[stop, Count(tally)],
            verbose=0,
        )
    return tally.curves
