"""The ``sweep`` command: running commands and printing only. ``main(argv=None) -> int``.

The arguments are in ``arguments``. Commands that don't train (``table``, ``status``,
``compare``, ``report``, ``--help``) never import TensorFlow.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from sweep.cli.arguments import build_parser, requested
from sweep.core.durations import format_duration
from sweep.core.errors import ConfigError, SweepError, disk_full_stops
from sweep.core.interrupts import process_owned
from sweep.core.redaction import redact_text
from sweep.store.storage import storage_from

EXIT_INTERRUPTED = 130
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.core.interrupts import sigterm_is_ctrl_c

    with sigterm_is_ctrl_c():
        return _run(args, out)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.api.entry import run_options
    from sweep.core.progress import PlainProgress
    from sweep.execution.driver import run_sweep

    request, settings = requested(args)
    # as sweep.run builds them: --storage-file and $SWEEP_STORAGE were resolved by main
    options = run_options(replace(request, storage_file=None), None, settings)
    if out.isatty() and not args.plain:
        from sweep.api.live import LiveProgress

        with LiveProgress(out) as live:
            summary = run_sweep(options, live)
    else:
        summary = run_sweep(options, PlainProgress(out, epochs=True))
    out.write(
        f"\n{summary.finished}/{summary.target} trials finished ({summary.stopped_because}).\n"
        f"results: {summary.folder}/  table: {summary.table}\n"
    )
    if summary.best:
        out.write("best trials:\n")
        for row in summary.best:
            out.write(
                f"  trial {row['trial']}: {row['monitor']}={row['best_score']:.6g} "
                f"at epoch {row['best_epoch']} (stopped at {row['stop_epoch']}), "
                f"checkpoint {row['checkpoint'] or '(deleted)'}\n"
            )
    if summary.test is not None:
        scores = ", ".join(f"{k}={v:.6g}" for k, v in summary.test[1].items())
        out.write(f"test data: trial {summary.test[0]}'s best model scores {scores}\n")
    out.write(
        f"see all: sweep table {summary.study}"
        f"{'' if args.results == Path('results') else f' --results {args.results}'}\n"
    )
    return 0


def _cmd_worker(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.core.interrupts import sigterm_is_ctrl_c

    with sigterm_is_ctrl_c():
        return _worker(args, out)


def _worker(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.core.progress import PlainProgress
    from sweep.execution.worker import join_sweep
    from sweep.store.storage import STORAGE_ENV

    if args.storage is None:
        raise ConfigError(
            f"sweep worker: expected the study's storage URL (--storage URL, --storage-file "
            f"PATH or the {STORAGE_ENV} environment variable), got none; give one of them"
        )
    join_sweep(
        args.study,
        storage=args.storage,
        results_dir=args.results,
        artifacts_dir=args.artifacts,
        jobs=args.jobs or 1,
        threads=args.threads,
        progress=PlainProgress(out, epochs=True),
        force_jobs=args.force_jobs,
    )
    return 0


def _cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.core.tfenv import import_tensorflow_quietly
    from sweep.store.storage import load_existing_study
    from sweep.views.export import export

    study = load_existing_study(args.study, results_dir=args.results, storage=args.storage)
    import_tensorflow_quietly()
    done = export(study, trial_number=args.trial, out=args.out, fmt=args.format, force=args.force)
    out.write(
        f"exported trial {done.trial} ({done.format}) to {done.path}\n"
        f"verified: reloaded, it scores {done.monitor}={done.verified_score:.6g} on the "
        f"validation data; the table says {done.expected_score:.6g}"
    )
    if done.executions > 1:
        out.write(
            f" (execution {done.best_execution}'s own best; the trial's best_score "
            f"{done.best_score:.6g} is the mean of {done.executions} executions)"
        )
    out.write("\n")
    if done.test_score:
        scores = ", ".join(f"{k}={v:.6g}" for k, v in done.test_score.items())
        out.write(f"test data (not used for selection): {scores}\n")
    out.write(f"model card: {done.card}\n")
    return 0


def _cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.store.storage import load_existing_study
    from sweep.views.report import write_report

    study = load_existing_study(args.study, results_dir=args.results, storage=args.storage)
    path = write_report(study, args.results / args.study)
    out.write(f"written: {path}\n")
    return 0


def _cmd_table(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.store import results
    from sweep.store.storage import load_existing_study, reader_for

    study = load_existing_study(args.study, results_dir=args.results, storage=args.storage)
    rows = results.table_rows(reader_for(study))
    if args.format == "csv":
        out.write(results.to_csv(rows))
    elif args.format == "json":
        out.write(results.to_json(rows))
    elif args.format == "markdown":
        out.write(results.to_markdown(rows))
    else:
        _print_rich_table(rows, out)
    return 0


RICH_ROWS = 500  # rich lays out a table in about 5 ms a row: beyond this, plain columns


def _print_plain_table(rows: list[dict[str, Any]], cols: list[str], out: TextIO) -> None:
    """The same columns as the rich table, aligned, for thousands of rows."""
    from sweep.store.results import display_cell

    cells = [[c.removeprefix("param_") for c in cols]]
    cells += [[display_cell(row.get(c)) for c in cols] for row in rows]
    widths = [max(map(len, column)) for column in zip(*cells, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [line.format(*r).rstrip() for r in cells]
    lines.insert(1, "  ".join("─" * w for w in widths))
    out.write("\n".join(lines) + "\n")


def _print_rich_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    from sweep.store.results import columns, display_cell

    cols = [c for c in columns(rows) if c != "checkpoint"]
    if len(rows) > RICH_ROWS:
        _print_plain_table(rows, cols, out)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for c in cols:  # Text: names and values as they are, never read as rich markup
        table.add_column(Text(c.removeprefix("param_")), no_wrap=True)
    for row in rows:
        table.add_row(*(Text(display_cell(row.get(c))) for c in cols))
    wide = None if out.isatty() else 10_000  # a pipe or file gets whole lines
    Console(file=out, width=wide, soft_wrap=False).print(table)
    if not rows:
        out.write("no trials yet\n")


def _cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.store.results import READ_KEYS
    from sweep.store.storage import load_existing_study, reader_for
    from sweep.views.compare import (
        DEFAULT_MIN_DELTA,
        DEFAULT_PATIENCE,
        compare,
        recorded_settings,
        to_csv,
        write_outputs,
    )

    study = load_existing_study(args.study, results_dir=args.results, storage=args.storage)
    # read once, without curves: compare reads only the curves it needs
    trials = reader_for(study).trials(keys=READ_KEYS)
    patiences, deltas = recorded_settings(study, trials)
    patience = args.patience or sorted(set(DEFAULT_PATIENCE) | patiences)
    min_delta = args.min_delta or sorted(set(DEFAULT_MIN_DELTA) | deltas)
    results = compare(study, patience=patience, min_delta=min_delta, trials=trials)
    csv_path, png_path = write_outputs(results, args.results / args.study)
    if args.format == "csv":
        out.write(to_csv(results))
        return 0
    out.write(
        f"{'patience':>8} {'min_delta':>9} {'uncens.':>7} {'cens.':>5} {'epochs':>7} "
        f"{'saved %':>7} {'mean best':>10} {'regret':>10} {'best stays':>10} {'top5':>4}\n"
    )
    for r in results:
        out.write(
            f"{r.patience:>8} {r.min_delta:>9g} {r.uncensored:>7} {r.censored:>5} "
            f"{r.mean_epochs:>7.2f} {r.epochs_saved_pct:>7.1f} {r.mean_best_score:>10.6g} "
            f"{r.mean_regret:>10.4g} {r.best_still_best:>10} {r.top5_overlap:>4}\n"
        )
    out.write(
        f"censored: the recorded run stopped before this setting would have, so its outcome "
        f"is unknown.\nwritten: {csv_path}, {png_path}\n"
    )
    return 0


def _cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.store.storage import load_existing_study
    from sweep.views.status import status

    study = load_existing_study(args.study, results_dir=args.results, storage=args.storage)
    s = status(study, folder=args.results / args.study)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(s.counts.items())) or "no trials yet"
    out.write(
        f"study {s.study} ({s.direction}): {counts}; time spent {format_duration(s.spent_s)}\n"
    )
    if s.best:
        b = s.best
        params = ", ".join(
            f"{k[6:]}={v}" for k, v in b.items() if k.startswith("param_") and v is not None
        )
        out.write(
            f"best: trial {b['trial']} {b['monitor']}={b['best_score']:.6g} at epoch "
            f"{b['best_epoch']} ({params})\n"
        )
    for r in s.running:
        on = f" on {r['device']}" if r.get("device") else ""
        out.write(
            f"running: trial {r['trial']}, epoch {r['stop_epoch'] or 0}/{r['max_epochs']}{on}\n"
        )
    for r in s.interrupted:
        out.write(
            f"interrupted: trial {r['trial']} at epoch {r['stop_epoch'] or 0}/{r['max_epochs']}; "
            "its process is gone, the next sweep run resumes it\n"
        )
    for r in s.resume_notes:
        out.write(
            f"resumed: trial {r['trial']} from epoch {r['resumed_from']}, not exactly: "
            f"{r['resume_note']}\n"
        )
    for r in s.callback_stops:
        out.write(
            f"stopped by a callback: trial {r['trial']} at epoch {r['stop_epoch']}/"
            f"{r['max_epochs']}, by {r['stopped_by']} (not early stopping)\n"
        )
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    storage: str | None = None  # whose passwords no error line may show
    try:
        args = build_parser().parse_args(argv)
        storage = args.storage = storage_from(args.storage, args.storage_file)
        commands = {
            "run": _cmd_run,
            "worker": _cmd_worker,
            "table": _cmd_table,
            "status": _cmd_status,
            "compare": _cmd_compare,
            "export": _cmd_export,
            "report": _cmd_report,
        }
        command = commands[args.command]
        # only the command may exit the process (a second Ctrl+C)
        with process_owned(), disk_full_stops(Path(args.results) / (args.study or "")):
            return command(args, out)
        raise AssertionError("unreachable")
    except SweepError as exc:
        text = str(exc) if storage is None else redact_text(str(exc), storage)
        sys.stderr.write(f"sweep: error: {text}\n")
        return exc.exit_code
    except OSError as exc:
        if exc.errno not in NOT_WRITABLE:
            raise
        where = Path(exc.filename).parent if exc.filename else "a folder"
        sys.stderr.write(
            f"sweep: error: cannot write to {where} ({exc.strerror}); "
            "pass a writable folder (--results, --out)\n"
        )
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("sweep: interrupted; run the same command again to continue\n")
        return EXIT_INTERRUPTED


def main_entry() -> None:
    from sweep.cli.exits import ClosedPipeQuiet, exit_now

    sys.stdout = ClosedPipeQuiet.wrap(sys.stdout)
    sys.stderr = ClosedPipeQuiet.wrap(sys.stderr)
    exit_now(main())
