"""``sweep report``: one self-contained HTML page about a study (``results/<study>/report.html``).

It reads only the Optuna study and the files trials wrote (``history.csv``, and
``stopping.csv``/``stopping.png`` from ``sweep compare``); it changes nothing and imports
no TensorFlow. Plots are PNGs from matplotlib's Agg renderer, inlined as ``data:`` URIs;
a Content-Security-Policy forbids any fetch, so the page needs no network.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from sweep.core.atomic import write_text_atomic
from sweep.core.direction import Direction
from sweep.core.durations import format_duration
from sweep.core.record import StudyAttr, from_trial, read_study
from sweep.store.results import READ_KEYS, columns, display_cell, rows_of
from sweep.views.history import DamagedHistory, curve_series
from sweep.views.importances import MIN_IMPORTANCE_TRIALS, fanova

if TYPE_CHECKING:
    import optuna

REPORT = "report.html"
TOP_CURVES = 5
MAX_BARS = 200  # one bar per trial up to this many, a histogram beyond

# Runs on window load: how many images decoded (naturalWidth > 0) and how many table rows
# the browser built, written onto <body> (the tests read them from a headless browser).
_SCRIPT = (
    "window.addEventListener('load',function(){var i=document.images,n=0;"
    "for(var k=0;k<i.length;k++){if(i[k].naturalWidth>0){n++;}}"
    "document.body.dataset.imagesLoaded=n+'/'+i.length;"
    "document.body.dataset.resultsRows="
    "String(document.querySelectorAll('#results tbody tr').length);});"
)
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:3px}
.meta{color:#555}.note{color:#666;font-style:italic}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;white-space:nowrap}
th{background:#f4f4f4}tr.failed td{color:#a33}td.err{white-space:normal;max-width:420px}
img{max-width:100%;height:auto;display:block;margin:6px 0}
.bar{background:#4a7ebb;height:10px}
"""


def write_report(study: optuna.Study, folder: Path) -> Path:
    """Write ``folder / "report.html"`` atomically and return its path."""
    path = folder / REPORT
    write_text_atomic(path, render(study, folder))
    return path


def render(study: optuna.Study, folder: Path) -> str:
    """The whole page as a string."""
    from sweep.store.storage import reader_for

    reader = reader_for(study)
    # without curves, but for the plotted ones
    trials = {t.number: t for t in reader.trials(keys=READ_KEYS)}
    rows = rows_of(list(trials.values()), reader.direction)
    top = [int(r["trial"]) for r in rows if r["state"] == "complete"][:TOP_CURVES]
    for number, steps in reader.curves(top).items():
        trials[number].intermediate_values = steps
    name = html.escape(str(study.study_name))
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        f"<title>sweep report: {name}</title><style>{_STYLE}</style></head><body>",
        _header(study, rows, trials),
        _section("Results", _results_table(rows)),
        _section("Learning curves of the best trials", _curves(study, rows, trials)),
        _section("Best score by trial", _progress(study, rows)),
        _section("Early stopping", _early_stopping(rows)),
        _section("Parameter importances", _importances(study, trials)),
        _stopping_comparison(folder),
        f"<script>{_SCRIPT}</script></body></html>\n",
    ]
    return "\n".join(p for p in parts if p)


def _e(value: Any) -> str:
    return html.escape(display_cell(value))


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n{body}\n</section>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _header(study: optuna.Study, rows: list[dict[str, Any]], trials: dict[int, Any]) -> str:
    counts = Counter(r["state"] for r in rows)
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials yet"
    starts = [t.datetime_start for t in trials.values() if t.datetime_start]
    ends = [t.datetime_complete for t in trials.values() if t.datetime_complete]
    span = "not started"
    if starts:
        first, last = min(starts), max(ends or starts)
        took = format_duration((last - first).total_seconds())
        span = f"{first:%Y-%m-%d %H:%M:%S} to {last:%Y-%m-%d %H:%M:%S} ({took})"
    return (
        f"<h1>Study {html.escape(str(study.study_name))}</h1>\n"
        f'<p class="meta">monitor <b>{_e(read_study(study, StudyAttr.MONITOR))}</b>, mode '
        f"<b>{_e(read_study(study, StudyAttr.MODE))}</b> ({_e(Direction.of_study(study).optuna)}); "
        f"{len(rows)} trials: {html.escape(states)}; {html.escape(span)}</p>"
    )


def _html_table(
    cols: list[str], rows: list[list[Any]], *, table_id: str = "", row_classes: Sequence[str] = ()
) -> str:
    """A table of escaped cells; an ``error`` column may wrap."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    wrap = ['"err"' if c == "error" else "" for c in cols]
    lines = []
    for i, row in enumerate(rows):
        cells = "".join(
            f"<td class={w}>{_e(v)}</td>" if w else f"<td>{_e(v)}</td>"
            for w, v in zip(wrap, row, strict=True)
        )
        cls = f' class="{html.escape(row_classes[i])}"' if i < len(row_classes) else ""
        lines.append(f"<tr{cls}>{cells}</tr>")
    ident = f' id="{table_id}"' if table_id else ""
    body = "\n".join(lines)
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _results_table(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    cells = [[row.get(c) for c in cols] for row in rows]
    table = _html_table(cols, cells, table_id="results", row_classes=[r["state"] for r in rows])
    return f"<p>{len(rows)} trials, best first (the same table as trials.csv).</p>\n{table}"


def _img(draw: Callable[[Figure], None], *, size: tuple[float, float], alt: str) -> str:
    fig = Figure(figsize=size, dpi=100)
    draw(fig)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _label(text: Any) -> str:
    """Text for matplotlib: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def _number(text: str) -> Any:
    """A CSV cell as a number when it is one, so floats show 6 significant digits."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _curves(study: optuna.Study, rows: list[dict[str, Any]], trials: dict[int, Any]) -> str:
    monitor = str(read_study(study, StudyAttr.MONITOR) or "value")
    best = [trials[r["trial"]] for r in rows if r["state"] == "complete"][:TOP_CURVES]
    if not best:
        return _note("No complete trials yet.")
    curves: dict[int, dict[str, list[tuple[int, float]]]] = {}
    notes = ""
    for t in best:
        try:
            curves[t.number] = curve_series(t, monitor)
        except DamagedHistory as exc:
            notes += _note(f"Trial {t.number}'s learning curve is left out: {exc}.") + "\n"
    top = [t for t in best if t.number in curves]
    if not top:
        return notes + _note("No learning curve could be drawn.")

    def draw(fig: Figure) -> None:
        axes = fig.subplots(2, 3).ravel()
        overview: Axes = axes[0]
        for i, t in enumerate(top):
            color = f"C{i}"
            rec = from_trial(t)
            best, stop = rec.best_epoch, rec.stop_epoch
            xs = [e for e, _ in curves[t.number][monitor]]
            ys = [v for _, v in curves[t.number][monitor]]
            overview.plot(xs, ys, color=color, marker=".", label=f"trial {t.number}")
            ax: Axes = axes[i + 1]
            for key, points in curves[t.number].items():
                if key != monitor and points:
                    ax.plot(
                        [e for e, _ in points],
                        [v for _, v in points],
                        lw=1,
                        alpha=0.6,
                        label=_label(key),
                    )
            ax.plot(xs, ys, color=color, lw=2, marker=".", label=_label(monitor))
            for target in (overview, ax):
                if best is not None:
                    target.axvline(best, color=color, ls="--", lw=1)
                    target.plot([best], [rec.best_score or math.nan], "*", color=color, ms=12)
                if stop is not None:
                    target.axvline(stop, color=color, ls=":", lw=1.5)
            ax.set_title(f"trial {t.number}: best epoch {best}, stopped at {stop}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7)
        overview.set_title(f"{_label(monitor)}, best {len(top)} trials", fontsize=9)
        overview.set_xlabel("epoch")
        overview.legend(fontsize=7)
        for ax in axes[len(top) + 1 :]:
            ax.set_visible(False)
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    return notes + (
        _img(draw, size=(12, 6.5), alt=f"learning curves of the best {len(top)} trials")
        + "\n<p>Star and dashed line: best epoch; dotted line: the last epoch trained.</p>"
    )


def _progress(study: optuna.Study, rows: list[dict[str, Any]]) -> str:
    done = sorted(
        (r["trial"], float(r["best_score"]))
        for r in rows
        if r["state"] == "complete" and isinstance(r["best_score"], int | float)
    )
    if not done:
        return _note("No complete trials yet.")
    pick = max if Direction.of_study(study) is Direction.MAX else min
    running: list[float] = []
    for _, score in done:
        running.append(score if not running else pick(running[-1], score))

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        ax.plot([n for n, _ in done], [s for _, s in done], "o", label="best score of the trial")
        ax.step([n for n, _ in done], running, where="post", color="C3", label="best so far")
        ax.set_xlabel("trial number")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_label(read_study(study, StudyAttr.MONITOR) or "value"))
        ax.grid(alpha=0.3)
        ax.legend()

    return _img(draw, size=(9, 3.8), alt="best score by trial")


def _early_stopping(rows: list[dict[str, Any]]) -> str:
    trained = sorted(
        (r for r in rows if r["state"] in ("complete", "pruned") and r.get("stop_epoch")),
        key=lambda r: int(r["trial"]),
    )
    if not trained:
        return _note("No finished trials yet.")
    early = sum(1 for r in trained if r.get("early_stopped") is True)
    saved = [int(r["max_epochs"]) - int(r["stop_epoch"]) for r in trained if r.get("max_epochs")]
    mean_saved = sum(saved) / len(saved) if saved else 0.0

    def histogram(fig: Figure) -> None:
        ax = fig.subplots()
        groups = [
            [int(r["stop_epoch"]) for r in trained if (r.get("early_stopped") is True) == early]
            for early in (True, False)
        ]
        top = max(int(r["stop_epoch"]) for r in trained)
        bins = [e + 0.5 for e in range(top + 1)]
        labels = ["stopped early", "not stopped early"]
        ax.hist(groups, bins=bins, stacked=True, color=["C1", "C0"], label=labels)
        ax.set_xlabel("epochs trained")
        ax.set_ylabel("trials")
        ax.legend(fontsize=8)

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        xs = [str(r["trial"]) for r in trained]
        ax.bar(xs, [r.get("max_epochs") or 0 for r in trained], color="#ddd", label="max_epochs")
        colors = ["C1" if r.get("early_stopped") is True else "C0" for r in trained]
        ax.bar(xs, [int(r["stop_epoch"]) for r in trained], color=colors, width=0.5)
        ax.set_xlabel("trial")
        ax.set_ylabel("epochs trained")
        labels = ("max_epochs", "stopped early", "not stopped early")
        handles = [
            Patch(color=c, label=n) for c, n in zip(("#ddd", "C1", "C0"), labels, strict=True)
        ]
        ax.legend(handles=handles, fontsize=8, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1))

    return (
        f"<p>{early} of {len(trained)} finished trials stopped early "
        f"({100.0 * early / len(trained):.0f}%); mean epochs saved against max_epochs: "
        f"{mean_saved:.2f} (total {sum(saved)}).</p>\n"
        + (
            _img(draw, size=(9, 3.5), alt="epochs trained against max_epochs per trial")
            if len(trained) <= MAX_BARS
            else _img(histogram, size=(9, 3.5), alt="trials by epochs trained")
        )
    )


def _importances(study: optuna.Study, trials: dict[int, Any]) -> str:
    complete = [t for t in trials.values() if t.state.name == "COMPLETE"]
    varying = {
        name
        for name in {n for t in complete for n in t.params}
        if len({repr(t.params.get(name)) for t in complete}) > 1
    }
    if len(complete) < MIN_IMPORTANCE_TRIALS or len(varying) < 2:
        return _note(
            f"Not computed: needs at least {MIN_IMPORTANCE_TRIALS} complete trials with at least "
            f"2 varying parameters (has {len(complete)} complete, {len(varying)} varying)."
        )
    try:
        used, found = fanova(study, complete)
    except Exception as exc:  # Optuna refuses some studies (e.g. dynamic search spaces)
        return _note(f"Not computed: {type(exc).__name__}: {exc}")
    rows = "\n".join(
        f'<tr><td>{html.escape(str(name))}</td><td>{value:.3f}</td><td style="width:300px">'
        f'<div class="bar" style="width:{100 * value:.1f}%"></div></td></tr>'
        for name, value in found.items()
    )
    return (
        "<p>fANOVA importance (Optuna), over the complete trials"
        + (
            f" ({len(used)} of {len(complete)}, evenly spread over the trial numbers)"
            if len(used) < len(complete)
            else ""
        )
        + ".</p>\n"
        "<table><thead><tr><th>parameter</th><th>importance</th><th></th></tr></thead>"
        f"<tbody>\n{rows}\n</tbody></table>"
    )


def _stopping_comparison(folder: Path) -> str:
    csv_path, png_path = folder / "stopping.csv", folder / "stopping.png"
    if not csv_path.is_file():
        return ""
    with csv_path.open(newline="", encoding="utf-8") as fh:
        records = list(csv.reader(fh))
    cells = [[_number(c) for c in row] for row in records[1:]]
    body = _html_table(records[0], cells) if records else _note("stopping.csv is empty.")
    if png_path.is_file():
        data = base64.b64encode(png_path.read_bytes()).decode("ascii")
        body += f'\n<img alt="epochs saved against regret" src="data:image/png;base64,{data}">'
    return (
        '<section id="stopping"><h2>Early-stopping settings compared</h2>\n'
        "<p>From <code>sweep compare</code> (stopping.csv): other settings replayed on the "
        f"recorded curves.</p>\n{body}\n</section>"
    )
