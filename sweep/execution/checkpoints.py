"""Bounded disk: only the K best trials keep their ``best.keras``."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.core.direction import Direction
from sweep.core.record import from_trial

if TYPE_CHECKING:
    import optuna


def prune_checkpoints(study: optuna.Study, keep: int) -> list[int]:
    """Delete ``best.keras`` of every finished trial outside the ``keep`` best complete ones.

    Complete trials are ranked by their value (best first, earlier trial on ties).
    Failed trials' checkpoints are deleted too; running trials are not touched.
    Returns the numbers of the trials whose checkpoint was deleted now.
    """
    sign = Direction.of_study(study).sign
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    complete = [
        t
        for t in finished
        if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)
    ]
    complete.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))  # value: not None
    kept = {t.number for t in complete[:keep]}
    deleted = []
    for t in finished:
        path = from_trial(t).checkpoint
        if t.number in kept or not path or not Path(path).exists():
            continue
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()
            deleted.append(t.number)
    return deleted
