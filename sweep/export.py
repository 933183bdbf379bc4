"""Exporting a trial's best model, with proof: what is written is reloaded and checked
against the table's best_score on the validation data before it is put in place, and
a model card is written beside it. Nothing is overwritten unless asked (--force), and a
failed check leaves nothing behind."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from sweep.atomic import write_text_atomic
from sweep.errors import ConfigError, SweepError
from sweep.plan import PLAN_ATTR, Plan, error_text

FORMATS = ("keras", "savedmodel")
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


def choose_trial(study: Any, number: int | None) -> Any:
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


def output_format(out: Path, fmt: str | None) -> str:
    if fmt is None:
        if out.suffix == ".keras":
            return "keras"
        raise ConfigError(
            f"--out {out}: expected a path ending in .keras, or --format savedmodel for a "
            "TensorFlow SavedModel directory"
        )
    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "keras" and out.suffix != ".keras":
        raise ConfigError(f"--out {out}: the keras format needs a path ending in .keras")
    return fmt


def check_destination(out: Path, *, force: bool, fmt: str = "keras") -> None:
    """Every destination, before anything is written or moved: the export (a file, or a
    folder for savedmodel) and its card (a file)."""
    for target, folder in ((out, fmt == "savedmodel"), (card_path(out), False)):
        if target.exists() and not force:
            raise ConfigError(
                f"--out {out}: {target} exists; pass --force to replace it, or choose another path"
            )
        if target.exists() and target.is_dir() != folder:
            found, wanted = ("a folder", "a file") if target.is_dir() else ("a file", "a folder")
            raise ConfigError(
                f"--out {out}: {target} is {found}, and the export writes {wanted} there; "
                "--force replaces only an earlier export: remove it, or choose another path"
            )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(
            f"--out {out}: expected a writable folder {parent}, found "
            f"{'no such folder' if not parent.is_dir() else 'no write permission'}"
        )


PARTIAL = ".sweep-export-partial"


def staging_path(out: Path, fmt: str) -> Path:
    """Where the export is written, reloaded and checked before it is moved into place:
    beside ``out`` (same filesystem), named for what it is, so that a kill leaves a file
    that says so; the next export to ``out`` removes it."""
    if fmt == "keras":
        return out.with_name(f".{out.stem}{PARTIAL}.keras")  # Keras picks the format by suffix
    return out.with_name(f".{out.name}{PARTIAL}")


def remove_partial(staged: Path) -> None:
    if staged.is_dir() and not staged.is_symlink():
        shutil.rmtree(staged)
    elif staged.exists() or staged.is_symlink():
        staged.unlink()


def card_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def fingerprint(*arrays: Any) -> str:
    """sha256 over the bytes, shapes and dtypes of the arrays (dicts and lists walked)."""
    digest = hashlib.sha256()

    def feed(a: Any) -> None:
        if a is None:
            digest.update(b"none")
        elif isinstance(a, dict):
            for key in sorted(a):
                digest.update(str(key).encode())
                feed(a[key])
        elif isinstance(a, list | tuple):
            for item in a:
                feed(item)
        else:
            arr = np.ascontiguousarray(a)
            digest.update(f"{arr.dtype}{arr.shape}".encode())
            digest.update(arr.tobytes())

    for a in arrays:
        feed(a)
    return f"sha256:{digest.hexdigest()}"


FINGERPRINT_ATTR = "validation_fingerprint"


def check_same_data(study: Any, data: Any) -> None:
    """The validation data must be what the sweep trained on (recorded when it started)."""
    recorded = study.user_attrs.get(FINGERPRINT_ATTR)
    if recorded is not None and recorded != fingerprint(data.x_val, data.y_val):
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


def _score(model: Any, x: Any, y: Any, metric: str, batch_size: int) -> float:
    logs = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    return float(logs[metric])


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def export(
    study: Any,
    *,
    trial_number: int | None,
    out: Path,
    fmt: str | None,
    force: bool,
    space: Any = None,
) -> Exported:
    """``space``: the study's SearchSpace if already loaded (functions from sweep.run)."""
    import keras

    from sweep.plan import load_checked_data, load_space_for

    fmt = output_format(out, fmt)
    check_destination(out, force=force, fmt=fmt)
    trial = choose_trial(study, trial_number)
    attrs = trial.user_attrs
    checkpoint = attrs.get("checkpoint")
    if not checkpoint or not Path(checkpoint).is_file():
        raise ConfigError(
            f"trial {trial.number}: its checkpoint {checkpoint or '(none)'} is gone "
            "(deleted by --keep-checkpoints, or moved); export another trial with --trial N"
        )
    monitor = str(attrs["monitor"])
    if not monitor.startswith("val_"):
        raise ConfigError(
            f"trial {trial.number}: monitor {monitor!r} is a training metric, which can't be "
            "reproduced by evaluating the saved model; export verifies val_* monitors only"
        )
    plan_text = study.user_attrs.get(PLAN_ATTR)
    if plan_text is None:
        raise ConfigError(f"study {study.study_name!r} has no sweep plan; it was not made by sweep")
    if space is None:
        space = load_space_for(Plan.from_json(plan_text, storage=""))
    data = load_checked_data(space)
    if data.x_val is None:
        raise ConfigError(f"search space {space.path}: no validation data to verify against")
    check_same_data(study, data)
    metric = monitor.removeprefix("val_")
    batch = int(attrs.get("batch_size") or 32)
    recorded = float(attrs["best_score"])
    from_fit = attrs.get("objective_source") == "fit"

    def verified_score(candidate: Any, what: str) -> float:
        """``candidate``'s score on the validation data; it must be the table's best_score."""
        try:
            score = _score(candidate, data.x_val, data.y_val, metric, batch)
        except Exception as exc:
            if space.fit is None:
                raise
            raise ConfigError(
                f"trial {trial.number}: its model cannot be evaluated on load_data()'s "
                f"validation data ({error_text(exc)}); the HyperModel's fit changes the data "
                f"before training (resizing, for example), so export cannot verify it; load "
                f"{checkpoint} with keras.saving.load_model instead"
            ) from None
        if not _same(score, recorded):
            if from_fit:
                raise ConfigError(
                    f"trial {trial.number}: its best_score is what hypermodel.fit returned "
                    f"(objective_source fit), and evaluating the model gives {monitor}="
                    f"{score:.8g}, not {recorded:.8g}; export verifies only scores that "
                    f"model.evaluate reproduces: load {checkpoint} with keras.saving.load_model"
                )
            raise VerificationError(
                f"{what} scores {monitor}={score:.8g} on the validation data, the table says "
                f"{recorded:.8g}; not exported"
            )
        return score

    model = keras.saving.load_model(checkpoint, safe_mode=True)
    score = verified_score(model, f"trial {trial.number}: its checkpoint")
    serving_diff: float | None = None
    staged = staging_path(out, fmt)
    remove_partial(staged)  # a kill during an earlier export left it
    try:
        if fmt == "keras":
            model.save(staged)
            reloaded = keras.saving.load_model(staged, safe_mode=True)
            verified = verified_score(reloaded, f"the exported {out.name}")
        else:
            model.export(str(staged), format="tf_saved_model", verbose=False)
            serving_diff = _check_savedmodel(model, staged, data.x_val, batch)
            verified = score
        test_score = test_scores(model, data, batch) if data.has_test else None
        _move_into_place(staged, out)
    finally:
        remove_partial(staged)
    card = {
        "study": study.study_name,
        "trial": trial.number,
        "params": trial.params,
        "monitor": monitor,
        "mode": attrs.get("mode"),
        "best_score": recorded,
        "verified_score": verified,
        "serving_max_abs_diff": serving_diff,
        "best_epoch": attrs.get("best_epoch"),
        "stop_epoch": attrs.get("stop_epoch"),
        "max_epochs": attrs.get("max_epochs"),
        "patience": attrs.get("patience"),
        "min_delta": attrs.get("min_delta"),
        "test_score": test_score,
        "format": fmt,
        "source_checkpoint": checkpoint,
        "data_fingerprint": {
            "train": fingerprint(data.x_train, data.y_train),
            "validation": fingerprint(data.x_val, data.y_val),
        },
        "versions": _versions(),
        "exported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    write_text_atomic(card_path(out), json.dumps(card, indent=2, default=str) + "\n")
    return Exported(
        path=out,
        card=card_path(out),
        trial=trial.number,
        monitor=monitor,
        best_score=recorded,
        verified_score=verified,
        test_score=test_score,
        format=fmt,
    )


def test_scores(model: Any, data: Any, batch: int) -> dict[str, float]:
    """The model's metrics on the test pair ``load_data`` returned."""
    logs = model.evaluate(data.x_test, data.y_test, batch_size=batch, verbose=0, return_dict=True)
    return {k: float(v) for k, v in logs.items()}


def best_on_test(study: Any, data: Any) -> tuple[int, dict[str, float]] | None:
    """The best complete trial's checkpoint scored on the test data, after a sweep (as the
    tutorials report it); also kept on the study as ``test_score``. None without test
    data or a complete trial with its checkpoint."""
    import keras

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not data.has_test or not complete:
        return None
    best = study.best_trial
    checkpoint = best.user_attrs.get("checkpoint")
    if not checkpoint or not Path(checkpoint).is_file():
        return None
    model = keras.saving.load_model(checkpoint, safe_mode=True)
    scores = test_scores(model, data, int(best.user_attrs.get("batch_size") or 32))
    study.set_user_attr("test_score", {"trial": best.number, "scores": scores})
    return best.number, scores


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


def _move_into_place(staged: Path, out: Path) -> None:
    if staged.is_dir():
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(staged, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, out)
