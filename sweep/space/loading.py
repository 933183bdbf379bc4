"""A sweep's space and data as every process loads them: from the space file or from
the functions ``sweep.run`` was given (pickled by value for the workers), with the data
checked once loaded. No TensorFlow here."""

from __future__ import annotations

from typing import Any

from sweep.core.errors import ConfigError, error_text
from sweep.core.plan import Plan
from sweep.space.files import SearchSpace, load_space


def load_checked_data(space: SearchSpace) -> Any:
    from sweep.space.data import prepare_data

    try:
        raw = space.call_load_data()
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"search space {space.path}: load_data() raised {error_text(exc)}; fix the file"
        ) from None
    settings = space.settings
    return prepare_data(raw, validation_split=settings.validation_split, source=space.path)


def pickle_functions(space: SearchSpace) -> bytes:
    """A function space's functions for the workers: by value, as joblib's loky would."""
    import cloudpickle

    parts = (space.name, space.build_model, space.fit, space.load_data, space.callbacks)
    blob: bytes = cloudpickle.dumps(parts)
    return blob


def space_label(functions: bytes) -> str:
    """A function plan's ``space``: names the functions, so that a worker process reused
    for another study (loky keeps its workers) does not take them from its cache."""
    import hashlib

    return f"<functions {hashlib.sha256(functions).hexdigest()[:16]}>"


def load_space_for(plan: Plan) -> SearchSpace:
    if plan.functions is not None:
        import pickle

        from sweep.space.files import functions_space

        name, build_model, fit, load_data, *rest = pickle.loads(plan.functions)
        callbacks = rest[0] if rest else None
        return functions_space(
            name, build_model, fit, load_data, overrides=plan.overrides, callbacks=callbacks
        )
    if plan.from_functions:
        raise ConfigError(
            f"study {plan.study!r} was made by sweep.run(build_model=..., load_data=...): "
            "its functions are not stored on the study; use the Study that sweep.run returned"
        )
    return load_space(plan.space, overrides=plan.overrides)
