"""Turning queue data into escaped HTML: the Jinja environment, redaction, previews, times.

Autoescape is on for every template (a job argument of ``<script>`` renders as text), and
undefined names fail loudly instead of rendering as empty strings.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .._durations import format_duration

TEMPLATES = Path(__file__).parent / "templates"
REDACTED = "[redacted]"


def redact(value: Any, keys: frozenset[str]) -> Any:
    """``value`` with the value of every mapping key named in ``keys`` (any case, any depth) replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if str(k).lower() in keys else redact(v, keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, keys) for v in value]
    return value


@dataclass(frozen=True)
class Preview:
    """A value as indented JSON, cut at ``limit`` characters; ``size`` is the whole text's length."""

    text: str
    cut: bool
    size: int


def as_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def preview(value: Any, limit: int) -> Preview:
    text = as_text(value)
    if len(text) <= limit:
        return Preview(text, False, len(text))
    return Preview(text[:limit], True, len(text))


def age(ms: float | int | None) -> str:
    """A duration in milliseconds as ``850ms``, ``12.3s``, ``4m 05s``, ``2h 03m``, ``3d 4h``."""
    return "-" if ms is None else format_duration(float(ms) / 1000)


def when(value: datetime | float | int | None) -> str:
    """A moment as UTC text (to the millisecond)."""
    if value is None:
        return "-"
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value) / 1000, tz=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def ago(value: datetime | float | int | None) -> str:
    if value is None:
        return "-"
    ms = value.timestamp() * 1000 if isinstance(value, datetime) else float(value)
    return age(time.time() * 1000 - ms) + " ago"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(age=age, when=when, ago=ago, json=as_text)
    return env
