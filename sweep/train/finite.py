"""Inputs that might never end, refused before any trial: an epoch over an infinite
``tf.data`` dataset (``.repeat()``), one whose length tf.data does not know (a
``.filter()``, files, a Python generator), or a generator function never ends unless
``steps_per_epoch`` (``validation_steps`` for validation) says how many batches it has.

Without them ``fit`` would sit at the first epoch forever; the probe calls
``check_finite`` with the default hyperparameters' ``fit_options``, and each trial again
with its own (they may depend on ``hp``).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from sweep.core.errors import ConfigError
from sweep.space.data import Data
from sweep.space.inputs import InputKind

PARTS = (("training", "steps_per_epoch"), ("validation", "validation_steps"), ("test", None))


def endless(kind: InputKind | None, x: Any, label: str, setting: str | None) -> str | None:
    """Why this part may never end (one clause with its fix), or None if it ends."""
    if setting is None:
        fix = "end it with .take(n)"
    else:
        fix = f"give {setting} (batches per epoch) in fit_options(hp)"
    if kind is InputKind.DATASET:
        n = int(x.cardinality())
        if n == tf.data.INFINITE_CARDINALITY:
            return f"the {label} tf.data dataset is infinite (.repeat()), so it never ends; {fix}"
        if n == tf.data.UNKNOWN_CARDINALITY and setting is not None:
            return (
                f"the {label} tf.data dataset's length is unknown to tf.data (a .filter(), "
                f"files or a Python generator: it may never end); {fix}, or declare its "
                "length with .apply(tf.data.experimental.assert_cardinality(n))"
            )
    if kind is InputKind.GENERATOR and setting is not None:
        return f"the {label} data is a generator function, which may never end; {fix}"
    return None


def check_finite(data: Data, options: dict[str, Any], *, origin: str) -> None:
    """ConfigError naming the setting to add if a part of ``data`` may never end.

    The test part has no steps setting: an infinite test dataset is refused (it is
    evaluated once, after the trials); one of unknown length is evaluated to its end."""
    parts = zip(PARTS, data.kinds, (data.x_train, data.x_val, data.x_test), strict=True)
    for (label, setting), kind, x in parts:
        if x is None or (setting is not None and options.get(setting) is not None):
            continue
        why = endless(kind, x, label, setting)
        if why is not None:
            raise ConfigError(f"{origin}: {why}")
