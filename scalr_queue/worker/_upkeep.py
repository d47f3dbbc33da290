"""The worker's upkeep beside its jobs: lease renewal, the heartbeat, cron, and a limits check.

* leases: every third of ``SCALR_QUEUE_LEASE`` one RENEW extends the leases of all running jobs;
  a job whose lease went to another worker (this one was paused or cut off longer than a lease)
  is counted and logged once, and a cancel mark found on a held job cancels it here;
* heartbeat: the worker's entry in the queue's registry (what the CLI and dashboard list), its
  health and metrics, and, when it exports metrics, the queue's depth gauges;
* cron: arq's schedule, checked every half second when the worker has cron jobs;
* limits: a warning at start when another live worker declares other limits for a shared task.

The state it reads belongs to :class:`scalr_queue.worker._worker.ScalrWorker`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from arq.cron import CronJob

from .._settings import Settings
from .._tasks import TaskSpec
from ..observe import _depth
from ..observe._health import WorkerHealth
from ..observe._metrics import WorkerMetrics
from ..redis import _scripts
from ..redis._connection import REDIS_ERRORS, ScalrRedis, eval_script
from ..redis._keys import cancels_key, leases_key, slots_key
from . import _registry
from ._execution import now_ms
from ._loader import WorkerConfig

logger = logging.getLogger("scalr_queue.worker")


class Upkeep:
    """The background half of :class:`~scalr_queue.worker._worker.ScalrWorker` (which provides this state)."""

    settings: Settings
    config: WorkerConfig
    queue: str
    worker_id: str
    started_ms: int
    max_jobs: int
    specs: dict[str, TaskSpec]
    tasks: dict[str, asyncio.Task[Any]]
    limit_rules: str | None
    cron_jobs: list[CronJob]
    timezone: tzinfo | None
    jobs_complete: int
    jobs_failed: int
    jobs_retried: int
    metrics: WorkerMetrics
    health: WorkerHealth
    _stop: asyncio.Event
    _leases_lost: set[str]

    if TYPE_CHECKING:  # provided by ScalrWorker and arq's Worker; absent at run time

        @property
        def pool(self) -> ScalrRedis: ...

        @property
        def op_timeout(self) -> float: ...

        def _redis_down(self, exc: BaseException) -> None: ...

        def _redis_ok(self) -> None: ...

        def cancel_locally(self, job_id: str, reason: str | None) -> None: ...

        async def run_cron(self, n: datetime, delay: float, num_windows: int = 2) -> None: ...

    async def _renew_loop(self) -> None:
        interval = self.settings.lease / 3
        while True:
            await asyncio.sleep(interval)
            ids = list(self.tasks)
            if not ids:
                continue
            lease_ms = int(self.settings.lease * 1000)
            try:
                args = [lease_ms, now_ms() + lease_ms, self.worker_id, *ids]
                keys = [leases_key(self.queue), cancels_key(self.queue)]
                if self.limit_rules is not None:
                    keys.append(slots_key(self.queue))  # the slots of limited jobs follow their leases
                async with asyncio.timeout(self.op_timeout):
                    lost, marked = await eval_script(self.pool, _scripts.RENEW, keys, args)
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
                continue
            for job_id in marked:  # a cancel whose publish this worker missed (e.g. a job taken over)
                self.cancel_locally(job_id.decode(), None)
            for raw_id in lost:
                job_id = raw_id.decode()
                if job_id not in self.tasks:
                    continue  # it finished while the renewal was in flight: its lease is gone on purpose
                if job_id in self._leases_lost:
                    continue  # counted and logged once already
                self._leases_lost.add(job_id)
                self.metrics.lease_losses.labels(self.queue).inc()
                logger.warning(
                    "lease lost on job %s (this worker was paused or cut off for longer than the "
                    "lease): another worker may run it too",
                    job_id,
                )

    async def _compare_limits(self) -> None:
        """Warn when a live worker of this queue declares other limits for a task this one runs.

        Each worker applies its own declaration to the jobs it claims, against counts shared in
        Redis: the larger max_concurrent or rate_limit is the one the queue as a whole can reach.
        """
        mine = {name: spec.limits.to_json() if spec.limits else None for name, spec in self.specs.items()}
        for other in await _registry.live_workers(self.pool, self.queue):
            if other.worker_id == self.worker_id:
                continue
            for name in sorted(mine.keys() & other.tasks.keys()):
                theirs = other.limits.get(name)
                if theirs != mine[name]:
                    logger.warning(
                        "task %r has limits %s here but %s on worker %s: each worker applies its own when it "
                        "claims, so the queue may reach the larger; deploy one declaration",
                        name,
                        _limits_text(mine[name]),
                        _limits_text(theirs),
                        other.worker_id,
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
                    async with asyncio.timeout(self.op_timeout):
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
            "limits": {name: spec.limits.to_json() for name, spec in self.specs.items() if spec.limits},
        }
        ttl = self.settings.health_interval * 3
        await _registry.publish(self.pool, self.queue, entry, ttl, info)
        self._redis_ok()  # a worker whose slots are all busy claims nothing: the heartbeat says Redis is back
        self.health.redis_answered()
        self.metrics.running.labels(self.queue).set(running)
        if self.settings.metrics_port:  # only a worker that exports metrics may be the queue's reporter
            self.metrics.report_depth(await _depth.report(self.pool, self.queue, self.worker_id, ttl))


def _limits_text(limits: dict[str, object] | None) -> str:
    shown = {k: v for k, v in (limits or {}).items() if v is not None}
    return "(" + (", ".join(f"{k}={v!r}" for k, v in shown.items()) or "none") + ")"
