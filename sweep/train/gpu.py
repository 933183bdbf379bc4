"""A training process's GPU set-up (after ``sweep.core.devices.take``, right after TensorFlow
is imported, before its first op), the distribution strategy of a trial spanning several
devices, and the mixed-precision policy of a trial."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import keras
import tensorflow as tf

from sweep.core.devices import GROWTH_ENV, WorkerDevices, current, logical_cpus, settle, take

P = ParamSpec("P")
R = TypeVar("R")

_STRATEGY: list[Any] = []  # one per process: trials reuse it


def configure_process(devices: WorkerDevices) -> str | None:
    """Memory growth on every GPU (unless TF_FORCE_GPU_ALLOW_GROWTH is set), or a logical
    device with ``memory_mb`` on each; logical CPUs where SWEEP_LOGICAL_CPUS asks for them.
    A process whose devices TensorFlow already initialised keeps them as they are.

    First, the GPUs TensorFlow really lists here decide what the process's trials record
    (``devices.settle``): a ``ConfigError`` where ``--gpus`` named GPUs it does not see, a
    warning line (returned) where listed GPUs are not there for it."""
    gpus = tf.config.list_physical_devices("GPU")
    settled, warning = settle(devices, len(gpus))
    take(settled, set_env=False)
    try:
        for gpu in gpus:
            if devices.memory_mb is not None:
                limit = tf.config.LogicalDeviceConfiguration(memory_limit=devices.memory_mb)
                tf.config.set_logical_device_configuration(gpu, [limit])
            elif GROWTH_ENV not in os.environ:
                tf.config.experimental.set_memory_growth(gpu, True)
        split = logical_cpus(os.environ)
        if not gpus and split > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            logical = [tf.config.LogicalDeviceConfiguration() for _ in range(split)]
            tf.config.set_logical_device_configuration(cpu, logical)
    except RuntimeError:
        pass  # already initialised (a reused worker, or a notebook that trained before)
    return warning


def trial_strategy() -> Any:
    """The strategy trials are built under: MirroredStrategy over this process's devices
    where a trial spans several (its GPUs, else the logical CPUs), else the default one."""
    per_trial = current().per_trial
    if per_trial <= 1:
        return tf.distribute.get_strategy()
    if not _STRATEGY:
        names = [d.name for d in tf.config.list_logical_devices("GPU")][:per_trial]
        if len(names) < per_trial:
            names = [d.name for d in tf.config.list_logical_devices("CPU")][:per_trial]
        _STRATEGY.append(tf.distribute.MirroredStrategy(names))
    return _STRATEGY[0]


def set_trial_policy(mixed_precision: bool) -> None:
    """Right after ``clear_session`` (which resets Keras' global policy)."""
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")


def reset_policy_after(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function``, then put Keras' global policy back to float32, however it ends
    (the process, a notebook's say, trains in float32 again after a trial)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            keras.mixed_precision.set_global_policy("float32")

    return wrapper
