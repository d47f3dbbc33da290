"""The client's Redis client: one per event loop, and a shared one left to the code that made it."""

from __future__ import annotations

from collections.abc import Awaitable

from redis.asyncio import Redis

import scalr_queue
from scalr_queue.redis._connection import create_redis
from tests.support import wait_until


async def test_a_shared_redis_client_stays_open_when_the_client_closes(redis: Redis) -> None:
    shared = create_redis(scalr_queue.get_settings())
    client = scalr_queue.QueueClient(tasks={})
    try:
        client.use_redis(shared)
        assert await client.redis() is shared
        assert shared.scalr_client is client, "enqueue_job on the shared client enqueues through this client"
        connection = await shared.client_id()
        await client.close()
        # a closed pool would quietly reconnect: the same connection id proves it was left open
        assert await shared.client_id() == connection, "closing the client closed a Redis client it did not make"
    finally:
        await shared.aclose(close_connection_pool=True)


async def test_the_client_closes_the_redis_client_it_made(redis: Redis) -> None:
    async def connections() -> int:
        return len(await redis.client_list())

    alone = await connections()
    client = scalr_queue.QueueClient()
    assert await (await client.redis()).ping()
    assert await connections() == alone + 1
    await client.close()
    await wait_until(lambda: _equals(connections(), alone), timeout=5, what="the client's connection to close")


async def _equals(count: Awaitable[int], expected: int) -> bool:
    return await count == expected
