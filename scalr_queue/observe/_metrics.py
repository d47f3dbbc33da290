"""Prometheus metrics of one worker, served on loopback when ``SCALR_QUEUE_METRICS_PORT`` is set.

The registry is the worker's own (not prometheus_client's global one), so two workers in one
process, or a test, never collide. The endpoint is read-only and binds ``127.0.0.1`` unless
``SCALR_QUEUE_METRICS_HOST`` says otherwise. Labels are ``queue`` and ``task`` (and ``state``
for the depth): never a job id, so the number of series stays that of queues times tasks.

Counts of the whole queue (depth by state, the oldest ready job's age, live workers) come from
one worker per queue at a time, the one holding the queue's reporter key (see ``_depth``): sum
them across workers and they still add up. The jobs this process enqueues are counted by
:mod:`scalr_queue.observe._producer_metrics`, whose counter this registry serves too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ._producer_metrics import producer_metrics

if TYPE_CHECKING:
    from ._depth import QueueDepth

logger = logging.getLogger("scalr_queue.worker")

# start minus due: a healthy queue sits in the first buckets; minutes mean too few workers
PUNCTUALITY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
DEPTH_STATES = ("ready", "scheduled", "running", "failed")


@dataclass(frozen=True)
class TaskMetrics:
    """One task's labelled children, looked up once instead of on every job."""

    started: Any
    succeeded: Any
    retried: Any
    failed: Any
    cancelled: Any
    duration: Any
    punctuality: Any


class WorkerMetrics:
    """Counters by queue and task; gauges refreshed at each heartbeat."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.registry = CollectorRegistry()
        labels = ["queue", "task"]
        self.started = Counter("scalr_queue_jobs_started", "Attempts started", labels, registry=self.registry)
        self.succeeded = Counter("scalr_queue_jobs_succeeded", "Jobs that finished", labels, registry=self.registry)
        self.retried = Counter(
            "scalr_queue_jobs_retried", "Attempts that will be retried", labels, registry=self.registry
        )
        self.failed = Counter("scalr_queue_jobs_failed", "Jobs moved to the failed set", labels, registry=self.registry)
        # No outcome is "cancelled" yet: the series exist (at 0) so dashboards and alerts can
        # name them now; the code path that cancels a job increments this.
        self.cancelled = Counter("scalr_queue_jobs_cancelled", "Jobs cancelled", labels, registry=self.registry)
        self.duration = Histogram(
            "scalr_queue_job_duration_seconds", "Attempt run time", labels, registry=self.registry
        )
        self.punctuality = Histogram(
            "scalr_queue_job_punctuality_seconds",
            "How late attempts start: start time minus the time the job was due",
            labels,
            buckets=PUNCTUALITY_BUCKETS,
            registry=self.registry,
        )
        self.running = Gauge("scalr_queue_jobs_running", "Attempts running now", ["queue"], registry=self.registry)
        self._server: Any = None
        self._tasks: dict[str, TaskMetrics] = {}
        self.disruptions = Counter(
            "scalr_queue_redis_disruptions", "Times Redis became unreachable", ["queue"], registry=self.registry
        )
        self.lease_losses = Counter(
            "scalr_queue_lease_losses",
            "Running jobs whose lease this worker lost (paused or cut off past the lease): they may run twice",
            ["queue"],
            registry=self.registry,
        )
        # whole-queue gauges: exported by the queue's reporter only (see report_depth)
        self.depth = Gauge(
            "scalr_queue_queue_depth", "Jobs in the queue by state", ["queue", "state"], registry=self.registry
        )
        self.oldest_ready = Gauge(
            "scalr_queue_oldest_ready_age_seconds",
            "How long the oldest ready job has been due without a worker taking it (0: none ready)",
            ["queue"],
            registry=self.registry,
        )
        self.workers = Gauge(
            "scalr_queue_workers", "Live workers serving the queue (heartbeat seen)", ["queue"], registry=self.registry
        )
        # zero from the start, so rate() and increase() see the first loss or outage
        self.lease_losses.labels(queue)
        self.disruptions.labels(queue)
        # what this process enqueues (from tasks and cron) shows here as well as in its own registry
        self.registry.register(producer_metrics().enqueued)

    def task(self, name: str) -> TaskMetrics:
        found = self._tasks.get(name)
        if found is None:
            labels = (self.queue, name)
            found = self._tasks[name] = TaskMetrics(
                self.started.labels(*labels),
                self.succeeded.labels(*labels),
                self.retried.labels(*labels),
                self.failed.labels(*labels),
                self.cancelled.labels(*labels),
                self.duration.labels(*labels),
                self.punctuality.labels(*labels),
            )
        return found

    def report_depth(self, depth: QueueDepth | None) -> None:
        """Export the queue's counts, or none at all when another worker is the reporter."""
        if depth is None:
            for gauge in (self.depth, self.oldest_ready, self.workers):
                gauge.clear()
            return
        for state in DEPTH_STATES:
            self.depth.labels(self.queue, state).set(getattr(depth, state))
        self.oldest_ready.labels(self.queue).set(depth.oldest_ready_age)
        self.workers.labels(self.queue).set(depth.workers)

    def serve(self, host: str, port: int) -> None:
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        logger.info("metrics on http://%s:%d/metrics", host, port)

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
