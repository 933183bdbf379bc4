"""A trial's curves as the report draws them: its ``history.csv`` columns, or else the
monitored value Optuna recorded at each epoch. No TensorFlow here."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from sweep.core.record import from_trial


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


class DamagedHistory(ValueError):
    """A ``history.csv`` that can't be read as sweep wrote it (its curve is left out)."""

    def __init__(self, path: Path, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        super().__init__(f"{path} is damaged ({reason.rstrip(': ')})")


def curve_series(trial: Any, monitor: str) -> dict[str, list[tuple[int, float]]]:
    """Series to draw for a trial: ``history.csv`` columns if the file exists, else the
    monitored value from the intermediate values Optuna recorded (1-based epochs).
    Raises ``DamagedHistory`` when the file is there but can't be read."""
    trial_dir = from_trial(trial).trial_dir
    path = Path(trial_dir) / "history.csv" if trial_dir else None
    if path is not None and path.is_file():
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                records = list(csv.DictReader(fh))
            keys = [k for k in (monitor, "loss", "val_loss") if records and k in records[0]]
            series = {
                k: [(int(r["epoch"]), _float(r[k])) for r in records] for k in dict.fromkeys(keys)
            }
        except (ValueError, TypeError, KeyError, csv.Error) as exc:  # UnicodeDecodeError too
            raise DamagedHistory(path, exc) from None
        if monitor in series:
            return series
    steps = sorted(trial.intermediate_values.items())
    return {monitor: [(int(e), float(v)) for e, v in steps]}
