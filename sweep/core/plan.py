"""The ``Plan`` that every process running a sweep's trials works from, and the
``TrialOptions`` a run is asked for; each trial's seed.

A Plan is plain data (it is pickled to joblib and Dask workers, and stored on the
study so that ``sweep worker`` on another machine can join).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sweep.core.devices import DevicePlan
from sweep.core.direction import Direction
from sweep.core.record import StudyAttr
from sweep.core.redaction import stored_uri

PLAN_ATTR = StudyAttr.PLAN.value  # the study attr holding the plan (sweep.core.record names it)
SEED_LIMIT = 2**32  # seeds are 0 .. 2**32 - 1 (NumPy's, and so Keras')
MAX_THREADS = 4096  # --threads: TensorFlow takes a C int; more threads than this is a typo


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number`` of a sweep seeded with ``seed``: in range for any pair."""
    return (seed + number) % SEED_LIMIT


@dataclass(frozen=True, kw_only=True)
class TrialOptions:
    """What a run is asked for (``RunOptions``) and hands on to every worker (``Plan``)
    under the same names: the settings overrides and how trials are run."""

    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    deterministic: bool = False
    max_failures: int = 5
    keep_checkpoints: int | None = None
    calibrate: int = 0  # trials numbered below this train to max_epochs (no early stopping)
    allow_space_change: bool = False  # resume trials interrupted under another space

    def trial_options(self) -> dict[str, Any]:
        """These fields, for the constructor of another ``TrialOptions`` (a Plan)."""
        return {f.name: getattr(self, f.name) for f in fields(TrialOptions)}


@dataclass(frozen=True, kw_only=True)
class Plan(TrialOptions):
    """A run as every worker runs it (stored on the study as JSON, for ``sweep worker``)."""

    space: str  # absolute path of the search-space file
    study: str
    storage: str  # the full URL; never printed (see redaction.redact)
    results: str  # results/<study>: trials.csv, sweep.log
    artifacts: str  # where trials/<n>/ go: every worker writes there, the driver reads
    mode: Direction  # stored as its string, min or max
    grid: dict[str, list[Any]] | None = None
    target: int
    deadline: float | None = None  # wall-clock time.time() after which no trial starts
    # sweep.run(build_model=..., load_data=...): the functions, cloudpickled for the
    # workers (never stored on the study: they live in the caller's notebook or script)
    functions: bytes | None = None
    from_functions: bool = False
    # --jobs workers on this machine: the arrays memory-mapped from here (sweep.space.shared),
    # not load_data() per worker; never stored on the study (a local path)
    data_dir: str | None = None
    # each worker's GPUs (this machine's: not stored on the study; `sweep worker` finds its own)
    devices: DevicePlan = field(default_factory=DevicePlan)
    # --jobs workers on this machine: created by the parent at its first SIGINT/SIGTERM
    # (sweep.core.interrupts.relay_to); each worker stops after its epoch. Not stored either
    stop_file: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Direction(self.mode))  # the string, as stored

    def to_json(self) -> str:
        raw = asdict(self)
        raw.pop("storage")  # a password must not end up in the storage itself
        raw.pop("functions")
        raw.pop("data_dir")
        raw.pop("devices")
        if isinstance(self.overrides.get("mlflow"), str):  # nor an MLflow password
            raw["overrides"]["mlflow"] = stored_uri(self.overrides["mlflow"])
        raw.pop("stop_file")
        return json.dumps(raw)

    @classmethod
    def from_json(cls, text: str, *, storage: str) -> Plan:
        return cls(**json.loads(text), storage=storage)

    def over_budget(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline
