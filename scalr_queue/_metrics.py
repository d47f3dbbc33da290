"""Prometheus metrics of one worker, served on loopback when ``SCALR_QUEUE_METRICS_PORT`` is set.

The registry is the worker's own (not prometheus_client's global one), so two workers in one
process, or a test, never collide. The endpoint is read-only and binds ``127.0.0.1`` unless
``SCALR_QUEUE_METRICS_HOST`` says otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger("scalr_queue.worker")


@dataclass(frozen=True)
class TaskMetrics:
    """One task's labelled children, looked up once instead of on every job."""

    started: Any
    succeeded: Any
    retried: Any
    failed: Any
    duration: Any


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
        self.duration = Histogram(
            "scalr_queue_job_duration_seconds", "Attempt run time", labels, registry=self.registry
        )
        self.running = Gauge("scalr_queue_jobs_running", "Attempts running now", ["queue"], registry=self.registry)
        self.ready = Gauge(
            "scalr_queue_queue_ready", "Jobs due and waiting for a slot", ["queue"], registry=self.registry
        )
        self.failed_set = Gauge(
            "scalr_queue_failed_set_size", "Jobs in the failed set", ["queue"], registry=self.registry
        )
        self._server: Any = None
        self._tasks: dict[str, TaskMetrics] = {}
        self.disruptions = Counter(
            "scalr_queue_redis_disruptions", "Times Redis became unreachable", ["queue"], registry=self.registry
        )

    def task(self, name: str) -> TaskMetrics:
        found = self._tasks.get(name)
        if found is None:
            labels = (self.queue, name)
            found = self._tasks[name] = TaskMetrics(
                self.started.labels(*labels),
                self.succeeded.labels(*labels),
                self.retried.labels(*labels),
                self.failed.labels(*labels),
                self.duration.labels(*labels),
            )
        return found

    def serve(self, host: str, port: int) -> None:
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        logger.info("metrics on http://%s:%d/metrics", host, port)

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
