"""The worker's claim loop: take ready jobs in batches, wait for work without polling, start them.

* claim: up to the free slots per ``CLAIM`` call, each job under a short lease that the worker
  renews while it runs;
* wait: an idle worker blocks in BRPOP on the queue's wake list with its next CLAIM sent in the
  same pipeline, so Redis runs the claim the moment an enqueue's wake lands (on a cluster or
  ``memory://``: BRPOP, then CLAIM); a slow safety poll stays as a net. A busy worker whose last
  claim saw nothing more due waits the same way when a slot frees, rather than claiming at once;
* start: a task per claimed job, whose end frees its slot.

The state it reads belongs to :class:`scalr_queue.worker._worker.ScalrWorker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .._deadline import Deadline
from .._priority import due_ms
from .._settings import Settings
from ..redis import _scripts
from ..redis._connection import REDIS_ERRORS, ScalrRedis, aw, eval_script, exchange
from ..redis._keys import limit_keys, stop_key, wake_key
from ._execution import now_ms

if TYPE_CHECKING:
    from ..observe._otel import Tracing

logger = logging.getLogger("scalr_queue.worker")

# what one claim did: jobs started, the next due job's score (None: nothing scheduled), more to take now
Claimed = tuple[int, float | None, bool]
CLAIM_MAX = 500
# held jobs one claim moves aside at most, so a large backlog under a new hold never stalls Redis
HOLD_SCAN = 1000
# how soon a replacement held back behind its running predecessor is looked at again: the most it
# waits after the predecessor ends (only while one waits; a plain claim never looks)
REPLACEMENT_RECHECK_MS = 200
# due jobs a claim looks at beyond those it can run, to get past jobs over their limit: only after a
# claim came back short with more to take (jobs were parked or deferred), so plain jobs pay nothing
LIMIT_SCAN = 100


class Claiming:
    """The claim half of :class:`~scalr_queue.worker._worker.ScalrWorker` (which provides this state)."""

    settings: Settings
    queue: str
    queue_name: str
    worker_id: str
    max_jobs: int
    burst: bool
    tasks: dict[str, asyncio.Task[Any]]
    limit_rules: str | None
    _stop: asyncio.Event
    _slot_freed: asyncio.Event
    _blocking: ScalrRedis | None
    _pipelined: bool
    _waiting: asyncio.Timeout | None
    _claim_keys: list[str]
    _claim_sha: str
    _lease_ms: int
    _last_sweep: float
    _limit_scan: int
    _paused: bool
    _tracing: Tracing | None
    _cancelling: dict[str, str | None]
    _tries: dict[str, tuple[int, int, str | None]]
    _leases_lost: set[str]

    if TYPE_CHECKING:  # provided by ScalrWorker, JobExecution and arq's Worker; absent at run time

        @property
        def pool(self) -> ScalrRedis: ...

        @property
        def op_timeout(self) -> float: ...

        def _redis_down(self, exc: BaseException) -> None: ...

        def _redis_ok(self) -> None: ...

        async def _sleep(self, seconds: float) -> None: ...

        async def _run(self, job_id: str, raw: bytes | None, job_try: int, due_ms: int | None = None) -> None: ...

        def _finish_cancelled(self, job_id: str) -> None: ...

    async def _claim_loop(self) -> None:
        assert self._blocking is not None
        backoff = 0.2
        woken: tuple[Claimed, int] | None = None  # the claim pipelined behind the last wait, and its count
        # the last claim saw nothing more due: until a wake says otherwise, only next_score can bring work,
        # so a freed slot waits for a wake (its claim pipelined behind) instead of claiming straight away
        settled = False
        next_score: float | None = None
        waits_for_wakes = self._pipelined and not self.burst
        while not self._stop.is_set():
            free = self.max_jobs - len(self.tasks)
            if woken is not None:
                ((claimed, next_score, more), asked), woken = woken, None
            elif free <= 0:
                await self._wait_for_slot()
                continue
            elif settled and waits_for_wakes:
                claimed, asked, more = 0, free, False
            else:
                asked = min(free, CLAIM_MAX)
                try:
                    claimed, next_score, more = await self._claim(asked)
                    self._redis_ok()
                    backoff = 0.2
                except REDIS_ERRORS as exc:
                    self._redis_down(exc)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            settled = not more and waits_for_wakes and claimed > 0
            if more or (claimed >= asked and not waits_for_wakes):
                continue
            if self.burst and not self.tasks and next_score is None:
                return
            timeout = self.settings.poll_interval
            if next_score is not None:
                timeout = max(0.0, min(timeout, (next_score - now_ms()) / 1000))
            if self.burst and not self.tasks:
                await self._sleep(min(timeout, 0.05) if timeout > 0 else 0)
                continue
            free = self.max_jobs - len(self.tasks)
            if free > 0 and self._pipelined and timeout >= 0.005:
                if claimed:
                    # the jobs just claimed take their first step before the next wait is built and
                    # sent (pipeline.execute runs up to its send without yielding)
                    await asyncio.sleep(0)
                asked = min(free, CLAIM_MAX)
                got = await self._wait_and_claim(timeout, asked)
                woken = (got, asked) if got is not None else None
                # the claim behind the wait says what is due now; without its reply (an error, NOSCRIPT
                # on a new master, no answer in time) a wake may have been spent: claim the usual way
                settled = False
            elif free <= 0 and settled:
                await self._wait_for_slot()
            else:
                settled = False
                await self._wait_for_work(wait_s=timeout)

    async def _wait_for_slot(self) -> None:
        """All slots busy: wait for one to free up, or for a stop request (the drain takes over).

        One event serves both (``request_stop`` sets it too): no futures or ``asyncio.wait`` per
        freed slot, which a draining worker pays about once per job.
        """
        self._slot_freed.clear()
        await self._slot_freed.wait()
        await asyncio.sleep(0)  # let other jobs that end in this tick free their slots too

    async def _wait_for_work(self, wait_s: float) -> None:
        """Block until a wake-up, the timeout (next due job or safety poll), or a stop."""
        assert self._blocking is not None
        if wait_s < 0.005:
            await asyncio.sleep(wait_s)
            return
        brpop = self._blocking.brpop([wake_key(self.queue)], timeout=wait_s)  # type: ignore[arg-type]
        waiter = asyncio.ensure_future(aw(brpop))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({waiter, stop}, timeout=wait_s + 2, return_when=asyncio.FIRST_COMPLETED)
            if waiter in done and waiter.exception() is not None:
                self._redis_down(waiter.exception())  # type: ignore[arg-type]
                await self._sleep(0.5)
        finally:
            for fut in (waiter, stop):
                if not fut.done():
                    fut.cancel()
            await asyncio.gather(waiter, stop, return_exceptions=True)

    async def _wait_and_claim(self, wait_s: float, count: int) -> Claimed | None:
        """Block in BRPOP with the CLAIM pipelined behind it, so the claim runs the moment a wake lands.

        Redis holds a blocked client's next command until its BRPOP returns (a wake, or the timeout:
        then it is the safety poll's claim), so a woken job costs no second round trip from here.
        Nothing else waits beside it (no stop future, no ``asyncio.wait``: a loop turn and two
        futures less per wake): a stop pushes this worker's own stop list twice instead, the BRPOP
        pops one, and the claim, seeing the other, takes nothing (``_end_wait``). None: nothing was
        claimed this way (an error, or no reply in time), and the loop claims the usual way next.

        The two replies are read by :func:`~scalr_queue.redis._connection.exchange`, not redis-py's
        ``Pipeline``, whose reply path would be the first code an idle worker runs after a wake
        (code run cold takes many times its warm time; ``bench.pickup`` measures it). An error reply
        to the BRPOP is ignored: the claim's follows it in step.
        """
        assert self._blocking is not None
        pool: Any = self._blocking.connection_pool  # redis-py types it as the synchronous pool
        keys, args = self._claim_call(count, 0)
        commands = [
            ("BRPOP", keys[-1], wake_key(self.queue), wait_s),
            ("EVALSHA", self._claim_sha, len(keys), *keys, *args),
        ]
        try:
            async with asyncio.timeout(wait_s + 2) as self._waiting:
                _, reply = await exchange(pool, lambda conn: conn.pack_commands(commands), 2, check_health=False)
        except TimeoutError:
            # the connection closed with the wait: Redis drops a claim it had not run yet; one it ran
            # whose reply never came leaves its jobs leased, and they run again after one lease
            return None
        except REDIS_ERRORS as exc:
            self._redis_down(exc)
            await self._sleep(0.5)
            return None
        finally:
            self._waiting = None
        if isinstance(reply, ResponseError):
            return None  # NOSCRIPT (Redis restarted, say): the usual claim loads it again
        self._redis_ok()
        return self._start_claimed(reply, count)

    async def _end_wait(self) -> None:
        """A stop during the pipelined wait: push the stop list; if Redis does not take it, give up the wait."""
        key = stop_key(self.queue, self.worker_id)
        with contextlib.suppress(*REDIS_ERRORS, TimeoutError):
            async with asyncio.timeout(self.op_timeout):
                pipe = self.pool.pipeline(transaction=False)
                pipe.lpush(key, 1, 1)
                pipe.pexpire(key, 60_000)
                await pipe.execute()
                return
        if self._waiting is not None:
            self._waiting.reschedule(asyncio.get_running_loop().time())

    def _claim_call(self, count: int, now: int) -> tuple[list[str], list[Any]]:
        """CLAIM's keys and arguments; ``now`` 0 is the pipelined form (the server's clock, the stop list)."""
        args: list[Any] = [now, count, self._lease_ms, self.worker_id, REPLACEMENT_RECHECK_MS, HOLD_SCAN]
        keys = list(self._claim_keys)
        if self.limit_rules is not None:
            # limits: the rules, and once per poll interval a sweep for parked jobs whose slot is free
            sweep = time.monotonic() - self._last_sweep >= self.settings.poll_interval
            if sweep:
                self._last_sweep = time.monotonic()
            keys += limit_keys(self.queue)
            args += [self.limit_rules, int(sweep), self._limit_scan]
        if now == 0:
            keys.append(stop_key(self.queue, self.worker_id))
        return keys, args

    async def _claim(self, count: int) -> Claimed:
        keys, args = self._claim_call(count, now_ms())
        with Deadline(self.op_timeout):
            reply = await eval_script(self.pool, _scripts.CLAIM, keys, args)
        return self._start_claimed(reply, count)

    def _start_claimed(self, reply: list[Any], count: int) -> Claimed:
        """Start a task for every job a CLAIM reply hands over; (how many, next due score, more to take)."""
        ids, payloads, tries, nxt, more, dues, *paused = reply
        if self.limit_rules is not None:
            self._limit_scan = LIMIT_SCAN if more and len(ids) < count else 0
        if bool(paused) != self._paused:
            self._paused = bool(paused)
            logger.info("queue %r %s", self.queue, "paused: claiming nothing until resumed" if paused else "resumed")
        loop = asyncio.get_running_loop()
        for job_id_b, raw, job_try, due in zip(ids, payloads, tries, dues, strict=True):
            job_id = job_id_b.decode()
            run = self._run(job_id, raw, int(job_try), int(due_ms(float(due))))
            if self._tracing is not None:
                run = self._tracing.attempt(run, raw, job_id, int(job_try), self.queue, self.worker_id)
            task = loop.create_task(run)
            self.tasks[job_id] = task
            task.add_done_callback(partial(self._job_done, job_id))
        return len(ids), (float(nxt) if nxt is not None else None), bool(more)

    def _job_done(self, job_id: str, task: asyncio.Task[None]) -> None:
        self.tasks.pop(job_id, None)
        if task.cancelled() and job_id in self._cancelling:
            self._finish_cancelled(job_id)  # cancelled before its first step: _run never saw it
        self._tries.pop(job_id, None)
        self._leases_lost.discard(job_id)
        self._slot_freed.set()
