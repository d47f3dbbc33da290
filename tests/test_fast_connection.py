"""The clients create_redis builds: hiredis packs their commands, and none runs the idle probe."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

import scalr_queue
from scalr_queue.redis._connection import _fast_connection, create_redis, exchange

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "key", "välue"),
    ("SET", b"key", b"\x00\xffbytes", "PX", 1500),
    ("ZADD", "z", 1.5, "a", 1e20, "b", -3, "c"),
    ("SCRIPT LOAD", "return 1"),  # a two-word command name is sent as two words
    (b"CLIENT SETNAME", b"n"),
    ("SET", "k", memoryview(b"view")),
    ("EVALSHA", "0" * 40, 2, "k1", "k2", 0, -(2**63), 2**63 - 1),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_hiredis_packs_a_command_byte_for_byte_as_redis_py_does(command: tuple[Any, ...]) -> None:
    fast = _fast_connection(Connection)()
    assert b"".join(fast.pack_command(*command)) == b"".join(Connection().pack_command(*command))


@pytest.mark.parametrize("value", [True, None, bytearray(b"x")])
def test_a_value_redis_py_refuses_is_still_refused_with_its_data_error(value: object) -> None:
    fast = _fast_connection(Connection)()
    with pytest.raises(DataError):
        fast.pack_command("SET", "k", value)


async def test_worker_and_producer_clients_round_trip_every_kind_of_argument(redis: Redis) -> None:
    settings = scalr_queue.get_settings()
    for blocking in (True, False):
        client = create_redis(settings, blocking=blocking)
        try:
            await client.set("fast:str", "välue")
            await client.zadd("fast:z", {"a": 1.5, "b": 2})
            await client.set(b"fast:bytes", b"\x00\xff")
            assert await client.get("fast:str") == "välue".encode()
            assert await client.zrange("fast:z", 0, -1, withscores=True) == [(b"a", 1.5), (b"b", 2.0)]
            assert await client.get("fast:bytes") == b"\x00\xff"
            assert await client.incr("fast:n") == (1 if blocking else 2)
            probes = client.connection_pool.connection_class.can_read_destructive
            assert probes is not Connection.can_read_destructive
        finally:
            await client.aclose(close_connection_pool=True)


async def test_a_worker_client_recovers_when_redis_closes_its_idle_connection(redis: Redis) -> None:
    """Without the idle probe, a connection the server dropped fails once and is retried on a new one."""
    client = create_redis(scalr_queue.get_settings(), blocking=True)
    try:
        await client.client_setname("fast-worker")
        first = await client.client_id()
        await redis.client_kill_filter(_id=first)
        assert await client.incr("fast:after-kill") == 1
        assert await client.client_id() != first
    finally:
        await client.aclose(close_connection_pool=True)


async def test_an_enqueue_after_redis_dropped_the_idle_connection_is_written_once_on_a_new_one(redis: Redis) -> None:
    """The producer's connections skip the idle probe too: the sender's one retry covers a dropped socket."""
    first = await scalr_queue.enqueue("dropped_then_sent", n=1)
    killed = await redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert int(killed) >= 1, "the producer's idle connection was dropped by the server"
    second = await scalr_queue.enqueue("dropped_then_sent", n=2)
    queued = await redis.zrange("arq:queue:default", 0, -1)
    assert sorted(queued) == sorted([first.job_id.encode(), second.job_id.encode()]), "both written, once each"


@pytest.mark.parametrize("blocking", [True, False], ids=["worker", "producer"])
async def test_a_client_lends_its_idle_connections_again_instead_of_opening_more(redis: Redis, blocking: bool) -> None:
    client = create_redis(scalr_queue.get_settings(), blocking=blocking)
    assert type(client.connection_pool).__name__ == "_LendingPool"
    try:
        sequential = {await client.client_id() for _ in range(20)}
        assert len(sequential) == 1
        opened = set(await asyncio.gather(*(client.client_id() for _ in range(5)))) | sequential
        again = set(await asyncio.gather(*(client.client_id() for _ in range(len(opened)))))
        assert again == opened
    finally:
        await client.aclose(close_connection_pool=True)


@pytest.mark.parametrize("blocking", [True, False], ids=["worker", "producer"])
def test_a_connection_whose_transport_closed_under_it_reconnects_on_uvloop(redis_url: str, blocking: bool) -> None:
    """uvloop closes a transport whose write failed (Redis killed under an idle pool) while redis-py
    still calls the connection connected; a write on it raised RuntimeError, which no retry expects."""
    import uvloop

    async def main() -> tuple[int, bool]:
        client = create_redis(scalr_queue.get_settings(), blocking=blocking)
        try:
            first = await client.client_id()
            idle = client.connection_pool._available_connections[-1]  # type: ignore[attr-defined]
            idle._writer.transport.close()  # what uvloop does after a write to a dead peer fails
            await asyncio.sleep(0)
            sent = await exchange(client.connection_pool, lambda conn: conn.pack_commands([("INCR", "uv")]), 1)
            return sent[0], await client.client_id() != first
        finally:
            await client.aclose(close_connection_pool=True)

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == (1, True)
    finally:
        loop.close()
