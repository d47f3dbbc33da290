"""``ctx["progress"]``: a task reports how far it got; readers see it in ``Job.info()``.

Reports are coalesced: the task never waits for Redis, at most one write per
``MIN_INTERVAL_S`` is sent (the last value wins), and the final value is always written when the
task ends, with the job's result lifetime, so the progress expires with the job. A task that never
reports costs nothing.

Example::

    async def import_rows(ctx, path: str) -> int:
        rows = load(path)
        for i, row in enumerate(rows, 1):
            await save(row)
            await ctx["progress"](i, total=len(rows), message=f"row {i}")
        return len(rows)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from .._codec import dumps
from ..redis._connection import REDIS_ERRORS, aw
from ..redis._keys import progress_key

logger = logging.getLogger("scalr_queue.worker")
MIN_INTERVAL_S = 0.25  # at most 4 writes a second per job
MAX_MESSAGE = 500  # characters of a message kept


def _number(name: str, value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"progress {name} must be a finite number, not {value!r}")
    return value


class ProgressReporter:
    """The per-job callable behind ``ctx["progress"](current, total=None, message=None)``."""

    def __init__(self, redis: Any, queue: str, job_id: str, *, ttl_s: float) -> None:
        # built for every job, used by few: the key and the event wait for the first report
        self._redis = redis
        self._queue = queue
        self._job_id = job_id
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._pending: bytes | None = None
        self._written = False
        self._closed = False
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0

    @property
    def _key(self) -> str:
        return progress_key(self._queue, self._job_id)

    async def __call__(self, current: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress; returns at once (the write happens in the background, coalesced)."""
        report: dict[str, Any] = {"current": _number("current", current), "total": None, "message": None}
        if total is not None:
            report["total"] = _number("total", total)
        if message is not None:
            text = str(message)
            report["message"] = text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
        if self._closed:
            return
        report["at_ms"] = int(time.time() * 1000)
        self._pending = dumps(report)
        if self._writer is None:
            self._wake = self._wake or asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _set(self, data: bytes, px: int) -> None:
        try:
            await aw(self._redis.set(self._key, data, px=px))
            self.writes += 1
            self._written = True
        except REDIS_ERRORS as exc:  # progress is best effort: it never fails the job
            logger.warning("could not write the progress of %s: %s", self._key, exc)

    async def _write_loop(self) -> None:
        while self._pending is not None and not self._closed:
            data, self._pending = self._pending, None
            await self._set(data, self._ttl_ms)
            assert self._wake is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MIN_INTERVAL_S)
        self._writer = None

    async def close(self, keep_s: float) -> None:
        """The task ended: write the last value (if not written yet) to live as long as the result."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            assert self._wake is not None
            self._wake.set()
            await asyncio.gather(self._writer, return_exceptions=True)
        if not self._written and self._pending is None:
            return  # never reported: no Redis call at all
        px = int(keep_s * 1000)
        try:
            if px <= 0:
                await aw(self._redis.delete(self._key))
            elif self._pending is not None:
                await self._set(self._pending, px)
            else:
                await aw(self._redis.pexpire(self._key, px))
        except REDIS_ERRORS as exc:
            logger.warning("could not write the progress of %s: %s", self._key, exc)
        self._pending = None
