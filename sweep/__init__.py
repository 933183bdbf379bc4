"""sweep: hyperparameter sweeps for Keras with exact early stopping and best checkpoints."""

from __future__ import annotations

__version__ = "0.1.0"
