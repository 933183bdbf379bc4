"""``executions_per_trial``: a trial trained N times from fresh initialisations.

KerasTuner's rule: the trial's objective is the mean of the executions' best scores. Each
execution ``e`` trains in ``trials/<n>/executions/<e>/`` (its own ``best.keras``,
``history.csv`` and resume point) with a seed derived from the trial's seed and ``e``;
its facts are one user attr ``execution_<e>`` (a dict). When all are done, the best
execution's ``best.keras`` and ``history.csv`` are copied to ``trials/<n>/``, and the trial
records the mean as ``best_score`` with ``best_execution`` and ``best_execution_score``.
Each execution's monitored values are in its attr's ``curve`` (``sweep compare`` replays
every execution's); Optuna's intermediate values (what a pruner and optuna-dashboard see)
are the first execution's curve; pruning with more than one execution is refused.

A resumed trial keeps its finished executions (their attrs) and continues the interrupted
one from its own resume point.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sweep.core.direction import Direction
from sweep.core.record import CURVE, TrialRecord, execution_key, from_trial, write
from sweep.store.trials import stored as stored_trial
from sweep.train.trial import TrialJob, run_trial

if TYPE_CHECKING:
    import optuna

SEED_LIMIT = 2**31


def execution_seed(seed: int | None, execution: int) -> int | None:
    """Execution 0 uses the trial's seed; execution e > 0 a seed derived from (seed, e)."""
    if seed is None or execution == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{execution}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_LIMIT


class ExecutionTrial:
    """The Optuna trial as one execution sees it: the same hyperparameters (suggestions
    pass through), its own user attrs (kept in ``execution_<e>``), and reports to Optuna
    from the first execution only."""

    def __init__(self, trial: optuna.Trial, execution: int) -> None:
        self._trial = trial
        self.execution = execution
        self._key = execution_key(execution)
        self._attrs: dict[str, Any] = dict(trial.user_attrs.get(self._key) or {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._attrs)

    def set_user_attr(self, key: str, value: Any) -> None:
        self._attrs[key] = value
        self._trial.set_user_attr(self._key, dict(self._attrs))

    def frozen(self) -> Any:
        """The stored trial as this execution sees it: its own attrs and curve."""
        stored: Any = copy.copy(stored_trial(self._trial))
        stored.user_attrs = dict(self._attrs)
        curve = self._attrs.get(CURVE) or {}
        stored.intermediate_values = {int(k): float(v) for k, v in curve.items()}
        return stored

    def report(self, value: float, step: int) -> None:
        """Kept as this execution's ``curve`` (what ``sweep compare`` replays); the first
        execution's also goes to Optuna (what pruners and optuna-dashboard see)."""
        curve = dict(self._attrs.get(CURVE) or {})
        curve[str(step)] = float(value)
        self.set_user_attr(CURVE, curve)
        if self.execution == 0:
            self._trial.report(value, step)


def train_trial(job: TrialJob) -> TrialRecord:
    """``run_trial``, or with ``executions_per_trial`` > 1 that many executions of it."""
    settings, trial_dir = job.settings, job.trial_dir
    count = int(getattr(settings, "executions_per_trial", 1))
    if count <= 1:
        return run_trial(job)
    trial = cast("optuna.Trial", job.trial)  # the session's trial: executions are made here
    write(trial, executions=count, monitor=settings.monitor, max_epochs=settings.epochs)
    done: list[dict[str, Any]] = []
    for e in range(count):
        ex, ex_dir = ExecutionTrial(trial, e), trial_dir / "executions" / str(e)
        so_far = from_trial(ex.frozen())
        finished = so_far.stop_reason is not None and so_far.best_score is not None
        if finished and (ex_dir / "best.keras").is_file():
            done.append(ex.user_attrs)  # finished before an interruption: kept
            continue
        run_trial(
            dataclasses.replace(job, trial=ex, trial_dir=ex_dir, seed=execution_seed(job.seed, e))
        )
        done.append(ex.user_attrs)
    return _summarise(trial, done, trial_dir)


def _best_execution(done: list[dict[str, Any]]) -> int:
    """The execution with the best best_score (earliest on ties)."""
    sign = Direction.from_mode(str(done[0]["mode"])).sign
    return min(range(len(done)), key=lambda e: (sign * float(done[e]["best_score"]), e))


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _summarise(trial: optuna.Trial, done: list[dict[str, Any]], trial_dir: Path) -> TrialRecord:
    """The trial's own record: the mean of the best scores, the best execution's model."""
    best = _best_execution(done)
    chosen = done[best]
    ex_dir = trial_dir / "executions" / str(best)
    checkpoint = (trial_dir / "best.keras").resolve()
    history = (trial_dir / "history.csv").resolve()
    _copy_atomic(ex_dir / "best.keras", checkpoint)
    _copy_atomic(ex_dir / "history.csv", history)
    mean = math.fsum(float(d["best_score"]) for d in done) / len(done)
    kept = {k: v for k, v in chosen.items() if k not in ("checkpoint", "resumed_from", CURVE)}
    kept["trial_dir"] = str(trial_dir.resolve())
    notes = [
        f"execution {e}: {d['resume_note']}" for e, d in enumerate(done) if d.get("resume_note")
    ]
    facts: dict[str, Any] = {
        **kept,
        "best_score": mean,
        "best_execution": best,
        "best_execution_score": float(chosen["best_score"]),
        "checkpoint": str(checkpoint),
        "duration_s": round(math.fsum(float(d.get("duration_s", 0.0)) for d in done), 3),
    }
    resumed = max(int(d.get("resumed_from", 0)) for d in done)
    if resumed:
        facts["resumed_from"] = resumed
    if notes:
        facts["resume_note"] = "; ".join(notes)
    write(trial, **facts)
    return from_trial(stored_trial(trial))
