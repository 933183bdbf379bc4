"""GPUs: which ones exist, which worker gets which, decided before TensorFlow is imported.

Discovery never imports TensorFlow (the parent must not initialise a GPU before the
workers start): the GPUs are the lines of ``nvidia-smi -L`` (else the entries of
/proc/driver/nvidia/gpus), narrowed by an already set ``CUDA_VISIBLE_DEVICES`` the
way CUDA narrows them. ``--gpus`` picks among those by TensorFlow's numbering (0 is
the first one TensorFlow would list). Each worker gets its own ``CUDA_VISIBLE_DEVICES``
(round-robin over the devices, or over groups of ``--gpus-per-trial`` of them), set in
the worker before it imports TensorFlow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from sweep.core.errors import ConfigError

GPU_ENV = "CUDA_VISIBLE_DEVICES"
GROWTH_ENV = "TF_FORCE_GPU_ALLOW_GROWTH"  # TensorFlow's own: when set, sweep leaves growth alone
LOGICAL_CPUS_ENV = "SWEEP_LOGICAL_CPUS"  # for tests on a machine without GPUs: split the CPU
HIDDEN = "-1"  # CUDA_VISIBLE_DEVICES that hides every GPU
PROC_GPUS = Path("/proc/driver/nvidia/gpus")


@dataclass(frozen=True)
class WorkerDevices:
    """What one process trains on. ``visible``: its CUDA_VISIBLE_DEVICES (None: as it is)."""

    visible: str | None = None
    label: str = "CPU"  # the table's device column: GPU:1, GPU:0,1, CPU
    per_trial: int = 1  # devices one trial spans (MirroredStrategy when > 1)
    memory_mb: int | None = None  # a logical device with this memory limit on each GPU
    asked: str | None = None  # the --gpus value that chose these GPUs (None: all listed)


@dataclass(frozen=True)
class DevicePlan:
    """Every worker's devices: worker ``i`` gets ``workers[i % len(workers)]``."""

    workers: tuple[WorkerDevices, ...] = (WorkerDevices(),)
    warning: str | None = None  # one line to show the user (e.g. no GPU listed)

    def for_worker(self, index: int) -> WorkerDevices:
        return self.workers[index % len(self.workers)]

    @property
    def assigned(self) -> bool:
        """Whether workers get a CUDA_VISIBLE_DEVICES of their own."""
        return any(w.visible is not None for w in self.workers)


def parse_gpus(text: str | None) -> list[int] | str | None:
    """``--gpus``: None (all listed), ``"none"`` (CPU only), or TensorFlow GPU numbers."""
    if text is None:
        return None
    cleaned = text.strip().lower()
    if cleaned in ("none", "cpu", ""):
        return "none" if cleaned else _bad_gpus(text)
    parts = [p.strip() for p in cleaned.split(",")]
    if not all(p.isdigit() for p in parts):
        _bad_gpus(text)
    numbers = [int(p) for p in parts]
    if len(set(numbers)) != len(numbers):
        raise ConfigError(f"--gpus {text}: expected each GPU once, got {text!r}; list each once")
    return numbers


def _bad_gpus(text: str) -> list[int]:
    raise ConfigError(
        f"--gpus: expected GPU numbers separated by commas (0,1) or 'none', got {text!r}; "
        "see nvidia-smi -L for the numbers"
    )


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)\s*$", re.IGNORECASE)


def parse_memory(text: str | None) -> int | None:
    """``--gpu-memory 10GB`` (or 512MB, 1.5G): the limit in MB (TensorFlow's unit)."""
    if text is None:
        return None
    match = _SIZE.match(str(text))
    mb = 0
    if match:
        value, unit = float(match.group(1)), match.group(2).lower()
        mb = int(value * 1024) if unit.startswith("g") else int(value)
    if mb < 1:
        raise ConfigError(
            f"--gpu-memory: expected a size like 10GB or 512MB (per worker, on each of its GPUs), "
            f"got {text!r}; write a number followed by GB or MB"
        )
    return mb


def physical_gpus(smi_output: str | None, proc_entries: int = 0) -> list[str]:
    """The GPU indices the driver lists: ``nvidia-smi -L`` lines, else /proc's count."""
    if smi_output:
        found = re.findall(r"^GPU (\d+):", smi_output, flags=re.MULTILINE)
        if found:
            return found
    return [str(i) for i in range(proc_entries)]


def visible_gpus(physical: list[str], env: Mapping[str, str]) -> list[str]:
    """The GPUs TensorFlow would list, in its order, as CUDA_VISIBLE_DEVICES entries.

    CUDA reads CUDA_VISIBLE_DEVICES up to its first invalid entry (``-1`` hides all)."""
    given = env.get(GPU_ENV)
    if given is None:
        return list(physical)
    shown: list[str] = []
    for entry in (e.strip() for e in given.split(",")):
        valid = entry in physical or entry.startswith(("GPU-", "MIG-"))
        if not valid or entry in shown:
            break
        shown.append(entry)
    return shown if physical else []


def discover_gpus() -> list[str]:
    """This machine's GPUs, as ``visible_gpus`` lists them, without importing TensorFlow."""
    try:
        smi = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        smi = None
    entries = len(list(PROC_GPUS.iterdir())) if PROC_GPUS.is_dir() else 0
    return visible_gpus(physical_gpus(smi, entries), os.environ)


def logical_cpus(env: Mapping[str, str]) -> int:
    text = env.get(LOGICAL_CPUS_ENV, "")
    return int(text) if text.isdigit() else 0


def plan_devices(
    gpus: str | None,
    *,
    per_trial: int,
    memory_mb: int | None,
    listed: list[str],
    env: Mapping[str, str],
) -> DevicePlan:
    """Every worker's devices from the options and the GPUs ``listed`` (``discover_gpus``)."""
    request = parse_gpus(gpus)
    if request == "none":
        return DevicePlan((WorkerDevices(visible=HIDDEN, label="CPU", memory_mb=None),))
    warning = None
    if isinstance(request, list):
        if listed:
            outside = [n for n in request if n >= len(listed)]
            if outside:
                raise ConfigError(
                    f"--gpus {gpus}: expected GPU numbers from 0 to {len(listed) - 1} (TensorFlow "
                    f"lists {len(listed)} GPUs here), got {outside[0]}; pick among "
                    f"{','.join(str(i) for i in range(len(listed)))}"
                )
            chosen = [(n, listed[n]) for n in request]
        else:
            raise ConfigError(
                f"--gpus {gpus}: this machine has no GPU (nvidia-smi -L lists none, "
                f"{GPU_ENV}={env.get(GPU_ENV, '(unset)')}); use --gpus none or leave it out"
            )
    else:
        chosen = list(enumerate(listed))
    if not chosen:  # no GPU: as without sweep's devices, unless logical CPUs are asked for
        if per_trial > 1 and logical_cpus(env) < per_trial:
            raise ConfigError(
                f"--gpus-per-trial {per_trial}: expected at least {per_trial} GPUs, found none "
                f"(nvidia-smi -L lists none, {GPU_ENV}={env.get(GPU_ENV, '(unset)')}); "
                "use --gpus-per-trial 1"
            )
        label = "CPU" if per_trial == 1 else "CPU:" + ",".join(map(str, range(per_trial)))
        return DevicePlan((WorkerDevices(label=label, per_trial=per_trial),), warning)
    if per_trial > len(chosen):
        raise ConfigError(
            f"--gpus-per-trial {per_trial}: expected at most {len(chosen)}, the GPUs given to "
            f"this sweep ({', '.join(f'GPU:{n}' for n, _ in chosen)}); use --gpus-per-trial "
            f"{len(chosen)} or more GPUs"
        )
    groups = [chosen[i : i + per_trial] for i in range(0, len(chosen) - per_trial + 1, per_trial)]
    workers = tuple(
        WorkerDevices(
            visible=",".join(physical for _, physical in group),
            label="GPU:" + ",".join(str(n) for n, _ in group),
            per_trial=per_trial,
            memory_mb=memory_mb,
            asked=gpus if isinstance(request, list) else None,
        )
        for group in groups
    )
    return DevicePlan(workers, warning)


def settle(devices: WorkerDevices, seen: int) -> tuple[WorkerDevices, str | None]:
    """The devices this process really trains on, once TensorFlow listed ``seen`` GPUs in
    it: as planned where it sees every GPU the process was given. Where it sees fewer, a
    ``ConfigError`` if ``--gpus`` asked for them, else the CPU and a warning line. Where
    nothing listed a GPU but TensorFlow sees some, its first ones (where it places ops)."""
    given = [] if devices.visible in (None, HIDDEN) else str(devices.visible).split(",")
    if not given:
        n = devices.per_trial
        if devices.visible is None and devices.label.startswith("CPU") and seen >= n:
            return replace(devices, label="GPU:" + ",".join(map(str, range(n)))), None
        return devices, None
    if seen >= len(given):
        return devices, None
    there = (
        "this machine has no GPU (TensorFlow sees none)"
        if seen == 0
        else f"TensorFlow sees {seen} of the {len(given)} GPUs given ({GPU_ENV}={devices.visible})"
    )
    if devices.asked is not None:
        raise ConfigError(f"--gpus {devices.asked}: {there}; use --gpus none or leave it out")
    cpu = "CPU" if devices.per_trial == 1 else "CPU:" + ",".join(map(str, range(devices.per_trial)))
    warning = f"{devices.label} is listed, but {there}: its trials train on the {cpu}"
    return replace(devices, label=cpu), warning


# The devices of this process, once it took them (``take``): what its trials record.
_TAKEN: list[WorkerDevices] = []


def take(devices: WorkerDevices, *, set_env: bool = True) -> str | None:
    """Make ``devices`` this process's, before it imports TensorFlow; a warning line if a
    reused process already imported TensorFlow under other devices (it keeps those)."""
    _TAKEN[:] = [devices]
    if not set_env or devices.visible is None or os.environ.get(GPU_ENV) == devices.visible:
        return None
    if "tensorflow" in sys.modules:
        return (
            f"this process imported TensorFlow with {GPU_ENV}={os.environ.get(GPU_ENV)}; "
            f"it keeps those devices instead of {devices.label}"
        )
    os.environ[GPU_ENV] = devices.visible
    return None


def current() -> WorkerDevices:
    """This process's devices (as today's: all TensorFlow sees, if it took none)."""
    return _TAKEN[0] if _TAKEN else WorkerDevices()


class ParentGpus:
    """The CUDA_VISIBLE_DEVICES of the process that starts a sweep, while it imports
    TensorFlow (CUDA reads it then, once): every GPU hidden where workers train (its probe
    must not take GPU memory they need), worker 0's where it trains itself. ``restore``
    gives the caller (a notebook) its own value back; loky workers, started after, take
    theirs."""

    def __init__(self) -> None:
        self.saved = os.environ.get(GPU_ENV)
        self.changed = False

    def set(self, value: str | None) -> None:
        if value is None or "tensorflow" in sys.modules:
            return  # TensorFlow already chose its devices here (a notebook): left as they are
        os.environ[GPU_ENV] = value
        self.changed = True

    def restore(self) -> None:
        if not self.changed:
            return
        if self.saved is None:
            os.environ.pop(GPU_ENV, None)
        else:
            os.environ[GPU_ENV] = self.saved
        self.changed = False
