"""sweep: hyperparameter sweeps for Keras with exact early stopping and best checkpoints.

``sweep.run(...)`` runs (or continues) a sweep and returns a ``Study``; ``sweep.load(name)``
opens one; ``sweep.work(name, storage=URL)`` joins one as ``sweep worker`` does. Importing
sweep is cheap: the API loads when first used, TensorFlow only when a sweep trains or a
model is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweep.core.errors import ConfigError, SweepError

if TYPE_CHECKING:
    from sweep.api.entry import load, run, work
    from sweep.api.study import Study
    from sweep.core.record import TrialRecord

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "Study",
    "SweepError",
    "TrialRecord",
    "__version__",
    "load",
    "run",
    "work",
]

_LAZY = {
    "run": "sweep.api.entry",
    "load": "sweep.api.entry",
    "work": "sweep.api.entry",
    "Study": "sweep.api.study",
    "TrialRecord": "sweep.core.record",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")
