"""A running sweep's results table, kept between trials.

A finished trial's row never changes, so its row, its CSV line, its place in the order
and the parameter columns it brings are made once; each rewrite reads only the new and
the running trials (``sweep.reading.TrialCache``) and makes only their rows. Rewriting
the table then costs about the same at trial 10,000 as at trial 10, and the rows are
exactly those ``results.table_rows(study)`` makes from scratch.

No TensorFlow here.
"""

from __future__ import annotations

import bisect
from typing import Any

from sweep.reading import FINISHED, TrialCache, changed

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

    def table_rows(self, study: Any, keys: frozenset[str]) -> list[dict[str, Any]]:
        """Every trial's row, best first, making only the rows not made before."""
        from sweep.results import csv_line, sort_key, trial_row

        new = changed(study, cache=self.trials, keys=keys)
        done = [t for t in new if t.state.name in FINISHED]
        self.views.update({t.number: t for t in done})
        names = self._names(new)
        if names != self.names:  # a new column: every row gets it (rare, and once)
            self.rows, self.order, self.ordered, self.ordered_lines = {}, [], [], []
            self.names, self.redo, done = names, set(), list(self.views.values())
        fresh = done + [self.views[n] for n in sorted(self.redo)]
        fresh += [t for t in new if t.state.name not in FINISHED]
        self.redo = set()
        key, cols = sort_key(study.direction.name.lower()), self.columns()
        made = self.order, self.ordered, self.ordered_lines
        for t in fresh:
            row = trial_row(t, names)
            place, line = (key(row), t.number), csv_line(row, cols)
            if t.state.name in FINISHED:
                self.rows[t.number] = row
                _insert(made, place, row, line)
            else:
                if made[0] is self.order:  # the unfinished rows go into a copy
                    made = self.order.copy(), self.ordered.copy(), self.ordered_lines.copy()
                _insert(made, place, row, line)
        self.last_lines = made[2]
        return made[1].copy() if made[1] is self.ordered else made[1]

    def columns(self) -> list[str]:
        from sweep.results import FIXED_AFTER, FIXED_BEFORE

        return FIXED_BEFORE + [f"param_{n}" for n in self.names] + FIXED_AFTER

    def csv_text(self) -> str:
        """The CSV of the last table made (``results.to_csv`` of its rows)."""
        from sweep.results import csv_line

        cols = self.columns()
        return "".join([csv_line(dict(zip(cols, cols, strict=True)), cols), *self.last_lines])

    def _names(self, fresh: list[Any]) -> list[str]:
        """The parameter columns in ``results.param_names`` order (first appearance by
        trial number), from the finished trials seen before and the ``fresh`` ones."""
        for t in fresh:
            if t.state.name in FINISHED:
                _earliest(self.first_seen, t)
        seen = dict(self.first_seen)
        for t in fresh:
            _earliest(seen, t)
        return sorted(seen, key=seen.__getitem__)


def _earliest(seen: dict[str, tuple[int, int]], trial: Any) -> None:
    from sweep.results import _display

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
