"""The live display in Jupyter: one output that updates in place.

It shows what the terminal display shows (``live``), and the last lines that would
scroll above it there; it never adds an output per epoch or per trial. Needs only
IPython (the kernel has it), not ipywidgets.
"""

from __future__ import annotations

import io
import time
from collections import deque
from typing import Any

from rich.console import Console

from sweep.api.live import LiveProgress

LINES = 12  # the last lines kept above the live part
UPDATE_S = 0.5  # at most this often (the last state is always shown)


def in_notebook() -> bool:
    """Whether the caller runs in a Jupyter kernel."""
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class NotebookProgress(LiveProgress):
    def __init__(self, *, width: int = 100) -> None:
        self._buffer = io.StringIO()
        super().__init__(self._buffer)
        self.console = self._text_console(self._buffer, width)
        self.width = width
        self.lines: deque[str] = deque(maxlen=LINES)
        self.handle: Any = None
        self.shown_at = 0.0

    @staticmethod
    def _text_console(stream: io.StringIO, width: int) -> Console:
        return Console(
            file=stream,
            width=width,
            force_jupyter=False,
            force_terminal=False,
            color_system=None,
            soft_wrap=True,
        )

    def __enter__(self) -> NotebookProgress:
        from IPython.display import display

        self.handle = display(  # type: ignore[no-untyped-call]
            {"text/plain": self.text()}, raw=True, display_id=True
        )
        return self

    def __exit__(self, *exc: Any) -> None:
        self.running_trial = None
        self.polled = None
        self._show(force=True)

    def text(self) -> str:
        """The lines so far, then the live part, as plain text."""
        printed = self._buffer.getvalue()
        if printed:
            self.lines.extend(printed.rstrip("\n").split("\n"))
            self._buffer.seek(0)
            self._buffer.truncate()
        out = io.StringIO()
        self._text_console(out, self.width).print(self.render())
        return "\n".join([*self.lines, out.getvalue().rstrip("\n")])

    def _show(self, *, force: bool) -> None:
        now = time.monotonic()
        if self.handle is None or (not force and now - self.shown_at < UPDATE_S):
            return
        self.shown_at = now
        self.handle.update({"text/plain": self.text()}, raw=True)

    def _refresh(self) -> None:
        self._show(force=False)
