"""Wrong results (issue 23): settings `sweep compare` must refuse, a callback's stop
recorded as such, an `--executions-per-trial` study exported and verified, `--gpus` naming
a GPU that is not there refused, and the device column saying where a trial trained."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

import sweep
from sweep.errors import ConfigError

# --- item 12: sweep compare checks patience and min_delta as sweep run does ---------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--min-delta", "nan", "--min-delta: expected a number >= 0, or a list of them, got [nan]"),
        (
            "--min-delta",
            "0,inf",
            "--min-delta: expected a number >= 0, or a list of them, got [0.0, inf]",
        ),
        (
            "--patience",
            "-1",
            "argument --patience: expected a whole number >= 0, got -1; see 'sweep compare --help'",
        ),
        (
            "--patience",
            "1e99",
            "argument --patience: expected a whole number, got '1e99'; see 'sweep compare --help'",
        ),
    ],
)
def test_compare_cli_refuses_what_run_refuses(
    finished_sweep: Path, flag: str, value: str, message: str
) -> None:
    results = str(finished_sweep / "results")
    code, out, err = run_cli(
        "compare", "tiny", f"{flag}={value}", "--results", results, cwd=Path(".")
    )
    assert (code, out, err) == (2, "", f"sweep: error: {message}\n")
    # sweep run says the same of the same value (the run flags take one value or a list)
    if flag == "--min-delta":
        code, _, err = run_cli(
            "run",
            str(finished_sweep / "tiny.py"),
            f"{flag}={value}",
            "--results",
            results,
            cwd=Path("."),
        )
        assert (code, err) == (2, f"sweep: error: {message.replace('[nan]', 'nan')}\n")


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        (
            {"patience": [-1]},
            "--patience: expected a whole number >= 0, or a list of them, got [-1]",
        ),
        (
            {"patience": [1e99]},
            "--patience: expected a whole number >= 0, or a list of them, got [1e+99]",
        ),
        ({"patience": 2.5}, "--patience: expected a whole number >= 0, or a list of them, got 2.5"),
        (
            {"min_delta": [float("nan")]},
            "--min-delta: expected a number >= 0, or a list of them, got [nan]",
        ),
        ({"min_delta": -0.1}, "--min-delta: expected a number >= 0, or a list of them, got -0.1"),
    ],
)
def test_compare_api_refuses_what_run_refuses(
    finished_sweep: Path, tmp_path: Path, keywords: dict[str, object], message: str
) -> None:
    study = sweep.load("tiny", results=finished_sweep / "results")
    with pytest.raises(ConfigError) as caught:
        study.compare(**keywords)  # type: ignore[arg-type]
    assert str(caught.value) == message
    with pytest.raises(ConfigError) as caught:  # sweep.run: the same words for the same value
        sweep.run(finished_sweep / "tiny.py", results=tmp_path, **keywords)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert not list(tmp_path.rglob("study.db"))


def test_compare_takes_a_huge_whole_patience(finished_sweep: Path, tmp_path: Path) -> None:
    """A patience beyond any curve never runs out (it was an OverflowError traceback)."""
    shutil.copytree(finished_sweep / "results", tmp_path / "results")
    huge = 10**99
    code, out, err = run_cli(
        "compare",
        "tiny",
        "--patience",
        str(huge),
        "--min-delta",
        "0",
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert code == 0, err
    (row,) = csv.DictReader(io.StringIO(out.split("\nwritten:")[0]))
    assert row["patience"] == str(huge) and row["censored"] == "0"  # 5 of 5 epochs: all ran out
    frame = sweep.load("tiny", results=tmp_path / "results").compare(patience=[huge], min_delta=0)
    assert frame["uncensored"].tolist() == [3] and frame["patience"].tolist() == [huge]
