"""Exporting a trial's best model, with proof: what is written is reloaded and checked
against the table's best_score on the validation data before it is put in place, and
a model card is written beside it. Nothing is overwritten unless asked (--force), and a
failed check leaves nothing behind."""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sweep.core.atomic import write_text_atomic
from sweep.core.errors import ConfigError, SweepError, error_text
from sweep.core.plan import Plan
from sweep.core.record import StudyAttr, TrialRecord, from_trial, read_study
from sweep.space.data import Data, data_fingerprint, fingerprint
from sweep.views.destination import (
    card_path,
    check_destination,
    move_into_place,
    output_format,
    remove_partial,
    staging_path,
)

if TYPE_CHECKING:  # Optuna is imported where a study is opened, not by importing this
    import optuna
    from optuna.trial import FrozenTrial

    from sweep.space.files import SearchSpace

TOLERANCE = 1e-5


class VerificationError(SweepError):
    """What was written does not reproduce the recorded score: not exported."""

    exit_code = 1


@dataclass(frozen=True)
class Exported:
    path: Path
    card: Path
    trial: int
    monitor: str
    best_score: float
    verified_score: float
    test_score: dict[str, float] | None
    format: str
    executions: int = 1  # executions_per_trial: best_score is the mean of their best scores
    best_execution: int | None = None  # the execution whose model this is (executions > 1)
    best_execution_score: float | None = None  # its own best score: what was verified

    @property
    def expected_score(self) -> float:
        """The score the exported model must reproduce: its execution's own, or the trial's."""
        if self.executions > 1 and self.best_execution_score is not None:
            return self.best_execution_score
        return self.best_score


def choose_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        raise ConfigError(
            f"study {study.study_name!r}: expected a complete trial to export, found none; "
            "run the sweep first"
        )
    if number is None:
        return study.best_trial
    for t in study.get_trials(deepcopy=False):
        if t.number == number:
            if t.state.name != "COMPLETE":
                raise ConfigError(
                    f"--trial {number}: expected a complete trial, it is "
                    f"{t.state.name.lower()}; pick one from 'sweep table {study.study_name}'"
                )
            return t
    raise ConfigError(
        f"--trial {number}: no such trial in study {study.study_name!r} "
        f"(it has 0..{len(study.get_trials(deepcopy=False)) - 1})"
    )


def check_same_data(study: optuna.Study, data: Data) -> None:
    """The validation data must be what the sweep trained on (recorded when it started)."""
    from sweep.space.inputs import InputKind

    recorded = read_study(study, StudyAttr.VALIDATION_FINGERPRINT)
    arrays = data.kinds[1] is InputKind.ARRAYS
    if recorded is not None and arrays and recorded != fingerprint(data.x_val, data.y_val):
        raise ConfigError(
            f"study {study.study_name!r}: load_data() returns other validation data than "
            "when the sweep ran (unseeded random data?), so the checkpoint cannot be "
            "verified; make load_data() return the same data each call "
            "(np.random.default_rng(0)) and run the sweep again"
        )


def _versions() -> dict[str, str]:
    out = {}
    for name in ("tensorflow", "keras", "optuna", "keras-tuner", "sweep"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def export(
    study: optuna.Study,
    *,
    trial_number: int | None,
    out: Path,
    fmt: str | None,
    force: bool,
    space: SearchSpace | None = None,
) -> Exported:
    """Export trial ``trial_number``'s best model (None: the best trial's) to ``out``,
    verified, with its model card beside it: the checks, the checkpoint's verified score,
    the save (verified again), the card. ``space``: the study's SearchSpace if already
    loaded (functions from sweep.run)."""
    import keras

    fmt = output_format(out, fmt)
    check_destination(out, force=force, fmt=fmt)
    trial = choose_trial(study, trial_number)
    check = _Verification.of(study, from_trial(trial), space)
    model = keras.saving.load_model(check.checkpoint, safe_mode=True)
    score = check.score(model, f"trial {trial.number}: its checkpoint")
    verified, serving_diff, test_score = _save(check, model, score, out=out, fmt=fmt)
    rec = check.rec
    done = Exported(
        path=out,
        card=card_path(out),
        trial=trial.number,
        monitor=check.monitor,
        best_score=check.recorded,
        verified_score=verified,
        test_score=test_score,
        format=fmt,
        executions=rec.executions,
        best_execution=rec.best_execution,
        best_execution_score=check.own,
    )
    card = _card(study.study_name, check, done, serving_diff)
    write_text_atomic(card_path(out), json.dumps(card, indent=2, default=str) + "\n")
    return done


@dataclass(frozen=True)
class _Verification:
    """What an exported model must reproduce: the table's best_score (its execution's own,
    where the trial trained several), evaluated on the validation data the sweep used."""

    rec: TrialRecord
    checkpoint: Path
    space: SearchSpace
    data: Data

    @classmethod
    def of(cls, study: optuna.Study, rec: TrialRecord, space: SearchSpace | None) -> _Verification:
        """The checks before any model is loaded: the trial's checkpoint is there, its
        monitor is a validation metric, the study has its plan, and the validation data is
        the sweep's."""
        from sweep.space.loading import load_checked_data, load_space_for

        checkpoint = rec.checkpoint
        if not checkpoint or not checkpoint.is_file():
            raise ConfigError(
                f"trial {rec.number}: its checkpoint {checkpoint or '(none)'} is gone "
                "(deleted by --keep-checkpoints, or moved); export another trial with --trial N"
            )
        monitor = str(rec.monitor)
        if not monitor.startswith("val_"):
            raise ConfigError(
                f"trial {rec.number}: monitor {monitor!r} is a training metric, which can't be "
                "reproduced by evaluating the saved model; export verifies val_* monitors only"
            )
        plan_text = read_study(study, StudyAttr.PLAN)
        if plan_text is None:
            raise ConfigError(
                f"study {study.study_name!r} has no sweep plan; it was not made by sweep"
            )
        if space is None:
            space = load_space_for(Plan.from_json(plan_text, storage=""))
        data = load_checked_data(space)
        if data.x_val is None:
            raise ConfigError(f"search space {space.path}: no validation data to verify against")
        check_same_data(study, data)
        return cls(rec=rec, checkpoint=checkpoint, space=space, data=data)

    @property
    def monitor(self) -> str:
        return str(self.rec.monitor)

    @property
    def batch(self) -> int:
        return int(self.rec.batch_size or 32)

    @property
    def recorded(self) -> float:
        """The trial's best_score, as the table has it."""
        return float(self.rec.best_score)  # type: ignore[arg-type]

    @property
    def own(self) -> float | None:
        """The model's execution's own best score, where the trial trained several."""
        return self.rec.best_execution_score if self.rec.executions > 1 else None

    def score(self, candidate: Any, what: str) -> float:
        """``candidate``'s score on the validation data; it must be the table's best_score."""
        from sweep.train.evaluate import validation_score

        number, monitor, checkpoint = self.rec.number, self.monitor, self.checkpoint
        try:
            score = validation_score(candidate, self.data, monitor.removeprefix("val_"), self.batch)
        except Exception as exc:
            if self.space.fit is None:
                raise
            raise ConfigError(
                f"trial {number}: its model cannot be evaluated on load_data()'s "
                f"validation data ({error_text(exc)}); the HyperModel's fit changes the data "
                f"before training (resizing, for example), so export cannot verify it; load "
                f"{checkpoint} with keras.saving.load_model instead"
            ) from None
        own, recorded = self.own, self.recorded
        expected = recorded if own is None else float(own)  # the model is one execution's
        if _same(score, expected):
            return score
        if self.rec.objective_source == "fit":
            raise ConfigError(
                f"trial {number}: its best_score is what hypermodel.fit returned "
                f"(objective_source fit), and evaluating the model gives {monitor}="
                f"{score:.8g}, not {recorded:.8g}; export verifies only scores that "
                f"model.evaluate reproduces: load {checkpoint} with keras.saving.load_model"
            )
        said = "the table says"
        if own is not None:
            said += f" execution {self.rec.best_execution}"
        raise VerificationError(
            f"{what} scores {monitor}={score:.8g} on the validation data, {said} "
            f"{expected:.8g}; not exported"
        )


def _save(
    check: _Verification, model: Any, score: float, *, out: Path, fmt: str
) -> tuple[float, float | None, dict[str, float] | None]:
    """Write the model where it goes, through a staging path (a failed check leaves nothing
    behind): a .keras file reloaded and verified again, or a SavedModel whose serving
    signature must predict what the model does. Returns the verified score, the serving
    signature's largest difference (SavedModel) and the scores on the test data, if any."""
    import keras

    from sweep.train.evaluate import test_scores

    data, batch = check.data, check.batch
    serving_diff: float | None = None
    staged = staging_path(out, fmt)
    remove_partial(staged)  # a kill during an earlier export left it
    try:
        if fmt == "keras":
            model.save(staged)
            reloaded = keras.saving.load_model(staged, safe_mode=True)
            verified = check.score(reloaded, f"the exported {out.name}")
        else:
            model.export(str(staged), format="tf_saved_model", verbose=False)
            serving_diff = _check_savedmodel(model, staged, _first_inputs(data), batch)
            verified = score
        test_score = test_scores(model, data, batch) if data.has_test else None
        move_into_place(staged, out)
    finally:
        remove_partial(staged)
    return verified, serving_diff, test_score


def _card(
    study_name: str, check: _Verification, done: Exported, serving_diff: float | None
) -> dict[str, Any]:
    """The model card: where the model comes from, how it scored, what made it."""
    rec, data = check.rec, check.data
    return {
        "study": study_name,
        "trial": done.trial,
        "params": rec.params,
        "monitor": done.monitor,
        "mode": rec.mode,
        "best_score": done.best_score,
        "verified_score": done.verified_score,
        **_executions_card(rec),
        "serving_max_abs_diff": serving_diff,
        "best_epoch": rec.best_epoch,
        "stop_epoch": rec.stop_epoch,
        "max_epochs": rec.max_epochs,
        "patience": rec.patience,
        "min_delta": rec.min_delta,
        "test_score": done.test_score,
        "format": done.format,
        "source_checkpoint": str(check.checkpoint),
        "data_fingerprint": {
            "train": data_fingerprint(data, 0),
            "validation": data_fingerprint(data, 1),
        },
        "versions": _versions(),
        "exported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _executions_card(rec: Any) -> dict[str, Any]:
    """What the model card says of a trial trained ``executions_per_trial`` times."""
    if rec.executions <= 1:
        return {}
    return {
        "executions": rec.executions,
        "best_execution": rec.best_execution,
        "best_execution_score": rec.best_execution_score,
        "score_note": (
            f"best_score is the mean of the best scores of {rec.executions} executions "
            f"(executions_per_trial); this model is execution {rec.best_execution}'s, "
            "verified against its own best score (best_execution_score)"
        ),
    }


def _first_inputs(data: Any) -> Any:
    """Validation inputs to compare the serving signature on: the arrays, or one batch."""
    from sweep.space.inputs import InputKind

    if data.kinds[1] is InputKind.ARRAYS:
        return np.asarray(data.x_val[:256])
    from sweep.train.feeds import evaluate_kwargs

    source = evaluate_kwargs(data.kinds[1], data.x_val, None, None, batch_size=32)["x"]
    batch = (
        source[0]
        if hasattr(source, "__getitem__") and not hasattr(source, "element_spec")
        else next(iter(source))
    )
    return np.asarray(batch[0])


def _check_savedmodel(model: Any, path: Path, x: Any, batch: int) -> float:
    """Predictions through the serving signature must match the Keras model's."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures.get("serving_default") or loaded.signatures.get("serve")
    if serve is None:
        raise VerificationError(f"the SavedModel at {path} has no serving signature")
    sample = x[: min(len(x), 256)]
    expected = model.predict(sample, batch_size=batch, verbose=0)
    outputs = serve(tf.constant(sample))
    got = next(iter(outputs.values())).numpy()
    worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else math.inf
    if worst > TOLERANCE:
        raise VerificationError(
            f"the SavedModel's serving signature differs from the Keras model by {worst:.3g} "
            f"(shapes {got.shape} vs {expected.shape}); not exported"
        )
    return worst
