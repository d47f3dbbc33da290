"""A full Redis (maxmemory + noeviction) refuses new jobs loudly but still drains the queued ones."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import QueueUnavailableError
from scalr_queue.redis._server import RedisServer
from tests.support import running_worker, wait_until


@pytest.fixture
async def full_redis(set_env: Callable[..., None]) -> AsyncIterator[RedisServer]:
    server = RedisServer(extra_args=("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")).start()
    set_env(REDIS_URL=server.url, SCALR_QUEUE_KEEP_RESULT="60s")
    try:
        yield server
    finally:
        await scalr_queue.close()
        server.close()


RUNS: set[int] = set()


async def counted(ctx: dict[str, Any], i: int, pad: str = "") -> None:
    RUNS.add(i)  # not in Redis: this test's Redis is full, and the point is that the queue still drains


async def test_full_redis_refuses_enqueue_then_drains_everything_accepted(full_redis: RedisServer) -> None:
    RUNS.clear()
    accepted = 0
    with pytest.raises(QueueUnavailableError, match="Redis is out of memory") as info:
        for i in range(200_000):
            await scalr_queue.enqueue("counted", i=i, pad="x" * 200)
            accepted += 1
    assert "\n" not in str(info.value)
    assert accepted > 1000
    redis: Redis = Redis.from_url(full_redis.url)
    try:
        assert await redis.zcard("arq:queue:default") == accepted, "nothing already queued was lost"
        async with running_worker([counted], concurrency=20):
            await wait_until(lambda: _drained(redis), timeout=120, what="drain of a full Redis")
        assert set(range(accepted)) == RUNS
        assert await redis.zcard("scalr:failed:default") == 0
    finally:
        await redis.aclose()


async def _drained(redis: Redis) -> bool:
    return int(await redis.zcard("arq:queue:default")) == 0
