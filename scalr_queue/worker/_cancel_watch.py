"""The worker's ears for cancels: pushed by our CANCEL script, polled only for arq's ``Job.abort()``.

``scalr_queue.cancel`` publishes a running job's id on the queue's cancel channel. Every worker of
the queue stays subscribed on one extra connection that blocks in a read, so a worker that nobody
cancels on sends nothing at all, and the one holding the job cancels its task within milliseconds.
A message missed while that connection was down is not lost: the CANCEL script also left a mark,
and each (re)subscription reads the marks of the jobs running here (one HMGET, only then).

A Redis user not allowed the channel (an ACL without ``&scalr:cancel:* +subscribe +publish``)
still cancels: the worker says so once and polls the marks of its running jobs instead (one HMGET
every ``ABORT_POLL_S``, only while it runs jobs).

arq's ``Job.abort()`` writes the id into arq's ``arq:abort`` sorted set and publishes nothing, so
it can only be polled: while (and only while) this worker runs jobs, one ZRANGE every
``ABORT_POLL_S``, the same cadence as arq's own worker; an idle worker does not poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from ..redis._connection import REDIS_ERRORS, ScalrRedis, aw, is_permission_error
from ..redis._keys import ARQ_ABORT_KEY, cancel_channel, cancels_key

logger = logging.getLogger("scalr_queue.worker")
ABORT_POLL_S = 0.5  # arq's own worker checks its abort set at every 0.5 s poll
ARQ_ABORT_REASON = "aborted with arq's Job.abort()"
SUBSCRIBE_READ_S = 30.0  # a blocked read returns this often (no command is sent), to notice a stop


class CancelWatcher:
    """Listens for cancels of the queue's jobs and hands each id to ``on_cancel(job_id, reason)``.

    ``running()`` lists the ids this worker runs now; ``on_cancel`` ignores ids it does not hold
    (every worker of the queue hears every cancel) after noting them for a moment, which covers a
    cancel that lands between a claim and its task's start.
    """

    def __init__(
        self,
        listener: ScalrRedis,
        redis: ScalrRedis,
        queue: str,
        *,
        running: Callable[[], list[str]],
        on_cancel: Callable[[str, str | None], None],
        op_timeout: float,
        on_redis_error: Callable[[BaseException], None],
    ) -> None:
        self.listener = listener
        self.redis = redis
        self.queue = queue
        self.running = running
        self.on_cancel = on_cancel
        self.op_timeout = op_timeout
        self.on_redis_error = on_redis_error
        self.subscribed = asyncio.Event()
        self.subscriptions = 0  # subscribe confirmations so far: 1, plus one per reconnect

    async def listen(self) -> None:
        """Subscribe and dispatch until cancelled; reconnects (and re-reads marks) after an outage."""
        pubsub = self.listener.pubsub()
        delay = 0.2
        try:
            while True:
                try:
                    if not pubsub.subscribed:
                        await pubsub.subscribe(cancel_channel(self.queue))
                    message = await pubsub.get_message(timeout=SUBSCRIBE_READ_S)
                    delay = 0.2
                except REDIS_ERRORS as exc:
                    self.subscribed.clear()
                    if is_permission_error(exc):
                        logger.warning(
                            "this Redis user may not subscribe to %s: cancels of running jobs are polled "
                            "every %gs instead of pushed (allow `&scalr:cancel:* +subscribe +publish` in its ACL)",
                            cancel_channel(self.queue),
                            ABORT_POLL_S,
                        )
                        await self._poll_marks()
                        return
                    self.on_redis_error(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if message is None:
                    continue
                if message["type"] == "message":
                    self.on_cancel(message["data"].decode(), None)
                elif message["type"] == "subscribe":
                    self.subscriptions += 1
                    await self._read_marks()
                    self.subscribed.set()
        finally:
            with contextlib.suppress(*REDIS_ERRORS, RuntimeError):
                await cast(Any, pubsub).aclose()  # redis-py leaves PubSub.aclose untyped

    async def _poll_marks(self) -> None:
        """Without the channel: read the marks of the running jobs while there are any."""
        while True:
            await asyncio.sleep(ABORT_POLL_S)
            await self._read_marks()

    async def _read_marks(self) -> None:
        """After (re)subscribing: cancels published while we were not listening are still marked."""
        ids = self.running()
        if not ids:
            return
        try:
            async with asyncio.timeout(self.op_timeout):
                marks = await aw(self.redis.hmget(cancels_key(self.queue), ids))
        except REDIS_ERRORS as exc:
            self.on_redis_error(exc)
            return
        for job_id, mark in zip(ids, marks, strict=True):
            if mark is not None:
                self.on_cancel(job_id, None)

    async def poll_arq_aborts(self) -> None:
        """While jobs run here, look for their ids in arq's abort set (arq publishes nothing)."""
        while True:
            await asyncio.sleep(ABORT_POLL_S)
            ids = self.running()
            if not ids:
                continue
            try:
                async with asyncio.timeout(self.op_timeout):
                    scores = await aw(self.redis.zmscore(ARQ_ABORT_KEY, ids))
                    aborted = [job_id for job_id, score in zip(ids, scores, strict=True) if score is not None]
                    if aborted:
                        await aw(self.redis.zrem(ARQ_ABORT_KEY, *aborted))
            except REDIS_ERRORS as exc:
                self.on_redis_error(exc)
                continue
            for job_id in aborted:
                self.on_cancel(job_id, ARQ_ABORT_REASON)


class HeardCancels:
    """Ids of cancels heard for jobs this worker did not hold (yet), remembered for ``ttl`` seconds.

    The publish can overtake the reply to the CLAIM that gave us the job (two connections), so a
    job about to start checks here first.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._ids: dict[str, float] = {}

    def add(self, job_id: str) -> None:
        now = time.monotonic()
        if len(self._ids) > 1000:
            self._ids = {k: t for k, t in self._ids.items() if now - t < self.ttl}
        self._ids[job_id] = now

    def pop(self, job_id: str) -> bool:
        seen = self._ids.pop(job_id, None)
        return seen is not None and time.monotonic() - seen < self.ttl
