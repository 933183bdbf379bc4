"""The file behind a trial's error, where TensorFlow does not name it.

A corrupt image in a folder read by ``keras.utils.image_dataset_from_directory`` fails
the trial with TensorFlow's ``InvalidArgumentError: Invalid PNG ... (op DecodeImage)``,
which names no file. The dataset Keras returns lists its files (``file_paths``), so when
a decoding op fails, each is decoded once to find the first that cannot be, and the
exception gets a note naming it (``sweep.core.errors.error_text`` shows it). Only on that
failure, and once per dataset (the result is remembered).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from sweep.core.errors import FILE_NOTE

_FOUND: dict[int, str | None] = {}  # id(dataset) -> its first undecodable file


def _undecodable(paths: list[str]) -> str | None:
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        except (tf.errors.OpError, ValueError):
            return str(path)
    return None


def _decoding_error(exc: BaseException) -> bool:
    return isinstance(exc, tf.errors.InvalidArgumentError) and "Decode" in str(exc)


def name_bad_file(exc: BaseException, data: Any) -> None:
    """Add a note naming the file behind ``exc`` (a corrupt image), if one is found."""
    if data is None or not _decoding_error(exc):
        return
    for ds in (data.x_train, getattr(data, "x_val", None)):
        paths = getattr(ds, "file_paths", None)
        if not paths:
            continue
        if id(ds) not in _FOUND:
            _FOUND[id(ds)] = _undecodable(list(paths))
        found = _FOUND[id(ds)]
        if found is not None:
            exc.add_note(f"{FILE_NOTE}{found}")
            return
