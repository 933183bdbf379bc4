"""``--mlflow URI``: one MLflow run for the study, one nested run per trial.

Each trial's run holds its parameters, every epoch's logs as metrics (step = the
1-based epoch), best_score/best_epoch/stop_epoch as metrics and stop_reason and the
trial's state as tags at the end, and (``--mlflow-artifacts``) its best checkpoint.
The run ids are kept on the study (``mlflow_parent_run_id``) and on each trial
(``mlflow_run_id``): a resumed trial continues its own run and first logs the epochs
its resume point holds that the run lacks (a kill can come between the two).

A tracking server that is down costs one warning line per trial, never the trial:
HTTP requests are not retried and time out after a few seconds. Every text shown (MLflow's
exception texts, the study's link) has the URI's password hidden (``hide_secrets``);
MLflow's own link lines, which hold the full URI, are switched off.

No TensorFlow here; MLflow is imported only when a sweep trains with ``--mlflow``.
"""

from __future__ import annotations

import os
import posixpath
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.observers import (
    EpochEvent,
    Observer,
    SweepEnd,
    SweepEnded,
    SweepStart,
    TrialBuilt,
    TrialEvent,
)
from sweep.core.record import StudyAttr, read_study, write_study
from sweep.core.redaction import hide_secrets

if TYPE_CHECKING:
    import optuna

    from sweep.core.record import TrialRecord

RUN_ATTR = "mlflow_run_id"
STATE_TAG = "sweep.state"
TRIAL_TAG = "sweep.trial"
PARENT_TAG = "mlflow.parentRunId"  # what mlflow.start_run(nested=True) sets
# a server that is down must not make every epoch wait: no retries, short timeouts
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
# MLflow prints "View run ... at: <the URI, password and all>" when a run ends
QUIET_ENV = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
END_STATUS = {"complete": "FINISHED", "pruned": "FINISHED", "failed": "FAILED"}
NAME_TAG = "sweep.name."  # + a key MLflow took in place of a name it refuses: the name
MAX_KEY, MAX_VALUE = 250, 6000  # MLflow's limits on a key's and a param value's length
_REFUSED = re.compile(r"[^/\w.\- ]")  # MLflow's rule for names (a colon only off Windows)


def mlflow_key(name: str) -> str:
    """A name as MLflow takes it as a param or metric key: refused characters (a comma,
    a colon) become ``_``, and a name that reads as another path ("a/../b") loses its
    slashes and dots."""
    key = _REFUSED.sub("_", name)[:MAX_KEY]
    norm = posixpath.normpath(key) if key else "."
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        key = re.sub(r"[/.]", "_", key) or "_"
    return key


def mlflow_keys(names: list[str]) -> dict[str, str]:
    """Each name's key (``mlflow_key``), unique: names MLflow takes keep theirs, and a
    mapped one that would meet another gets a ``_2``, ``_3`` suffix."""
    keys = {n: n for n in names if mlflow_key(n) == n}
    for name in sorted(set(names) - set(keys)):
        key, base, n = mlflow_key(name), mlflow_key(name)[: MAX_KEY - 4], 1
        while key in keys.values():
            n += 1
            key = f"{base}_{n}"
        keys[name] = key
    return keys


def _refused(exc: BaseException) -> bool:
    """MLflow refused what was logged (a name, a value), as against being unreachable."""
    return getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE"


def _client(uri: str) -> Any:
    for key, value in HTTP_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.update(QUIET_ENV)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _first_line(exc: BaseException, uri: str) -> str:
    text = str(exc).strip().splitlines()
    return hide_secrets(f"{type(exc).__name__}: {text[0] if text else ''}", uri)


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowTracker(Observer):
    def __init__(
        self,
        uri: str,
        *,
        study: optuna.Study,
        warn: Callable[[str], None],
        artifacts: bool = False,
    ) -> None:
        self.uri = uri
        self.study = study
        self.artifacts = artifacts
        self.warn = warn
        self.client = _client(uri)
        self.runs: dict[int, str] = {}  # trial number -> its run id, while it logs

    def sweep_started(self, event: SweepStart) -> None:
        """The study's run, made once before any trial (workers started next share it)."""
        try:
            parent = self._parent()
            self.client.update_run(parent, status="RUNNING")  # a rerun: again
            if self.uri.startswith(("http://", "https://")):
                experiment = self.client.get_run(parent).info.experiment_id
                link = f"{self.uri.rstrip('/')}/#/experiments/{experiment}/runs/{parent}"
                self.warn(f"MLflow: the study's run is {hide_secrets(link, self.uri)}")
        except Exception as exc:
            self.warn(
                f"warning: MLflow logging for the study failed ({_first_line(exc, self.uri)})"
            )

    def sweep_ended(self, event: SweepEnded) -> None:
        """The study's run is FINISHED once the study has all its trials."""
        if event.reason is not SweepEnd.TARGET_REACHED:
            return
        try:
            run_id = read_study(self.study, StudyAttr.MLFLOW_PARENT_RUN)
            if run_id is not None:
                self.client.set_terminated(run_id, status="FINISHED")
        except Exception as exc:
            self.warn(
                f"warning: MLflow logging for the study failed ({_first_line(exc, self.uri)})"
            )

    def _failed(self, trial: int, exc: BaseException) -> None:
        """Stop logging this trial, with one warning line; the trial goes on."""
        self.runs.pop(trial, None)
        self.warn(
            f"warning: MLflow logging for trial {trial} failed ({_first_line(exc, self.uri)}); "
            "the trial goes on without it"
        )

    def _parent(self) -> str:
        """The study's run, made by the first trial that logs."""
        known = read_study(self.study, StudyAttr.MLFLOW_PARENT_RUN)
        if known is not None:
            return str(known)
        name = self.study.study_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = self.client.create_experiment(name, artifact_location=self._where())
        else:
            experiment_id = experiment.experiment_id
        run = self.client.create_run(experiment_id, run_name=name, tags={"sweep.api.study": name})
        write_study(self.study, StudyAttr.MLFLOW_PARENT_RUN, run.info.run_id)
        return str(run.info.run_id)

    def _where(self) -> str | None:
        """A local store's artifacts go next to it, not to ./mlruns; a server decides."""
        if self.uri.startswith(("http://", "https://", "databricks")):
            return None
        if self.uri.startswith("sqlite:///"):
            return (Path(self.uri.removeprefix("sqlite:///")).resolve().parent / "mlruns").as_uri()
        return None

    def trial_built(self, event: TrialBuilt) -> dict[str, Any]:
        try:
            run_id = event.attrs.get(RUN_ATTR)
            if run_id is not None and self._rerun_from_scratch(run_id, event):
                run_id = None
            if run_id is None:
                run_id = self._new_run(event)
            else:
                self.client.update_run(run_id, status="RUNNING")
                self._fill_in(run_id, event)
        except Exception as exc:
            self._failed(event.trial, exc)
            return {}
        self.runs[event.trial] = run_id
        return {RUN_ATTR: run_id}

    def _rerun_from_scratch(self, run_id: str, start: TrialBuilt) -> bool:
        """A trial rerun from scratch (max_retries_per_trial) after its run logged epochs
        gets a new run; the old one is marked ``retried``."""
        if start.history or not self.client.get_metric_history(run_id, mlflow_key(start.monitor)):
            return False
        self.client.set_tag(run_id, STATE_TAG, "retried")
        self.client.set_terminated(run_id, status="FAILED")
        return True

    def _new_run(self, start: TrialBuilt) -> str:
        from mlflow.entities import Param, RunTag

        parent = self._parent()
        experiment_id = self.client.get_run(parent).info.experiment_id
        run = self.client.create_run(
            experiment_id,
            run_name=f"trial {start.trial}",
            tags={PARENT_TAG: parent, TRIAL_TAG: str(start.trial), STATE_TAG: "running"},
        )
        run_id = str(run.info.run_id)
        keys = mlflow_keys(list(start.params))
        params = [Param(keys[k], str(v)[:MAX_VALUE]) for k, v in sorted(start.params.items())]
        renamed = [
            RunTag(f"{NAME_TAG}{key}"[:MAX_KEY], k) for k, key in sorted(keys.items()) if key != k
        ]
        self._log(start.trial, run_id, params=params, tags=renamed)
        self._fill_in(run_id, start)
        return run_id

    def _log(self, trial: int, run_id: str, **batch: list[Any]) -> None:
        """``log_batch``; if MLflow refuses it (a name, a value), each item on its own, so
        that one refused item costs only itself (one warning line each)."""
        if not any(batch.values()):
            return
        try:
            self.client.log_batch(run_id, **batch)
            return
        except Exception as exc:
            if not _refused(exc):
                raise
        for kind, items in batch.items():
            for item in items:
                try:
                    self.client.log_batch(run_id, **{kind: [item]})
                except Exception as exc:
                    if not _refused(exc):
                        raise
                    self.warn(
                        f"warning: MLflow refused trial {trial}'s {kind[:-1]} {item.key!r} "
                        f"({_first_line(exc, self.uri)}); the rest is logged"
                    )

    def _fill_in(self, run_id: str, start: TrialBuilt) -> None:
        """Log the resumed epochs the run lacks (a kill between the epoch's resume point
        and its metrics leaves one out)."""
        if not start.history:
            return
        monitor = mlflow_key(start.monitor)
        logged = {m.step for m in self.client.get_metric_history(run_id, monitor)}
        for row in start.history:
            if int(row["epoch"]) not in logged:
                self._log_epoch(start.trial, run_id, int(row["epoch"]), row)

    def _log_epoch(self, trial: int, run_id: str, epoch: int, logs: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        stamp = _now_ms()
        metrics = [
            Metric(mlflow_key(k), float(v), stamp, epoch)
            for k, v in sorted(logs.items())
            if k != "epoch"
        ]
        self._log(trial, run_id, metrics=metrics)

    def epoch_ended(self, event: EpochEvent) -> None:
        run_id = self.runs.get(event.trial)
        if run_id is None:
            return
        try:
            self._log_epoch(event.trial, run_id, event.epoch, event.logs)
        except Exception as exc:
            self._failed(event.trial, exc)

    def trial_ended(self, event: TrialEvent) -> None:
        record = event.record
        run_id = self.runs.pop(record.number, None)
        if run_id is None:
            return
        try:
            self._end_run(run_id, record)
        except Exception as exc:
            self._failed(record.number, exc)

    def _end_run(self, run_id: str, record: TrialRecord) -> None:
        from mlflow.entities import Metric, RunTag

        stamp, step = _now_ms(), record.stop_epoch or 0
        finals = {
            "best_score": record.best_score,
            "best_epoch": record.best_epoch,
            "stop_epoch": record.stop_epoch,
        }
        metrics = [Metric(k, float(v), stamp, step) for k, v in finals.items() if v is not None]
        reason = "" if record.stop_reason is None else str(record.stop_reason)
        tags = [RunTag(STATE_TAG, str(record.state)), RunTag("stop_reason", reason)]
        try:  # the run's end status lands whatever else did not
            self._log(record.number, run_id, metrics=metrics, tags=tags)
            checkpoint = record.checkpoint
            if self.artifacts and checkpoint is not None and checkpoint.is_file():
                self.client.log_artifact(run_id, str(checkpoint))
        finally:
            self.client.set_terminated(run_id, status=END_STATUS.get(record.state, "FINISHED"))
