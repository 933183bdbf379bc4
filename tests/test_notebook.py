"""examples/quickstart.ipynb, executed on a real ipykernel: functions defined in cells,
sweep.run with two worker processes (the functions reach them by value), and the
Study's table, history, best model and comparison."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
from conftest import REPO
from nbclient import NotebookClient

NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


def text_of(cell: Any) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output and "text/plain" in output.data:
            parts.append(output.data["text/plain"])
    return "\n".join(parts)


def test_quickstart_notebook_runs_and_its_numbers_agree(tmp_path: Path) -> None:
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    nb = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    nbformat.write(nb, tmp_path / "executed.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    run_cell, table_cell, plot_cell, evaluate_cell, compare_cell = code[1:]

    # the progress display updated in place: one output, not one per epoch or trial
    assert len(run_cell.outputs) == 1, run_cell.outputs
    shown = text_of(run_cell)
    assert "trials 4/4" in shown
    assert len(re.findall(r"trial \d+ complete", shown)) == 4

    rows = re.search(r"rows: (\d+)", text_of(table_cell))
    assert rows is not None and int(rows.group(1)) == 4  # the trials asked for
    assert any("image/png" in o.get("data", {}) for o in plot_cell.outputs)

    found = re.search(r"evaluated: (\S+) recorded: (\S+)", text_of(evaluate_cell))
    assert found is not None
    evaluated, recorded = float(found.group(1)), float(found.group(2))
    assert abs(evaluated - recorded) <= 1e-6

    assert "best_still_best" in text_of(compare_cell)
    with (tmp_path / "results/quickstart/trials.csv").open(newline="") as fh:
        workers = {row["worker"] for row in csv.DictReader(fh)}
    assert len(workers) == 2  # 2 processes
