"""Jobs enqueued, counted in the process that enqueues them (a web backend, a task, cron).

A worker cannot count these: enqueue talks to Redis only, and counting there would cost a round
trip. So each producer process counts its own, in memory, in a registry of its own that the
app serves from its ``/metrics`` (the template's backend does)::

    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from scalr_queue import metrics_registry

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)

Summed over every process Prometheus scrapes, ``rate(scalr_queue_jobs_enqueued_total[5m])``
is the queue's arrival rate.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter


class ProducerMetrics:
    """The enqueue counter by queue and task; children cached so a count is one dict lookup."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.enqueued = Counter(
            "scalr_queue_jobs_enqueued",
            "Jobs this process put on a queue (an existing job id enqueued again is not counted)",
            ["queue", "task"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], Any] = {}

    def count(self, queue: str, task: str) -> None:
        child = self._children.get((queue, task))
        if child is None:
            child = self._children[(queue, task)] = self.enqueued.labels(queue, task)
        child.inc()


@lru_cache(maxsize=1)
def producer_metrics() -> ProducerMetrics:
    """The process's producer metrics, made on first use (counters live as long as the process)."""
    return ProducerMetrics()


def metrics_registry() -> CollectorRegistry:
    """The Prometheus registry of what this process enqueued; serve it from your app's ``/metrics``."""
    return producer_metrics().registry
