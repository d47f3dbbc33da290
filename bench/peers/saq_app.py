"""SAQ (Redis queue) for the benchmark: worker settings for its CLI, and a producer.

Worker, as the benchmark starts it (one process, SAQ's own CLI and logging defaults)::

    bench/.venvs/saq/bin/python -m saq bench.peers.saq_app.settings

Settings, chosen to match the others: ``concurrency=10``; ``dequeue_timeout=0`` (SAQ's
default: each of the 10 consumers blocks in BLMOVE until a job arrives, so pickup is
push-like, never a poll); the task gets SAQ's own Redis client as ``ctx["redis"]`` (set in
``startup``), as arq and scalr_queue hand theirs. SAQ's CLI logs at WARNING by default, so it
writes no per-job line. Queue ``default``: jobs wait in the list ``saq:default:queued``.
"""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from bench.workers import noop

QUEUED_KEY = "saq:default:queued"


async def _startup(ctx: dict[str, Any]) -> None:
    ctx["redis"] = ctx["worker"].queue.redis


settings = {
    "queue": Queue.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), name="default"),
    "functions": [noop],  # registered by its name, "noop"
    "concurrency": 10,
    "startup": _startup,
}


class SaqProducer:
    batch_api = "asyncio.gather(queue.enqueue x B) (SAQ has no batch enqueue)"

    def __init__(self, url: str) -> None:
        self.queue = Queue.from_url(url, name="default")

    async def start(self) -> None:
        await self.queue.connect()

    async def enqueue(self, **kw: Any) -> Any:
        return await self.queue.enqueue("noop", **kw)

    async def enqueue_batch(self, size: int) -> Any:
        import asyncio

        return await asyncio.gather(*(self.queue.enqueue("noop") for _ in range(size)))

    async def close(self) -> None:
        await self.queue.disconnect()
