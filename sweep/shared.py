"""Array data handed to ``--jobs`` workers without a private copy each: the parent writes
the training and validation arrays once as ``.npy`` files under ``results/<study>/data/``
and every worker memory-maps them (``np.load(mmap_mode="r")``); the operating system
keeps one copy in its page cache for all of them. Written when a run with workers
starts, removed when it ends. TensorFlow-free.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sweep.data import Data

FIELDS = ("x_train", "y_train", "w_train", "x_val", "y_val", "w_val")
MANIFEST = "manifest.json"


def _write(a: Any, folder: Path, name: str) -> Any:
    """Save the leaves of ``a`` (dicts, lists, tuples walked); return its layout."""
    if a is None:
        return None
    if isinstance(a, dict):
        return {"dict": {k: _write(v, folder, f"{name}.{k}") for k, v in a.items()}}
    if isinstance(a, list | tuple):
        kind = "list" if isinstance(a, list) else "tuple"
        return {kind: [_write(v, folder, f"{name}.{i}") for i, v in enumerate(a)]}
    file = f"{name}.npy"
    np.save(folder / file, np.ascontiguousarray(a), allow_pickle=False)
    return {"npy": file}


def _read(layout: Any, folder: Path) -> Any:
    if layout is None:
        return None
    if "dict" in layout:
        return {k: _read(v, folder) for k, v in layout["dict"].items()}
    if "list" in layout:
        return [_read(v, folder) for v in layout["list"]]
    if "tuple" in layout:
        return tuple(_read(v, folder) for v in layout["tuple"])
    return np.load(folder / layout["npy"], mmap_mode="r", allow_pickle=False)


def write_shared(data: Data, folder: Path) -> Path:
    """Write ``data``'s training and validation arrays under ``folder`` (replacing any
    earlier copy); the manifest is written last, so a folder without one is incomplete."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    layout = {f: _write(getattr(data, f), folder, f) for f in FIELDS}
    meta = {"layout": layout, "validation": data.validation}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    return folder


def read_shared(folder: Path) -> Data:
    """The arrays ``write_shared`` wrote, memory-mapped (read-only)."""
    meta = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    values = {f: _read(meta["layout"][f], folder) for f in FIELDS}
    from sweep.inputs import InputKind

    val = InputKind.ARRAYS if values["x_val"] is not None else None
    blank = Data(None, None, None, None)
    return replace(
        blank, **values, validation=meta["validation"], kinds=(InputKind.ARRAYS, val, None)
    )


def remove_shared(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
