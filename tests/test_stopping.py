"""Replaying Keras' EarlyStopping on recorded curves, checked against the real callback.

- replay() agrees with keras.callbacks.EarlyStopping field by field: epochs run,
  stopped_epoch, best_epoch, best, whether it stopped, on random curves full of ties,
  plateaus, NaNs and min_delta boundaries, and on named adversarial cases;
- driving the callback directly (on_train_begin, then on_epoch_end until
  stop_training) is faithful to model.fit: checked on a handful of curves;
- Keras compares in float32: near-ties and min_delta boundaries round there;
- a curve cut short is censored for a looser rule, exact for a stricter one, and a
  curve that ran to max_epochs is never censored;
- replay_many agrees with replay for every (rule, curve);
- our best is sweep.train.recorder's (earliest, no min_delta), not Keras' best_epoch.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.train.recorder import TrialRecorder
from sweep.views.stopping import Replay, StopRule, pad_curves, replay, replay_many

NAN = math.nan
INF = math.inf


@dataclass(frozen=True)
class KerasRun:
    epochs_run: int
    stop_training: bool
    stopped_epoch: int  # 0-based, as Keras holds it
    best_epoch: int  # 0-based
    best: float | None


@pytest.fixture(scope="module")
def model() -> Any:
    m = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    return m


def early_stopping(rule: StopRule) -> Any:
    return keras.callbacks.EarlyStopping(
        monitor="val_loss",
        mode=rule.mode,
        patience=rule.patience,
        min_delta=rule.min_delta,
        baseline=rule.baseline,
        start_from_epoch=rule.start_from_epoch,
    )


def run_keras(model: Any, curve: Sequence[float], rule: StopRule) -> KerasRun:
    """Keras' fit loop, minus the training: on_train_begin, then on_epoch_end per epoch
    until stop_training (keras/src/backend/tensorflow/trainer.py)."""
    stopper = early_stopping(rule)
    stopper.set_model(model)
    model.stop_training = False
    stopper.on_train_begin()
    ran = 0
    for epoch, value in enumerate(curve):
        stopper.on_epoch_end(epoch, {"val_loss": float(value)})
        ran += 1
        if model.stop_training:
            break
    best = None if stopper.best is None else float(stopper.best)
    return KerasRun(ran, bool(model.stop_training), stopper.stopped_epoch, stopper.best_epoch, best)


class FeedCurve(keras.callbacks.Callback):  # type: ignore[misc]
    """Placed before EarlyStopping: puts the curve's value in the epoch logs."""

    def __init__(self, curve: Sequence[float]) -> None:
        super().__init__()
        self.curve = curve
        self.log_ids: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        assert logs is not None
        logs["val_loss"] = float(self.curve[epoch])
        self.log_ids.append(id(logs))


class SeeLogs(keras.callbacks.Callback):  # type: ignore[misc]
    """Placed after EarlyStopping: sees the same dict object."""

    def __init__(self) -> None:
        super().__init__()
        self.log_ids: list[int] = []
        self.values: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        assert logs is not None
        self.log_ids.append(id(logs))
        self.values.append(logs["val_loss"])


def run_keras_fit(model: Any, curve: Sequence[float], rule: StopRule) -> KerasRun:
    """A real model.fit whose val_loss is the curve."""
    stopper = early_stopping(rule)
    feed, see = FeedCurve(curve), SeeLogs()
    x = np.zeros((4, 2), dtype="float32")
    y = np.zeros((4, 1), dtype="float32")
    history = model.fit(
        x, y, epochs=len(curve), batch_size=4, callbacks=[feed, stopper, see], verbose=0
    )
    ran = len(history.history["loss"])
    assert feed.log_ids == see.log_ids  # one logs dict per epoch, shared by all callbacks
    assert len(see.values) == ran
    assert [same(a, b) for a, b in zip(see.values, curve, strict=False)] == [True] * ran
    best = None if stopper.best is None else float(stopper.best)
    return KerasRun(ran, bool(model.stop_training), stopper.stopped_epoch, stopper.best_epoch, best)


def same(a: float | None, b: float | None) -> bool:
    """Equal as floats, NaN equal to NaN."""
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def recorder_best(values: Sequence[float], mode: str) -> tuple[int | None, float | None]:
    """Our best, by sweep.train.recorder's own comparison (TrialRecorder.is_better)."""
    state: Any = SimpleNamespace(best_score=None, mode=mode)
    best_epoch = None
    for i, v in enumerate(values):
        if TrialRecorder.is_better(state, v):
            state.best_score, best_epoch = v, i + 1
    return best_epoch, state.best_score


def assert_agrees_with_keras(model: Any, curve: Sequence[float], rule: StopRule) -> Replay:
    n = len(curve)
    k = run_keras(model, curve, rule)
    r = replay(curve, rule, max_epochs=n)
    assert not r.censored, "a curve that ran to max_epochs is never censored"
    assert r.stop_epoch == k.epochs_run
    assert r.early_stopped == (k.stop_training and k.epochs_run < n)
    assert k.stopped_epoch == (k.epochs_run - 1 if k.stop_training else 0)
    if k.best is None:
        assert r.keras_best_epoch is None and k.best_epoch == 0
    else:
        assert r.keras_best_epoch == k.best_epoch + 1
        assert same(k.best, float(curve[k.best_epoch]))
    assert (r.best_epoch, r.best_score) == recorder_best(list(curve[: k.epochs_run]), rule.mode)
    # The stop decision on the last epoch too: with one more epoch allowed, Keras'
    # stop_training on the last recorded epoch is exactly "not censored".
    r1 = replay(curve, rule, max_epochs=n + 1)
    assert r1.censored == (not k.stop_training)
    if k.stop_training:
        assert r1 == replace(r, early_stopped=True)
    return r


# ---------------------------------------------------------------------------
# random curves and rules

# Small pools create ties and plateaus; 0.1 and 0.1 + 1e-9 tie in float32 but not
# in float64; 0.30000001192092896 is float32(0.3).
POOL = [0.0, 0.1, 0.1 + 1e-9, 0.2, 0.25, 0.3, 0.30000001192092896, 0.5, 0.7, 1.0, 1.5]


@st.composite
def curves(draw: st.DrawFn, max_len: int = 40) -> list[float]:
    pool = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=5))
    nan_rate = draw(st.sampled_from([0.0, 0.0, 0.1]))
    n = draw(st.integers(1, max_len))
    values = []
    for _ in range(n):
        if nan_rate and draw(st.floats(0, 1)) < nan_rate:
            values.append(NAN)
        else:
            values.append(draw(st.sampled_from(pool)))
    return values


@st.composite
def rules(draw: st.DrawFn, curve: Sequence[float]) -> StopRule:
    finite = [v for v in curve if math.isfinite(v)] or [0.5]
    # min_delta exactly equal to a difference in the curve: the boundary case
    diffs = [abs(a - b) for a in finite for b in finite if a != b]
    deltas = st.sampled_from([0.0, 1e-9, 1e-3, 0.05, 0.1])
    if diffs:
        deltas = st.one_of(deltas, st.sampled_from(diffs))
    near = st.sampled_from(finite).flatmap(
        lambda v: st.sampled_from([v, v + 1e-9, v - 1e-9, v + 0.05, v - 0.05])
    )
    return StopRule(
        mode=draw(st.sampled_from(["min", "max"])),
        patience=draw(st.integers(0, 6)),
        min_delta=draw(deltas),
        baseline=draw(st.one_of(st.none(), near)),
        start_from_epoch=draw(st.integers(0, 5)),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[float], StopRule]:
    curve = draw(curves())
    return curve, draw(rules(curve))


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_replay_agrees_with_keras_on_random_curves(model: Any, case: Any) -> None:
    curve, rule = case
    assert_agrees_with_keras(model, curve, rule)


# ---------------------------------------------------------------------------
# named adversarial cases, with what Keras does spelled out


def rule(mode: str = "min", patience: int = 2, **kw: Any) -> StopRule:
    return StopRule(mode=mode, patience=patience, **kw)


ADVERSARIAL = {
    # name: (curve, rule, stop_epoch, keras_best_epoch, best_epoch)
    "ties never improve": ([0.5, 0.5, 0.5, 0.5], rule(), 3, 1, 1),
    "ties never improve, max": ([0.5, 0.5, 0.5, 0.5], rule("max"), 3, 1, 1),
    "plateau then drop in time": ([1.0, 0.8, 0.8, 0.7, 0.7, 0.7], rule(), 6, 4, 4),
    "plateau then drop too late": ([1.0, 0.8, 0.8, 0.8, 0.7], rule(), 4, 2, 2),
    "min_delta at the boundary": ([1.0, 0.9, 0.8], rule(patience=1, min_delta=0.1), 2, 1, 2),
    # best stays 1.0 while the values fall, so 0.8 is a gain of 0.2 on it
    "min_delta measured from best": ([1.0, 0.9, 0.8, 0.7], rule(min_delta=0.1), 4, 3, 4),
    "min_delta at the boundary, max": ([0.5, 0.75, 1.0], rule("max", 1, min_delta=0.25), 2, 1, 2),
    # float64 says 0.9 + (0.1 - 1e-10) < 1.0; float32 rounds it to 1.0: no improvement
    "min_delta rounds in float32": (
        [1.0, 0.9, 0.9],
        rule(patience=1, min_delta=0.1 - 1e-10),
        2,
        1,
        2,
    ),
    "near-tie is a tie in float32": ([1.0, 1.0 - 1e-12, 1.0 - 2e-12], rule(patience=1), 2, 1, 2),
    "near-tie is a tie in float32, max": ([1.0, 1.0 + 1e-12], rule("max", 0), 2, 1, 2),
    "float32 step is an improvement": (
        [1.0, 1.0 - 2**-24, 1.0 - 2**-23],
        rule(patience=1),
        3,
        3,
        3,
    ),
    # improving epochs return before the stop check, but never reset wait
    "baseline never reached, improving": ([1.0, 0.9, 0.8, 0.7, 0.6], rule(baseline=0.5), 5, 5, 5),
    "baseline never reached, plateau": ([1.0, 0.9, 0.9, 0.9], rule(baseline=0.5), 3, 2, 2),
    "baseline reached": ([1.0, 0.4, 0.45, 0.45, 0.3], rule(baseline=0.5), 4, 2, 2),
    "baseline NaN is never beaten": ([1.0, 0.9, 0.9], rule(patience=1, baseline=NAN), 3, 2, 2),
    "start_from_epoch beyond the curve": ([3.0, 2.0, 1.0], rule(start_from_epoch=5), 3, None, 3),
    "start_from_epoch skips warm-up": (
        [9.0, 9.0, 1.0, 2.0, 2.0, 2.0],
        rule(start_from_epoch=2),
        5,
        3,
        3,
    ),
    "best before start_from_epoch": ([0.1, 1.0, 1.0, 1.0], rule(start_from_epoch=1), 4, 2, 1),
    # a NaN first value becomes best; nothing improves on NaN afterwards
    "NaN first": ([NAN, 0.5, 0.4, 0.3], rule(), 3, 1, 3),
    "NaN first, max": ([NAN, 0.5, 0.6, 0.7], rule("max"), 3, 1, 3),
    "NaN first counted epoch": ([5.0, NAN, 0.4, 0.3], rule(start_from_epoch=1), 4, 2, 4),
    "NaN later": ([1.0, NAN, 0.9, NAN, NAN, NAN], rule(), 5, 3, 3),
    "NaN later, patience 1": ([1.0, NAN, 0.9], rule(patience=1), 2, 1, 1),
    "all NaN": ([NAN, NAN, NAN, NAN], rule(), 3, 1, None),
    "inf is compared, never our best": ([INF, 1.0, 1.0, 1.0], rule(), 4, 2, 2),
    "patience 0 stops at the first non-improvement": (
        [1.0, 0.9, 0.9, 0.8],
        rule(patience=0),
        3,
        2,
        2,
    ),
    "patience 0, always improving": ([1.0, 0.9, 0.8], rule(patience=0), 3, 3, 3),
    "one epoch": ([0.3], rule(patience=0), 1, 1, 1),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_cases(model: Any, name: str) -> None:
    curve, stop_rule, stop_epoch, keras_best, best = ADVERSARIAL[name]
    r = assert_agrees_with_keras(model, curve, stop_rule)
    assert (r.stop_epoch, r.keras_best_epoch, r.best_epoch) == (stop_epoch, keras_best, best)


def test_keras_compares_in_float32(model: Any) -> None:
    """What the float32 cases above rest on: keras.ops compares Python floats in float32."""
    assert not bool(keras.ops.less(1.0 - 1e-12, 1.0))
    assert bool(keras.ops.less(1.0 - 2**-24, 1.0))
    # 0.9 + (0.1 - 1e-10) is below 1.0 in float64, equal to it in float32
    stopper = early_stopping(rule(patience=1, min_delta=0.1 - 1e-10))
    assert 0.9 + stopper.min_delta < 1.0
    stopper.set_model(model)
    stopper.on_train_begin()
    stopper.on_epoch_end(0, {"val_loss": 1.0})
    stopper.on_epoch_end(1, {"val_loss": 0.9})
    assert stopper.best == 1.0 and stopper.wait == 1


def test_values_beyond_float32_are_refused_like_keras(model: Any) -> None:
    curve = [1.0, 1e39]
    with pytest.raises(ValueError, match="out of range"):  # TensorFlow's float32 conversion
        run_keras(model, curve, rule())
    with pytest.raises(ValueError, match="float32"):
        replay(curve, rule(), max_epochs=2)
    with pytest.raises(ValueError, match="float32"):
        replay([1.0], rule(baseline=-1e39), max_epochs=1)
    curves_, lengths = pad_curves([[1.0], curve])
    with pytest.raises(ValueError, match="float32"):
        replay_many(curves_, lengths, lengths, [rule()])


# ---------------------------------------------------------------------------
# the direct way is the real thing

FIT_CASES = [
    ([1.0, 0.9, 0.9, 0.9, 0.8, 0.7], rule()),
    ([0.5, 0.75, 1.0, 1.0, 1.0], rule("max", 1, min_delta=0.25)),
    ([1.0, 1.0 - 1e-12, 0.9, 0.9], rule(patience=1)),
    ([NAN, 0.5, 0.4, 0.3], rule()),
    ([1.0, 0.9, 0.8, 0.8, 0.8, 0.8], rule(baseline=0.85, start_from_epoch=1)),
    ([1.0, 0.9, 0.8], rule()),  # never stops: runs all epochs
    ([2.0, 1.0, 1.0], rule(patience=1)),  # stops on the last epoch
]


@pytest.mark.parametrize("index", range(len(FIT_CASES)))
def test_direct_callback_is_faithful_to_model_fit(model: Any, index: int) -> None:
    curve, stop_rule = FIT_CASES[index]
    assert run_keras_fit(model, curve, stop_rule) == run_keras(model, curve, stop_rule)
    assert_agrees_with_keras(model, curve, stop_rule)


# ---------------------------------------------------------------------------
# censoring


def test_cut_short_curve_is_censored_for_a_looser_rule() -> None:
    full = [1.0, 0.8, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6]  # ran to max_epochs=10
    strict, loose = rule(patience=2), rule(patience=3)
    recorded = full[: replay(full, strict, max_epochs=10).stop_epoch]  # the strict run
    assert recorded == full[:4]
    assert replay(recorded, loose, max_epochs=10).censored
    assert replay(recorded, loose, max_epochs=10) == Replay(
        stop_epoch=None,
        early_stopped=None,
        keras_best_epoch=None,
        best_epoch=None,
        best_score=None,
        censored=True,
    )
    exact = replay(recorded, strict, max_epochs=10)
    assert not exact.censored and exact == replay(full, strict, max_epochs=10)
    assert (exact.stop_epoch, exact.early_stopped, exact.best_epoch) == (4, True, 2)
    # an even stricter rule stops inside the recorded prefix: exact
    assert replay(recorded, rule(patience=1), max_epochs=10) == replay(
        full, rule(patience=1), max_epochs=10
    )
    # a run that went all the way is never censored, whatever the rule
    for p in range(12):
        r = replay(full, rule(patience=p), max_epochs=10)
        assert not r.censored and r.stop_epoch is not None and r.stop_epoch <= 10


@settings(max_examples=300, deadline=None)
@given(case=cases(), data=st.data())
def test_a_prefix_is_exact_or_censored(case: Any, data: st.DataObject) -> None:
    """A prefix of a full run (e.g. stopped by another rule, pruned, or cut by a budget)
    gives the full run's answer when the rule stops inside it, and is censored otherwise."""
    curve, stop_rule = case
    n = len(curve)
    full = replay(curve, stop_rule, max_epochs=n)
    assert not full.censored and full.stop_epoch is not None
    k = data.draw(st.integers(0, n))
    cut = replay(curve[:k], stop_rule, max_epochs=n)
    assert cut.censored == (full.stop_epoch > k)
    if not cut.censored:
        assert cut == full


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        StopRule(mode="auto", patience=1)
    with pytest.raises(ValueError, match="max_epochs"):
        replay([1.0, 2.0], rule(), max_epochs=1)
    with pytest.raises(ValueError, match="max_epochs"):
        replay_many(np.zeros((1, 3)), [3], [2], [rule()])
    assert replay([], rule(), max_epochs=0) == Replay(
        stop_epoch=0,
        early_stopped=False,
        keras_best_epoch=None,
        best_epoch=None,
        best_score=None,
        censored=False,
    )
    assert replay([], rule(), max_epochs=3).censored


# ---------------------------------------------------------------------------
# replay_many


def assert_table_agrees(
    curves_: list[list[float]], max_epochs: list[int], stop_rules: list[StopRule]
) -> None:
    padded, lengths = pad_curves(curves_)
    table = replay_many(padded, lengths, np.array(max_epochs), stop_rules)
    shape = (len(stop_rules), len(curves_))
    for field in ("stop_epoch", "early_stopped", "keras_best_epoch", "best_epoch", "censored"):
        assert getattr(table, field).shape == shape
    for i, stop_rule in enumerate(stop_rules):
        for j, curve in enumerate(curves_):
            expected = replay(curve, stop_rule, max_epochs=max_epochs[j])
            assert table.at(i, j) == expected, (stop_rule, curve, max_epochs[j])
            # and the raw arrays, with their sentinels
            assert table.censored[i, j] == expected.censored
            assert table.stop_epoch[i, j] == (
                -1 if expected.stop_epoch is None else expected.stop_epoch
            )
            assert table.early_stopped[i, j] == bool(expected.early_stopped)
            assert table.best_epoch[i, j] == (expected.best_epoch or -1)
            assert table.keras_best_epoch[i, j] == (expected.keras_best_epoch or -1)
            assert same(
                table.best_score[i, j], NAN if expected.best_score is None else expected.best_score
            )


@settings(max_examples=100, deadline=None)
@given(
    batch=st.lists(
        st.tuples(curves(max_len=15), st.integers(0, 3), st.booleans()), min_size=1, max_size=6
    ),
    data=st.data(),
)
def test_replay_many_equals_replay(batch: Any, data: st.DataObject) -> None:
    curves_ = []
    max_epochs = []
    for curve, extra, cut in batch:
        if cut:  # stopped early, pruned or cut by a budget
            curve = curve[: data.draw(st.integers(0, len(curve)))]
        curves_.append(curve)
        max_epochs.append(len(curve) + extra)
    stop_rules = data.draw(st.lists(rules(curves_[0] or [0.5]), min_size=1, max_size=6))
    assert_table_agrees(curves_, max_epochs, stop_rules)


def test_replay_many_equals_replay_on_a_random_batch() -> None:
    rng = np.random.default_rng(7)
    pool = np.array([*POOL, NAN])
    curves_ = []
    max_epochs = []
    for _ in range(120):
        n = int(rng.integers(0, 31))
        curve = rng.choice(pool, size=n, p=[0.9 / len(POOL)] * len(POOL) + [0.1])
        curves_.append([float(v) for v in curve])
        max_epochs.append(n + int(rng.choice([0, 0, 1, 5])))
    stop_rules = [
        StopRule(
            mode=str(rng.choice(["min", "max"])),
            patience=int(rng.integers(0, 7)),
            min_delta=float(rng.choice([0.0, 1e-9, 0.05, 0.1, 0.2, 0.5])),
            baseline=None if rng.random() < 0.6 else float(rng.choice(pool[:-1])),
            start_from_epoch=int(rng.integers(0, 6)),
        )
        for _ in range(40)
    ]
    assert_table_agrees(curves_, max_epochs, stop_rules)


def test_replay_many_with_no_curves_or_no_rules() -> None:
    table = replay_many(np.zeros((0, 0)), [], [], [rule()])
    assert table.stop_epoch.shape == (1, 0)
    table = replay_many(np.zeros((2, 3)), [3, 2], [3, 4], [])
    assert table.stop_epoch.shape == (0, 2)


# ---------------------------------------------------------------------------
# our best is not Keras' best_epoch


def test_true_best_differs_from_keras_best_with_min_delta(model: Any) -> None:
    curve = [1.0, 0.95, 0.9, 0.85, 0.9, 0.85]
    stop_rule = rule(patience=3, min_delta=0.2)
    r = assert_agrees_with_keras(model, curve, stop_rule)
    # Keras never sees a gain of 0.2 after epoch 1; the values keep falling until epoch 4
    assert (r.stop_epoch, r.early_stopped, r.keras_best_epoch) == (4, True, 1)
    assert (r.best_epoch, r.best_score) == (4, 0.85)
    # the earliest best among the epochs trained, and only those
    r = replay([1.0, 0.5, 0.7, 0.5, 0.5, 0.4], rule(patience=3, min_delta=0.6), max_epochs=6)
    assert (r.stop_epoch, r.keras_best_epoch, r.best_epoch, r.best_score) == (4, 1, 2, 0.5)
    r = replay([0.2, 0.5, 0.6, 0.6, 0.9], rule("max", 3, min_delta=0.5), max_epochs=5)
    assert (r.stop_epoch, r.keras_best_epoch, r.best_epoch, r.best_score) == (4, 1, 3, 0.6)


def test_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, sweep.views.stopping\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"
