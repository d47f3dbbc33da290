"""Packed commands and their replies on one pooled connection: errors in step, a resend only when safe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from scalr_queue.redis._connection import exchange


def packer(*commands: tuple[Any, ...]) -> Callable[[Any], list[bytes]]:
    return lambda conn: list(conn.pack_commands(list(commands)))


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ConnectionPool]:
    """A pool of one connection: every exchange and every client call on it use the same one."""
    one = ConnectionPool.from_url(redis_url, max_connections=1)
    yield one
    await one.disconnect()


async def connection_id(pool: ConnectionPool) -> int:
    """The Redis client id of the pool's one connection, which goes back to the pool idle."""
    return int(await Redis(connection_pool=pool).client_id())


async def test_an_error_reply_comes_back_as_a_value_and_the_replies_after_it_stay_in_step(pool: ConnectionPool) -> None:
    out = await exchange(pool, packer(("SET", "s", "text"), ("INCR", "s"), ("GET", "s")), 3)
    assert out[0] is True or out[0] == b"OK"
    assert isinstance(out[1], ResponseError)
    assert out[2] == b"text"
    # the one connection went back to the pool in step: the next exchange reads its own replies
    assert await exchange(pool, packer(("ECHO", "next")), 1) == [b"next"]


async def test_a_connection_redis_closed_while_idle_is_retried_once_on_a_fresh_one(
    pool: ConnectionPool, redis: Redis
) -> None:
    await redis.execute_command("CLIENT", "KILL", "ID", await connection_id(pool))
    assert await exchange(pool, packer(("INCR", "idle")), 1) == [1]
    assert await redis.get("idle") == b"1"


async def test_a_connection_lost_after_a_reply_was_read_is_not_sent_again(pool: ConnectionPool, redis: Redis) -> None:
    own = await connection_id(pool)
    # Redis runs the INCR, then closes this very connection: the third reply never comes
    commands = packer(("INCR", "once"), ("CLIENT", "KILL", "ID", own, "SKIPME", "no"), ("INCR", "once"))
    with pytest.raises(RedisConnectionError):
        await exchange(pool, commands, 3)
    assert await redis.get("once") == b"1"  # run once: nothing was resent on a fresh connection
