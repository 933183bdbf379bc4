"""load_data() shapes, and validation_split cut exactly as Keras cuts it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras.src.trainers.data_adapters.array_slicing import train_validation_split as keras_split

from sweep.core.errors import ConfigError
from sweep.space.data import prepare_data, train_validation_split

SRC = Path("space.py")


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 500), fraction=st.floats(0.01, 0.99))
def test_split_is_keras_split(n: int, fraction: float) -> None:
    x = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n)
    try:
        expected = keras_split((x, y), fraction)
    except ValueError:
        with pytest.raises(ConfigError, match="validation_split"):
            train_validation_split(x, y, fraction)
        return
    (xt, yt), (xv, yv) = train_validation_split(x, y, fraction)
    (ext, eyt), (exv, eyv) = expected[0][:2], expected[1][:2]
    for ours, theirs in ((xt, ext), (yt, eyt), (xv, exv), (yv, eyv)):
        np.testing.assert_array_equal(ours, np.asarray(theirs))


def test_given_validation_is_used_as_is() -> None:
    x, y = np.zeros((10, 2)), np.arange(10)
    xv, yv = np.ones((4, 2)), np.arange(4)
    data = prepare_data(((x, y), (xv, yv)), validation_split=0.5, source=SRC)
    assert data.validation == "given" and data.x_train is x and data.x_val is xv
    data = prepare_data(((x, y), (xv, yv), (xv, yv)), validation_split=0.5, source=SRC)
    assert data.has_test and data.y_test is yv


def test_missing_validation_is_split_and_test_kept() -> None:
    x, y = np.zeros((10, 2)), np.arange(10)
    data = prepare_data(((x, y), None, (x[:3], y[:3])), validation_split=0.2, source=SRC)
    assert data.validation == "split"
    assert list(data.y_val) == [8, 9] and list(data.y_train) == list(range(8))
    assert data.has_test
    data = prepare_data((x, y), validation_split=0.0, source=SRC)
    assert data.validation == "none" and data.x_val is None


@pytest.mark.parametrize(
    "raw, words",
    [
        (np.zeros(3), "expected (x, y)"),
        ((np.zeros(3), np.zeros(4)), "equal length"),
        (((np.zeros(3), np.zeros(3)), (np.zeros(2), np.zeros(1))), "validation"),
        ("nope", "expected (x, y)"),
    ],
)
def test_bad_shapes_are_config_errors(raw: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        prepare_data(raw, validation_split=0.2, source=SRC)
