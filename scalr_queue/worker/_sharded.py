"""One worker process for every shard of a split queue (``SCALR_QUEUE_SHARDS=bulk=4``).

``python -m scalr_queue.worker app --queue bulk`` with 4 shards runs four ScalrWorkers in one
event loop, one per shard (``bulk``, ``bulk~1`` ...), each with an equal share of the
concurrency, so every shard is claimed from at the same rate whatever its backlog: fair by
construction, with no cross-shard state. Only the first serves the health and metrics ports and
runs the cron jobs (a cron run is one job, not one per shard). A signal stops them all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal

from .._settings import Settings
from .._shards import shard_names
from ._loader import WorkerConfig
from ._worker import ScalrWorker


def shard_workers(
    config: WorkerConfig, settings: Settings, queue: str, count: int, *, concurrency: int | None, burst: bool
) -> list[ScalrWorker]:
    total = concurrency or config.overrides.get("concurrency") or settings.concurrency
    share = max(1, total // count)
    quiet = settings.model_copy(update={"health_port": None, "metrics_port": None})
    no_cron = dataclasses.replace(config, cron_jobs=[])
    return [
        ScalrWorker(
            config if i == 0 else no_cron,
            settings if i == 0 else quiet,
            queue=name,
            concurrency=share,
            burst=burst,
            handle_signals=False,
        )
        for i, name in enumerate(shard_names(queue, count))
    ]


async def run_shards(workers: list[ScalrWorker]) -> None:
    """Run every shard's worker until a signal (or, in burst mode, until each shard is empty)."""
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        for worker in workers:
            worker.request_stop(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    try:
        await asyncio.gather(*(w.run_async() for w in workers))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
