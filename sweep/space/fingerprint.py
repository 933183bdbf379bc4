"""What a rerun must match to resume an interrupted trial.

Two things, checked before the trial is claimed or anything is told to the study, so
that a refused rerun changes nothing:

- the settings the trial was started with (``started_with``: its max_epochs,
  patience, ...): a resumed trial continues EarlyStopping's counters and the epoch
  count, which only make sense under the same values;
- the space's fingerprint (``space_fingerprint``): the sha256 of the space file's
  source and the settings that shape a trial, recorded on the study and on each
  trial (user attr ``space_fingerprint``). An edited file, or another file under the
  same study name, would continue the trial's weights with another model; that is
  refused unless the run says ``--allow-space-change`` (the trial is then marked
  ``space_changed``).

No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sweep.core.direction import Direction
from sweep.core.errors import ConfigError
from sweep.core.record import from_trial, recorded, started_facts
from sweep.space.files import FUNCTIONS_PATH, SearchSpace, Settings
from sweep.space.hypermodel import fit_kwargs

# Settings about the sweep as a whole, not one trial: a rerun may change them freely
# (more --trials, another sampler or pruner for the trials still to come).
SWEEP_LEVEL = frozenset(
    {"trials", "sampler", "pruner", "first_trial", "tensorboard", "mlflow", "mlflow_artifacts"}
)


class ResumeRefused(ConfigError):
    """A rerun that may not resume an interrupted trial; nothing was changed."""


def _source_digest(space: SearchSpace) -> str:
    """sha256 of the space file, or of the functions' source for ``sweep.run(build_model=...)``
    (a function whose source can't be read counts by its qualified name)."""
    if space.path != FUNCTIONS_PATH:
        return hashlib.sha256(space.path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for function in (space.build_model, space.load_data, space.fit, space.callbacks):
        if function is None:
            continue
        try:
            text = inspect.getsource(function)
        except (OSError, TypeError):
            text = getattr(function, "__qualname__", repr(type(function)))
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def space_fingerprint(space: SearchSpace) -> dict[str, Any]:
    """The space's source hash and effective per-trial settings (JSON-ready)."""
    source = _source_digest(space)
    settings = {
        f.name: getattr(space.settings, f.name)
        for f in fields(Settings)
        if f.name not in SWEEP_LEVEL
    }
    return {"source": source, "path": str(space.path.resolve()), "settings": settings}


def fingerprint_change(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What differs between two fingerprints, in words; None if nothing does."""
    parts = []
    if old.get("source") != new.get("source"):
        where = (
            new["path"] if old.get("path") == new["path"] else f"{old.get('path')} -> {new['path']}"
        )
        parts.append(
            f"the space file's source changed ({where}, sha256 {str(old.get('source'))[:12]} "
            f"-> {new['source'][:12]})"
        )
    before, after = old.get("settings", {}), new["settings"]
    changed = [k for k in after if k in before and before[k] != after[k]]
    if changed:
        listed = ", ".join(f"{k} {before[k]!r} -> {after[k]!r}" for k in changed)
        parts.append(f"settings changed: {listed}")
    return "; ".join(parts) or None


@dataclass(frozen=True, kw_only=True)
class RerunCheck:
    """This run's side of the comparison with an interrupted trial."""

    space: SearchSpace
    mode: Direction
    calibrate: int  # trials numbered below this train to max_epochs
    artifacts: Path  # trials/<n>/ are here
    allow_space_change: bool = False

    def has_resume_point(self, number: int) -> bool:
        return (self.artifacts / "trials" / str(number) / "resume" / "state.json").exists()

    def refusal(self, trial: Any) -> str | None:
        """Why this run may not resume ``trial`` (a FrozenTrial), or None."""
        if not self.has_resume_point(trial.number):
            return None  # it starts again from scratch: nothing to keep consistent
        expected = started_with(
            self.space,
            mode=self.mode,
            calibration=trial.number < self.calibrate,
            params=trial.params,
        )
        conflict = settings_conflict(trial.number, recorded(trial), expected)
        if conflict is not None:
            return conflict
        return self.space_refusal(trial)

    def space_change(self, trial: Any) -> str | None:
        old = from_trial(trial).space_fingerprint
        if not isinstance(old, dict) or not self.has_resume_point(trial.number):
            return None  # started before fingerprints were recorded, or nothing to resume
        return fingerprint_change(old, space_fingerprint(self.space))

    def space_refusal(self, trial: Any) -> str | None:
        change = self.space_change(trial)
        if change is None or self.allow_space_change:
            return None
        return (
            f"trial {trial.number} was interrupted under another version of its space: "
            f"{change}; run it with the same space to resume it, use a new --study NAME, "
            "or pass --allow-space-change to resume it anyway (the table marks it space_changed)"
        )

    def check(self, trial: Any) -> None:
        """Raise ``ResumeRefused`` if this run may not resume ``trial``."""
        why = self.refusal(trial)
        if why is not None:
            raise ResumeRefused(why)


def started_with(
    space: SearchSpace,
    *,
    mode: Direction,
    calibration: bool,
    params: dict[str, Any],
    max_epochs: int | None = None,
) -> dict[str, Any]:
    """The settings a trial records when it starts, and must match when it resumes
    (``max_epochs``: where the HyperModel's fit chose its epochs, the recorded ones)."""
    settings = space.settings
    patience, min_delta = settings.patience, settings.min_delta
    if calibration:
        patience, min_delta = settings.epochs, 0.0
    else:  # a list makes it a hyperparameter: the trial's own value
        if isinstance(patience, list):
            patience = params.get("patience", patience)
        if isinstance(min_delta, list):
            min_delta = params.get("min_delta", min_delta)
    return started_facts(
        monitor=settings.monitor,
        mode=str(mode),  # as recorded
        max_epochs=settings.epochs if max_epochs is None else max_epochs,
        patience=patience,
        min_delta=min_delta,
        calibration=calibration,
        baseline=settings.baseline,
        start_from_epoch=settings.start_from_epoch,
        batch_size=settings.batch_size
        if space.fit is None
        else fit_kwargs(space).get("batch_size"),
    )


def settings_conflict(number: int, attrs: dict[str, Any], expected: dict[str, Any]) -> str | None:
    for key, value in expected.items():
        if key in attrs and attrs[key] != value:
            return (
                f"trial {number} was started with {key}={attrs[key]!r}, this run has "
                f"{value!r}; resume it with the same settings, or use a new --study"
            )
    return None
