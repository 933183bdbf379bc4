"""The ``sweep`` command line's arguments: the parser and its one-line usage errors.

``sweep run``'s flags (and those ``sweep worker`` and the reading commands share with
it) are derived from the fields of ``Settings`` and ``RunArgs`` (``sweep.core.options``):
a setting's flag is ``--<name>`` into ``set_<name>`` (None when not given: the space's
own stands), a run argument's into ``<name>`` with the field's default."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from sweep import __version__
from sweep.core.errors import ConfigError
from sweep.core.options import (
    Option,
    RunArgs,
    flag,
    number_list,
    options_of,
    whole,
    whole_list,
)
from sweep.space.files import Settings


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message}; see '{self.prog} --help'")


SETTING = "set_"  # the Namespace's name of a setting: set_<name>, None if not given


def _given(spec: Option) -> int:
    """Settings in ``--help``: those that take a value, the one that may be given alone
    (``--mlflow``), then the switches."""
    return 2 if spec.switch else 1 if spec.alone is not None else 0


def _add(
    parser: argparse.ArgumentParser,
    name: str,
    spec: Option,
    *,
    dest: str,
    default: Any,
    help_text: str | None = None,
) -> None:
    """One option's argument: a switch is True when given, else ``default``."""
    kwargs: dict[str, Any] = {"default": default, "help": help_text or spec.help}
    if spec.switch:
        kwargs.update(action="store_const", const=True)
    else:
        kwargs.update(type=spec.parse, metavar=spec.metavar, choices=spec.choices)
    if spec.alone is not None:
        kwargs.update(nargs="?", const=spec.alone)
    if spec.positional:
        parser.add_argument(name, nargs="?", **kwargs)
    else:
        parser.add_argument(flag(name), dest=dest, **kwargs)


def _add_run_args(
    parser: argparse.ArgumentParser,
    names: Sequence[str],
    helps: Mapping[str, str] | None = None,
    later: Mapping[str, list[tuple[str, Option]]] | None = None,
) -> None:
    """These ``RunArgs`` (under their own names, with their defaults), each followed by
    the settings listed after it; ``helps`` replaces a help text for this command."""
    specs = {f.name: (f, spec) for f, spec in options_of(RunArgs)}
    groups: dict[str, Any] = {}
    for name in names:
        field, spec = specs[name]
        where: Any = parser
        if spec.exclusive is not None:
            if spec.exclusive not in groups:
                groups[spec.exclusive] = parser.add_mutually_exclusive_group()
            where = groups[spec.exclusive]
        help_text = (helps or {}).get(name)
        _add(where, name, spec, dest=name, default=field.default, help_text=help_text)
        for setting, setting_spec in (later or {}).get(name, []):
            _add(parser, setting, setting_spec, dest=SETTING + setting, default=None)


def _run_options(run: argparse.ArgumentParser) -> None:
    """``sweep run``: every ``Settings`` and ``RunArgs`` field, then ``--plain``."""
    later: dict[str, list[tuple[str, Option]]] = {}
    for field, spec in sorted(options_of(Settings), key=lambda pair: _given(pair[1])):
        if spec.listed_after is not None:
            later.setdefault(spec.listed_after, []).append((field.name, spec))
        else:
            _add(run, field.name, spec, dest=SETTING + field.name, default=None)
    _add_run_args(run, [f.name for f in fields(RunArgs)], later=later)
    run.add_argument(
        "--plain",
        action="store_true",
        help="plain timestamped lines, one per epoch and trial, even on a terminal",
    )


def requested(args: argparse.Namespace) -> tuple[RunArgs, dict[str, Any]]:
    """What ``sweep run`` was asked: its ``RunArgs`` and the settings given (by name, in
    the order of ``--help``, the order in which they are checked)."""
    given = {f.name: getattr(args, f.name) for f in fields(RunArgs)}
    settings = {
        name.removeprefix(SETTING): value
        for name, value in vars(args).items()
        if name.startswith(SETTING)
    }
    return RunArgs(**given), settings


WORKER_HELPS = {  # sweep worker's words for the options it shares with sweep run
    "storage": "Optuna storage URL (default: $SWEEP_STORAGE; one of the three is needed)",
    "results": "log and table",
    "artifacts": "shared folder for trials/<n>/ (default: the one the study was made with)",
}


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="study name (a folder under --results)")
    storage = "Optuna storage URL (default: $SWEEP_STORAGE, else the study.db)"
    _add_run_args(p, ("results", "storage", "storage_file"), {"storage": storage})


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
    _run_options(run)

    worker = sub.add_parser(
        "worker", help="join a study made by 'sweep run --storage URL' and run its trials"
    )
    worker.add_argument("study", help="study name")
    names = ("storage", "storage_file", "results", "artifacts", "jobs", "threads", "force_jobs")
    _add_run_args(worker, names, WORKER_HELPS)
    _reading_commands(sub)
    return parser


def _reading_commands(sub: Any) -> None:
    """The commands that read a study: ``export``, ``table``, ``compare``, ``report``,
    ``status``."""
    exp = sub.add_parser("export", help="export a trial's best model, verified, with a model card")
    _study_args(exp)
    exp.add_argument(
        "--out", type=Path, required=True, help="model.keras, or a folder for savedmodel"
    )
    exp.add_argument(
        "--trial", type=whole(0), default=None, help="trial number (default: the best)"
    )
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
        type=whole_list,
        default=None,
        metavar="LIST",
        help="patience values, e.g. 0,1,2,3,5,10 (default: that, plus the recorded one)",
    )
    compare.add_argument(
        "--min-delta",
        type=number_list,
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
