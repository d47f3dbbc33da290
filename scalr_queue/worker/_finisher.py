"""Settling finished jobs: the ops of jobs that end in the same loop tick share one Lua call.

An op is ``(action, job_id, data1, data2, num)`` as the FINISH script reads it (see
:mod:`scalr_queue.redis._scripts`), sent with the JSON record of the try that ended (what
``scalr-queue job ID`` shows), written in the same call: a try's history costs no round trip.
Queuing one never blocks the job, so its worker slot frees at once and the next claim overlaps
this flush instead of waiting a round trip for it. Nothing is
lost if the worker dies before the flush: the job still holds its lease and runs again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .._deadline import Deadline
from ..redis import _scripts
from ..redis._connection import REDIS_ERRORS, eval_script
from ..redis._keys import (
    FINISHED_STATES,
    cancels_key,
    failed_jobs_key,
    failed_key,
    finished_key,
    leases_key,
    limit_keys,
    queue_key,
    tries_key,
    wake_key,
)

logger = logging.getLogger("scalr_queue.worker")
Op = tuple[str, str, bytes | str, bytes | str, int]
FLUSH_DELAY_S = 0.001
# ops per FINISH call at most: the script unpacks three keys per job into one DEL, and Lua's unpack
# takes ~8,000 values; a larger batch (a worker of high concurrency whose jobs end together) is
# split, where one call would fail whole after writing part of it
FINISH_MAX = 500
# how long the try history of a job that will run again outlives its next due time, beyond keep_result
LIVE_HISTORY_S = 24 * 3600.0


class Finisher:
    """Batches finish ops for one queue and sends them, retrying through short Redis outages."""

    def __init__(
        self,
        redis: Any,
        queue: str,
        worker_id: str,
        *,
        failed_max: int,
        finished_max: int,
        keep_result: float,
        give_up_after: float,
        op_timeout: float,
        on_redis_error: Callable[[BaseException], None],
        limited: bool = False,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.worker_id = worker_id
        self.failed_max = failed_max
        self.finished_max = finished_max
        self.finished_px = int(keep_result * 1000)
        self.live_px = int((keep_result + LIVE_HISTORY_S) * 1000)
        self.give_up_after = give_up_after
        self.op_timeout = op_timeout
        self.on_redis_error = on_redis_error
        self.keys = [
            queue_key(queue),
            failed_key(queue),
            failed_jobs_key(queue),
            wake_key(queue),
            leases_key(queue),
            cancels_key(queue),
            *(finished_key(queue, state) for state in FINISHED_STATES),
        ]
        # a worker with limited tasks: a finished job frees its slot (see FINISH); after the tries keys
        self.limit_keys = limit_keys(queue) if limited else []
        self._ops: list[tuple[Op, bytes]] = []
        self._flushing: set[asyncio.Task[None]] = set()
        # told of every op as it is queued, in the ending job's context (tracing records the outcome)
        self.on_add: Callable[[Op], None] | None = None

    def add(self, op: Op, attempt: bytes = b"") -> None:
        """Queue ``op``; ``attempt`` is the try's JSON record for its history (``JobExecution._attempt``)."""
        if self.on_add is not None:
            self.on_add(op)
        self._ops.append((op, attempt))
        if len(self._ops) == 1:
            # wait a moment so the jobs ending around this one share the call: measured, it cut a
            # draining worker's finish round trips per job from ~1 to ~0.4 for at most 1 ms of delay
            asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self._start_flush)

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self) -> None:
        batch, self._ops = self._ops, []
        for start in range(0, len(batch), FINISH_MAX):
            await self._send(batch[start : start + FINISH_MAX])

    async def _send(self, batch: list[tuple[Op, bytes]]) -> None:
        args: list[Any] = [
            int(time.time() * 1000),
            self.failed_max,
            self.worker_id,
            self.finished_max,
            self.finished_px,
            self.live_px,
        ]
        keys = list(self.keys)
        for op, attempt in batch:
            args.extend(op)
            args.append(attempt)
            if attempt:
                keys.append(tries_key(op[1], self.queue))
        keys += self.limit_keys
        delay, deadline = 0.1, time.monotonic() + self.give_up_after
        while True:
            try:
                with Deadline(self.op_timeout):
                    dropped = await eval_script(self.redis, _scripts.FINISH, keys, args)
            except REDIS_ERRORS as exc:
                self.on_redis_error(exc)
                if time.monotonic() > deadline:
                    logger.error(
                        "could not record the end of %d jobs (%s); their leases will expire and they will run again",
                        len(batch),
                        exc,
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if dropped:
                logger.warning(
                    "failed set of queue %r is over SCALR_QUEUE_FAILED_MAX=%d: dropped the %d oldest",
                    self.queue,
                    self.failed_max,
                    dropped,
                )
            return

    async def drain(self) -> None:
        """Shutdown: send what is queued and wait for every flush in flight."""
        while self._ops or self._flushing:
            if self._ops:
                await self._flush()
            if self._flushing:
                await asyncio.gather(*self._flushing, return_exceptions=True)
