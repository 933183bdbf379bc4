"""What kind of training input ``load_data()`` returned, without importing TensorFlow.

Each of training, validation and test may be arrays ``(x, y)`` or ``(x, y, w)`` (dicts
or lists of arrays allowed), a finite ``tf.data.Dataset``, a ``keras.utils.PyDataset``,
or a generator function (a callable returning a fresh iterator of batches per call).
The README's table of input kinds says how each one is fed.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Mapping
from typing import Any

from sweep.core.errors import ConfigError


class InputKind(enum.Enum):
    ARRAYS = "arrays"
    DATASET = "tf.data"
    PYDATASET = "PyDataset"
    GENERATOR = "generator"


ACCEPTED = (
    "arrays (x, y) or (x, y, sample_weight), a finite tf.data.Dataset, a "
    "keras.utils.PyDataset, or a generator function (a callable returning a fresh "
    "iterator of batches)"
)


def _mro_names(obj: Any) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}


def is_dataset(obj: Any) -> bool:
    """A ``tf.data.Dataset`` (checked without importing TensorFlow)."""
    if "tensorflow" not in sys.modules:
        return False
    return any(n.startswith("tensorflow.") and n.endswith("DatasetV2") for n in _mro_names(obj))


def is_pydataset(obj: Any) -> bool:
    return any(n.endswith(".PyDataset") and n.startswith("keras") for n in _mro_names(obj))


def is_generator_function(obj: Any) -> bool:
    return callable(obj) and not isinstance(obj, type) and not is_pydataset(obj)


def kind_of(obj: Any) -> InputKind | None:
    """The kind of a single (non-tuple) part, or None for arrays/unknown."""
    if is_dataset(obj):
        return InputKind.DATASET
    if is_pydataset(obj):
        return InputKind.PYDATASET
    if is_generator_function(obj):
        return InputKind.GENERATOR
    return None


def refuse(origin: str, label: str, obj: Any) -> ConfigError:
    what = type(obj).__name__
    hint = ""
    if hasattr(obj, "__next__"):
        hint = " (a generator object is used up after one epoch: return the function instead)"
    return ConfigError(
        f"{origin}: the {label} data is a {what}{hint}; expected {ACCEPTED}; return one of those"
    )


FIT_OPTIONS = ("class_weight", "steps_per_epoch", "validation_steps", "validation_batch_size")
WHERE = {
    "validation_freq": "sweep validates after every epoch (EarlyStopping and the table need "
    "it); remove it",
    "initial_epoch": "sweep sets it when it resumes a trial; remove it",
    "epochs": "it is the setting epochs (SETTINGS['epochs'] or --epochs)",
    "callbacks": "sweep owns fit's callbacks (EarlyStopping, the checkpoint, the "
    "recorder); define callbacks(hp) in the space file to add your own",
    "batch_size": "it is the setting batch_size (SETTINGS['batch_size'] or --batch-size)",
    "shuffle": "sweep orders the data per (seed, epoch); see the table of input kinds",
}


def check_fit_options(options: Any, *, origin: str) -> dict[str, Any]:
    """What ``fit_options(hp)`` returned: a dict of the fit keywords sweep passes on."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"{origin}: fit_options(hp) returned {type(options).__name__}; expected a dict of "
            f"fit keywords ({', '.join(FIT_OPTIONS)})"
        )
    for key, value in options.items():
        if key == "validation_freq" and value == 1:
            continue
        if key in WHERE:
            raise ConfigError(
                f"{origin}: fit_options(hp) returned {key}={value!r}, which sweep cannot "
                f"pass to fit: {WHERE[key]}"
            )
        if key not in FIT_OPTIONS:
            raise ConfigError(
                f"{origin}: fit_options(hp) returned an unknown key {key!r}; expected only "
                f"{', '.join(FIT_OPTIONS)}"
            )
        if key != "class_weight" and not (
            value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
        ):
            raise ConfigError(
                f"{origin}: fit_options(hp) returned {key}={value!r}; expected a whole "
                "number >= 1 or None"
            )
    return {k: v for k, v in options.items() if k != "validation_freq"}


def call_fit_options(fn: Callable[[Any], Any] | None, hp: Any, *, origin: str) -> dict[str, Any]:
    if fn is None:
        return {}
    try:
        raw = fn(hp)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"{origin}: fit_options(hp) raised {type(exc).__name__}: {exc}; fix the file"
        ) from None
    return check_fit_options(raw, origin=origin)
