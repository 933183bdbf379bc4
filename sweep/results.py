"""The results table, derived from the study storage; never read back as truth.

No TensorFlow here: ``sweep table`` and ``sweep status`` must start fast.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from sweep.atomic import write_text_atomic
from sweep.direction import Direction
from sweep.record import State, from_trial
from sweep.table_cache import TableCache

FIXED_BEFORE = ["trial", "state"]
FIXED_AFTER = [
    "monitor",
    "mode",
    "best_score",
    "best_execution",
    "best_execution_score",
    "best_epoch",
    "stop_epoch",
    "max_epochs",
    "early_stopped",
    "stop_reason",
    "stopped_by",
    "patience",
    "min_delta",
    "calibration",
    "objective_source",
    "duration_s",
    "worker",
    "device",
    "checkpoint",
    "resumed_from",
    "resume_note",
    "space_changed",
    "error",
]
# The user attrs the table's rows are made of (a column named as its attr), and those
# status, compare and report read besides (not the space fingerprint, the largest).
TABLE_KEYS = frozenset(FIXED_AFTER)
READ_KEYS = TABLE_KEYS | {
    "owner",
    "owner_host",
    "trial_dir",
    "baseline",
    "start_from_epoch",
    "executions",
}
_STATE_ORDER = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "failed": 4}
FORMATS = ("table", "csv", "json", "markdown")


def state_name(trial: Any) -> str:
    return State.of(trial.state).value


def trial_row(trial: Any, param_names: list[str], *, now: float | None = None) -> dict[str, Any]:
    rec = from_trial(trial, now=now)
    row: dict[str, Any] = {"trial": rec.number, "state": rec.state.value}
    for name in param_names:
        row[f"param_{name}"] = _param(rec.params, name)
    checkpoint = rec.checkpoint
    row.update(
        monitor=rec.monitor,
        mode=rec.mode,
        best_score=rec.best_score,
        best_execution=rec.best_execution,
        best_execution_score=rec.best_execution_score,
        best_epoch=rec.best_epoch,
        stop_epoch=rec.stop_epoch,
        max_epochs=rec.max_epochs,
        early_stopped=rec.early_stopped,
        stop_reason=str(rec.stop_reason or ""),
        stopped_by=rec.stopped_by,
        patience=rec.patience,
        min_delta=rec.min_delta,
        calibration=rec.calibration,
        objective_source=rec.objective_source or "monitor",
        duration_s=rec.duration_s,
        worker=rec.worker,
        device=rec.device,
        checkpoint=str(checkpoint) if checkpoint and checkpoint.is_file() else "",
        resumed_from=rec.resumed_from,
        resume_note=rec.resume_note,
        space_changed=rec.space_changed,
        error=rec.error,
    )
    return row


def _display(name: str) -> str:
    """``b`` for ``b[a=3]``: a hyperparameter stored under a condition-qualified name (the
    same name under different conditions, see sweep.hparams) is one column."""
    return name.split("[", 1)[0] if name.endswith("]") else name


def _param(params: dict[str, Any], name: str) -> Any:
    if name in params:
        return params[name]
    return next((v for k, v in params.items() if _display(k) == name), None)


def param_names(trials: list[Any]) -> list[str]:
    names: list[str] = []
    for t in trials:
        names.extend(n for n in map(_display, t.params) if n not in names)
    return names


def sort_key(direction: str) -> Any:
    sign = Direction.from_mode(direction).sign

    def key(row: dict[str, Any]) -> tuple[int, float, int]:
        score = row.get("best_score")
        rank = _STATE_ORDER.get(row["state"], 5)
        if isinstance(score, int | float) and math.isfinite(score):
            return (rank, sign * float(score), int(row["trial"]))
        return (rank, math.inf, int(row["trial"]))

    return key


def table_rows(study: Any, cache: TableCache | None = None) -> list[dict[str, Any]]:
    """Every trial of the study as a row, best first (read with ``sweep.reading``); with
    a ``cache`` (a running sweep's), only the new and the running trials' rows are made."""
    if cache is not None:
        return cache.table_rows(study, TABLE_KEYS)
    from sweep.reading import trials

    return rows_of(trials(study, keys=TABLE_KEYS), study.direction.name.lower())


def rows_of(trials: list[Any], direction: str) -> list[dict[str, Any]]:
    """The table's rows of trials already read, best first."""
    names = param_names(trials)
    return sorted((trial_row(t, names) for t in trials), key=sort_key(direction))


def columns(rows: list[dict[str, Any]]) -> list[str]:
    params = [k for k in (rows[0] if rows else {}) if k.startswith("param_")]
    return FIXED_BEFORE + params + FIXED_AFTER


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_line(row: dict[str, Any], cols: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in cols])
    return buf.getvalue()


def to_csv(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    header = csv_line(dict(zip(cols, cols, strict=True)), cols)
    return "".join([header, *(csv_line(row, cols) for row in rows)])


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2, default=str) + "\n"


def display_cell(value: Any) -> str:
    """A cell for people: floats to 6 significant digits (the common types first: a
    10,000-row table formats 280,000 cells)."""
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is float:
        return f"{value:.6g}"
    if value is None:
        return ""
    return _cell(value)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [_markdown_cell(display_cell(row.get(c))) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _markdown_cell(text: str) -> str:
    """One cell on one line: ``|`` escaped, line breaks as ``<br>`` (as GitHub renders them)."""
    return "<br>".join(text.replace("|", "\\|").splitlines())


def write_table(study: Any, path: Path, cache: TableCache | None = None) -> list[dict[str, Any]]:
    """Rewrite ``trials.csv`` atomically from the storage; return the rows."""
    rows = table_rows(study, cache)
    write_text_atomic(path, to_csv(rows) if cache is None else cache.csv_text())
    return rows
