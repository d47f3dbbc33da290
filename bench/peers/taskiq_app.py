"""taskiq with taskiq-redis's stream broker for the benchmark: the broker its CLI loads, and a producer.

Worker, as the benchmark starts it (taskiq's own CLI; ``--workers 1`` is one child process
under taskiq's supervisor parent, whose CPU the benchmark adds in)::

    bench/.venvs/taskiq/bin/python -m taskiq worker bench.peers.taskiq_app:broker \\
        --workers 1 --max-async-tasks 10 --max-prefetch 0

Settings, chosen to match the others: at most 10 tasks at once (``--max-async-tasks 10``),
no deliveries beyond that (``--max-prefetch 0``, taskiq's default); the broker's defaults
otherwise (XREADGROUP ``BLOCK 2000`` ms and ``COUNT 100``, ack once the result is handled;
no result backend, so nothing is stored per job). ``consumer_id="0"``: the consumer group
reads the stream from its start, so jobs queued before the worker's first start are drained
(the default ``$`` would skip them). The task gets a redis-py client on the broker's own
connection pool as ``ctx["redis"]``, as arq and scalr_queue hand theirs. Jobs wait in the
stream ``taskiq``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from redis.asyncio import Redis
from taskiq import TaskiqEvents, TaskiqState
from taskiq_redis import RedisStreamBroker

from bench.workers import noop

STREAM_KEY = "taskiq"

broker = RedisStreamBroker(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), consumer_id="0")
_ctx: dict[str, Any] = {}


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _startup(state: TaskiqState) -> None:
    _ctx["redis"] = Redis(connection_pool=broker.connection_pool)


@broker.task(task_name="noop")
async def noop_task(t0: float | None = None) -> None:
    await noop(_ctx, t0=t0)


class TaskiqProducer:
    batch_api = "asyncio.gather(task.kiq() x B) (taskiq has no batch enqueue)"

    def __init__(self, url: str) -> None:
        self.broker = broker  # built from REDIS_URL, which the benchmark sets to the same url

    async def start(self) -> None:
        await self.broker.startup()  # declares the consumer group before the first job

    async def enqueue(self, **kw: Any) -> Any:
        return await noop_task.kiq(**kw)

    async def enqueue_batch(self, size: int) -> Any:
        return await asyncio.gather(*(noop_task.kiq() for _ in range(size)))

    async def close(self) -> None:
        await self.broker.shutdown()
