"""KerasTuner's ``max_retries_per_trial``: a trial whose code raises is rerun from scratch,
with the same hyperparameters, up to N more times before it is recorded failed.

Not retried: configuration errors (they would fail again), KerasTuner's
``FailedTrialError`` (the user said the trial failed) and ``FatalError`` (it stops
the sweep), sweep's own verdicts (NaN loss, pruned), interruptions and a full disk.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from sweep.core.errors import SweepError, disk_full_cause, error_text, is_failed_trial, is_fatal
from sweep.core.record import TrialRecord, write

if TYPE_CHECKING:
    from sweep.train.trial import TrialJob


def retryable(exc: BaseException) -> bool:
    return (
        isinstance(exc, Exception)
        and not isinstance(exc, SweepError)
        and not is_fatal(exc)
        and not is_failed_trial(exc)
        and disk_full_cause(exc) is None  # a full disk stops the sweep, resumable
    )


def run_with_retries(
    job: TrialJob, *, retries: int, on_retry: Callable[[str], None]
) -> TrialRecord:
    """``train_trial(job)`` (``run_trial`` once per execution), rerun from scratch after an
    exception, ``retries`` times at most; the last exception is raised."""
    from sweep.train.executions import train_trial

    trial = job.trial
    attempt = 0
    while True:
        try:
            return train_trial(job)
        except Exception as exc:
            from sweep.train.causes import name_bad_file

            name_bad_file(exc, job.data)  # a corrupt image: TensorFlow names none
            if attempt >= retries or not retryable(exc):
                raise
            attempt += 1
            on_retry(
                f"trial {trial.number} raised {error_text(exc)}; rerunning it from scratch "
                f"(retry {attempt} of {retries}, max_retries_per_trial)"
            )
            shutil.rmtree(job.trial_dir, ignore_errors=True)  # its resume point and checkpoint
            write(trial, retries=attempt)
