"""Importing TensorFlow without its C++ start-up noise on the terminal.

TensorFlow's native code prints CUDA probing lines to file descriptor 2 at import
and at first device discovery, whatever TF_CPP_MIN_LOG_LEVEL says. Commands that
train import it through here, with fd 2 pointed at /dev/null for that moment only;
Python errors raised by the import itself are still raised as usual.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery prints too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; sweep reports trials itself. And sweep records
    heartbeats itself around ask/tell (see ownership), which Optuna warns about."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
