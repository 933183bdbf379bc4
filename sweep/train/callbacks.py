"""The user's own Keras callbacks (``callbacks(hp)`` in a space), and their state on resume.

A trial's callbacks run in this order: sweep's EarlyStopping, the user's callbacks, sweep's
recorder, so the resume point the recorder commits at an epoch end holds every callback's
state for that same epoch.

What a resume point keeps of a user callback:

- ``ReduceLROnPlateau`` (exactly that class): ``wait``, ``best``, ``cooldown_counter``
  (Keras resets them in ``on_train_begin``; the learning rate itself is an optimizer
  variable and resumes with the optimizer);
- any callback that defines ``get_state() -> dict`` and ``set_state(dict)``: what
  ``get_state`` returns (JSON-serialisable), handed to ``set_state`` after every callback's
  ``on_train_begin`` when the trial resumes;
- nothing for the known-stateless ones (``LearningRateScheduler``, ``LambdaCallback``,
  ``TerminateOnNaN``, ``ProgbarLogger``, ``History``, ``CSVLogger(append=True)``);
- any other callback: its state restarts on resume, and the trial's ``resume_note`` says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from sweep.core.errors import ConfigError

# Sweep's own parts, each with the setting or flag that replaces it.
REFUSED: dict[type, str] = {
    keras.callbacks.EarlyStopping: (
        "early stopping is sweep's own: use the patience, min_delta, baseline and "
        "start_from_epoch settings (--patience, --min-delta, ...)"
    ),
    keras.callbacks.ModelCheckpoint: (
        "the best checkpoint is sweep's own: trials/<n>/best.keras (sweep export to copy it)"
    ),
    keras.callbacks.BackupAndRestore: (
        "resuming is sweep's own: run the same command again to continue an interrupted trial"
    ),
    keras.callbacks.TensorBoard: "TensorBoard logs are sweep's own: use --tensorboard",
}

STATELESS: tuple[type, ...] = (
    keras.callbacks.LearningRateScheduler,
    keras.callbacks.LambdaCallback,
    keras.callbacks.TerminateOnNaN,
    keras.callbacks.ProgbarLogger,
    keras.callbacks.History,
)

_PLATEAU_FIELDS = ("wait", "best", "cooldown_counter")


def has_protocol(callback: Any) -> bool:
    return callable(getattr(callback, "get_state", None)) and callable(
        getattr(callback, "set_state", None)
    )


def build_user_callbacks(factory: Callable[[Any], Any] | None, hp: Any, origin: str) -> list[Any]:
    """``callbacks(hp)`` checked: a list of Keras callbacks, none of sweep's own kinds."""
    if factory is None:
        return []
    made = factory(hp)
    items = list(made) if isinstance(made, list | tuple) else None
    if items is None or not all(isinstance(c, keras.callbacks.Callback) for c in items):
        found = type(made).__name__ if items is None else _first_wrong(items)
        raise ConfigError(
            f"{origin}: callbacks(hp) must return a list of keras.callbacks.Callback, "
            f"got {found}; return [keras.callbacks.ReduceLROnPlateau(...), ...]"
        )
    for callback in items:
        for kind, instead in REFUSED.items():
            if isinstance(callback, kind):
                raise ConfigError(
                    f"{origin}: callbacks(hp) returned a {type(callback).__name__}; "
                    f"{instead}; remove it from callbacks(hp)"
                )
    return items


def _first_wrong(items: list[Any]) -> str:
    wrong = next(c for c in items if not isinstance(c, keras.callbacks.Callback))
    return f"a list holding a {type(wrong).__name__}"


def _lost_state(callback: Any) -> str | None:
    """Why a resume cannot restore this callback's state, or None if it can."""
    name = type(callback).__name__
    if has_protocol(callback) or type(callback) is keras.callbacks.ReduceLROnPlateau:
        return None
    if type(callback) in STATELESS:
        return None
    if type(callback) is keras.callbacks.CSVLogger:
        if callback.append:
            return None
        return f"CSVLogger(append=False) rewrote {callback.filename} from the resumed epoch on"
    return f"callback {name} has no get_state/set_state: its state restarted"


@dataclass(frozen=True)
class CallbackStates:
    """The user's callbacks of one trial, whose state a resume point carries."""

    callbacks: list[Any]

    def snapshot(self) -> list[dict[str, Any] | None]:
        """Each callback's state (None where there is none to keep), JSON-ready."""
        return [_state_of(c) for c in self.callbacks]

    def restore(self, states: list[Any] | None) -> None:
        """Hand each callback its saved state; call after every ``on_train_begin``."""
        if not states or len(states) != len(self.callbacks):
            return
        for callback, state in zip(self.callbacks, states, strict=True):
            if state is None or state.get("class") != type(callback).__name__:
                continue
            if has_protocol(callback):
                callback.set_state(state["state"])
            elif type(callback) is keras.callbacks.ReduceLROnPlateau:
                for key in _PLATEAU_FIELDS:
                    setattr(callback, key, state["state"][key])

    def resume_note(self) -> str:
        """What a resume could not carry over ("" when resuming is exact)."""
        return "; ".join(n for n in (_lost_state(c) for c in self.callbacks) if n)


def _state_of(callback: Any) -> dict[str, Any] | None:
    name = type(callback).__name__
    if has_protocol(callback):
        state = callback.get_state()
        try:
            json.dumps(state)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"callback {name}: get_state() must return a JSON-serialisable dict, "
                f"got {type(state).__name__} ({exc}); return plain numbers, strings and lists"
            ) from None
        return {"class": name, "state": state}
    if type(callback) is keras.callbacks.ReduceLROnPlateau:
        best = callback.best
        raw = {
            "wait": int(callback.wait),
            "best": None if best is None else float(best),
            "cooldown_counter": int(callback.cooldown_counter),
        }
        return {"class": name, "state": raw}
    return None


# Every hook fit calls (evaluate's, for the validation data, included): a callback may set
# model.stop_training in any of them.
_HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_test_end",
    "on_epoch_end",
)


class StopWatch:
    """Which of the user's callbacks set ``model.stop_training`` (its class name in ``by``).

    ``watched`` puts a mark before the first callback and after each: in every hook a mark
    notes the flag, and the first mark that finds it turned on names the callback just
    before it. A stop by EarlyStopping (before the marks) or by the recorder (after) is
    nobody's here."""

    def __init__(self) -> None:
        self.by: str | None = None
        self.seen = False  # the flag as the previous mark saw it, in the hook that runs

    def watched(self, callbacks: list[Any]) -> list[Any]:
        if not callbacks:
            return []
        marked: list[Any] = [_Mark(self, None)]
        for callback in callbacks:
            marked += [callback, _Mark(self, callback)]
        return marked


class _Mark(keras.callbacks.Callback):  # type: ignore[misc]
    def __init__(self, watch: StopWatch, after: Any) -> None:
        super().__init__()
        self.watch, self.after = watch, after

    def look(self, *args: Any, **kwargs: Any) -> None:
        stopped = bool(getattr(self.model, "stop_training", False))
        if stopped and not self.watch.seen and self.after is not None and self.watch.by is None:
            self.watch.by = type(self.after).__name__
        self.watch.seen = stopped


for _hook in _HOOKS:
    setattr(_Mark, _hook, _Mark.look)


@dataclass(frozen=True)
class UserCallbacks:
    """One trial's user callbacks, and what the trial records about them."""

    states: CallbackStates
    attrs: dict[str, Any]  # trial user attrs: resume_note when a resume was not exact


def user_callbacks(space: Any, hp: Any, recorder: Any, *, resumed: bool) -> UserCallbacks:
    """Build ``callbacks(hp)`` fresh for a trial and hand them to its recorder, which keeps
    their state in the resume point and restores it when the trial resumes."""
    made = build_user_callbacks(space.callbacks, hp, f"search space {space.path}")
    states = CallbackStates(made)
    recorder.user_callbacks = states
    note = states.resume_note() if resumed else ""
    return UserCallbacks(states=states, attrs={"resume_note": note} if note else {})
