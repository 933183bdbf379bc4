"""``--mlflow URI``: one MLflow run for the study, one nested run per trial.

Each trial's run holds its parameters, every epoch's logs as metrics (step = the
1-based epoch), best_score/best_epoch/stop_epoch as metrics and stop_reason and the
trial's state as tags at the end, and (``--mlflow-artifacts``) its best checkpoint.
The run ids are kept on the study (``mlflow_parent_run_id``) and on each trial
(``mlflow_run_id``): a resumed trial continues its own run and first logs the epochs
its resume point holds that the run lacks (a kill can come between the two).

A tracking server that is down costs one warning line per trial, never the trial:
HTTP requests are not retried and time out after a few seconds.

No TensorFlow here; MLflow is imported only when a sweep trains with ``--mlflow``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.tracking import Tracker, TrialStart

if TYPE_CHECKING:
    from sweep.record import TrialRecord

PARENT_ATTR = "mlflow_parent_run_id"
RUN_ATTR = "mlflow_run_id"
STATE_TAG = "sweep.state"
TRIAL_TAG = "sweep.trial"
PARENT_TAG = "mlflow.parentRunId"  # what mlflow.start_run(nested=True) sets
# a server that is down must not make every epoch wait: no retries, short timeouts
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
END_STATUS = {"complete": "FINISHED", "pruned": "FINISHED", "failed": "FAILED"}


def _client(uri: str) -> Any:
    for key, value in HTTP_ENV.items():
        os.environ.setdefault(key, value)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowTracker(Tracker):
    def __init__(
        self, uri: str, *, study: Any, warn: Callable[[str], None], artifacts: bool = False
    ) -> None:
        self.uri = uri
        self.study = study
        self.artifacts = artifacts
        self.warn = warn
        self.client = _client(uri)
        self.runs: dict[int, str] = {}  # trial number -> its run id, while it logs

    def start_study(self) -> None:
        """The study's run, made once before any trial (workers started next share it)."""
        try:
            self.client.update_run(self._parent(), status="RUNNING")  # a rerun: again
        except Exception as exc:
            self.warn(f"warning: MLflow logging for the study failed ({_first_line(exc)})")

    def end_study(self) -> None:
        """The study's run is FINISHED once the study has all its trials."""
        try:
            run_id = self.study.user_attrs.get(PARENT_ATTR)
            if run_id is not None:
                self.client.set_terminated(run_id, status="FINISHED")
        except Exception as exc:
            self.warn(f"warning: MLflow logging for the study failed ({_first_line(exc)})")

    def _failed(self, trial: int, exc: BaseException) -> None:
        """Stop logging this trial, with one warning line; the trial goes on."""
        self.runs.pop(trial, None)
        self.warn(
            f"warning: MLflow logging for trial {trial} failed ({_first_line(exc)}); "
            "the trial goes on without it"
        )

    def _parent(self) -> str:
        """The study's run, made by the first trial that logs."""
        attrs = self.study.user_attrs
        if PARENT_ATTR in attrs:
            return str(attrs[PARENT_ATTR])
        name = self.study.study_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = self.client.create_experiment(name, artifact_location=self._where())
        else:
            experiment_id = experiment.experiment_id
        run = self.client.create_run(experiment_id, run_name=name, tags={"sweep.study": name})
        self.study.set_user_attr(PARENT_ATTR, run.info.run_id)
        return str(run.info.run_id)

    def _where(self) -> str | None:
        """A local store's artifacts go next to it, not to ./mlruns; a server decides."""
        if self.uri.startswith(("http://", "https://", "databricks")):
            return None
        if self.uri.startswith("sqlite:///"):
            return (Path(self.uri.removeprefix("sqlite:///")).resolve().parent / "mlruns").as_uri()
        return None

    def trial_started(self, start: TrialStart) -> dict[str, Any]:
        try:
            run_id = start.attrs.get(RUN_ATTR)
            if run_id is not None and self._rerun_from_scratch(run_id, start):
                run_id = None
            if run_id is None:
                run_id = self._new_run(start)
            else:
                self.client.update_run(run_id, status="RUNNING")
                self._fill_in(run_id, start)
        except Exception as exc:
            self._failed(start.number, exc)
            return {}
        self.runs[start.number] = run_id
        return {RUN_ATTR: run_id}

    def _rerun_from_scratch(self, run_id: str, start: TrialStart) -> bool:
        """A trial rerun from scratch (max_retries_per_trial) after its run logged epochs
        gets a new run; the old one is marked ``retried``."""
        if start.history or not self.client.get_metric_history(run_id, start.monitor):
            return False
        self.client.set_tag(run_id, STATE_TAG, "retried")
        self.client.set_terminated(run_id, status="FAILED")
        return True

    def _new_run(self, start: TrialStart) -> str:
        from mlflow.entities import Param

        parent = self._parent()
        experiment_id = self.client.get_run(parent).info.experiment_id
        run = self.client.create_run(
            experiment_id,
            run_name=f"trial {start.number}",
            tags={PARENT_TAG: parent, TRIAL_TAG: str(start.number), STATE_TAG: "running"},
        )
        run_id = str(run.info.run_id)
        params = [Param(k, str(v)) for k, v in sorted(start.params.items())]
        if params:
            self.client.log_batch(run_id, params=params)
        self._fill_in(run_id, start)
        return run_id

    def _fill_in(self, run_id: str, start: TrialStart) -> None:
        """Log the resumed epochs the run lacks (a kill between the epoch's resume point
        and its metrics leaves one out)."""
        if not start.history:
            return
        logged = {m.step for m in self.client.get_metric_history(run_id, start.monitor)}
        for row in start.history:
            if int(row["epoch"]) not in logged:
                self._log_epoch(run_id, int(row["epoch"]), row)

    def _log_epoch(self, run_id: str, epoch: int, logs: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        stamp = _now_ms()
        metrics = [
            Metric(k, float(v), stamp, epoch) for k, v in sorted(logs.items()) if k != "epoch"
        ]
        self.client.log_batch(run_id, metrics=metrics)

    def epoch_ended(self, trial: int, epoch: int, logs: Mapping[str, float]) -> None:
        run_id = self.runs.get(trial)
        if run_id is None:
            return
        try:
            self._log_epoch(run_id, epoch, logs)
        except Exception as exc:
            self._failed(trial, exc)

    def trial_ended(self, record: TrialRecord) -> None:
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
        tags = [RunTag(STATE_TAG, record.state), RunTag("stop_reason", record.stop_reason)]
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        checkpoint = record.checkpoint
        if self.artifacts and checkpoint is not None and checkpoint.is_file():
            self.client.log_artifact(run_id, str(checkpoint))
        self.client.set_terminated(run_id, status=END_STATUS.get(record.state, "FINISHED"))
