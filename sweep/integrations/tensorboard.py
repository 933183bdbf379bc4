"""``--tensorboard``: each trial's epochs and the HParams plugin's summaries, as they happen.

``results/<study>/tensorboard/<n>/`` is trial n's run: every key of the epoch logs as
a scalar (step = the 1-based epoch), its hyperparameter values (the HParams plugin's
session start) and, when it ends, best_score, best_epoch and stop_epoch at step
stop_epoch. ``results/<study>/tensorboard/`` itself holds the experiment: the domain
of every hyperparameter the trials asked Optuna for (a ``Choice``, ``Boolean``,
``Fixed`` or stepped hyperparameter is ``Discrete``; the others ``IntInterval`` or
``RealInterval``, KerasTuner's rule) and those three metrics. So
``tensorboard --logdir results/<study>/tensorboard`` shows the HParams table and the
parallel-coordinates view with no extra code.

A resumed trial appends to its own run: a new event file, starting after the last
epoch already written (it first writes the epochs its resume point holds that a kill
kept from the files). Written through TensorBoard's own writer and summary protos;
TensorBoard's file layer uses TensorFlow when it is installed, hence ``sweep.train``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.scalar import summary_v2 as scalar_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from sweep.core.observers import EpochEvent, Observer, TrialBuilt, TrialEvent

FINAL_METRICS = ("best_score", "best_epoch", "stop_epoch")
EVENTS = "events.out.tfevents.*"


def domain(distribution: Any) -> Any:
    """The HParams domain of an Optuna distribution (the KerasTuner hp it came from)."""
    import optuna

    d = optuna.distributions
    if isinstance(distribution, d.CategoricalDistribution):
        values = [
            v if isinstance(v, bool | int | float | str) else str(v) for v in distribution.choices
        ]
        return hparams_summary.Discrete(values) if _one_type(values) else None
    if isinstance(distribution, d.IntDistribution):
        if distribution.step != 1 and not distribution.log:
            step = distribution.step
            return hparams_summary.Discrete(
                list(range(distribution.low, distribution.high + 1, step))
            )
        return hparams_summary.IntInterval(distribution.low, distribution.high)
    if isinstance(distribution, d.FloatDistribution):
        if distribution.step is not None:
            n = round((distribution.high - distribution.low) / distribution.step)
            return hparams_summary.Discrete(
                [distribution.low + i * distribution.step for i in range(n + 1)]
            )
        return hparams_summary.RealInterval(float(distribution.low), float(distribution.high))
    return None


def _one_type(values: list[Any]) -> bool:
    kinds = {bool if isinstance(v, bool) else str if isinstance(v, str) else float for v in values}
    return len(kinds) == 1


def _value(value: Any) -> bool | int | float | str:
    return value if isinstance(value, bool | int | float | str) else str(value)


def _events(folder: Path) -> list[Any]:
    found = []
    for path in sorted(folder.glob(EVENTS)):
        try:
            found.extend(EventFileLoader(str(path)).Load())
        except Exception:  # a file a kill cut short: what was read is kept
            continue
    return found


class TensorBoardTracker(Observer):
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[int, EventFileWriter] = {}

    def _write(self, trial: int, summary: summary_pb2.Summary, step: int) -> None:
        event = event_pb2.Event(wall_time=time.time(), step=step, summary=summary)
        self.writers[trial].add_event(event)

    def trial_built(self, event: TrialBuilt) -> dict[str, Any]:
        self._experiment(event)
        run = self.folder / str(event.trial)
        earlier = _events(run) if run.is_dir() else []
        written = {e.step for e in earlier for v in e.summary.value if v.tag == event.monitor}
        if written and not event.history:  # rerun from scratch (max_retries_per_trial)
            for path in run.glob(EVENTS):
                path.unlink()
            earlier, written = [], set()
        started = any(
            v.tag == metadata.SESSION_START_INFO_TAG for e in earlier for v in e.summary.value
        )
        self.writers[event.trial] = EventFileWriter(str(run), flush_secs=5)
        if not started:
            values = {k: _value(v) for k, v in event.params.items()}
            pb = hparams_summary.hparams_pb(values, trial_id=str(event.trial))
            self._write(event.trial, pb, 0)
        for row in event.history:  # epochs a kill kept from the files
            if int(row["epoch"]) not in written:
                self._epoch(event.trial, int(row["epoch"]), row)
        self.writers[event.trial].flush()
        return {}

    def _experiment(self, start: TrialBuilt) -> None:
        """The study's domains in the top folder: rewritten when a trial asks for a
        hyperparameter the file does not list yet (conditional spaces)."""
        old_files = sorted(self.folder.glob(EVENTS))
        known: dict[str, Any] = {}
        for event in _events(self.folder):
            for v in event.summary.value:
                if v.tag == metadata.EXPERIMENT_TAG:
                    experiment = metadata.parse_experiment_plugin_data(
                        v.metadata.plugin_data.content
                    )
                    known = {h.name: h for h in experiment.hparam_infos}
        new = {k: d for k, d in start.distributions.items() if k not in known}
        if known and not new:
            return
        infos = list(known.values())
        for name, dist in sorted(new.items()):
            info = api_pb2.HParamInfo(name=name)
            dom = domain(dist)
            if dom is not None:
                dom.update_hparam_info(info)
            infos.append(info)
        metrics = [hparams_summary.Metric(m).as_proto() for m in FINAL_METRICS]
        experiment = api_pb2.Experiment(
            hparam_infos=infos, metric_infos=metrics, time_created_secs=time.time()
        )
        pb = hparams_summary._summary_pb(
            metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)
        )
        writer = EventFileWriter(str(self.folder))
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=pb))
        writer.close()
        for path in old_files:  # the new file holds everything they did
            path.unlink(missing_ok=True)

    def _epoch(self, trial: int, epoch: int, logs: Mapping[str, float]) -> None:
        for key, value in sorted(logs.items()):
            if key != "epoch" and math.isfinite(value):
                self._write(trial, scalar_summary.scalar_pb(key, value), epoch)

    def epoch_ended(self, event: EpochEvent) -> None:
        if event.trial in self.writers:
            self._epoch(event.trial, event.epoch, event.logs)
            self.writers[event.trial].flush()  # a running sweep can be watched

    def trial_ended(self, event: TrialEvent) -> None:
        record = event.record
        writer = self.writers.pop(record.number, None)
        if writer is None:
            return
        step = record.stop_epoch or 0
        for name in FINAL_METRICS:
            value = getattr(record, name)
            if value is not None:
                pb = scalar_summary.scalar_pb(name, float(value))
                writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=pb))
        writer.close()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
