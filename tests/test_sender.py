"""The enqueue sender checks connections out the way each redis-py of the declared range expects.

redis-py before 5.3 requires ``ConnectionPool.get_connection(command_name)``; 5.3 makes the
name optional and warns (an error under this suite's filterwarnings) when it is given. Each
test pool below has one of the two shapes and delegates to the real pool, so both are proven
against a real Redis whichever redis-py is installed (`make test` pins the newest,
`make test-lowest` the oldest). Only the sender talks through the test pool: redis-py's own
commands call it in the installed version's way, so setup and checks use the plain client.
"""

from __future__ import annotations

import asyncio
import socket
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import ConnectionPool, Redis

from scalr_queue.producer._sender import ScriptSender

SET_AND_ECHO = "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]"


async def _real_checkout(pool: ConnectionPool, command_name: str) -> Any:
    with warnings.catch_warnings():  # the real pool may be 5.3's, which warns about the name
        warnings.simplefilter("ignore", DeprecationWarning)
        return await ConnectionPool.get_connection(pool, command_name)


class NameRequiredPool(ConnectionPool):
    """redis-py < 5.3: the command name is a required argument."""

    names: list[str]

    async def get_connection(self, command_name: str, *keys: Any, **options: Any) -> Any:  # type: ignore[override]
        self.names.append(command_name)
        return await _real_checkout(self, command_name)


class NameRejectedPool(ConnectionPool):
    """redis-py >= 5.3: no argument; passing one is deprecated (raised here to be sure)."""

    names: list[str]

    async def get_connection(self, command_name: str | None = None, *keys: Any, **options: Any) -> Any:  # type: ignore[override]
        if command_name is not None or keys or options:
            raise TypeError(f"get_connection() takes no arguments since redis-py 5.3, got {command_name!r}")
        self.names.append("")
        return await _real_checkout(self, "EVALSHA")


@pytest.fixture(params=[NameRequiredPool, NameRejectedPool])
async def sender_and_pool(
    request: pytest.FixtureRequest, redis: Redis, redis_url: str
) -> AsyncIterator[tuple[ScriptSender, Any]]:
    await redis.script_load(SET_AND_ECHO)
    pool = request.param.from_url(redis_url)
    pool.names = []
    client = Redis(connection_pool=pool)
    yield ScriptSender(client, SET_AND_ECHO), pool
    await pool.disconnect()


async def test_sender_runs_a_script_through_either_get_connection_signature(
    sender_and_pool: tuple[ScriptSender, Any], redis: Redis
) -> None:
    sender, pool = sender_and_pool

    assert await sender.call(["k"], [b"v\r\n$1"]) == b"v\r\n$1"  # RESP-looking bytes travel as data

    assert await redis.get("k") == b"v\r\n$1"
    assert pool.names == (["EVALSHA"] if isinstance(pool, NameRequiredPool) else [""])


async def test_concurrent_calls_share_a_pipeline_with_either_signature(
    sender_and_pool: tuple[ScriptSender, Any], redis: Redis
) -> None:
    sender, pool = sender_and_pool

    results = await asyncio.gather(*(sender.call([f"k{i}"], [i]) for i in range(50)))

    assert results == [str(i).encode() for i in range(50)]
    assert await redis.mget([f"k{i}" for i in range(50)]) == [str(i).encode() for i in range(50)]
    assert len(pool.names) == 2  # the first call alone, the 49 that waited behind it in one batch


async def test_every_kind_of_argument_reaches_redis_byte_for_byte(redis: Redis) -> None:
    sender = ScriptSender(redis, "return ARGV")
    args: list[bytes | str | int] = [b"", b"\r\n*1\r\n$3\r\n", "clé 日本", 0, -5, 2**53, b"\x00\xff" * 40_000]

    single = await sender.call([], args)
    batched = await asyncio.gather(*(sender.call([], args) for _ in range(3)))

    expected = [b"", b"\r\n*1\r\n$3\r\n", "clé 日本".encode(), b"0", b"-5", str(2**53).encode(), b"\x00\xff" * 40_000]
    assert single == expected
    assert batched == [expected] * 3


async def test_a_pipeline_gives_up_within_its_timeout_even_on_a_connection_without_one() -> None:
    # a worker's shared pool has no socket timeout: the sender's own deadline still bounds the call
    with socket.socket() as silent:  # accepts connections, never answers: a hung Redis
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        hung = Redis(port=silent.getsockname()[1], socket_timeout=None, lib_name=None, lib_version=None)
        sender = ScriptSender(hung, SET_AND_ECHO, timeout=0.3)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await sender.call(["k"], ["v"])
        assert time.monotonic() - start < 1.5
        await hung.aclose()


async def test_the_connection_keeps_its_socket_timeout_for_other_commands(redis: Redis, redis_url: str) -> None:
    client = Redis.from_url(redis_url, socket_timeout=2.5)
    sender = ScriptSender(client, SET_AND_ECHO, timeout=0.5)

    assert await asyncio.gather(*(sender.call([f"k{i}"], [i]) for i in range(5))) == [b"0", b"1", b"2", b"3", b"4"]

    pooled = client.connection_pool._available_connections
    assert pooled and all(conn.socket_timeout == 2.5 for conn in pooled)  # lifted only while the sender had it
    await client.aclose()
