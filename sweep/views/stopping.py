"""Keras' EarlyStopping rule as a pure function over a recorded curve, and its replay.

EarlyStopping never changes training before it stops, so a curve recorded under a
generous rule holds, as a prefix, exactly the run a stricter rule would have trained
(same seed, deterministic ops). ``replay`` answers "what would this rule have done on
that run": exactly when the rule stops within the recorded epochs, or when the curve
ran to max_epochs; otherwise the outcome is censored (unknown, never guessed).

The rule is Keras 3.15's (keras/src/callbacks/early_stopping.py and
monitor_callback.py), to the bit:

- ``best`` starts as None on every fit, so the first counted epoch is always an
  improvement, whatever its value (a NaN included);
- epochs before ``start_from_epoch`` are ignored entirely;
- on each counted epoch ``wait`` goes up by one *before* the improvement check; an
  improvement moves ``best`` and ``best_epoch`` and resets ``wait`` only if the value
  also beats ``baseline`` (same rule, same min_delta); an improving epoch never stops;
- otherwise training stops at the end of that epoch if ``wait >= patience`` and the
  0-based epoch is above 0;
- improvement is ``monitor_op(current - min_delta, reference)`` where min_delta is
  ``-|min_delta|`` in min mode and ``+|min_delta|`` in max mode; the subtraction is a
  Python (float64) one, but ``keras.ops.less/greater`` convert both Python floats to
  float32 tensors (floatx) before comparing. So two values that differ only beyond
  float32 precision tie (no improvement), and min_delta boundaries round in float32.
  TensorFlow refuses a finite Python float beyond float32's range; we reject those
  up front (ValueError) rather than guess;
- NaN: a NaN first counted value becomes ``best``; from then on nothing compares as
  an improvement, so the rule stops after ``patience`` more epochs (``best_epoch``
  stays there). A later NaN is never an improvement. A NaN baseline is never beaten.

Our own best (``best_epoch``/``best_score``) is sweep.train.recorder's: the epoch with the
best monitored value among the epochs trained (all of them, warm-up included),
earliest on ties, strict float64 comparison, no min_delta, non-finite never best.
With min_delta > 0 it can differ from Keras' ``best_epoch`` (``keras_best_epoch``).

This module imports NumPy only (no TensorFlow, no Keras): ``sweep compare`` uses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sweep.core.direction import Direction

__all__ = ["Replay", "ReplayTable", "StopRule", "pad_curves", "replay", "replay_many"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_F32_MAX = float(np.finfo(np.float32).max)
_NEVER = 2**62  # more epochs than any curve has


@dataclass(frozen=True, kw_only=True)
class StopRule:
    """The settings of one keras.callbacks.EarlyStopping (mode already resolved)."""

    mode: Direction  # given as one, or as its string: "min" or "max"
    patience: int
    min_delta: float = 0.0
    baseline: float | None = None
    start_from_epoch: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be resolved to 'min' or 'max', got {self.mode!r}")
        object.__setattr__(self, "mode", Direction(self.mode))

    @property
    def signed_delta(self) -> float:
        """What Keras subtracts from the current value before comparing."""
        delta = abs(float(self.min_delta))
        return -self.mode.sign * delta


@dataclass(frozen=True, kw_only=True)
class Replay:
    """What one rule does on one recorded curve. Epoch numbers are 1-based."""

    stop_epoch: int | None  # last epoch trained under the rule (None if censored)
    early_stopped: bool | None  # the rule stopped before max_epochs (None if censored)
    keras_best_epoch: int | None  # EarlyStopping.best_epoch + 1 at the stop; None if unset
    best_epoch: int | None  # our best among the epochs trained (earliest on ties)
    best_score: float | None  # the monitored value at best_epoch
    censored: bool  # the outcome is unknown: the curve ends before the rule would stop


CENSORED = Replay(
    stop_epoch=None,
    early_stopped=None,
    keras_best_epoch=None,
    best_epoch=None,
    best_score=None,
    censored=True,
)


def _improves(x: np.float32, reference: np.float32, mode: Direction) -> bool:
    """keras.ops.less/greater on two Python floats: both become float32 first."""
    return bool(x < reference) if mode is Direction.MIN else bool(x > reference)


def _out_of_float32(x: float) -> bool:
    return math.isfinite(x) and abs(x) > _F32_MAX


def _check_range(values: Sequence[float], rule: StopRule) -> None:
    delta = rule.signed_delta
    if rule.baseline is not None and _out_of_float32(float(rule.baseline)):
        raise ValueError(
            f"baseline {rule.baseline!r} is beyond float32's range: Keras compares in float32 "
            "and TensorFlow refuses it"
        )
    for v in values:
        if _out_of_float32(v) or _out_of_float32(v - delta):
            raise ValueError(
                f"monitored value {v!r} (min_delta {rule.min_delta!r}) is beyond float32's "
                "range: Keras compares in float32 and TensorFlow refuses it"
            )


def _true_best(values: Sequence[float], mode: Direction) -> tuple[int | None, float | None]:
    """sweep.train.recorder's best: earliest strict best among finite values, 1-based."""
    best_epoch: int | None = None
    best_score: float | None = None
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        if mode.better(v, best_score):
            best_epoch, best_score = i + 1, v
    return best_epoch, best_score


def replay(values: Sequence[float], rule: StopRule, *, max_epochs: int) -> Replay:
    """Replay Keras' EarlyStopping(rule) over a recorded curve of at most max_epochs.

    ``values`` holds one monitored value per epoch the recorded run trained, in order.
    """
    vals = [float(v) for v in values]
    n = len(vals)
    if max_epochs < 0:
        raise ValueError(f"max_epochs must be >= 0, got {max_epochs}")
    if n > max_epochs:
        raise ValueError(f"the curve has {n} epochs, more than max_epochs={max_epochs}")
    _check_range(vals, rule)
    delta = rule.signed_delta
    baseline = None if rule.baseline is None else np.float32(float(rule.baseline))
    best: np.float32 | None = None
    keras_best: int | None = None  # 0-based, as Keras holds it
    wait = 0
    stop: int | None = None  # 1-based
    for epoch, current in enumerate(vals):
        if epoch < rule.start_from_epoch:
            continue
        wait += 1
        x = np.float32(current - delta)
        if best is None or _improves(x, best, rule.mode):
            best, keras_best = np.float32(current), epoch
            if baseline is None or _improves(x, baseline, rule.mode):
                wait = 0
            continue
        if wait >= rule.patience and epoch > 0:
            stop = epoch + 1
            break
    if stop is None:
        if n < max_epochs:
            return CENSORED
        stop = n
    best_epoch, best_score = _true_best(vals[:stop], rule.mode)
    return Replay(
        stop_epoch=stop,
        early_stopped=stop < max_epochs,
        keras_best_epoch=None if keras_best is None else keras_best + 1,
        best_epoch=best_epoch,
        best_score=best_score,
        censored=False,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class ReplayTable:
    """replay() for every (rule, curve): arrays of shape (n_rules, n_curves).

    Censored entries hold stop_epoch -1, early_stopped False, best_epoch -1,
    keras_best_epoch -1, best_score NaN. Epoch numbers are 1-based.
    """

    rules: tuple[StopRule, ...]
    stop_epoch: IntArray
    early_stopped: BoolArray
    keras_best_epoch: IntArray  # -1 if Keras never set a best, or censored
    best_epoch: IntArray  # -1 if no finite value was trained, or censored
    best_score: FloatArray
    censored: BoolArray

    def at(self, rule: int, curve: int) -> Replay:
        """One entry, as replay() gives it."""
        if self.censored[rule, curve]:
            return CENSORED
        keras_best = int(self.keras_best_epoch[rule, curve])
        best = int(self.best_epoch[rule, curve])
        return Replay(
            stop_epoch=int(self.stop_epoch[rule, curve]),
            early_stopped=bool(self.early_stopped[rule, curve]),
            keras_best_epoch=keras_best if keras_best > 0 else None,
            best_epoch=best if best > 0 else None,
            best_score=float(self.best_score[rule, curve]) if best > 0 else None,
            censored=False,
        )


def pad_curves(curves: Sequence[Sequence[float]]) -> tuple[FloatArray, IntArray]:
    """Curves of different lengths as (n_curves, longest) float64 NaN-padded, and lengths."""
    lengths = np.array([len(c) for c in curves], dtype=np.int64)
    width = int(lengths.max()) if len(curves) else 0
    out = np.full((len(curves), width), np.nan, dtype=np.float64)
    for i, c in enumerate(curves):
        out[i, : len(c)] = np.asarray(c, dtype=np.float64)
    return out, lengths


def _prefix_best(curves: FloatArray, valid: BoolArray, sign: float) -> IntArray:
    """For each curve and epoch t, the 0-based index of our best among epochs 0..t (-1 if none).

    ``sign`` is 1 for min mode, -1 for max mode (negation is exact in float64).
    """
    n_curves, width = curves.shape
    out = np.empty((n_curves, width), dtype=np.int64)
    run_idx = np.full(n_curves, -1, dtype=np.int64)
    run_val = np.zeros(n_curves, dtype=np.float64)
    for t in range(width):
        v = sign * curves[:, t]
        take = valid[:, t] & np.isfinite(v) & ((run_idx < 0) | (v < run_val))
        run_idx[take] = t
        run_val[take] = v[take]
        out[:, t] = run_idx
    return out


def _check_range_many(curves: FloatArray, valid: BoolArray, rules: Sequence[StopRule]) -> None:
    """The check replay() makes on each curve, over all curves at once."""
    finite = curves[valid & np.isfinite(curves)]
    big = finite[np.abs(finite) > _F32_MAX]
    for rule in rules:
        _check_range(big[:1].tolist(), rule)  # the baseline, and values beyond float32
        shifted = finite - rule.signed_delta
        bad = np.isfinite(shifted) & (np.abs(shifted) > _F32_MAX)
        _check_range(finite[bad][:1].tolist(), rule)


def replay_many(
    curves: npt.ArrayLike,
    lengths: npt.ArrayLike,
    max_epochs: npt.ArrayLike,
    rules: Sequence[StopRule],
) -> ReplayTable:
    """replay() of every rule over every curve, vectorised over rules and curves.

    ``curves`` is (n_curves, L) float64, NaN-padded beyond each curve's length (the
    padding is never read); ``lengths`` and ``max_epochs`` are (n_curves,) ints.
    Agrees with replay() element for element.
    """
    data = np.asarray(curves, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"curves must be 2-D (n_curves, epochs), got shape {data.shape}")
    n_curves, width = data.shape
    lens = np.asarray(lengths, dtype=np.int64).reshape(-1)
    limit = np.asarray(max_epochs, dtype=np.int64).reshape(-1)
    if lens.shape != (n_curves,) or limit.shape != (n_curves,):
        raise ValueError("lengths and max_epochs must have one entry per curve")
    if np.any(lens < 0) or np.any(lens > width):
        raise ValueError(f"lengths must be within 0..{width}")
    if np.any(lens > limit):
        raise ValueError("a curve has more epochs than its max_epochs")
    rules = tuple(rules)
    n_rules = len(rules)
    valid = np.arange(width)[None, :] < lens[:, None]
    _check_range_many(data, valid, rules)

    # Max mode becomes min mode by negating both sides: exact in float32 too, since
    # rounding to nearest is symmetric (f32(-y) == -f32(y)), and NaN stays NaN.
    sign = np.array([[r.mode.sign] for r in rules], dtype=np.float32)
    delta = np.array([[r.signed_delta] for r in rules], dtype=np.float64)
    # a patience beyond any curve's length never runs out: capped to fit in int64
    patience = np.array([[min(r.patience, _NEVER)] for r in rules], dtype=np.int64)
    start = np.array([[r.start_from_epoch] for r in rules], dtype=np.int64)
    has_base = np.array([[r.baseline is not None] for r in rules], dtype=np.bool_)
    base = np.array(
        [[0.0 if r.baseline is None else float(r.baseline)] for r in rules], dtype=np.float64
    )
    base_s = sign * base.astype(np.float32)
    shape = (n_rules, n_curves)
    best_s = np.zeros(shape, dtype=np.float32)
    has_best = np.zeros(shape, dtype=np.bool_)
    keras_best = np.full(shape, -1, dtype=np.int64)
    wait = np.zeros(shape, dtype=np.int64)
    stopped = np.zeros(shape, dtype=np.bool_)
    stop_epoch = np.zeros(shape, dtype=np.int64)

    for t in range(int(lens.max()) if n_curves else 0):
        live = ~stopped & (t < lens)[None, :]
        if not live.any():
            break  # every rule has stopped on every curve, or the curve has ended
        counted = live & (start <= t)
        v = np.where(valid[:, t], data[:, t], np.nan)  # the padding is never read
        x_s = sign * (v[None, :] - delta).astype(np.float32)
        imp = counted & (~has_best | (x_s < best_s))
        wait += counted
        np.copyto(best_s, sign * v.astype(np.float32)[None, :], where=imp)
        has_best |= imp
        keras_best[imp] = t
        wait[imp & (~has_base | (x_s < base_s))] = 0
        if t > 0:
            stop_now = counted & ~imp & (wait >= patience)
            stopped |= stop_now
            stop_epoch[stop_now] = t + 1

    full = (lens == limit)[None, :]
    ran_out = ~stopped & full
    censored = ~stopped & ~full
    stop_epoch = np.where(ran_out, lens[None, :], stop_epoch)
    stop_epoch[censored] = -1
    early_stopped = stopped & (stop_epoch < limit[None, :])
    keras_best = np.where(censored | (keras_best < 0), -1, keras_best + 1)

    best_epoch = np.full(shape, -1, dtype=np.int64)
    best_score = np.full(shape, np.nan, dtype=np.float64)
    if n_curves and width:
        prefix = {d: _prefix_best(data, valid, d.sign) for d in Direction}
        cols = np.arange(n_curves)
        for i, rule in enumerate(rules):
            last = stop_epoch[i] - 1  # 0-based last epoch trained; -1 (or -2) if none
            has = last >= 0
            idx = np.where(has, prefix[rule.mode][cols, np.maximum(last, 0)], -1)
            best_epoch[i] = np.where(idx >= 0, idx + 1, -1)
            best_score[i] = np.where(idx >= 0, data[cols, np.maximum(idx, 0)], np.nan)
    return ReplayTable(
        rules=rules,
        stop_epoch=stop_epoch,
        early_stopped=early_stopped,
        keras_best_epoch=keras_best,
        best_epoch=best_epoch,
        best_score=best_score,
        censored=censored,
    )
