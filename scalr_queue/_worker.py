"""The worker: arq's Worker with its claim, wait, run and finish steps replaced.

* claim: up to N ready jobs per Lua call, each under a short lease (``SCALR_QUEUE_LEASE``)
  that this worker renews while the job runs, so a crashed worker's jobs come back within
  about one lease, and a long job on a live worker is never stolen;
* wait: an idle worker blocks in BRPOP on the queue's wake list (enqueue pushes to it), so new
  work starts within milliseconds with no busy polling; a slow poll stays as a safety net;
* run: every exception retries with exponential backoff (timeouts too), ``Fail`` and
  ``no_retry`` types fail at once, payloads are JSON only;
* finish: the results of jobs that end together are settled in one Lua call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

from arq.connections import RedisSettings, log_redis_info
from arq.utils import args_to_string, truncate
from arq.worker import Worker

from . import _registry, _scripts
from ._client import QueueClient
from ._codec import BadPayload, dumps, error_record, loads, parse_job, result_payload
from ._connection import REDIS_ERRORS, ScalrRedis, aw, create_redis, eval_script
from ._constants import failed_jobs_key, failed_key, queue_key, wake_key
from ._errors import Fail, TaskArgumentsError
from ._failed import failure_record
from ._loader import WorkerConfig
from ._metrics import WorkerMetrics
from ._retry import decide
from ._settings import Settings
from ._tasks import TaskSpec, as_task_spec, did_you_mean

logger = logging.getLogger("scalr_queue.worker")
CLAIM_MAX = 500
Op = tuple[str, str, bytes | str, bytes | str, int]


def now_ms() -> int:
    return int(time.time() * 1000)


class ScalrWorker(Worker):
    """Runs one queue's jobs. Build it from a WorkerConfig; ``await worker.run_async()``."""

    def __init__(
        self,
        config: WorkerConfig,
        settings: Settings,
        *,
        queue: str | None = None,
        concurrency: int | None = None,
        burst: bool = False,
        handle_signals: bool = True,
    ) -> None:
        self.settings = settings
        self.config = config
        self.queue = queue or config.queue_name or settings.queue_name
        self.specs: dict[str, TaskSpec] = dict(config.tasks)
        for cj in config.cron_jobs:
            self.specs[cj.name] = as_task_spec(
                cj.coroutine,
                name=cj.name,
                timeout=cj.timeout_s,
                max_tries=cj.max_tries,
                keep_result=cj.keep_result_s,
            )
        overrides = config.overrides
        super().__init__(
            functions=list(config.tasks.values()),
            queue_name=queue_key(self.queue),
            cron_jobs=config.cron_jobs,
            redis_settings=RedisSettings(),
            burst=burst,
            on_startup=config.on_startup,  # type: ignore[arg-type]
            on_shutdown=config.on_shutdown,  # type: ignore[arg-type]
            handle_signals=False,
            max_jobs=concurrency or overrides.get("concurrency") or settings.concurrency,
            job_timeout=overrides.get("job_timeout") or settings.job_timeout,
            keep_result=overrides.get("keep_result", settings.keep_result),
            poll_delay=settings.poll_interval,
            max_tries=overrides.get("max_tries") or settings.max_tries,
            health_check_interval=settings.health_interval,
            job_serializer=dumps,
            job_deserializer=loads,
        )
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_ms = now_ms()
        self._signals = handle_signals
        self._stop = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._shutting_down = False
        self._ops: list[Op] = []
        # jobs whose finish op is queued or in flight: their lease marker may already be gone
        self._flushing: set[asyncio.Task[None]] = set()
        self._blocking: ScalrRedis | None = None
        self._background: list[asyncio.Task[None]] = []
        self._outage_since: float | None = None
        self.reconnect_times: list[float] = []
        self.shutdown_requeued = 0
        self.metrics = WorkerMetrics(self.queue)

    # -- life cycle ---------------------------------------------------------------------

    def request_stop(self, sig: signal.Signals | None = None) -> None:
        """First call: drain (stop claiming, let jobs finish within the grace). Second: cancel now."""
        name = sig.name if sig else "request"
        if self._stop.is_set():
            logger.warning(
                "second %s: cancelling %d running jobs now (they go back to the queue)", name, len(self.tasks)
            )
            self._cancel_running()
            return
        logger.info(
            "shutdown on %s: no new jobs; waiting up to %gs for %d running",
            name,
            self.settings.shutdown_grace,
            len(self.tasks),
        )
        self.allow_pick_jobs = False
        self._stop.set()

    def _cancel_running(self) -> None:
        self._shutting_down = True
        for task in list(self.tasks.values()):
            if not task.done():
                task.cancel()

    async def _connect(self) -> None:
        """Connect, retrying with backoff: a worker started before Redis must not crash-loop."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                await self.pool.ping()
                await self._load_scripts()
                return
            except REDIS_ERRORS as exc:
                logger.error(
                    "cannot reach Redis at %s (%s); retrying in %.1fs",
                    self.settings.safe_redis_url,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _load_scripts(self) -> None:
        for script in (_scripts.CLAIM, _scripts.FINISH, _scripts.RENEW, _scripts.ENQUEUE):
            await aw(self.pool.script_load(script))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def run_async(self) -> None:
        """Run until stopped (signal, ``request_stop``) or, in burst mode, until the queue is empty."""
        loop = asyncio.get_running_loop()
        if self._signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig)
        self._pool = create_redis(self.settings)
        self._blocking = create_redis(self.settings, blocking=True)
        client = QueueClient(self.settings)
        client._redis, client._loop = self._pool, loop
        client._strict = dict(self.specs)  # this worker's own tasks and cron jobs: enqueue checks against them
        self._pool.scalr_client = client
        try:
            await self._connect()
            if self._stop.is_set():
                return
            logger.info("Starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions))
            await log_redis_info(self.pool, logger.info)
            logger.info(
                "worker %s serving queue %r (key %s) from %s; %s",
                self.worker_id,
                self.queue,
                self.queue_name,
                self.config.module,
                self.settings.describe(),
            )
            self.ctx["redis"] = self.pool
            self.ctx["worker_id"] = self.worker_id
            if self.settings.metrics_port:
                self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
            if self.on_startup:
                await self.on_startup(self.ctx)
            await self._heartbeat_once()
            self._background = [
                loop.create_task(self._renew_loop()),
                loop.create_task(self._heartbeat_loop()),
            ]
            await self._claim_loop()
            await self._drain()
        finally:
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            await self._flush_now()
            await self._say_goodbye()
            if self._signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            self.metrics.stop()
            await self._blocking.aclose(close_connection_pool=True)
            await self.pool.aclose(close_connection_pool=True)

    async def _drain(self) -> None:
        if self.tasks:
            _done, pending = await asyncio.wait(list(self.tasks.values()), timeout=self.settings.shutdown_grace)
            if pending:
                logger.warning(
                    "shutdown grace (%gs) over: cancelling %d jobs; they go back to the queue",
                    self.settings.shutdown_grace,
                    len(pending),
                )
                self._cancel_running()
                await asyncio.gather(*pending, return_exceptions=True)
        logger.info(
            "worker stopped: %d complete, %d failed, %d retried, %d requeued at shutdown",
            self.jobs_complete,
            self.jobs_failed,
            self.jobs_retried,
            self.shutdown_requeued,
        )

    async def _say_goodbye(self) -> None:
        try:
            await _registry.remove(self.pool, self.queue, self.worker_id)
            await self.pool.delete(self.health_check_key)
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
        except REDIS_ERRORS as exc:
            logger.warning("could not deregister from Redis at shutdown: %s", exc)

    # -- claiming -----------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        assert self._blocking is not None
        backoff = 0.2
        while not self._stop.is_set():
            free = self.max_jobs - len(self.tasks)
            if free <= 0:
                await self._wait_for_slot()
                continue
            try:
                claimed, next_score, more = await self._claim(min(free, CLAIM_MAX))
                self._redis_ok()
                backoff = 0.2
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if claimed >= free or more:
                continue
            if self.burst and not self.tasks and next_score is None:
                return
            timeout = self.settings.poll_interval
            if next_score is not None:
                timeout = max(0.0, min(timeout, (next_score - now_ms()) / 1000))
            if self.burst and not self.tasks:
                await self._sleep(min(timeout, 0.05) if timeout > 0 else 0)
                continue
            await self._wait_for_work(wait_s=timeout)

    async def _wait_for_slot(self) -> None:
        """All slots busy: wait for one to free up, or for a stop request (the drain takes over)."""
        self._slot_freed.clear()
        slot = asyncio.ensure_future(self._slot_freed.wait())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({slot, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (slot, stop):
                fut.cancel()
            await asyncio.gather(slot, stop, return_exceptions=True)
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

    def _redis_down(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self.metrics.disruptions.labels(self.queue).inc()
            logger.error(
                "lost Redis at %s (%s); retrying",
                self.settings.safe_redis_url,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )

    def _redis_ok(self) -> None:
        if self._outage_since is not None:
            took = time.monotonic() - self._outage_since
            self.reconnect_times.append(took)
            logger.info("Redis is back after %.2fs", took)
            self._outage_since = None

    async def _claim(self, count: int) -> tuple[int, float | None, bool]:
        args = [now_ms(), count, int(self.settings.lease * 1000), self.worker_id]
        keys = [self.queue_name, wake_key(self.queue)]
        ids, payloads, tries, nxt, more = await eval_script(self.pool, _scripts.CLAIM, keys, args)
        loop = asyncio.get_running_loop()
        for job_id_b, raw, job_try in zip(ids, payloads, tries, strict=True):
            job_id = job_id_b.decode()
            task = loop.create_task(self._run(job_id, raw, int(job_try)))
            self.tasks[job_id] = task
            task.add_done_callback(partial(self._job_done, job_id))
        return len(ids), (float(nxt) if nxt is not None else None), bool(more)

    def _job_done(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self.tasks.pop(job_id, None)
        self._slot_freed.set()

    # -- running ------------------------------------------------------------------------

    async def _refuse(
        self,
        job_id: str,
        job: dict[str, Any] | None,
        job_try: int,
        start: int,
        kind: str,
        reason: str,
        raw: bytes | None = None,
    ) -> None:
        """A job that must not run (no payload, not our JSON, expired): straight to the failed set."""
        await self._fail(
            job_id, job, job_try, reason, {"type": kind, "message": reason, "traceback": ""}, start, raw=raw
        )

    async def _run(self, job_id: str, raw: bytes | None, job_try: int) -> None:
        start = now_ms()
        if raw is None:
            reason = "job payload is missing (it expired or was deleted before a worker took it)"
            logger.warning("job %s: %s", job_id, reason)
            await self._refuse(job_id, None, job_try, start, "JobExpired", reason)
            return
        try:
            job = parse_job(raw)
        except BadPayload as exc:
            logger.error("job %s refused: %s; moved to the failed set", job_id, exc)
            await self._refuse(job_id, None, job_try, start, "BadPayload", str(exc), raw=raw)
            return
        name = job["f"]
        job_try = max(job_try, int(job.get("t") or 0))
        if job.get("x") is not None and start > int(job["x"]):
            reason = "expired: not started before its _expires deadline"
            logger.warning("job %s:%s %s", job_id, name, reason)
            await self._refuse(job_id, job, job_try, start, "JobExpired", reason)
            return
        spec = self.specs.get(name)
        if spec is None:
            await self._unknown_task(job_id, job, job_try, start)
            return
        try:
            kwargs = spec.convert_kwargs(job["k"])
            if not job["a"]:
                spec.signature.check(name, kwargs)
        except TaskArgumentsError as exc:
            logger.error("job %s:%s refused: %s", job_id, name, exc)
            await self._fail(job_id, job, job_try, str(exc), error_record(exc), start)
            return
        await self._execute(job_id, job, spec, kwargs, job_try, start)

    async def _execute(
        self,
        job_id: str,
        job: dict[str, Any],
        spec: TaskSpec,
        kwargs: dict[str, Any],
        job_try: int,
        claimed_ms: int,
    ) -> None:
        ref = f"{job_id}:{spec.name}"
        ctx = {
            **self.ctx,
            "job_id": job_id,
            "job_try": job_try,
            "queue": self.queue,
            "score": claimed_ms,
            "enqueue_time": datetime.fromtimestamp(job["et"] / 1000, tz=UTC),
        }
        timeout_s = spec.timeout_s or self.job_timeout_s or self.settings.job_timeout
        if self.on_job_start:
            await self.on_job_start(ctx)
        metrics = self.metrics.task(spec.name)
        metrics.started.inc()
        start = now_ms()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%6.2fs → %s(%s) try=%d", (start - job["et"]) / 1000, ref, args_to_string(job["a"], kwargs), job_try
            )
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                result = await spec.coroutine(ctx, *job["a"], **kwargs)
        except asyncio.CancelledError:
            if not self._shutting_down:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            self.shutdown_requeued += 1
            logger.info("%s cancelled by shutdown: back on the queue, not counted as a try", ref)
            self._finish(("Q", job_id, "", "", now_ms()))
            return
        except Exception as exc:  # every task error is handled: retried or recorded, never lost
            await self._attempt_failed(job_id, job, spec, job_try, exc, deadline.expired(), start, timeout_s)
            return
        finish = now_ms()
        self.jobs_complete += 1
        metrics.succeeded.inc()
        metrics.duration.observe((finish - start) / 1000)
        if logger.isEnabledFor(logging.INFO):  # one line per attempt; the start line is DEBUG
            logger.info(
                "%6.2fs ← %s%s waited %.2fs%s",
                (finish - start) / 1000,
                ref,
                f" try={job_try}" if job_try > 1 else "",
                (start - job["et"]) / 1000,
                "" if result is None else f" ● {truncate(repr(result))}",
            )
        keep = self.keep_result_s if spec.keep_result_s is None else spec.keep_result_s
        data = b""
        if keep > 0:
            data, problem = result_payload(
                job_id=job_id,
                job=job,
                queue=self.queue,
                job_try=job_try,
                success=True,
                result=result,
                start_ms=start,
                finish_ms=finish,
            )
            if problem:
                logger.warning("%s: %s; stored an error in its place", ref, problem)
        self._finish(("D", job_id, data, "", int(keep * 1000)))

    async def _attempt_failed(
        self,
        job_id: str,
        job: dict[str, Any],
        spec: TaskSpec,
        job_try: int,
        exc: Exception,
        timed_out: bool,
        start: int,
        timeout_s: float,
    ) -> None:
        ref = f"{job_id}:{spec.name}"
        if timed_out:
            exc = TimeoutError(f"task exceeded its {timeout_s:g}s timeout")
        decision = decide(exc, spec, job_try, self.settings, timed_out=timed_out, max_tries=self.max_tries)
        took = (now_ms() - start) / 1000
        self.metrics.task(spec.name).duration.observe(took)
        if decision.retry:
            self.jobs_retried += 1
            self.metrics.task(spec.name).retried.inc()
            logger.warning(
                "%6.2fs ↻ %s %s: %s: %s; retrying in %.2fs",
                took,
                ref,
                decision.reason,
                type(exc).__name__,
                exc,
                decision.delay,
            )
            self._finish(("R", job_id, "", "", now_ms() + int(decision.delay * 1000)))
            return
        log = logger.error if not isinstance(exc, Fail) else logger.warning
        log(
            "%6.2fs ! %s failed for good (%s): %s: %s; moved to the failed set",
            took,
            ref,
            decision.reason,
            type(exc).__name__,
            exc,
            exc_info=not isinstance(exc, Fail),
        )
        await self._fail(job_id, job, job_try, decision.reason, error_record(exc), start)

    async def _unknown_task(self, job_id: str, job: dict[str, Any], job_try: int, start: int) -> None:
        name = job["f"]
        age = (start - job["et"]) / 1000
        if age > self.settings.unknown_task_max_age:
            reason = (
                f"no worker knows task {name!r}{did_you_mean(name, self.specs)} "
                f"after {age:.0f}s (SCALR_QUEUE_UNKNOWN_TASK_MAX_AGE)"
            )
            logger.error("job %s: %s; moved to the failed set", job_id, reason)
            await self._fail(
                job_id,
                job,
                job_try,
                reason,
                {"type": "UnknownTask", "message": reason, "traceback": ""},
                start,
            )
            return
        logger.warning(
            "job %s: this worker has no task %r%s; put back for %gs (a newer worker may know it)",
            job_id,
            name,
            did_you_mean(name, self.specs),
            self.settings.unknown_task_delay,
        )
        self._finish(("Q", job_id, "", "", now_ms() + int(self.settings.unknown_task_delay * 1000)))

    async def _fail(
        self,
        job_id: str,
        job: dict[str, Any] | None,
        job_try: int,
        reason: str,
        error: dict[str, str],
        start: int,
        raw: bytes | None = None,
    ) -> None:
        self.jobs_failed += 1
        self.metrics.task(job.get("f", "?") if job else "?").failed.inc()
        record = failure_record(
            job_id=job_id, queue=self.queue, job=job, tries=job_try, reason=reason, error=error, raw=raw
        )
        keep = self.keep_result_s
        result = b""
        if keep > 0:
            result, _ = result_payload(
                job_id=job_id,
                job=job or {},
                queue=self.queue,
                job_try=job_try,
                success=False,
                result=error,
                start_ms=start,
                finish_ms=now_ms(),
            )
        self._finish(("F", job_id, record, result, int(keep * 1000)))

    # -- finishing ----------------------------------------------------------------------

    def _finish(self, op: Op) -> None:
        """Queue a finish op; the ops of jobs that end in the same loop tick share one Lua call.

        The job's slot frees as soon as its op is queued, so the next claim overlaps this flush
        instead of waiting a round trip for it. Nothing is lost if the worker dies before the
        flush: the job still holds its lease, so it runs again (at-least-once).
        """
        self._ops.append(op)
        if len(self._ops) == 1:
            asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self) -> None:
        batch, self._ops = self._ops, []
        if not batch:
            return
        args: list[Any] = [now_ms(), self.settings.failed_max, self.worker_id]
        for op in batch:
            args.extend(op)
        keys = [self.queue_name, failed_key(self.queue), failed_jobs_key(self.queue), wake_key(self.queue)]
        delay, deadline = 0.1, time.monotonic() + max(self.settings.lease, 5.0)
        while True:
            try:
                dropped = await eval_script(self.pool, _scripts.FINISH, keys, args)
                if dropped:
                    logger.warning(
                        "failed set of queue %r is over SCALR_QUEUE_FAILED_MAX=%d: dropped the %d oldest",
                        self.queue,
                        self.settings.failed_max,
                        dropped,
                    )
                return
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
                if time.monotonic() > deadline:
                    logger.error(
                        "could not record the end of %d jobs (%s); their leases will expire and they will run again",
                        len(batch),
                        exc,
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _flush_now(self) -> None:
        """Shutdown: send what is queued and wait for every flush in flight."""
        while self._ops or self._flushing:
            if self._ops:
                await self._flush()
            if self._flushing:
                await asyncio.gather(*self._flushing, return_exceptions=True)

    # -- background: leases, health, registry, cron ----------------------------------------

    async def _renew_loop(self) -> None:
        interval = self.settings.lease / 3
        while True:
            await asyncio.sleep(interval)
            ids = list(self.tasks)
            if not ids:
                continue
            lease_ms = int(self.settings.lease * 1000)
            try:
                lost = await eval_script(
                    self.pool, _scripts.RENEW, [self.queue_name], [lease_ms, now_ms() + lease_ms, self.worker_id, *ids]
                )
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
                continue
            for job_id in lost:
                if job_id.decode() not in self.tasks:
                    continue  # it finished while the renewal was in flight: its lease is gone on purpose
                logger.warning(
                    "lease lost on job %s (this worker was paused or cut off for longer than the "
                    "lease): another worker may run it too",
                    job_id.decode(),
                )

    async def _heartbeat_loop(self) -> None:
        tick = min(self.settings.health_interval, 0.5 if self.cron_jobs else self.settings.health_interval)
        last_health = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                if self.cron_jobs and not self._stop.is_set():
                    await self.run_cron(datetime.now(tz=self.timezone), 0.5)
                if time.monotonic() - last_health >= self.settings.health_interval:
                    last_health = time.monotonic()
                    await self._heartbeat_once()
            except REDIS_ERRORS as exc:
                self._redis_down(exc)

    async def _heartbeat_once(self) -> None:
        running = len(self.tasks)
        info = (
            f"{datetime.now():%b-%d %H:%M:%S} j_complete={self.jobs_complete} j_failed={self.jobs_failed} "
            f"j_retried={self.jobs_retried} j_ongoing={running} worker={self.worker_id}"
        )
        entry = {
            "id": self.worker_id,
            "module": self.config.module,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": self.max_jobs,
            "running": running,
            "complete": self.jobs_complete,
            "failed": self.jobs_failed,
            "retried": self.jobs_retried,
            "started_ms": self.started_ms,
            "tasks": {name: spec.signature.to_json() for name, spec in self.specs.items()},
        }
        ready, failed = await _registry.publish(self.pool, self.queue, entry, self.settings.health_interval * 3, info)
        self.metrics.running.labels(self.queue).set(running)
        self.metrics.ready.labels(self.queue).set(ready)
        self.metrics.failed_set.labels(self.queue).set(failed)
