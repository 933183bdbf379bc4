"""Options defined once: a dataclass field made by ``option`` carries its default, its help,
how the command line parses it and its flag (``--min-delta`` for ``min_delta``).

Two dataclasses hold them: a space's ``Settings`` (``sweep.space.files``) and ``RunArgs``
here, everything else ``sweep run`` and ``sweep.run`` take. ``sweep.cli.arguments``
derives the flags from their fields, ``sweep.run`` takes them as keywords of the same
names (``tests/test_api.py`` holds its signature to the fields), and the README's tables
are checked against them (``tests/test_readme.py``). Also here: the parsers of flag
values, each raising the one line a usage error shows.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from sweep.core.durations import parse_duration
from sweep.core.errors import ConfigError
from sweep.core.plan import MAX_THREADS, SEED_LIMIT

T = TypeVar("T")
PathLike = str | os.PathLike[str]
OPTION = "sweep.option"  # the key of a field's metadata that holds its Option


@dataclass(frozen=True, kw_only=True)
class Option:
    """How a field is given on the command line, and what ``--help`` says of it."""

    help: str
    parse: Callable[[str], Any] | None  # the flag's value to the field's; None: a switch
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    alone: Any = None  # not None: the value may be left out, and this is it (--mlflow)
    exclusive: str | None = None  # options of one name here: at most one of them is given
    listed_after: str | None = None  # in sweep run --help, after this option of RunArgs
    positional: bool = False
    keyword: str | None = None  # sweep.run's annotation, where it is not the field's

    @property
    def switch(self) -> bool:
        """Given alone (``--tensorboard``), it means True."""
        return self.parse is None


def option(
    default: T,
    help: str,
    *,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
    alone: Any = None,
    exclusive: str | None = None,
    listed_after: str | None = None,
    positional: bool = False,
    keyword: str | None = None,
) -> T:
    """A dataclass field with its default and its ``Option``."""
    spec = Option(
        help=help,
        parse=parse,
        metavar=metavar,
        choices=choices,
        alone=alone,
        exclusive=exclusive,
        listed_after=listed_after,
        positional=positional,
        keyword=keyword,
    )
    made: T = field(default=default, metadata={OPTION: spec})
    return made


def options_of(cls: type) -> list[tuple[Field[Any], Option]]:
    """The fields of a dataclass of options, in order, each with its ``Option``."""
    return [(f, f.metadata[OPTION]) for f in fields(cls)]


def flag(name: str) -> str:
    """The command line's name of an option: ``--min-delta`` for ``min_delta``."""
    return f"--{name.replace('_', '-')}"


# The parsers of flag values: argparse shows an ArgumentTypeError's text as it is.


def whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
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


def seed_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 0 to {SEED_LIMIT - 1} (2**32 - 1), got {text!r}"
        )
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def whole_list(text: str) -> list[int]:
    parse = whole(0)
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, got {text!r}"
        )
    return [parse(part) for part in parts]


def number_list(text: str) -> list[float]:
    values = [number(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected numbers >= 0 separated by commas, got {text!r}")
    return values


def whole_or_list(text: str) -> int | list[int]:
    return whole_list(text) if "," in text else whole(0)(text)


def number_or_list(text: str) -> float | list[float]:
    if "," in text:
        return number_list(text)
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--timeout: ")) from None


def file_path(text: str) -> str:
    """Absolute, so that workers started elsewhere find the same file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got ''")
    return str(Path(text).expanduser().resolve())


@dataclass(frozen=True, kw_only=True)
class RunArgs:
    """What ``sweep run`` and ``sweep.run`` take besides the space's settings, as given
    (``sweep.api.entry.run_options`` checks them and resolves them into ``RunOptions``).
    In the order ``sweep run --help`` lists them."""

    space: PathLike | None = option(
        None,
        "search space: NAME (search_spaces/NAME.py) or a path (default: digits_cnn)",
        parse=str,
        positional=True,
    )
    calibrate: int = option(
        0,
        "the first N trials train to max_epochs (no early stopping), for sweep compare",
        parse=whole(0),
        metavar="N",
    )
    timeout: str | float | None = option(None, "budget: 90s, 30m, 8h", parse=duration)
    seed: int | None = option(
        None, "seed for sampler and trials (0 .. 2**32 - 1)", parse=seed_number
    )
    deterministic: bool = option(
        False, "Keras seed + TensorFlow op determinism (seed defaults to 0)"
    )
    study: str | None = option(None, "study name (default: the space's name)", parse=str)
    allow_space_change: bool = option(
        False, "resume trials interrupted under an edited space (the table marks them)"
    )
    storage: str | None = option(
        None,
        "Optuna storage URL (default: $SWEEP_STORAGE, else SQLite)",
        parse=str,
        exclusive="storage",
    )
    storage_file: PathLike | None = option(
        None,
        "read the storage URL from this file's first line (keeps a password off the "
        "command line; or set SWEEP_STORAGE)",
        parse=Path,
        metavar="PATH",
        exclusive="storage",
    )
    results: PathLike = option("results", "results folder", parse=Path)
    max_failures: int = option(
        5, "stop after this many failed trials in a row (default 5)", parse=whole(1)
    )
    keep_checkpoints: int | None = option(
        None,
        "keep best.keras of the K best trials only (default: all)",
        parse=whole(0),
        metavar="K",
    )
    jobs: int | None = option(
        None,
        "trials at once, in N worker processes (default 1; with dask: one per worker)",
        parse=whole(1),
        metavar="N",
    )
    threads: int | None = option(
        None,
        "TensorFlow threads per worker (default: cores / jobs)",
        parse=whole(1, MAX_THREADS),
        metavar="T",
    )
    force_jobs: bool = option(
        False, "start --jobs N workers even if they exceed this machine's cores or memory"
    )
    gpus: str | list[int] | None = option(
        None,
        "GPUs to use, e.g. 0,1 (TensorFlow's numbers), or none for CPU only "
        "(default: every GPU listed; workers take them round-robin)",
        parse=str,
        metavar="LIST|none",
    )
    gpus_per_trial: int = option(
        1,
        "GPUs each trial spans, under tf.distribute.MirroredStrategy (default 1)",
        parse=whole(1),
        metavar="K",
    )
    gpu_memory: str | None = option(
        None,
        "cap each worker's memory on each of its GPUs, e.g. 10GB (default: memory growth)",
        parse=str,
        metavar="SIZE",
    )
    backend: str = option(
        "loky",
        "where workers run: loky (processes here) or dask (a Dask cluster)",
        parse=str,
        choices=("loky", "dask"),
    )
    scheduler: str | None = option(
        None,
        "the Dask scheduler, e.g. tcp://HOST:8786 (with --backend dask)",
        parse=str,
        metavar="URL",
    )
    artifacts: PathLike | None = option(
        None,
        "where trials/<n>/ (checkpoints) go, shared by all workers (default: --results)",
        parse=Path,
        metavar="DIR",
    )
