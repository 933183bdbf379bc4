"""Replay speed: 100 EarlyStopping settings (patience x min_delta) over 1,000 recorded
curves of up to 200 epochs, with sweep.views.stopping.replay_many.

    python benchmarks/replay.py [--curves 1000] [--epochs 200] [--repeats 3]

The curves are synthetic validation losses (a noisy decay that turns back up, values
rounded to float32 as Keras logs them); about a third of them were stopped early, so
they are shorter than max_epochs and some replays are censored. Prints the best of
--repeats wall times and the cost per (rule, curve); the target is under one second.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sweep.views.stopping import StopRule, replay_many

PATIENCE = [0, 1, 2, 3, 5, 8, 10, 15, 20, 30]
MIN_DELTA = [0.0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3]


def synthetic_curves(
    n_curves: int, epochs: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(curves NaN-padded, lengths, max_epochs)."""
    rng = np.random.default_rng(seed)
    t = np.arange(epochs, dtype=np.float64)[None, :]
    floor = rng.uniform(0.05, 0.5, size=(n_curves, 1))
    scale = rng.uniform(0.5, 2.0, size=(n_curves, 1))
    rate = rng.uniform(0.01, 0.2, size=(n_curves, 1))
    overfit = rng.uniform(0.0, 2e-3, size=(n_curves, 1))
    noise = rng.normal(0.0, 1.0, size=(n_curves, epochs)) * rng.uniform(0.0, 0.03, (n_curves, 1))
    curves = floor + scale * np.exp(-rate * t) + overfit * t + noise
    curves = curves.astype(np.float32).astype(np.float64)  # what Keras logs hold
    lengths = np.full(n_curves, epochs, dtype=np.int64)
    short = rng.random(n_curves) < 1 / 3  # stopped early, pruned or cut by a budget
    lengths[short] = rng.integers(5, epochs, size=int(short.sum()))
    curves[np.arange(epochs)[None, :] >= lengths[:, None]] = np.nan
    return curves, lengths, np.full(n_curves, epochs, dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rules = [StopRule(mode="min", patience=p, min_delta=d) for p in PATIENCE for d in MIN_DELTA]
    curves, lengths, max_epochs = synthetic_curves(args.curves, args.epochs)
    times = []
    table = None
    for _ in range(args.repeats):
        started = time.perf_counter()
        table = replay_many(curves, lengths, max_epochs, rules)
        times.append(time.perf_counter() - started)
    assert table is not None
    best = min(times)
    pairs = len(rules) * args.curves
    print(
        f"replay_many: {len(rules)} rules x {args.curves} curves of up to {args.epochs} epochs "
        f"({int((lengths < args.epochs).sum())} stopped early)"
    )
    print(f"best of {args.repeats}: {best:.3f} s, {best / pairs * 1e6:.2f} us per (rule, curve)")
    print(
        f"censored {table.censored.mean():.1%}, early stopped {table.early_stopped.mean():.1%}, "
        f"mean stop epoch {table.stop_epoch[~table.censored].mean():.1f}"
    )


if __name__ == "__main__":
    main()
