"""The fixed trials (see fixed_trials.py) run the way a user would run them without sweep,
one way per process:

    python benchmarks/ways.py plain|plain-feed|kerastuner|optuna \\
        --schedule SCHEDULE.json --workdir DIR --out RESULT.json [--epochs 30 --patience 3]

- ``plain``: a Keras loop, ``model.fit`` on the NumPy arrays (``shuffle=True``,
  ``validation_split``) with EarlyStopping and ModelCheckpoint(save_best_only=True)
  writing ``trial_<n>/best.keras``.
- ``plain-feed``: the same loop fed with sweep's epoch-keyed tf.data pipeline
  (sweep.train.feed), to tell its cost apart from the rest of the harness.
- ``kerastuner``: KerasTuner's GridSearch with the same EarlyStopping (it keeps each
  trial's best weights itself). Needs tensorboard (``pip install -e '.[bench]'``).
- ``optuna``: an Optuna study on SQLite with GridSampler; the objective fits with the
  same two callbacks.

Every way gives each configuration the Keras seed ``sweep run --seed`` gives it
(SCHEDULE.json, from fixed_trials.schedule) and writes what it did to RESULT.json: the
time after its imports, and every fit's epochs as timed by epoch_clock.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fixed_trials import (
    BATCH_SIZE,
    GRID,
    MODE,
    MONITOR,
    VALIDATION_SPLIT,
    FixedHP,
    config_key,
    load_space,
)


def callbacks(patience: int, checkpoint: Path | None) -> list[Any]:
    import keras

    found: list[Any] = [
        keras.callbacks.EarlyStopping(monitor=MONITOR, mode=MODE, patience=patience)
    ]
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        found.append(
            keras.callbacks.ModelCheckpoint(
                str(checkpoint), monitor=MONITOR, mode=MODE, save_best_only=True
            )
        )
    return found


def fit_one(
    space: Any, config: dict[str, Any], seed: int, *, args: argparse.Namespace, folder: Path
) -> None:
    """What the plain loop and the Optuna objective do for one configuration."""
    import keras
    from epoch_clock import Clock

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = space.build_model(FixedHP(config))
    calls = Clock.around(LOG, callbacks(args.patience, folder / "best.keras"))
    if args.way == "plain-feed":
        from sweep.space.data import train_validation_split
        from sweep.train.feed import epoch_feed

        (x, y), validation = train_validation_split(X, Y, VALIDATION_SPLIT)
        feed, steps = epoch_feed(
            x, y, batch_size=BATCH_SIZE, seed=seed, initial_epoch=0, epochs=args.epochs
        )
        model.fit(
            feed,
            steps_per_epoch=steps,
            validation_data=validation,
            validation_batch_size=BATCH_SIZE,
            epochs=args.epochs,
            callbacks=calls,
            verbose=0,
        )
    else:
        model.fit(
            X,
            Y,
            batch_size=BATCH_SIZE,
            validation_split=VALIDATION_SPLIT,
            epochs=args.epochs,
            shuffle=True,
            callbacks=calls,
            verbose=0,
        )


def run_plain(args: argparse.Namespace, order: list[tuple[int, dict[str, Any]]]) -> None:
    space = load_space()
    for number, (seed, config) in enumerate(order):
        fit_one(space, config, seed, args=args, folder=args.workdir / f"trial_{number}")


def run_optuna(args: argparse.Namespace, order: list[tuple[int, dict[str, Any]]]) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space()
    seeds = {config_key(c): s for s, c in order}
    study = optuna.create_study(
        study_name="optuna",
        storage=f"sqlite:///{args.workdir / 'optuna.db'}",
        sampler=optuna.samplers.GridSampler(GRID, seed=args.seed),
        direction="maximize",
    )

    def objective(trial: Any) -> float:
        config = {name: trial.suggest_categorical(name, values) for name, values in GRID.items()}
        seed = seeds[config_key(config)]
        fit_one(space, config, seed, args=args, folder=args.workdir / f"trial_{trial.number}")
        return float(max(LOG.fits[-1].values))

    study.optimize(objective, n_trials=len(order))


def run_kerastuner(args: argparse.Namespace, order: list[tuple[int, dict[str, Any]]]) -> None:
    import keras
    import keras_tuner

    space = load_space()
    seeds = {config_key(c): s for s, c in order}

    class SeededGridSearch(keras_tuner.GridSearch):  # type: ignore[misc]
        """Seeds Keras right before each build, after KerasTuner's clear_session."""

        def _build_hypermodel(self, hp: Any) -> Any:
            keras.utils.set_random_seed(seeds[config_key(hp.values)])
            return super()._build_hypermodel(hp)

    tuner = SeededGridSearch(
        hypermodel=space.build_model,
        objective=keras_tuner.Objective(MONITOR, MODE),
        max_trials=len(order),
        seed=args.seed,
        directory=str(args.workdir),
        project_name="kerastuner",
        overwrite=True,
    )
    from epoch_clock import Clock

    tuner.search(
        X,
        Y,
        batch_size=BATCH_SIZE,
        validation_split=VALIDATION_SPLIT,
        epochs=args.epochs,
        shuffle=True,
        callbacks=Clock.around(LOG, callbacks(args.patience, None)),
        verbose=0,
    )


WAYS = {
    "plain": run_plain,
    "plain-feed": run_plain,
    "kerastuner": run_kerastuner,
    "optuna": run_optuna,
}
LOG: Any = None
X: Any = None
Y: Any = None


def main() -> None:
    global LOG, X, Y
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("way", choices=sorted(WAYS))
    parser.add_argument("--schedule", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=3)
    args = parser.parse_args()
    import keras  # the TensorFlow import every way pays
    from epoch_clock import FitLog

    imported = time.time()
    LOG = FitLog(MONITOR)
    X, Y = load_space().load_data()
    order = [(int(s), dict(c)) for s, c in json.loads(args.schedule.read_text())]
    args.workdir.mkdir(parents=True, exist_ok=True)
    WAYS[args.way](args, order)
    keras.backend.clear_session()
    result = {"way": args.way, "imported": imported, "ended": time.time(), "fits": LOG.to_json()}
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
