"""Job priority, carried in the queue score: the one place that encodes and decodes it.

arq's queue is one sorted set scored by due time in ms. A priority (0-9, default 5; higher runs
first) moves a job's score into a band of its own: ``score = due_ms + (5 - priority) * BAND_MS``.
``BAND_MS`` is 10**13 ms, past any due time until the year 2286, and every score stays far below
2**53, so a score is still an exact integer. A default-priority job's score is its due time,
byte for byte what arq writes; priority 9 is four bands below zero, priority 0 five bands up.

The claim script reads the due part of each band from the highest priority down (see
``PRIORITY_BANDS`` in :mod:`scalr_queue.redis._scripts`), so among ready jobs the higher priority
starts first and, inside one priority, the earliest due (FIFO). Only when the queue's lowest score
is below zero or its highest at least ``BAND_MS`` does it look past the default band. Everything
else that reads a score as a time goes through :func:`due_ms`.

Vanilla arq workers know nothing of bands: under them a high-priority job runs at once even when
scheduled for later (its score is below now), and a low-priority one never runs. Run
``python -m scalr_queue.worker`` on a queue that uses priorities.
"""

from __future__ import annotations

from typing import Any

from ._errors import JobOptionsError

DEFAULT_PRIORITY = 5
MIN_PRIORITY = 0
MAX_PRIORITY = 9
BAND_MS = 10**13
# band numbers, highest priority first: band = DEFAULT_PRIORITY - priority
BANDS = range(DEFAULT_PRIORITY - MAX_PRIORITY, DEFAULT_PRIORITY - MIN_PRIORITY + 1)


def check_priority(value: Any, label: str = "priority") -> int:
    """The priority as an int, or a one-line JobOptionsError naming the option as the caller spelled it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobOptionsError(f"{label} must be a whole number from 0 to 9 (higher runs first), not {value!r}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise JobOptionsError(f"{label} must be from 0 to 9 (higher runs first; default 5), not {value}")
    return value


def encode(due_ms: int, priority: int | None) -> int:
    """The queue score of a job due at ``due_ms`` (None or 5: the due time itself, as arq has it)."""
    if priority is None or priority == DEFAULT_PRIORITY:
        return due_ms
    return due_ms + (DEFAULT_PRIORITY - priority) * BAND_MS


def band(score: float) -> int:
    """The band a score lies in (0 for default-priority jobs and for any plain time)."""
    return int(score // BAND_MS)


def due_ms(score: float) -> float:
    """The due time in ms of a queue score (a plain time, e.g. a lease's end, comes back unchanged)."""
    return score - band(score) * BAND_MS


def priority_of(score: float) -> int:
    """The priority a queue score encodes."""
    return DEFAULT_PRIORITY - band(score)


def ready_ranges(now_ms: int) -> list[tuple[int, int]]:
    """The score ranges (inclusive) of the jobs due by ``now_ms``, one per band, highest priority first."""
    return [(b * BAND_MS, b * BAND_MS + now_ms) for b in BANDS]


def payload_priority(job: dict[str, Any], key: str = "p") -> int:
    """The priority a decoded payload or record carries (``p``; left out at the default, 5)."""
    p = job.get(key)
    if isinstance(p, int) and not isinstance(p, bool) and MIN_PRIORITY <= p <= MAX_PRIORITY:
        return p
    return DEFAULT_PRIORITY
