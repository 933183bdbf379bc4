"""One process's part of a sweep: claim orphaned trials and resume them, ask new ones
until the study's target or the budget is reached, run each, tell the study, and
rewrite the table. Any number of processes, on any number of machines, can run
this against the same study (see ``parallel``)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.core.errors import (
    ConfigError,
    DiskFullError,
    FatalTrialError,
    Interrupted,
    SweepError,
    TrialPrunedError,
    disk_full_cause,
    disk_full_error,
    disk_full_stops,
    error_text,
    is_fatal,
)
from sweep.core.interrupts import StopSignals
from sweep.core.observers import Observer, Observers, SweepEnd, TrialEvent, TrialStart
from sweep.core.plan import Plan, trial_seed
from sweep.core.record import State, StopReason, TrialRecord, from_trial, write
from sweep.execution.samplers import next_number, reseed_for_trial
from sweep.integrations.trackers import trial_trackers
from sweep.space.files import SearchSpace
from sweep.space.fingerprint import RerunCheck, ResumeRefused, space_fingerprint
from sweep.space.loading import load_checked_data, load_space_for
from sweep.store.ownership import Worker
from sweep.store.reading import FINISHED, StudyReader
from sweep.store.results import TableCache, write_table
from sweep.store.storage import open_storage, reader_for
from sweep.store.trials import handle, record_on, stored
from sweep.store.warm import warm

if TYPE_CHECKING:
    import optuna

# A worker with no trial to start (the others' running trials will reach the target)
# looks again this often: for the target, and for a trial whose owner died. Short, so
# that the last trials' end is seen at once; each look is a COUNT and a lock.
WAIT_S = 0.2


@dataclass(frozen=True)
class NextTrial:
    trial: optuna.Trial
    resumed: bool  # left running by a process that is gone, and resumed here


@dataclass(frozen=True)
class Outcome:
    """How a trial's run ended: the state the study is told, with the value of a complete
    trial, the error of a failed one, and the error that stops the sweep once the trial
    is recorded (one that would fail every trial)."""

    state: State
    value: float | None = None
    error: str = ""
    fatal: SweepError | None = None

    @classmethod
    def failed(cls, number: int, exc: Exception) -> Outcome:
        error = error_text(exc)
        fatal: SweepError | None = None
        if isinstance(exc, ConfigError):
            fatal = exc  # it would fail every trial: stop the sweep
        elif is_fatal(exc):  # KerasTuner's FatalError stops the search
            fatal = FatalTrialError(f"trial {number} raised {error}")
        return cls(State.FAILED, error=error, fatal=fatal)


class TooManyFailures(SweepError):
    exit_code = 1


@dataclass
class Session:
    plan: Plan
    space: SearchSpace
    data: Any
    study: optuna.Study
    worker: Worker
    observer: Observer  # the displays, the log and the trackers (sweep.core.observers)
    signals: StopSignals
    failures_in_a_row: int = 0
    rows: TableCache = field(default_factory=TableCache)  # finished trials' table rows
    reader: StudyReader = field(init=False)  # the study's, chosen once

    def __post_init__(self) -> None:
        self.reader = reader_for(self.study)

    @property
    def table(self) -> Path:
        return Path(self.plan.results) / "trials.csv"

    def stop_request(self) -> str | None:
        if self.signals.requested is not None:
            return self.signals.requested
        return "budget" if self.plan.over_budget() else None

    def next_trial(self) -> NextTrial | SweepEnd | None:
        """A trial to run, or why there is none: the sweep's end, or None while the
        others' running trials would reach the target (unless their owner dies)."""
        import optuna

        with self.worker.claiming():  # check and ask as one step: N workers don't overshoot
            if self.signals.requested is not None:  # heard while waiting for the lock
                raise Interrupted("interrupted before the next trial")
            orphans = self.worker.orphans(self.study)
            if orphans:
                frozen = orphans[0]  # only this one is claimed: the others are for other workers
                rerun = self.rerun_check()
                rerun.check(frozen)  # before the claim: a refused rerun changes nothing
                self.worker.claim(self.study, frozen)
                # killed before it asked every value, it samples now: as a new trial would
                reseed_for_trial(self.study.sampler, self.plan.seed, frozen.number)
                # and records them: Optuna's cache must know the trial (a KeyError otherwise)
                self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                if rerun.space_change(frozen) is not None:  # allowed (--allow-space-change)
                    record_on(self.study, frozen, space_changed=True)
                self.observer.message(
                    f"trial {frozen.number} was left running by a process that is gone; resuming it"
                )
                return NextTrial(handle(self.study, frozen), resumed=True)
            if self.plan.over_budget():
                return SweepEnd.BUDGET_SPENT
            counts = self.reader.state_counts()  # one COUNT, however many trials
            running = counts["RUNNING"]
            done = sum(counts[s] for s in FINISHED)
            if done >= self.plan.target:
                return SweepEnd.TARGET_REACHED
            if done + running >= self.plan.target:
                return None  # others' trials will reach the target, unless their owner dies
            number = next_number(self.reader.waiting()) if counts["WAITING"] else counts.total()
            reseed_for_trial(self.study.sampler, self.plan.seed, number)
            trial = self.study.ask()
            self.worker.mark(trial)
            write(trial, space_fingerprint=space_fingerprint(self.space))
            return NextTrial(trial, resumed=False)

    def rerun_check(self) -> RerunCheck:
        return RerunCheck(
            space=self.space,
            mode=self.plan.mode,
            calibrate=self.plan.calibrate,
            artifacts=Path(self.plan.artifacts),
            allow_space_change=self.plan.allow_space_change,
        )

    def loop(self) -> SweepEnd:
        while True:
            if self.signals.requested is not None:
                raise Interrupted("interrupted before the next trial")
            nxt = self.next_trial()
            if nxt is None:
                time.sleep(WAIT_S)
                continue
            if isinstance(nxt, SweepEnd):
                return nxt
            with self.worker.heartbeat(self.study, nxt.trial):
                self.run_one(nxt.trial, resumed=nxt.resumed)

    def disk_full(self, number: int, trial_dir: Path, cause: BaseException) -> DiskFullError:
        """Stop the sweep: no further trial could write either. What one epoch of this
        trial writes (its resume point's variables and best model) is the space needed."""
        written = list((trial_dir / "resume").glob("vars-*.npz"))
        written += [trial_dir / "best.keras"] if (trial_dir / "best.keras").is_file() else []
        needed = sum(p.stat().st_size for p in written) or None
        kept = f"trial {number} stays resumable from its last completed epoch; "
        return disk_full_error(cause, folder=trial_dir, needed=needed, kept=kept)

    def run_one(self, trial: optuna.Trial, *, resumed: bool) -> None:
        """Run (or resume) one trial, tell the study, write the table, report it."""
        self.observer.trial_started(TrialStart(trial=trial.number, resumed=resumed))
        outcome = self.outcome(trial)
        self.tell(trial, outcome)
        self.after_trial(trial, outcome)

    def outcome(self, trial: optuna.Trial) -> Outcome:
        """Run the trial, with its retries, and map how it ended to its state. An
        interruption, a refused resume and a full disk raise: the trial stays RUNNING,
        resumable, and nothing is told."""
        trial_dir = Path(self.plan.artifacts) / "trials" / str(trial.number)
        try:
            record = self.train(trial, trial_dir)
        except Interrupted:
            write_table(self.reader, self.table, self.rows)  # the trial stays RUNNING: resumable
            raise
        except ResumeRefused:
            raise  # nothing was recorded: the trial stays RUNNING, resumable as it was
        except TrialPrunedError:
            return Outcome(State.PRUNED)
        except Exception as exc:  # the one place that maps a trial's exception to its state
            cause = disk_full_cause(exc)
            if cause is not None:  # like an interruption: the trial stays RUNNING, resumable
                raise self.disk_full(trial.number, trial_dir, cause) from None
            return Outcome.failed(trial.number, exc)
        return Outcome(State.COMPLETE, value=record.best_score)

    def train(self, trial: optuna.Trial, trial_dir: Path) -> TrialRecord:
        """The trial trained (or resumed), rerun from scratch after an exception as often
        as ``max_retries_per_trial`` allows; the observers see its epochs."""
        from sweep.execution.retries import run_with_retries
        from sweep.train.trial import TrialJob

        plan, settings = self.plan, self.space.settings
        seeded = plan.seed is not None or plan.deterministic
        job = TrialJob(
            trial,
            space=self.space,
            data=self.data,
            settings=settings,
            mode=plan.mode,
            trial_dir=trial_dir,
            seed=trial_seed(plan.seed or 0, trial.number) if seeded else None,
            deterministic=plan.deterministic,
            observer=self.observer,
            stop_request=self.stop_request,
            calibration=trial.number < plan.calibrate,
            on_message=self.observer.message,
        )
        record: TrialRecord = run_with_retries(
            job, retries=settings.max_retries_per_trial, on_retry=self.observer.message
        )
        return record

    def tell(self, trial: optuna.Trial, outcome: Outcome) -> None:
        """Tell the study how the trial ended (a failed one records its error first)."""
        import optuna

        if outcome.state is State.FAILED:
            write(trial, error=outcome.error, stop_reason=StopReason.FAILED)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif outcome.state is State.PRUNED:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, outcome.value)

    def after_trial(self, trial: optuna.Trial, outcome: Outcome) -> None:
        """Count failures in a row, prune checkpoints, write the table, tell the observers;
        then stop the sweep if the trial's error would fail every trial, or too many
        failed in a row."""
        plan = self.plan
        failed = outcome.state is State.FAILED
        self.failures_in_a_row = self.failures_in_a_row + 1 if failed else 0
        if plan.keep_checkpoints is not None:
            from sweep.execution.checkpoints import prune_checkpoints

            self.rows.forget(prune_checkpoints(self.study, plan.keep_checkpoints))
        write_table(self.reader, self.table, self.rows)
        event = TrialEvent(
            record=from_trial(stored(trial)),
            state=outcome.state,
            monitor=self.space.settings.monitor,
            error=outcome.error,
        )
        self.observer.trial_ended(event)
        if outcome.fatal is not None:
            raise outcome.fatal
        if self.failures_in_a_row >= plan.max_failures:
            raise TooManyFailures(
                f"{self.failures_in_a_row} trials failed in a row, the last (trial "
                f"{trial.number}) with: {outcome.error}; fix the cause and run the same command "
                "again to continue, or raise --max-failures"
            )


_DATA_CACHE: dict[str, tuple[SearchSpace, Any]] = {}


def loaded(plan: Plan) -> tuple[SearchSpace, Any]:
    """The space and its data, loaded once per process (not once per trial)."""
    key = f"{plan.space}|{sorted(plan.overrides.items())}|{plan.data_dir}"
    if key not in _DATA_CACHE:
        space = load_space_for(plan)
        if plan.data_dir is not None:  # arrays the parent wrote once: memory-mapped
            from sweep.space.shared import read_shared

            _DATA_CACHE[key] = (space, read_shared(Path(plan.data_dir)))
        else:
            _DATA_CACHE[key] = (space, load_checked_data(space))
    return _DATA_CACHE[key]


def work(
    plan: Plan,
    progress: Observer,
    *,
    index: int = 0,
    space: SearchSpace | None = None,
    data: Any = None,
) -> SweepEnd:
    """Run trials of the plan's study in this process; return why it stopped. The
    trackers the settings ask for watch them with ``progress`` (what the person sees)."""
    import optuna

    from sweep.execution.pruning import make_pruner
    from sweep.execution.samplers import make_sampler

    if space is None:
        space, data = loaded(plan)
    study = optuna.load_study(study_name=plan.study, storage=open_storage(plan.storage))
    warm(study)  # Optuna's cache of a large study, read in seconds rather than minutes
    # Reseeded for each trial number before each ask (see next_trial): the same command
    # asks the same, however often it was killed; workers ask for different numbers.
    study.sampler = make_sampler(space.settings.sampler, seed=plan.seed, grid=plan.grid)
    study.pruner = make_pruner(space.settings.pruner, max_epochs=space.settings.epochs)
    with contextlib.ExitStack() as stack:
        worker = Worker(Path(plan.artifacts))
        stack.callback(worker.close)
        signals = StopSignals(plan.stop_file)
        signals.install()
        stack.callback(signals.restore)
        trackers = Observers(
            *trial_trackers(
                space.settings, results=Path(plan.results), study=study, warn=progress.message
            )
        )
        stack.callback(trackers.close)  # the caller's own observers are the caller's to close
        session = Session(
            plan=plan,
            space=space,
            data=data,
            study=study,
            worker=worker,
            observer=Observers(trackers, progress),  # trackers first, as they were
            signals=signals,
        )
        with disk_full_stops(Path(plan.results)):  # asking a trial, writing the table
            return session.loop()
        raise AssertionError("unreachable")
