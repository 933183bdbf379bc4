"""The ``sweep`` command line's arguments: the parser, its types, and one-line usage errors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from sweep import __version__
from sweep.core.durations import parse_duration
from sweep.core.errors import ConfigError
from sweep.core.plan import MAX_THREADS, SEED_LIMIT
from sweep.space.files import MODES, PRUNERS, SAMPLERS


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}; see '{self.prog} --help'")


def _int(minimum: int, maximum: int | None = None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if maximum is not None and not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {minimum} to {maximum}, got {value}"
            )
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to {SEED_LIMIT - 1} (2**32 - 1), got {text!r}"
        )
    return value


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


def _int_or_list(text: str) -> int | list[int]:
    return _int_list(text) if "," in text else _int(0)(text)


def _float_or_list(text: str) -> float | list[float]:
    if "," in text:
        return _float_list(text)
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--timeout: ")) from None


def _path(text: str) -> str:
    """Absolute, so that workers started elsewhere find the same file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got ''")
    return str(Path(text).expanduser().resolve())


# Settings flags: (flag, settings field, parser, help)
SETTING_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--monitor", "monitor", str, "metric to monitor, as Keras logs it (e.g. val_accuracy)"),
    ("--mode", "mode", str, f"one of {', '.join(MODES)}; auto is resolved as Keras does"),
    ("--epochs", "epochs", _int(1), "maximum epochs per trial"),
    ("--batch-size", "batch_size", _int(1), "batch size"),
    ("--shuffle-buffer", "shuffle_buffer", _int(1), "buffer of sweep's per-epoch tf.data shuffle"),
    ("--validation-split", "validation_split", _float, "last fraction held out, as Keras does"),
    (
        "--patience",
        "patience",
        _int_or_list,
        "EarlyStopping patience; a list (2,5,10) makes it a hyperparameter",
    ),
    (
        "--min-delta",
        "min_delta",
        _float_or_list,
        "EarlyStopping min_delta; a list (0,1e-4) makes it a hyperparameter",
    ),
    ("--baseline", "baseline", _float, "EarlyStopping baseline"),
    ("--start-from-epoch", "start_from_epoch", _int(0), "EarlyStopping start_from_epoch"),
    ("--trials", "trials", _int(1), "finished trials the study should have"),
    ("--sampler", "sampler", str, f"Optuna sampler: {', '.join(SAMPLERS)} (default tpe)"),
    ("--pruner", "pruner", str, f"Optuna pruner: {', '.join(PRUNERS)} (default none)"),
    (
        "--first-trial",
        "first_trial",
        str,
        "defaults: trial 0 uses every hyperparameter's default (default: sampled)",
    ),
    ("--data-path", "data_path", _path, "a local data file, passed to load_data(data_path=...)"),
    (
        "--executions-per-trial",
        "executions_per_trial",
        _int(1),
        "train each trial N times; its score is the mean of their best scores",
    ),
    (
        "--max-retries-per-trial",
        "max_retries_per_trial",
        _int(0),
        "rerun a trial that raises from scratch up to N times (KerasTuner's; default 0)",
    ),
    (
        "--mlflow",
        "mlflow",
        str,
        "log the study and each trial to this MLflow tracking URI (http://... or sqlite:///...); "
        "alone: the one in MLFLOW_TRACKING_URI",
    ),
]
OPTIONAL_VALUE = {"--mlflow": True}  # a settings flag given alone: this value
# Settings switched on by a flag alone: (flag, settings field, help)
SETTING_SWITCHES: list[tuple[str, str, str]] = [
    ("--tensorboard", "tensorboard", "write results/<study>/tensorboard/ (HParams included)"),
    ("--mlflow-artifacts", "mlflow_artifacts", "log each trial's best checkpoint to MLflow"),
]


def _storage_args(p: argparse.ArgumentParser, default: str) -> None:
    """--storage URL or --storage-file PATH (not both); else $SWEEP_STORAGE, else the default."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--storage", default=None, help=f"Optuna storage URL (default: {default})")
    group.add_argument(
        "--storage-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="read the storage URL from this file's first line (keeps a password off the "
        "command line; or set SWEEP_STORAGE)",
    )


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="study name (a folder under --results)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    _storage_args(p, "$SWEEP_STORAGE, else the study.db")


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
        type=_int(1, MAX_THREADS),
        default=None,
        metavar="T",
        help="TensorFlow threads per worker (default: cores / jobs)",
    )
    p.add_argument(
        "--force-jobs",
        action="store_true",
        help="start --jobs N workers even if they exceed this machine's cores or memory",
    )


def _gpu_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gpus",
        default=None,
        metavar="LIST|none",
        help="GPUs to use, e.g. 0,1 (TensorFlow's numbers), or none for CPU only "
        "(default: every GPU listed; workers take them round-robin)",
    )
    p.add_argument(
        "--gpus-per-trial",
        type=_int(1),
        default=1,
        metavar="K",
        help="GPUs each trial spans, under tf.distribute.MirroredStrategy (default 1)",
    )
    p.add_argument(
        "--gpu-memory",
        default=None,
        metavar="SIZE",
        help="cap each worker's memory on each of its GPUs, e.g. 10GB (default: memory growth)",
    )
    p.add_argument(
        "--mixed-precision",
        dest="set_mixed_precision",
        action="store_const",
        const=True,
        default=None,
        help="Keras' mixed_float16 policy in every trial (setting mixed_precision)",
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
        alone: dict[str, Any] = {}
        if flag in OPTIONAL_VALUE:
            alone = {"nargs": "?", "const": OPTIONAL_VALUE[flag]}
        run.add_argument(
            flag, dest=f"set_{dest}", type=parse, default=None, help=help_text, **alone
        )
    for flag, dest, help_text in SETTING_SWITCHES:
        run.add_argument(
            flag, dest=f"set_{dest}", action="store_const", const=True, default=None, help=help_text
        )
    run.add_argument(
        "--calibrate",
        type=_int(0),
        default=0,
        metavar="N",
        help="the first N trials train to max_epochs (no early stopping), for sweep compare",
    )
    run.add_argument("--timeout", type=_duration, default=None, help="budget: 90s, 30m, 8h")
    run.add_argument(
        "--seed", type=_seed, default=None, help="seed for sampler and trials (0 .. 2**32 - 1)"
    )
    run.add_argument(
        "--deterministic",
        action="store_true",
        help="Keras seed + TensorFlow op determinism (seed defaults to 0)",
    )
    run.add_argument("--study", default=None, help="study name (default: the space's name)")
    run.add_argument(
        "--allow-space-change",
        action="store_true",
        help="resume trials interrupted under an edited space (the table marks them)",
    )
    _storage_args(run, "$SWEEP_STORAGE, else SQLite")
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
    _gpu_args(run)
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
    _storage_args(worker, "$SWEEP_STORAGE; one of the three is needed")
    worker.add_argument("--results", type=Path, default=Path("results"), help="log and table")
    worker.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        metavar="DIR",
        help="shared folder for trials/<n>/ (default: the one the study was made with)",
    )
    _parallel_args(worker)

    exp = sub.add_parser("export", help="export a trial's best model, verified, with a model card")
    _study_args(exp)
    exp.add_argument(
        "--out", type=Path, required=True, help="model.keras, or a folder for savedmodel"
    )
    exp.add_argument("--trial", type=_int(0), default=None, help="trial number (default: the best)")
    exp.add_argument(
        "--format",
        choices=("keras", "savedmodel"),
        default=None,
        help="keras (by the .keras extension) or savedmodel (TensorFlow SavedModel for serving)",
    )
    exp.add_argument("--force", action="store_true", help="replace an existing export")

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

    report = sub.add_parser(
        "report", help="write results/<study>/report.html, one self-contained page"
    )
    _study_args(report)

    status = sub.add_parser("status", help="short summary of a study (works while it runs)")
    _study_args(status)
    return parser
