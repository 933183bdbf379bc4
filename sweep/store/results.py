"""The results table, derived from the study storage; never read back as truth; and
``TableCache``, a running sweep's table kept between trials (only new rows are made).

No TensorFlow here: ``sweep table`` and ``sweep status`` must start fast.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from sweep.core.atomic import write_text_atomic
from sweep.core.direction import Direction
from sweep.core.record import from_trial
from sweep.store.reading import StudyReader, TrialCache

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
    same name under different conditions, see sweep.train.hparams) is one column."""
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


def sort_key(direction: Direction) -> Any:
    sign = direction.sign

    def key(row: dict[str, Any]) -> tuple[int, float, int]:
        score = row.get("best_score")
        rank = _STATE_ORDER.get(row["state"], 5)
        if isinstance(score, int | float) and math.isfinite(score):
            return (rank, sign * float(score), int(row["trial"]))
        return (rank, math.inf, int(row["trial"]))

    return key


def table_rows(reader: StudyReader, cache: TableCache | None = None) -> list[dict[str, Any]]:
    """Every trial of the study as a row, best first (read by ``reader``); with a
    ``cache`` (a running sweep's), only the new and the running trials' rows are made."""
    if cache is not None:
        return cache.table_rows(reader, TABLE_KEYS)
    return rows_of(reader.trials(keys=TABLE_KEYS), reader.direction)


def rows_of(trials: list[Any], direction: Direction) -> list[dict[str, Any]]:
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


def write_table(
    reader: StudyReader, path: Path, cache: TableCache | None = None
) -> list[dict[str, Any]]:
    """Rewrite ``trials.csv`` atomically from the storage; return the rows."""
    rows = table_rows(reader, cache)
    write_text_atomic(path, to_csv(rows) if cache is None else cache.csv_text())
    return rows


# A running sweep's table, kept between trials: a finished trial's row never changes, so
# its row, its CSV line, its place in the order and the parameter columns it brings are
# made once; each rewrite reads only the new and the running trials
# (``sweep.store.reading.TrialCache``) and makes only their rows. Rewriting the table then costs
# about the same at trial 10,000 as at trial 10, and the rows are exactly those
# ``table_rows(study)`` makes from scratch.

Key = tuple[int, float, int]


class TableCache:
    """Finished trials' rows, CSV lines and sort keys, and the parameter columns."""

    def __init__(self) -> None:
        self.trials = TrialCache()
        self.views: dict[int, Any] = {}  # finished trials as read, by number
        self.rows: dict[int, dict[str, Any]] = {}  # finished trials' rows, by number
        self.names: list[str] = []
        self.order: list[tuple[Key, int]] = []  # finished rows' (sort key, number), sorted
        self.ordered: list[dict[str, Any]] = []  # the finished rows in that order
        self.ordered_lines: list[str] = []  # and their CSV lines
        self.last_lines: list[str] = []  # the CSV lines of the last table made
        # a column's first appearance among finished trials: (trial number, position)
        self.first_seen: dict[str, tuple[int, int]] = {}
        self.redo: set[int] = set()  # finished trials whose rows were forgotten

    def forget(self, numbers: list[int]) -> None:
        """Rows to make again (their checkpoint was deleted)."""
        gone = {n for n in numbers if n in self.rows}
        for n in gone:
            del self.rows[n]
        self.redo |= gone
        if gone:
            kept = [i for i, (_, n) in enumerate(self.order) if n not in gone]
            self.order = [self.order[i] for i in kept]
            self.ordered = [self.ordered[i] for i in kept]
            self.ordered_lines = [self.ordered_lines[i] for i in kept]

    def table_rows(self, reader: StudyReader, keys: frozenset[str]) -> list[dict[str, Any]]:
        """Every trial's row, best first, making only the rows not made before."""
        new = reader.changed(cache=self.trials, keys=keys)
        done = [t for t in new if t.state.is_finished()]
        self.views.update({t.number: t for t in done})
        names = self._names(new)
        if names != self.names:  # a new column: every row gets it (rare, and once)
            self.rows, self.order, self.ordered, self.ordered_lines = {}, [], [], []
            self.names, self.redo, done = names, set(), list(self.views.values())
        fresh = done + [self.views[n] for n in sorted(self.redo)]
        fresh += [t for t in new if not t.state.is_finished()]
        self.redo = set()
        key, cols = sort_key(reader.direction), self.columns()
        made = self.order, self.ordered, self.ordered_lines
        for t in fresh:
            row = trial_row(t, names)
            place, line = (key(row), t.number), csv_line(row, cols)
            if t.state.is_finished():
                self.rows[t.number] = row
                _insert(made, place, row, line)
            else:
                if made[0] is self.order:  # the unfinished rows go into a copy
                    made = self.order.copy(), self.ordered.copy(), self.ordered_lines.copy()
                _insert(made, place, row, line)
        self.last_lines = made[2]
        return made[1].copy() if made[1] is self.ordered else made[1]

    def columns(self) -> list[str]:
        return FIXED_BEFORE + [f"param_{n}" for n in self.names] + FIXED_AFTER

    def csv_text(self) -> str:
        """The CSV of the last table made (``results.to_csv`` of its rows)."""
        cols = self.columns()
        return "".join([csv_line(dict(zip(cols, cols, strict=True)), cols), *self.last_lines])

    def _names(self, fresh: list[Any]) -> list[str]:
        """The parameter columns in ``results.param_names`` order (first appearance by
        trial number), from the finished trials seen before and the ``fresh`` ones."""
        for t in fresh:
            if t.state.is_finished():
                _earliest(self.first_seen, t)
        seen = dict(self.first_seen)
        for t in fresh:
            _earliest(seen, t)
        return sorted(seen, key=seen.__getitem__)


def _earliest(seen: dict[str, tuple[int, int]], trial: Any) -> None:
    for i, name in enumerate(map(_display, trial.params)):
        if name not in seen or (trial.number, i) < seen[name]:
            seen[name] = (trial.number, i)


def _insert(
    made: tuple[list[tuple[Key, int]], list[Any], list[str]],
    place: tuple[Key, int],
    row: dict[str, Any],
    line: str,
) -> None:
    order, rows, lines = made
    i = bisect.bisect(order, place)
    order.insert(i, place)
    rows.insert(i, row)
    lines.insert(i, line)
