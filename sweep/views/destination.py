"""Where an export goes: the path and format asked for, checked before anything is
written; the staging path beside it (a kill leaves a file that says what it is); the
model card's path; the move into place. No TensorFlow here."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sweep.core.errors import ConfigError

FORMATS = ("keras", "savedmodel")


def output_format(out: Path, fmt: str | None) -> str:
    if fmt is None:
        if out.suffix == ".keras":
            return "keras"
        raise ConfigError(
            f"--out {out}: expected a path ending in .keras, or --format savedmodel for a "
            "TensorFlow SavedModel directory"
        )
    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "keras" and out.suffix != ".keras":
        raise ConfigError(f"--out {out}: the keras format needs a path ending in .keras")
    return fmt


def check_destination(out: Path, *, force: bool, fmt: str = "keras") -> None:
    """Every destination, before anything is written or moved: the export (a file, or a
    folder for savedmodel) and its card (a file)."""
    for target, folder in ((out, fmt == "savedmodel"), (card_path(out), False)):
        if target.exists() and not force:
            raise ConfigError(
                f"--out {out}: {target} exists; pass --force to replace it, or choose another path"
            )
        if target.exists() and target.is_dir() != folder:
            found, wanted = ("a folder", "a file") if target.is_dir() else ("a file", "a folder")
            raise ConfigError(
                f"--out {out}: {target} is {found}, and the export writes {wanted} there; "
                "--force replaces only an earlier export: remove it, or choose another path"
            )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(
            f"--out {out}: expected a writable folder {parent}, found "
            f"{'no such folder' if not parent.is_dir() else 'no write permission'}"
        )


PARTIAL = ".sweep-export-partial"


def staging_path(out: Path, fmt: str) -> Path:
    """Where the export is written, reloaded and checked before it is moved into place:
    beside ``out`` (same filesystem), named for what it is, so that a kill leaves a file
    that says so; the next export to ``out`` removes it."""
    if fmt == "keras":
        return out.with_name(f".{out.stem}{PARTIAL}.keras")  # Keras picks the format by suffix
    return out.with_name(f".{out.name}{PARTIAL}")


def remove_partial(staged: Path) -> None:
    if staged.is_dir() and not staged.is_symlink():
        shutil.rmtree(staged)
    elif staged.exists() or staged.is_symlink():
        staged.unlink()


def card_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def move_into_place(staged: Path, out: Path) -> None:
    if staged.is_dir():
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(staged, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, out)
