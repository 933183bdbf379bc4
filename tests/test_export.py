"""Exporting the winner with proof: every format reloads to the recorded score, a model
card is written, and every refusal is one line, exit 2, with nothing overwritten."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
import tensorflow as tf
from conftest import run_cli, write_space
from keras.src.trainers.data_adapters.array_slicing import train_validation_split

from sweep.space.files import load_space

FORMATS = {"keras": "winner.keras", "savedmodel": "winner_savedmodel"}


def study_of(folder: Path) -> optuna.Study:
    db = folder / "results" / "tiny" / "study.db"
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")


def validation(space: Path) -> tuple[np.ndarray, np.ndarray]:
    loaded = load_space(str(space))
    x, y = loaded.load_data()
    _, (xv, yv) = train_validation_split((x, y), loaded.settings.validation_split)
    return np.asarray(xv), np.asarray(yv)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_export_reloads_to_the_recorded_score(
    finished_sweep: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / FORMATS[fmt]
    args = ["export", "tiny", "--out", str(out), "--results", str(finished_sweep / "results")]
    code, printed, err = run_cli(*args, "--format", fmt, cwd=tmp_path)
    assert code == 0, err
    best = study_of(finished_sweep).best_trial
    card = json.loads(out.with_name(out.name + ".json").read_text())
    assert card["trial"] == best.number and card["params"] == best.params
    assert card["best_score"] == best.user_attrs["best_score"]
    for key in ("best_epoch", "stop_epoch", "patience", "min_delta", "monitor", "mode"):
        assert card[key] == best.user_attrs[key], key
    assert card["data_fingerprint"]["train"].startswith("sha256:")
    assert card["versions"]["tensorflow"] == tf.__version__ and card["exported_at"]
    assert f"exported trial {best.number} ({fmt})" in printed
    xv, yv = validation(finished_sweep / "tiny.py")
    checkpoint = keras.saving.load_model(best.user_attrs["checkpoint"])
    if fmt == "keras":  # independently: reload what was written, evaluate, compare
        model = keras.saving.load_model(out, safe_mode=True)
        logs = model.evaluate(xv, yv, batch_size=32, verbose=0, return_dict=True)
        assert logs["loss"] == pytest.approx(best.user_attrs["best_score"], rel=1e-5)
    else:  # the serving signature predicts what the Keras model predicts
        serve = tf.saved_model.load(str(out)).signatures["serving_default"]
        got = next(iter(serve(tf.constant(xv)).values())).numpy()
        np.testing.assert_allclose(got, checkpoint.predict(xv, verbose=0), atol=1e-5)


def test_export_another_trial_and_a_test_score(tmp_path: Path) -> None:
    extra = """

_load = load_data


def load_data():
    x, y = _load()
    return (x[:200], y[:200]), (x[200:220], y[200:220]), (x[220:], y[220:])
"""
    space = write_space(tmp_path, settings={"trials": 2, "epochs": 2}, extra=extra)
    assert run_cli("run", str(space), cwd=tmp_path)[0] == 0
    out = tmp_path / "second.keras"
    code, printed, err = run_cli("export", "tiny", "--out", str(out), "--trial", "1", cwd=tmp_path)
    assert code == 0, err
    card = json.loads((tmp_path / "second.keras.json").read_text())
    assert card["trial"] == 1
    assert set(card["test_score"]) == {"loss", "accuracy"}  # printed and recorded...
    assert "test data (not used for selection): " in printed
    assert card["best_score"] == study_of(tmp_path).trials[1].user_attrs["best_score"]


def assert_refused(result: tuple[int, str, str], *words: str) -> None:
    code, _, err = result
    assert code == 2, err
    assert err.startswith("sweep: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


def test_refusals_leave_everything_as_it_was(finished_sweep: Path, tmp_path: Path) -> None:
    results = ["--results", str(finished_sweep / "results")]
    existing = tmp_path / "model.keras"
    existing.write_bytes(b"someone's model")
    assert_refused(
        run_cli("export", "tiny", "--out", str(existing), *results, cwd=tmp_path),
        "exists",
        "--force",
    )
    assert existing.read_bytes() == b"someone's model"
    assert_refused(
        run_cli(
            "export", "tiny", "--out", str(tmp_path / "no" / "m.keras"), *results, cwd=tmp_path
        ),
        "writable folder",
        "no such folder",
    )
    assert_refused(
        run_cli("export", "tiny", "--out", str(tmp_path / "m.h5"), *results, cwd=tmp_path),
        ".keras",
        "savedmodel",
    )
    assert_refused(
        run_cli(
            "export",
            "tiny",
            "--out",
            str(tmp_path / "m.keras"),
            "--trial",
            "99",
            *results,
            cwd=tmp_path,
        ),
        "--trial 99",
        "no such trial",
    )
    # with --force it is replaced
    code, _, err = run_cli(
        "export", "tiny", "--out", str(existing), "--force", *results, cwd=tmp_path
    )
    assert code == 0, err
    keras.saving.load_model(existing, safe_mode=True)


def test_no_complete_trial_and_a_deleted_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "empty"
    folder.mkdir(parents=True)
    optuna.create_study(study_name="empty", storage=f"sqlite:///{folder / 'study.db'}")
    assert_refused(
        run_cli("export", "empty", "--out", str(tmp_path / "m.keras"), cwd=tmp_path),
        "complete trial",
        "found none",
    )
    space = write_space(tmp_path, settings={"trials": 1, "epochs": 1})
    assert run_cli("run", str(space), "--keep-checkpoints", "0", cwd=tmp_path)[0] == 0
    assert_refused(
        run_cli("export", "tiny", "--out", str(tmp_path / "m.keras"), cwd=tmp_path),
        "checkpoint",
        "--keep-checkpoints",
        "--trial",
    )
    assert not (tmp_path / "m.keras").exists()


def test_a_checkpoint_that_does_not_reproduce_its_score_is_not_exported(tmp_path: Path) -> None:
    space = write_space(tmp_path, settings={"trials": 2, "epochs": 2})
    assert run_cli("run", str(space), "--seed", "2", cwd=tmp_path)[0] == 0
    first, second = study_of(tmp_path).trials
    assert first.value != second.value
    # someone swapped the files: trial 0's checkpoint now holds trial 1's model
    shutil.copy(second.user_attrs["checkpoint"], first.user_attrs["checkpoint"])
    out = tmp_path / "m.keras"
    code, _, err = run_cli("export", "tiny", "--out", str(out), "--trial", "0", cwd=tmp_path)
    assert code == 1 and "not exported" in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "m.keras.json").exists()
