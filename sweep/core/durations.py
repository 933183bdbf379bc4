"""Parsing durations such as ``90s``, ``30m``, ``8h`` or ``1h30m``."""

from __future__ import annotations

import math
import re

from sweep.core.errors import ConfigError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str, *, what: str = "--timeout") -> float:
    """Return the duration in seconds; a bare number means seconds."""
    raw = text.strip().lower()
    try:
        seconds = float(raw)
    except ValueError:
        pos = 0
        seconds = 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise ConfigError(
                f"{what}: expected a duration like 90s, 30m, 8h or 1h30m, "
                f"got {text!r}; write a number followed by s, m, h or d"
            ) from None
    if not math.isfinite(seconds):
        raise ConfigError(
            f"{what}: expected a finite duration like 90s, 30m or 8h, got {text!r}; "
            f"leave {what} out for no time limit"
        )
    if seconds <= 0:
        raise ConfigError(f"{what}: expected a positive duration, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form: ``42s``, ``3m05s``, ``2h07m``."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
