"""The live display on a terminal: trials done / target, the running trial, best so far,
elapsed and estimated remaining time. Finished trials scroll above it as lines."""

from __future__ import annotations

import re
import time
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sweep.core.direction import Direction
from sweep.core.durations import format_duration
from sweep.core.observers import (
    EpochEvent,
    Observer,
    RunningTrial,
    SweepStart,
    TrialEvent,
    TrialStart,
)
from sweep.core.progress import describe_trial
from sweep.core.record import State

_LIVE_ONLY = re.compile(r"trial \d+ (epoch \d+/\d+:|started$|resumed$)")


class LiveProgress(Observer):
    """Text from users (error messages, paths, monitor names) is printed as it is: never
    read as rich markup, where ``[/data]`` would be a closing tag."""

    def __init__(self, stream: TextIO) -> None:
        self.console = Console(file=stream)
        self.live: Live | None = None
        self.started = time.monotonic()
        self.target = 0
        self.done = 0
        self.done_here = 0
        self.done_at_start = 0
        self.timeout_s: float | None = None
        self.running: EpochEvent | None = None
        self.running_trial: int | None = None
        self.best: tuple[int, str, float] | None = None
        self.direction = Direction.MIN
        self.polled: list[RunningTrial] | None = None  # several workers: from the storage

    def __enter__(self) -> LiveProgress:
        self.live = Live(self.render(), console=self.console, refresh_per_second=4, transient=True)
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self.render())

    def eta(self) -> float | None:
        elapsed = time.monotonic() - self.started
        left = None
        if self.done_here:
            left = (self.target - self.done) * elapsed / self.done_here
        if self.timeout_s is not None:
            budget = max(self.timeout_s - elapsed, 0.0)
            left = budget if left is None else min(left, budget)
        return left

    def render(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        elapsed = time.monotonic() - self.started
        eta = self.eta()
        if self.target == 0:
            grid.add_row("preparing: loading TensorFlow, the data and the search space", "", "")
            return grid
        grid.add_row(
            f"[bold]trials {self.done}/{self.target}[/]",
            f"elapsed {format_duration(elapsed)}",
            f"remaining ~{format_duration(eta)}" if eta is not None else "remaining ?",
        )
        for p in self.polled or []:
            value = "" if p.value is None else f"  {p.value:.6g}"
            grid.add_row(
                f"running: trial {p.trial}",
                f"epoch {p.epoch}/{p.max_epochs}{value}",
                Text(p.worker),
            )
        polled = {p.trial for p in self.polled or []}
        if self.running_trial is not None and self.running_trial not in polled:
            r = self.running
            if r is not None and r.trial == self.running_trial:
                now = f"epoch {r.epoch}/{r.max_epochs}  {r.monitor}={r.value:.6g}"
            else:
                now = "starting"
            grid.add_row(f"running: trial {self.running_trial}", Text(now), "")
        if self.best is not None:
            trial, monitor, score = self.best
            shown = f"{monitor}={score:.6g}" if monitor else f"{score:.6g}"
            grid.add_row(f"best: trial {trial}", Text(shown), "")
        return grid

    def sweep_started(self, event: SweepStart) -> None:
        self.target, self.done, self.timeout_s = event.target, event.done, event.timeout_s
        self.done_at_start = event.done
        self.direction = Direction.MAX if event.maximize else Direction.MIN
        best = event.best
        text = event.text
        if best is not None:
            self.best = (best[0], "", best[1])
        self.console.print(text, highlight=False, markup=False)
        self._refresh()

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)
        self._refresh()

    def trial_started(self, event: TrialStart) -> None:
        self.running_trial = event.trial
        self._refresh()

    def epoch_ended(self, event: EpochEvent) -> None:
        self.running = event
        self._refresh()

    def trial_ended(self, event: TrialEvent) -> None:
        self.done += 1
        self.done_here += 1
        self.running_trial = None
        score = event.best_score
        best = None if self.best is None else self.best[2]
        if (
            event.state is State.COMPLETE
            and score is not None
            and self.direction.better(score, best)
        ):
            self.best = (event.trial, event.monitor, score)
        self.console.print(describe_trial(event), highlight=False, markup=False)
        self._refresh()

    def relayed(self, line: str) -> None:
        # finished trials and messages scroll above; epochs and starts are shown live
        if not _LIVE_ONLY.search(line):
            self.console.print(line, highlight=False, markup=False)
            self._refresh()

    def study_state(
        self, done: int, running: list[RunningTrial], best: tuple[int, float] | None
    ) -> None:
        self.done = done
        self.done_here = max(self.done_here, done - self.done_at_start)
        self.polled = running
        if best is not None:
            self.best = (best[0], "", best[1])
        self._refresh()
