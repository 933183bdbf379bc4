"""The trial record: the one place attr keys are spelled, and studies recorded by the
previous release (tests/data/old_study, made by the code of commit acb7c5a: 3 trials of
the tiny space, 3 epochs, --seed 0; trial 1 failed in build_model) stay readable."""

from __future__ import annotations

import ast
import csv
import io
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from sweep.core.direction import Direction
from sweep.core.record import ATTR_KEYS, State, StopReason, TrialRecord

OLD = REPO / "tests" / "data" / "old_study"
WRITERS = {"set_user_attr", "set_trial_user_attr"}


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def attr_key_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, key) of every string-literal attr key: ``x.set_user_attr("k", ...)``,
    ``storage.set_trial_user_attr(id, "k", ...)``, ``x.user_attrs["k"]`` and
    ``x.user_attrs.get("k")``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, args = node.func.attr, node.args
            key = None
            if name == "set_user_attr" and args:
                key = _literal(args[0])
            elif name == "set_trial_user_attr" and len(args) > 1:
                key = _literal(args[1])
            elif (
                name in ("get", "pop", "setdefault")
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "user_attrs"
                and args
            ):
                key = _literal(args[0])
            if key is not None:
                found.append((node.lineno, key))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "user_attrs"
            and (key := _literal(node.slice)) is not None
        ):
            found.append((node.lineno, key))
    return found


def test_no_attr_key_is_spelled_outside_the_record_module() -> None:
    spelled = []
    for path in sorted((REPO / "sweep").rglob("*.py")):
        if path.name == "record.py" and path.parent.name == "sweep":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        spelled += [
            f"{path.relative_to(REPO)}:{line}: {key!r}" for line, key in attr_key_literals(tree)
        ]
    assert spelled == []


def test_the_key_finder_finds_each_form() -> None:
    """The check above can fail: each spelling it looks for is found."""
    source = (
        't.set_user_attr("a", 1)\n'
        's.set_trial_user_attr(tid, "b", 2)\n'
        'x = t.user_attrs["c"]\n'
        'y = t.user_attrs.get("d", 0)\n'
        "z = t.user_attrs.get(KEY)\n"
    )
    assert [k for _, k in attr_key_literals(ast.parse(source))] == ["a", "b", "c", "d"]


def test_record_round_trips_through_attrs() -> None:
    rec = TrialRecord(
        number=3,
        state=State.COMPLETE,
        best_score=0.5,
        best_epoch=2,
        stop_epoch=4,
        stop_reason=StopReason.EARLY_STOPPING,
        checkpoint=Path("/x/best.keras"),
        mode="max",
    )
    attrs = rec.to_attrs()
    assert attrs["stop_reason"] == "early_stopping" and attrs["checkpoint"] == "/x/best.keras"
    assert set(attrs) <= ATTR_KEYS and "number" not in attrs
    assert rec.direction is Direction.MAX


def test_direction_is_the_one_rule_of_best() -> None:
    lo, hi = Direction.from_mode("min"), Direction.from_mode("maximize")
    assert (lo.better(1.0, 2.0), hi.better(1.0, 2.0), lo.better(1.0, 1.0)) == (True, False, False)
    assert lo.better(1.0, None) and not lo.better(float("nan"), 2.0)
    assert (lo.sign, hi.sign, lo.optuna, hi.optuna) == (1.0, -1.0, "minimize", "maximize")


@pytest.fixture(scope="module")
def old_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("old") / "old_study"
    shutil.copytree(OLD, folder)
    return folder


def test_old_study_reads_with_every_command(old_study: Path) -> None:
    code, out, err = run_cli("table", "tiny", "--format", "csv", cwd=old_study)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    recorded = list(csv.DictReader((old_study / "results/tiny/trials.csv").open()))
    assert [r["trial"] for r in rows] == ["2", "0", "1"]
    assert [r["state"] for r in rows] == ["complete", "complete", "failed"]
    # the same columns in the same order, and the columns added since (issues 13, 16, 17, 23)
    added = {
        "stopped_by": "",
        "objective_source": "monitor",
        "best_execution": "",
        "best_execution_score": "",
        "device": "",
        "resumed_from": "0",
        "resume_note": "",
    }
    assert [c for c in rows[0] if c not in added] == list(recorded[0])
    for new, old in zip(rows, recorded, strict=True):  # checkpoints were made elsewhere
        assert {c: new.pop(c) for c in added} == added
        assert {**new, "checkpoint": ""} == {**old, "checkpoint": ""}
        assert new["checkpoint"] == ""
    code, out, err = run_cli("status", "tiny", cwd=old_study)
    assert code == 0 and "trial 2" in out, err
    code, out, err = run_cli("compare", "tiny", "--patience", "1", cwd=old_study)
    assert code == 0, err
    assert (old_study / "results/tiny/stopping.csv").is_file()
    code, out, err = run_cli("report", "tiny", cwd=old_study)
    assert code == 0, err
    page = (old_study / "results/tiny/report.html").read_text()
    assert "<h1>Study tiny</h1>" in page and "3 trials: 2 complete, 1 failed" in page


def test_old_study_reads_with_the_api(old_study: Path) -> None:
    import sweep

    study = sweep.load("tiny", results=old_study / "results")
    table = study.table()
    assert list(table["trial"]) == [2, 0, 1]
    trials = study.trials
    assert [t.state for t in trials] == ["complete", "failed", "complete"]
    assert trials[1].stop_reason is StopReason.FAILED and "made to fail" in trials[1].error
    assert trials[2].stop_reason is StopReason.MAX_EPOCHS and trials[2].best_epoch == 3
    assert study.best.number == 2
    # the study was made in another folder (its plan holds that absolute path): history()
    # says where it looked, as it always did
    with pytest.raises(sweep.ConfigError, match="expected its history at /"):
        study.history(2)
