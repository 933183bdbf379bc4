"""``sweep compare``: what other early-stopping settings would have done in a study,
answered from the curves it recorded (exact for stricter settings, censored for
looser ones; see ``stopping``), without training anything or importing TensorFlow."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sweep.core.atomic import write_text_atomic, write_with
from sweep.core.direction import Direction
from sweep.core.errors import ConfigError
from sweep.core.record import (
    CURVE,
    StopReason,
    StudyAttr,
    TrialRecord,
    execution_facts,
    from_trial,
    read_study,
)
from sweep.store.reading import StudyReader
from sweep.store.trials import stored_again
from sweep.views.stopping import StopRule, pad_curves, replay_many

if TYPE_CHECKING:  # Optuna is imported where a study is opened, not by importing this
    import optuna

DEFAULT_PATIENCE = (0, 1, 2, 3, 5, 10)
DEFAULT_MIN_DELTA = (0.0, 1e-4, 1e-3)


@dataclass(frozen=True)
class Curve:
    trial: int
    values: list[float]  # the monitored value of every epoch trained (NaN where not finite)
    max_epochs: int
    recorded_best: float


@dataclass(frozen=True)
class SettingResult:
    patience: int
    min_delta: float
    uncensored: int
    censored: int
    mean_epochs: float  # epochs trained under the setting, over the uncensored trials
    epochs_saved_pct: float  # vs the recorded runs of the same trials
    mean_best_score: float
    mean_regret: float  # how much worse each trial's best is than its recorded best
    best_still_best: str  # yes / no / unknown (a censored trial could change it)
    top5_overlap: int  # of the recorded top 5, how many stay in the top 5 (uncensored trials)


def recorded_curves(reader: StudyReader, trials: list[Any] | None = None) -> list[Curve]:
    """Complete and pruned trials' curves, from the values reported to Optuna each epoch
    (``trials``: read before, without their curves)."""
    found = [
        t
        for t in (reader.trials() if trials is None else trials)
        if t.state.name in ("COMPLETE", "PRUNED") and from_trial(t).stop_epoch
    ]
    steps_of = reader.curves([t.number for t in found])
    curves = []
    for t in found:
        rec = from_trial(t)
        if rec.executions > 1:  # its execution_<e> attrs, read whole
            whole = stored_again(reader.study, t)
            executions = execution_facts(whole)
            curves.extend(execution_curves(t.number, int(rec.max_epochs or 0), executions))
            continue
        stop = int(rec.stop_epoch or 0)
        steps = steps_of.get(t.number, {})
        values = [float(steps.get(e, math.nan)) for e in range(1, stop + 1)]
        best = rec.best_score
        curves.append(
            Curve(
                trial=t.number,
                values=values,
                max_epochs=_ends_at(rec.stop_reason, stop, int(rec.max_epochs or 0)),
                recorded_best=math.nan if best is None else float(best),
            )
        )
    return curves


def execution_curves(number: int, max_epochs: int, executions: list[dict[str, Any]]) -> list[Curve]:
    """One curve per execution of a trial trained ``executions_per_trial`` times (each
    execution's values, as it recorded them: see ``record.execution_facts``)."""
    curves = []
    for ex in executions:
        steps, best = ex.get(CURVE) or {}, ex.get("best_score")
        stop = int(ex.get("stop_epoch") or 0)
        values = [float(steps.get(str(k), math.nan)) for k in range(1, stop + 1)]
        if values:
            curves.append(
                Curve(
                    trial=number,
                    values=values,
                    max_epochs=_ends_at(ex.get("stop_reason"), stop, max_epochs),
                    recorded_best=math.nan if best is None else float(best),
                )
            )
    return curves


def _ends_at(reason: Any, stop_epoch: int, max_epochs: int) -> int:
    """The last epoch any early-stopping setting could have trained: a user's callback
    that stopped training (stop_reason callback) would have stopped it there again, so
    its curve is whole (uncensored) at that length; else max_epochs."""
    return stop_epoch if reason == StopReason.CALLBACK else max_epochs


def recorded_settings(
    study: optuna.Study, trials: list[Any] | None = None
) -> tuple[set[int], set[float]]:
    """The patience and min_delta values the study's trials ran with (``trials``: read
    before)."""
    from sweep.store.storage import reader_for

    patience, min_delta = set(), set()
    for t in reader_for(study).trials() if trials is None else trials:
        rec = from_trial(t)
        if rec.calibration:
            continue  # early stopping was off
        if rec.patience is not None:
            patience.add(rec.patience)
        if rec.min_delta is not None:
            min_delta.add(rec.min_delta)
    return patience, min_delta


def checked_settings(patience: Any, min_delta: Any) -> tuple[list[int], list[float]]:
    """``patience`` and ``min_delta`` (a value or a list of them) checked as ``sweep run``
    checks them (the same messages), as lists; a ``ConfigError`` otherwise."""
    from sweep.space.files import COMMAND_LINE, validate_settings

    raw = {"patience": patience, "min_delta": min_delta}
    values = validate_settings(raw, path=Path("."), origin=COMMAND_LINE)
    p, d = values["patience"], values["min_delta"]
    return (p if isinstance(p, list) else [p]), (d if isinstance(d, list) else [d])


def compare(
    study: optuna.Study,
    *,
    patience: int | list[int],
    min_delta: float | list[float],
    trials: list[Any] | None = None,
) -> list[SettingResult]:
    """``trials``: the study's trials if already read (``StudyReader.trials``). ``patience``
    and ``min_delta`` are checked as ``sweep run`` checks them (``checked_settings``)."""
    from sweep.store.storage import reader_for

    patience, min_delta = checked_settings(patience, min_delta)
    mode = read_study(study, StudyAttr.MODE)  # the stored string
    reader = reader_for(study)
    trials = reader.trials() if trials is None else trials
    curves = recorded_curves(reader, trials)
    if mode not in ("min", "max") or not curves:
        raise ConfigError(
            f"study {study.study_name!r}: expected finished trials with recorded curves, "
            "found none; run some trials first"
        )
    first = from_trial(next(t for t in trials if t.number == curves[0].trial))
    direction = Direction(mode)
    rules = _rules(direction, first, patience, min_delta)
    padded, lengths = pad_curves([c.values for c in curves])
    table = replay_many(padded, lengths, np.array([c.max_epochs for c in curves]), rules)
    sign = direction.sign  # lower is better after multiplying by sign
    recorded = np.array([c.recorded_best for c in curves]) * sign
    recorded_epochs = lengths.astype(float)
    prefix_best = np.array([np.nanmin(np.array(c.values) * sign) for c in curves])
    top_recorded = set(np.argsort(recorded, kind="stable")[:5].tolist())
    best_index = int(np.argmin(recorded))
    results = []
    for i, rule in enumerate(rules):
        known = ~table.censored[i]
        score = table.best_score[i] * sign
        n = int(known.sum())
        regret = score[known] - recorded[known]
        still = _still_best(known, score, prefix_best, best_index)
        known_idx = np.flatnonzero(known)
        ranked = known_idx[np.argsort(score[known], kind="stable")][:5]
        saved = 0.0
        if n:
            trained = table.stop_epoch[i][known].sum()
            saved = 100.0 * (1.0 - trained / recorded_epochs[known].sum())
        results.append(
            SettingResult(
                patience=rule.patience,
                min_delta=rule.min_delta,
                uncensored=n,
                censored=len(curves) - n,
                mean_epochs=float(table.stop_epoch[i][known].mean()) if n else math.nan,
                epochs_saved_pct=saved if n else math.nan,
                mean_best_score=float(table.best_score[i][known].mean()) if n else math.nan,
                mean_regret=float(regret.mean()) if n else math.nan,
                best_still_best=still,
                top5_overlap=len(top_recorded & set(ranked.tolist())),
            )
        )
    return results


def _rules(
    direction: Direction, first: TrialRecord, patience: list[int], min_delta: list[float]
) -> list[StopRule]:
    """Every pair of the settings asked for, with the study's baseline and start_from_epoch
    (as its first trial with a curve recorded them)."""
    return [
        StopRule(
            mode=direction,
            patience=p,
            min_delta=d,
            baseline=first.baseline,
            start_from_epoch=int(first.start_from_epoch or 0),
        )
        for p in patience
        for d in min_delta
    ]


def _still_best(known: Any, score: Any, prefix_best: Any, best_index: int) -> str:
    """Whether the recorded best trial would still be best under a rule (scores multiplied
    by the direction's sign, lower is better): "yes", "no", or "unknown" where a censored
    trial (whose best so far is ``prefix_best``) might still beat it."""
    if not known[best_index]:
        return "unknown"
    rivals = np.delete(np.arange(len(known)), best_index)
    beaten = any(
        (known[j] and score[j] < score[best_index])
        or (not known[j] and prefix_best[j] < score[best_index])
        for j in rivals
    )
    unsure = any(not known[j] for j in rivals)
    return "no" if beaten else ("unknown" if unsure else "yes")


COLUMNS = [f.name for f in fields(SettingResult)]


def to_csv(results: list[SettingResult]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in results:
        writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in astuple(r)])
    return buf.getvalue()


def write_outputs(results: list[SettingResult], folder: Path) -> tuple[Path, Path]:
    """``stopping.csv`` and ``stopping.png`` (epochs saved against regret) in ``folder``."""
    csv_path, png_path = folder / "stopping.csv", folder / "stopping.png"
    write_text_atomic(csv_path, to_csv(results))
    write_with(png_path, lambda tmp: _plot(results, tmp))
    return csv_path, png_path


def _plot(results: list[SettingResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=100)
    groups: dict[tuple[float, float], list[SettingResult]] = {}
    for r in results:
        if r.uncensored:
            groups.setdefault((round(r.epochs_saved_pct, 6), round(r.mean_regret, 12)), []).append(
                r
            )
    for i, ((x, y), members) in enumerate(sorted(groups.items())):
        partial = any(m.censored for m in members)
        ax.scatter([x], [y], s=40, facecolors="none" if partial else "C0", edgecolors="C0")
        ps = ",".join(str(p) for p in sorted({m.patience for m in members}))
        ds = ",".join(f"{d:g}" for d in sorted({m.min_delta for m in members}))
        ax.annotate(
            f"p={ps} d={ds}",
            (x, y),
            fontsize=7,
            xytext=(4, 4 + 11 * (i % 3)),
            textcoords="offset points",
        )
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("epochs saved vs the recorded runs (%)")
    ax.set_ylabel("mean regret (best score lost per trial)")
    ax.set_title(
        "early-stopping settings replayed on the recorded curves\n"
        "(hollow: some trials censored, averages over the others)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
