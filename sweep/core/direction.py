"""Which way a monitored value improves: the one rule of best. No TensorFlow here."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal


class Direction(StrEnum):
    """``min`` or ``max``: its ``sign``, Optuna's direction name, and ``better``."""

    MIN = "min"
    MAX = "max"

    @classmethod
    def from_mode(cls, mode: str) -> Direction:
        """``min``/``max`` (a resolved mode), or Optuna's ``minimize``/``maximize``."""
        named = {"minimize": "min", "maximize": "max"}.get(mode.lower(), mode.lower())
        return cls(named)

    @classmethod
    def of_study(cls, study: object) -> Direction:
        """The direction of an Optuna study."""
        return cls.from_mode(study.direction.name)  # type: ignore[attr-defined]

    @property
    def sign(self) -> float:
        """``+1`` for min, ``-1`` for max: ``sign * value`` sorts best first."""
        return 1.0 if self is Direction.MIN else -1.0

    @property
    def optuna(self) -> Literal["minimize", "maximize"]:
        """Optuna's name: ``minimize`` or ``maximize``."""
        return "minimize" if self is Direction.MIN else "maximize"

    def better(self, a: float, b: float | None) -> bool:
        """Whether ``a`` is strictly better than ``b`` (anything finite beats None/NaN)."""
        if not math.isfinite(a):
            return False
        if b is None or not math.isfinite(b):
            return True
        return a < b if self is Direction.MIN else a > b

    def key(self, value: float) -> float:
        """A sort key, best first; non-finite values last."""
        return self.sign * value if math.isfinite(value) else math.inf
