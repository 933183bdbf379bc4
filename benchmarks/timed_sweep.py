"""`sweep` with stopwatches: the real command (sweep.cli.main.main, same code path as
`python -m sweep`), with a timer around each piece of its bookkeeping, and every fit
timed by epoch_clock like the other ways' fits.

    python benchmarks/timed_sweep.py --out RESULT.json -- run SPACE [sweep run options]

The timers only add a perf_counter call on each side of a call (microseconds against
the milliseconds they measure). RESULT.json holds, per label, the number of calls and
their total seconds (labels nest: "resume point" includes "best checkpoint"), and the
fits.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TIMERS: dict[str, list[float]] = {}
LOG: Any = None


def timed(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` by the same callable, timed under ``label``."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            entry = TIMERS.setdefault(label, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def after_tensorflow(import_tf: Callable[[], None]) -> Callable[[], None]:
    """Sweep imports TensorFlow itself; the Keras-side timers go in right after."""

    def patched() -> None:
        import_tf()
        import keras
        import optuna
        from epoch_clock import Clock, FitLog

        import sweep.train.feeds
        import sweep.train.probe
        import sweep.train.recorder
        import sweep.train.resume
        import sweep.train.trial

        global LOG
        LOG = FitLog("val_accuracy")
        fit = keras.Model.fit

        def clocked_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("callbacks"):  # a trial's fit (the probe's has none)
                kwargs["callbacks"] = Clock.around(LOG, list(kwargs["callbacks"]))
            return fit(self, *args, **kwargs)

        keras.Model.fit = clocked_fit
        timed(keras.Model, "fit", "fit (all fits, probe included)")
        timed(sweep.train.trial, "run_trial", "trial: run_trial")
        timed(sweep.train.trial, "build", "trial: build_model")
        timed(sweep.train.feeds, "training_input", "trial: data feed set-up")
        timed(sweep.train.probe, "probe_space", "probe: build + one step")
        timed(sweep.train.resume.ResumeDir, "save", "epoch end: resume point")
        timed(sweep.train.resume.ResumeDir, "load", "trial: look for a resume point")
        timed(sweep.train.resume, "save_variables", "epoch end: resume point: variables .npz")
        timed(sweep.train.resume, "write_text_atomic", "epoch end: resume point: state.json")
        timed(keras.Model, "save", "epoch end: resume point: best checkpoint .keras")
        timed(sweep.train.recorder, "write_text_atomic", "epoch end: history.csv")
        timed(optuna.trial.Trial, "report", "storage: report (per epoch)")
        timed(optuna.trial.Trial, "set_user_attr", "storage: user attrs")

    return patched


def install() -> None:
    import optuna

    import sweep.execution.driver
    import sweep.execution.session

    sweep.execution.driver.import_tensorflow_quietly = after_tensorflow(
        sweep.execution.driver.import_tensorflow_quietly
    )
    timed(sweep.execution.driver, "import_tensorflow_quietly", "start-up: import TensorFlow")
    timed(sweep.execution.driver, "load_space", "start-up: load space")
    timed(sweep.execution.driver, "load_checked_data", "start-up: load data")
    timed(sweep.execution.driver, "probe", "start-up: probe")
    timed(sweep.execution.driver, "open_study", "start-up: create study")
    timed(sweep.execution.driver, "write_table", "table (start and end)")
    timed(sweep.execution.session, "write_table", "table (per trial)")
    timed(sweep.execution.session, "open_storage", "start-up: open storage (session)")
    timed(sweep.execution.session.Session, "next_trial", "storage: next trial (claim, ask)")
    timed(sweep.execution.session.Session, "run_one", "trial: run_one (run, tell, table)")
    timed(optuna.study.Study, "tell", "storage: tell")


def main() -> None:
    started = time.time()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    import os

    timed(os, "fsync", "fsync (all)")
    install()
    from sweep.cli.main import main as sweep_main

    code = sweep_main(argv)
    result = {
        "way": "sweep",
        "started": started,
        "ended": time.time(),
        "timers": TIMERS,
        "fits": [] if LOG is None else LOG.to_json(),
    }
    args.out.write_text(json.dumps(result))
    sys.exit(code)


if __name__ == "__main__":
    main()
