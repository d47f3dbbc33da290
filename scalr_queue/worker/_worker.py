"""The worker: arq's Worker with its claim, wait, run and finish steps replaced.

* claim: up to N ready jobs per Lua call, each under a short lease (``SCALR_QUEUE_LEASE``)
  that this worker renews while the job runs, so a crashed worker's jobs come back within
  about one lease, and a long job on a live worker is never stolen;
* wait: an idle worker blocks in BRPOP on the queue's wake list (enqueue pushes to it) with its
  next claim pipelined behind, so new work starts within about a millisecond with no busy
  polling; a slow poll stays as a safety net (claim and wait: ``_claiming``);
* run: every exception retries with exponential backoff (timeouts too), ``Fail`` and
  ``no_retry`` types fail at once, payloads are JSON only;
* finish: the results of jobs that end together are settled in one Lua call;
* cancel: a cancel is pushed to every worker of the queue (``_cancel_watch``); the one that
  holds the job cancels its task, and the job ends ``cancelled``, never retried;
* upkeep: lease renewal, the heartbeat and cron run beside the jobs (``_upkeep``).
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
from collections.abc import Callable
from typing import TYPE_CHECKING

from arq.connections import RedisSettings, log_redis_info
from arq.worker import Worker

from .._codec import dumps, loads
from .._limits import rules_json
from .._settings import Settings
from .._tasks import TaskSpec, as_task_spec
from ..observe import _depth
from ..observe._health import WorkerHealth
from ..observe._metrics import WorkerMetrics
from ..observe._tracing import configured_tracing
from ..producer._client import QueueClient
from ..redis import _scripts
from ..redis._connection import (
    REDIS_ERRORS,
    ScalrRedis,
    aw,
    create_redis,
    is_permission_error,
    unavailable,
)
from ..redis._keys import (
    held_key,
    holds_key,
    leases_key,
    paused_key,
    queue_key,
    tagged_keys,
    wake_key,
)
from ..redis._memory import is_memory_url
from . import _registry
from ._cancel_watch import CancelWatcher, HeardCancels
from ._claiming import Claiming
from ._deadlines import Deadlines
from ._event_loop import loop_name
from ._execution import JobExecution, now_ms
from ._finisher import Finisher
from ._loader import WorkerConfig
from ._upkeep import Upkeep

if TYPE_CHECKING:
    from ..observe._otel import Tracing

logger = logging.getLogger("scalr_queue.worker")


class ScalrWorker(Claiming, JobExecution, Upkeep, Worker):
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
        self.serving = asyncio.Event()  # set once the worker is registered and about to claim
        self._slot_freed = asyncio.Event()
        self._shutting_down = False
        self._finisher: Finisher | None = None
        self._blocking: ScalrRedis | None = None
        self._listener: ScalrRedis | None = None
        self._cancelling: dict[str, str | None] = {}
        self._tries: dict[str, tuple[int, int, str | None]] = {}  # running job id -> (try, start ms, trace id)
        self._heard = HeardCancels(ttl=max(60.0, settings.lease * 2))
        self._deadlines = Deadlines()
        self.jobs_cancelled = 0
        self.cancel_watcher: CancelWatcher | None = None
        self._background: list[asyncio.Task[None]] = []
        self._outage_since: float | None = None
        self._leases_lost: set[str] = set()  # running jobs whose lease went elsewhere, counted once each
        self._paused = False
        self.shutdown_requeued = 0
        self.metrics = WorkerMetrics(self.queue)
        self.health = WorkerHealth(
            queue=self.queue,
            worker_id=self.worker_id,
            running=lambda: len(self.tasks),
            max_lag=settings.health_max_lag,
            heartbeat=settings.health_interval,
        )
        self._tracing: Tracing | None = None
        # the limited tasks' rules for CLAIM; None (nothing passed, nothing paid) when no task has limits
        self.limit_rules = rules_json({name: spec.limits for name, spec in self.specs.items()})
        self._last_sweep = 0.0
        self._limit_scan = 0
        self._lease_ms = int(settings.lease * 1000)
        # set once connected (the key names depend on the Redis's layout, a cluster's tags)
        self._claim_keys: list[str] = []
        self._claim_sha = _scripts.sha(_scripts.CLAIM)
        self._pipelined = False  # CLAIM sent behind the wake BRPOP (not on a cluster or memory://)
        self._waiting: asyncio.Timeout | None = None  # the pipelined wait's deadline, while it waits
        self._detach_log_ids: Callable[[], None] | None = None

    @property
    def op_timeout(self) -> float:
        """Bound on one of the worker's own Redis calls (its clients have no socket timeout)."""
        return max(5.0, self.settings.redis_timeout * 3)

    @property
    def finisher(self) -> Finisher:
        assert self._finisher is not None, "the worker is not running"
        return self._finisher

    # -- life cycle ---------------------------------------------------------------------

    def request_stop(self, sig: signal.Signals | None = None) -> None:
        """First call: drain (stop claiming, let jobs finish within the grace). Second: cancel now."""
        name = sig.name if sig else "request"
        self.health.stopping = True
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
        self._stop.set()
        self._slot_freed.set()  # a claim loop waiting for a slot sees the stop at once
        if self._waiting is not None:  # a claim loop in its pipelined wait is woken through Redis
            task = asyncio.get_running_loop().create_task(self._end_wait())
            self._background.append(task)

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
                async with asyncio.timeout(self.op_timeout):
                    await self.pool.ping()
                    await self._load_scripts()
                return
            except REDIS_ERRORS as exc:
                # the same words enqueue uses: refused connection, wrong password, TLS, timeout...
                logger.error("%s; retrying in %.1fs", unavailable(exc, self.settings, "worker start-up"), delay)
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
        if self.settings.health_port:
            self.health.serve(self.settings.health_host, self.settings.health_port)
        if self._signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig)
        self._pool = create_redis(self.settings, blocking=True)
        self._finisher = Finisher(
            self._pool,
            self.queue,
            self.worker_id,
            failed_max=self.settings.failed_max,
            finished_max=self.settings.finished_max,
            keep_result=self.keep_result_s,
            give_up_after=max(self.settings.lease, 5.0),
            op_timeout=self.op_timeout,
            on_redis_error=self._redis_down,
            limited=self.limit_rules is not None,
        )
        self._blocking = create_redis(self.settings, blocking=True)
        self._claim_keys = [
            self.queue_name,
            wake_key(self.queue),
            leases_key(self.queue),
            paused_key(self.queue),
            holds_key(self.queue),
            held_key(self.queue),
        ]
        self._pipelined = not tagged_keys() and not is_memory_url(self.settings.redis_url)
        self._listener = create_redis(self.settings, blocking=True)
        self.cancel_watcher = CancelWatcher(
            self._listener,
            self._pool,
            self.queue,
            running=lambda: list(self.tasks),
            on_cancel=self.cancel_locally,
            op_timeout=self.op_timeout,
            on_redis_error=self._redis_down,
        )
        # ctx["redis"].enqueue_job(...) from tasks and cron enqueues through this client, on the worker's
        # own pool; with SCALR_QUEUE_TASKS set, it checks against the tasks loaded here, not a re-import
        client = QueueClient(self.settings, tasks=self.specs)
        client.use_redis(self._pool)
        ticker = loop.create_task(self.health.tick())
        try:
            await self._connect()
            if self._stop.is_set():
                return
            logger.info("Starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions))
            if is_memory_url(self.settings.redis_url):
                logger.info("serving the in-process store (REDIS_URL=memory://): nothing is durable")
            elif tagged_keys():
                logger.info(
                    "serving a Redis Cluster: every key of queue %r carries the tag {%s}", self.queue, self.queue
                )
            else:
                async with asyncio.timeout(self.op_timeout):
                    await log_redis_info(self.pool, logger.info)
            logger.info(
                "worker %s serving queue %r (key %s) from %s on %s; %s",
                self.worker_id,
                self.queue,
                self.queue_name,
                self.config.module,
                loop_name(),
                self.settings.describe(),
            )
            self.ctx["redis"] = self.pool
            self.ctx["worker_id"] = self.worker_id
            if self.settings.metrics_port:
                self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
            if self.on_startup:
                await self.on_startup(self.ctx)
            self._start_tracing()  # after on_startup, which may configure OpenTelemetry
            try:
                async with asyncio.timeout(self.op_timeout):
                    await self._heartbeat_once()
                await self._compare_limits()
            except REDIS_ERRORS as exc:
                if is_permission_error(exc):
                    raise  # an ACL too narrow is a set-up mistake: the entrypoint says so and exits 2
                self._redis_down(exc)  # the heartbeat loop tries again
            self._background = [
                loop.create_task(self._renew_loop()),
                loop.create_task(self._heartbeat_loop()),
                loop.create_task(self.cancel_watcher.listen()),
                loop.create_task(self.cancel_watcher.poll_arq_aborts()),
            ]
            self.serving.set()
            await self._claim_loop()
            await self._drain()
        finally:
            if self._detach_log_ids is not None:
                self._detach_log_ids()
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            await self.finisher.drain()
            await self._say_goodbye()
            if self._signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            self.metrics.stop()
            ticker.cancel()
            self.health.stop()
            await self._blocking.aclose(close_connection_pool=True)
            await self._listener.aclose(close_connection_pool=True)
            await self.pool.aclose(close_connection_pool=True)

    def _start_tracing(self) -> None:
        """Trace every attempt when OpenTelemetry is configured (see scalr_queue.observe._tracing)."""
        self._tracing = configured_tracing()
        if self._tracing is None:
            return
        self.finisher.on_add = self._tracing.outcome
        self._detach_log_ids = self._tracing.attach_log_ids()
        logger.info("tracing: a span per attempt, joined to the trace that enqueued the job")

    async def _drain(self) -> None:
        self.health.stopping = True
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
            if self.settings.metrics_port:
                await _depth.release(self.pool, self.queue, self.worker_id)
            await self.pool.delete(self.health_check_key)
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
        except REDIS_ERRORS as exc:
            logger.warning("could not deregister from Redis at shutdown: %s", exc)

    # -- claiming: see _claiming.Claiming ---------------------------------------------------

    def _redis_down(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self.health.redis_failed()
            self.metrics.disruptions.labels(self.queue).inc()
            logger.error(
                "lost Redis at %s (%s); retrying",
                self.settings.safe_redis_url,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )

    def _redis_ok(self) -> None:
        if self._outage_since is not None:
            took = time.monotonic() - self._outage_since
            logger.info("Redis is back after %.2fs", took)
            self._outage_since = None
            self.health.redis_answered()

    def cancel_locally(self, job_id: str, reason: str | None) -> None:
        """A cancel was heard: cancel the task if this worker runs the job, else note it briefly."""
        task = self.tasks.get(job_id)
        if task is None:
            self._heard.add(job_id)
            return
        if job_id in self._cancelling or task.done():
            return
        self._cancelling[job_id] = reason
        task.cancel()
