"""Durations as people write them in env files: ``2.5``, ``250ms``, ``10s``, ``5m``, ``1h``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*([+-]?[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h|d)?\s*$")
DURATION_HELP = "a duration in seconds (2.5) or with a unit (250ms, 10s, 5m, 1h)"


def parse_duration(value: object) -> float:
    """Return seconds as a float; raise ValueError naming the accepted forms.

    Negative values are rejected here because no duration setting can be negative.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ValueError(f"expected {DURATION_HELP}")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"expected {DURATION_HELP}")
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        raise ValueError(f"expected {DURATION_HELP}, not negative or infinite")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration for people reading a table: ``850ms``, ``12.3s``, ``4m 05s``, ``2h 03m``, ``3d 4h``.

    The CLI and the dashboard both show ages and run times with it, so they read the same.
    """
    seconds = max(0.0, float(seconds))
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"
