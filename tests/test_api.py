"""The Python API: sweep.run / sweep.load / Study, on real sweeps (tiny models)."""

from __future__ import annotations

import argparse
import inspect
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

import sweep

NO_TF_PROBE = """
import json, sys
import sweep
lazy = ("tensorflow", "keras", "sweep.api.entry", "sweep.api.study")
light = sorted(m for m in lazy if m in sys.modules)
s = sweep.load("tiny")
table = s.table()
records = s.trials
history = s.history(records[0].number)
compared = s.compare(patience=[1, 2], min_delta=[0.0])
heavy = sorted(m for m in ("tensorflow", "keras", "keras_tuner") if m in sys.modules)
print(json.dumps({
    "light": light, "heavy": heavy, "columns": list(table.columns), "rows": len(table),
    "first": int(table["trial"].iloc[0]), "best": s.best.number,
    "states": [r.state for r in records], "history": len(history),
    "stop_epoch": records[0].stop_epoch, "compare_rows": len(compared),
    "compare_columns": list(compared.columns), "status": s.status().counts,
}))
"""


def test_load_reads_a_study_without_tensorflow(finished_sweep: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", NO_TF_PROBE],
        cwd=finished_sweep,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["light"] == []  # import sweep loads no API module yet
    assert got["heavy"] == []
    header = (finished_sweep / "results/tiny/trials.csv").read_text().splitlines()[0]
    assert got["columns"] == header.split(",")
    assert got["rows"] == 3 and got["first"] == got["best"]
    assert got["states"] == ["complete"] * 3
    assert got["history"] == got["stop_epoch"]
    stopping = (finished_sweep / "results/tiny/stopping.csv").read_text().splitlines()
    assert got["compare_rows"] == len(stopping) - 1 == 2
    assert got["compare_columns"] == stopping[0].split(",")
    assert got["status"] == {"complete": 3}


def test_an_unknown_keyword_names_the_closest_one() -> None:
    with pytest.raises(TypeError) as err:
        sweep.run(trails=3)  # type: ignore[call-arg]
    assert (
        str(err.value)
        == "run() got an unexpected keyword argument 'trails'; did you mean 'trials'?"
    )
    with pytest.raises(TypeError, match="load\\(\\) got an unexpected keyword argument 'result'"):
        sweep.load("x", result="r")  # type: ignore[call-arg]


def test_configuration_errors_are_config_errors(tmp_path: Path) -> None:
    assert sweep.ConfigError is sweep.core.errors.ConfigError
    cases: list[tuple[dict[str, Any], str]] = [
        ({"jobs": 0}, "--jobs: expected a whole number >= 1, got 0"),
        ({"timeout": "soon"}, "--timeout: expected a duration like 90s, 30m, 8h or 1h30m, got"),
        ({"backend": "ray"}, "--backend: expected loky or dask, got 'ray'"),
        (
            {"build_model": len, "load_data": dict},
            "sweep.run(build_model=..., load_data=...): expected study='NAME'",
        ),
        (
            {"build_model": len, "study": "x"},
            "sweep.run(): expected load_data= a function returning (x, y)",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(sweep.ConfigError) as err:
            sweep.run(results=tmp_path, progress=False, **kwargs)
        assert str(err.value).startswith(message), str(err.value)
        assert "\n" not in str(err.value)


def test_epochs_zero_is_the_clis_message(tiny_space: Path, tmp_path: Path) -> None:
    with pytest.raises(sweep.ConfigError) as err:
        sweep.run(tiny_space, epochs=0, results=tmp_path / "r", progress=False)
    code, _, stderr = run_cli("run", str(tiny_space), "--epochs", "0", cwd=tmp_path)
    assert str(err.value) == "--epochs: expected a whole number >= 1, got 0"
    assert code == 2 and "argument --epochs: expected a whole number >= 1, got 0" in stderr


def load_data() -> Any:
    import numpy as np

    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 2.0, size=(3, 8))
    y = rng.integers(0, 3, size=240)
    x = (centers[y] + rng.normal(0.0, 1.5, size=(240, 8))).astype("float32")
    return x, y.astype("int64")


def build_model(hp: Any) -> Any:
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(8,)),
            keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_run_from_functions_then_continue_export_and_worker(tmp_path: Path) -> None:
    results = tmp_path / "results"
    common: dict[str, Any] = {
        "build_model": build_model,
        "load_data": load_data,
        "monitor": "val_accuracy",
        "epochs": 3,
        "validation_split": 0.25,
        "study": "cells",
        "results": results,
        "seed": 3,
        "progress": False,
    }
    study = sweep.run(trials=2, **common)
    table = study.table()
    header = (results / "cells/trials.csv").read_text().splitlines()[0].split(",")
    assert list(table.columns) == header
    assert len(table) == 2 and table["state"].tolist() == ["complete", "complete"]
    first = {r.number: r for r in study.trials}

    again = sweep.run(trials=3, **common)  # the same call, one more trial: it continues
    assert len(again.table()) == 3
    assert {r.number: r for r in again.trials if r.number < 2} == first
    best = again.best
    assert best.monitor == "val_accuracy" and best.mode == "max"
    assert best.best_score == max(r.best_score or 0 for r in again.trials)
    assert len(again.history(best.number)) == best.stop_epoch

    x, y = load_data()
    x_val, y_val = x[180:], y[180:]
    scores = again.best_model().evaluate(x_val, y_val, verbose=0, return_dict=True)
    assert math.isclose(scores["accuracy"], best.best_score or 0, abs_tol=1e-6)
    card = again.export(tmp_path / "winner.keras")
    assert card["trial"] == best.number and (tmp_path / "winner.keras").is_file()
    assert again.report() == results / "cells/report.html"

    loaded = sweep.load("cells", results=results)
    assert loaded.trials == again.trials
    with pytest.raises(sweep.ConfigError, match="its functions are not stored on the study"):
        loaded.export(tmp_path / "other.keras")
    url = f"sqlite:///{(results / 'cells/study.db').resolve()}"
    code, _, err = run_cli("worker", "cells", "--storage", url, cwd=tmp_path)
    assert code == 2
    assert err.strip() == (
        "sweep: error: study 'cells' was made by sweep.run(build_model=..., load_data=...): "
        "its functions live in that notebook or script, not here; continue it with the "
        "same sweep.run(...) call"
    )


def test_work_joins_a_study_as_sweep_worker_does(finished_sweep: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(finished_sweep, folder)
    url = f"sqlite:///{folder / 'results/tiny/study.db'}"
    with pytest.raises(sweep.ConfigError, match=r"sweep.work\(\): expected the study's storage"):
        sweep.work("tiny", results=folder / "results", progress=False)
    joined = sweep.work("tiny", storage=url, results=folder / "results", progress=False)
    log = (folder / "results/tiny/sweep.log").read_text()
    assert "worker joined study tiny" in log and "worker done: 3/3 trials finished" in log
    assert len(joined.table()) == 3


# What one face has and the other can't: functions instead of a file (the API), and how
# the terminal shows progress (--plain: plain lines instead of the live display; the
# API's progress=False: nothing at all). Everything else is a field of Settings or RunArgs.
API_ONLY = {"build_model", "load_data", "hypermodel", "callbacks", "progress"}
CLI_ONLY = {"plain"}


def _subparser(name: str) -> argparse.ArgumentParser:
    from sweep.cli.arguments import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser: argparse.ArgumentParser = commands.choices[name]
    return parser


def _defined() -> dict[str, tuple[object, str]]:
    """sweep run's options as defined once: name -> sweep.run's (default, annotation). A
    setting's keyword defaults to None (the space's own) and so also takes None."""
    from dataclasses import fields

    from sweep.core.options import OPTION, RunArgs
    from sweep.space.files import Settings

    out: dict[str, tuple[object, str]] = {f.name: (f.default, str(f.type)) for f in fields(RunArgs)}
    for f in fields(Settings):
        typed = str(f.type) if str(f.type).endswith("| None") else f"{f.type} | None"
        out[f.name] = (None, f.metadata[OPTION].keyword or typed)
    return out


def test_every_sweep_run_flag_is_a_sweep_run_keyword_and_back() -> None:
    flags = {a.dest.removeprefix("set_") for a in _subparser("run")._actions}
    keywords = set(inspect.signature(sweep.run).parameters)
    assert flags - {"help"} - CLI_ONLY == set(_defined()) == keywords - API_ONLY
    assert flags & API_ONLY == set() and keywords & CLI_ONLY == set()


def test_sweep_runs_signature_is_the_options_fields() -> None:
    """Written out for help() and IDEs, it has each field's name, default and type."""
    params = inspect.signature(sweep.run).parameters
    got = {name: (p.default, p.annotation) for name, p in params.items() if name not in API_ONLY}
    assert got == _defined()
    assert params["space"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(params.values())[1:])


def test_the_flags_take_the_fields_defaults_and_settings_none() -> None:
    """Not given, a run option is its field's default (a path parsed, as argparse does),
    a setting None: the space's own stands."""
    from dataclasses import fields

    from sweep.cli.arguments import build_parser, requested
    from sweep.core.options import RunArgs

    args = build_parser().parse_args(["run"])
    request, settings = requested(args)
    results = RunArgs().results
    assert request == RunArgs(results=Path(results))
    assert set(settings.values()) == {None}
    for f in fields(RunArgs):
        if f.name != "results":
            assert getattr(args, f.name) == f.default


def test_sweep_worker_shares_its_flags_with_sweep_work() -> None:
    from dataclasses import fields

    from sweep.core.options import RunArgs

    flags = {a.dest for a in _subparser("worker")._actions} - {"help", "study"}
    assert flags <= {f.name for f in fields(RunArgs)}
    assert flags == set(inspect.signature(sweep.work).parameters) - {"study", "progress"}


@pytest.mark.parametrize(
    ("keyword", "value", "found"),
    [
        ("shuffle_buffer", 0, "--shuffle-buffer: expected"),
        ("max_retries_per_trial", -1, "--max-retries-per-trial: expected"),
    ],
)
def test_the_settings_only_the_cli_had_reach_the_settings_from_sweep_run(
    tmp_path: Path, keyword: str, value: int, found: str
) -> None:
    """Checked as the space's settings are: the keyword reached them (nothing trains)."""
    from conftest import write_space

    with pytest.raises(sweep.ConfigError, match=found) as info:
        sweep.run(write_space(tmp_path), results=tmp_path / "res", **{keyword: value})
    assert "\n" not in str(info.value)
