"""Argument parsing and printing only. ``main(argv=None) -> int``.

Commands that don't train (``table``, ``status``, ``--help``) never import TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from sweep import __version__
from sweep.durations import format_duration, parse_duration
from sweep.errors import ConfigError, SweepError
from sweep.space import MODES, SAMPLERS

EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}; see '{self.prog} --help'")


def _int(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _int_list(text: str) -> list[int]:
    parse = _int(0)
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, got {text!r}"
        )
    return [parse(part) for part in parts]


def _float_list(text: str) -> list[float]:
    values = [_float(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected numbers >= 0 separated by commas, got {text!r}")
    return values


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--timeout: ")) from None


# Settings flags: (flag, settings field, parser, help)
SETTING_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--monitor", "monitor", str, "metric to monitor, as Keras logs it (e.g. val_accuracy)"),
    ("--mode", "mode", str, f"one of {', '.join(MODES)}; auto is resolved as Keras does"),
    ("--epochs", "epochs", _int(1), "maximum epochs per trial"),
    ("--batch-size", "batch_size", _int(1), "batch size"),
    ("--validation-split", "validation_split", _float, "last fraction held out, as Keras does"),
    ("--patience", "patience", _int(0), "EarlyStopping patience (epochs without improvement)"),
    ("--min-delta", "min_delta", _float, "EarlyStopping min_delta"),
    ("--baseline", "baseline", _float, "EarlyStopping baseline"),
    ("--start-from-epoch", "start_from_epoch", _int(0), "EarlyStopping start_from_epoch"),
    ("--trials", "trials", _int(1), "finished trials the study should have"),
    ("--sampler", "sampler", str, f"Optuna sampler: {', '.join(SAMPLERS)} (default tpe)"),
]


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="study name (a folder under --results)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: the study.db)")


def _parallel_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--jobs",
        type=_int(1),
        default=None,
        metavar="N",
        help="trials at once, in N worker processes (default 1; with dask: one per worker)",
    )
    p.add_argument(
        "--threads",
        type=_int(1),
        default=None,
        metavar="T",
        help="TensorFlow threads per worker (default: cores / jobs)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sweep",
        description="Hyperparameter sweeps for Keras: early stopping, best checkpoints, "
        "one results table.",
    )
    parser.add_argument("--version", action="version", version=f"sweep {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser("run", help="run (or continue) a sweep")
    run.add_argument(
        "space",
        nargs="?",
        default="digits_cnn",
        help="search space: NAME (search_spaces/NAME.py) or a path (default: digits_cnn)",
    )
    for flag, dest, parse, help_text in SETTING_FLAGS:
        run.add_argument(flag, dest=f"set_{dest}", type=parse, default=None, help=help_text)
    run.add_argument("--timeout", type=_duration, default=None, help="budget: 90s, 30m, 8h")
    run.add_argument("--seed", type=_int(0), default=None, help="seed for sampler and trials")
    run.add_argument(
        "--deterministic",
        action="store_true",
        help="Keras seed + TensorFlow op determinism (seed defaults to 0)",
    )
    run.add_argument("--study", default=None, help="study name (default: the space's name)")
    run.add_argument("--storage", default=None, help="Optuna storage URL (default: SQLite)")
    run.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    run.add_argument(
        "--max-failures",
        type=_int(1),
        default=5,
        help="stop after this many failed trials in a row (default 5)",
    )
    run.add_argument(
        "--keep-checkpoints",
        type=_int(0),
        default=None,
        metavar="K",
        help="keep best.keras of the K best trials only (default: all)",
    )
    _parallel_args(run)
    run.add_argument(
        "--backend",
        choices=("loky", "dask"),
        default="loky",
        help="where workers run: loky (processes here) or dask (a Dask cluster)",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="URL",
        help="the Dask scheduler, e.g. tcp://HOST:8786 (with --backend dask)",
    )
    run.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        metavar="DIR",
        help="where trials/<n>/ (checkpoints) go, shared by all workers (default: --results)",
    )
    run.add_argument(
        "--plain",
        action="store_true",
        help="plain timestamped lines, one per epoch and trial, even on a terminal",
    )

    worker = sub.add_parser(
        "worker", help="join a study made by 'sweep run --storage URL' and run its trials"
    )
    worker.add_argument("study", help="study name")
    worker.add_argument("--storage", required=True, help="the study's Optuna storage URL")
    worker.add_argument("--results", type=Path, default=Path("results"), help="log and table")
    worker.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        metavar="DIR",
        help="shared folder for trials/<n>/ (default: the one the study was made with)",
    )
    _parallel_args(worker)

    table = sub.add_parser("table", help="print the results table, best first")
    _study_args(table)
    table.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")

    compare = sub.add_parser(
        "compare", help="replay other early-stopping settings on the recorded curves"
    )
    _study_args(compare)
    compare.add_argument(
        "--patience",
        type=_int_list,
        default=None,
        metavar="LIST",
        help="patience values, e.g. 0,1,2,3,5,10 (default: that, plus the recorded one)",
    )
    compare.add_argument(
        "--min-delta",
        type=_float_list,
        default=None,
        metavar="LIST",
        help="min_delta values, e.g. 0,1e-4,1e-3 (default: that, plus the recorded one)",
    )
    compare.add_argument("--format", choices=("table", "csv"), default="table")

    status = sub.add_parser("status", help="short summary of a study (works while it runs)")
    _study_args(status)
    return parser


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.driver import RunOptions, run_sweep
    from sweep.progress import PlainProgress

    overrides = {
        dest: getattr(args, f"set_{dest}")
        for _, dest, _, _ in SETTING_FLAGS
        if getattr(args, f"set_{dest}") is not None
    }
    options = RunOptions(
        space=args.space,
        overrides=overrides,
        study=args.study,
        storage=args.storage,
        results_dir=args.results,
        timeout_s=args.timeout,
        seed=args.seed,
        deterministic=args.deterministic,
        max_failures=args.max_failures,
        keep_checkpoints=args.keep_checkpoints,
        jobs=args.jobs if args.jobs is not None or args.backend == "dask" else 1,
        threads=args.threads,
        backend=args.backend,
        scheduler=args.scheduler,
        artifacts_dir=args.artifacts,
    )
    if out.isatty() and not args.plain:
        from sweep.live import LiveProgress

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
    out.write(
        f"see all: sweep table {summary.study}"
        f"{'' if args.results == Path('results') else f' --results {args.results}'}\n"
    )
    return 0


def _cmd_worker(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.driver import join_sweep
    from sweep.progress import PlainProgress

    join_sweep(
        args.study,
        storage=args.storage,
        results_dir=args.results,
        artifacts_dir=args.artifacts,
        jobs=args.jobs or 1,
        threads=args.threads,
        progress=PlainProgress(out, epochs=True),
    )
    return 0


def _cmd_table(args: argparse.Namespace, out: TextIO) -> int:
    from sweep import results
    from sweep.storage import load_existing_study

    study = load_existing_study(args.study, results_dir=args.results, storage=args.storage)
    rows = results.table_rows(study)
    if args.format == "csv":
        out.write(results.to_csv(rows))
    elif args.format == "json":
        out.write(results.to_json(rows))
    elif args.format == "markdown":
        out.write(results.to_markdown(rows))
    else:
        _print_rich_table(rows, out)
    return 0


def _print_rich_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from sweep.results import columns, display_cell

    cols = [c for c in columns(rows) if c != "checkpoint"]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for c in cols:
        table.add_column(c.removeprefix("param_"), no_wrap=True)
    for row in rows:
        table.add_row(*(display_cell(row.get(c)) for c in cols))
    wide = None if out.isatty() else 10_000  # a pipe or file gets whole lines
    Console(file=out, width=wide, soft_wrap=False).print(table)
    if not rows:
        out.write("no trials yet\n")


def _cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    from sweep.compare import (
        DEFAULT_MIN_DELTA,
        DEFAULT_PATIENCE,
        compare,
        recorded_settings,
        to_csv,
        write_outputs,
    )
    from sweep.storage import load_existing_study

    study = load_existing_study(args.study, results_dir=args.results, storage=args.storage)
    patiences, deltas = recorded_settings(study)
    patience = args.patience or sorted(set(DEFAULT_PATIENCE) | patiences)
    min_delta = args.min_delta or sorted(set(DEFAULT_MIN_DELTA) | deltas)
    results = compare(study, patience=patience, min_delta=min_delta)
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
    from sweep.results import status
    from sweep.storage import load_existing_study

    study = load_existing_study(args.study, results_dir=args.results, storage=args.storage)
    s = status(study, folder=args.results / args.study)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(s.counts.items())) or "no trials yet"
    out.write(
        f"study {s.study} ({s.direction}): {counts}; time spent {format_duration(s.spent_s)}\n"
    )
    if s.best:
        b = s.best
        params = ", ".join(f"{k[6:]}={v}" for k, v in b.items() if k.startswith("param_"))
        out.write(
            f"best: trial {b['trial']} {b['monitor']}={b['best_score']:.6g} at epoch "
            f"{b['best_epoch']} ({params})\n"
        )
    for r in s.running:
        out.write(f"running: trial {r['trial']}, epoch {r['stop_epoch'] or 0}/{r['max_epochs']}\n")
    for r in s.interrupted:
        out.write(
            f"interrupted: trial {r['trial']} at epoch {r['stop_epoch'] or 0}/{r['max_epochs']}; "
            "its process is gone, the next sweep run resumes it\n"
        )
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        commands = {
            "run": _cmd_run,
            "worker": _cmd_worker,
            "table": _cmd_table,
            "status": _cmd_status,
            "compare": _cmd_compare,
        }
        command = commands[args.command]
        return command(args, out)
    except SweepError as exc:
        sys.stderr.write(f"sweep: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("sweep: interrupted\n")
        return EXIT_INTERRUPTED


def main_entry() -> None:
    sys.exit(main())
