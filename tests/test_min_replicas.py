"""``SCALR_QUEUE_MIN_REPLICAS``: enqueue waits (WAIT, in the same pipeline) for N replicas, else fails clearly.

The session's redis-server has no replica, so WAIT 1 always comes back short here: that is the
refusal path. The failover test (tests/reliability/test_sentinel_failover.py) shows the other
side on a real Sentinel deployment: with it set, no acknowledged enqueue is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import ConfigurationError, NotReplicatedError, QueueUnavailableError
from scalr_queue._settings import load_settings


async def wait_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


async def test_enqueue_without_enough_replicas_fails_in_one_line_but_keeps_the_job(
    redis: Redis, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_MIN_REPLICAS="1", SCALR_QUEUE_MIN_REPLICAS_TIMEOUT="100ms")
    with pytest.raises(NotReplicatedError) as info:
        await scalr_queue.enqueue("send_invoice_email", _job_id="inv-1", invoice_id=1)
    message = str(info.value)
    assert "\n" not in message
    assert "0 of the 1 replicas SCALR_QUEUE_MIN_REPLICAS asks for have the job after 0.1s" in message
    assert isinstance(info.value, QueueUnavailableError), "except QueueUnavailableError still catches it"
    # written on the master: it runs unless the master dies first, and a retry cannot double it
    assert await redis.zscore("arq:queue:default", "inv-1") is not None
    with pytest.raises(NotReplicatedError):
        await scalr_queue.enqueue("send_invoice_email", _job_id="inv-1", invoice_id=1)
    assert await redis.zcard("arq:queue:default") == 1


async def test_enqueue_many_without_enough_replicas_raises_not_replicated(
    redis: Redis, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_MIN_REPLICAS="1", SCALR_QUEUE_MIN_REPLICAS_TIMEOUT="50ms")
    with pytest.raises(NotReplicatedError):
        await scalr_queue.enqueue_many([("send_invoice_email", {"invoice_id": i}) for i in range(3)])
    assert await redis.zcard("arq:queue:default") == 3


async def test_one_wait_covers_a_whole_batch_of_concurrent_enqueues(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MIN_REPLICAS="1", SCALR_QUEUE_MIN_REPLICAS_TIMEOUT="50ms")
    before = await wait_calls(redis)
    outcomes = await asyncio.gather(
        *(scalr_queue.enqueue("send_invoice_email", invoice_id=i) for i in range(50)), return_exceptions=True
    )
    assert all(isinstance(o, NotReplicatedError) for o in outcomes)
    assert await redis.zcard("arq:queue:default") == 50
    # the first call goes alone, the 49 that queued behind it go together: two pipelines, two WAITs
    assert await wait_calls(redis) - before == 2


async def test_min_replicas_zero_sends_no_wait(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MIN_REPLICAS="0")
    before = await wait_calls(redis)
    await scalr_queue.enqueue("send_invoice_email", invoice_id=1)
    await scalr_queue.enqueue_many([("send_invoice_email", {"invoice_id": i}) for i in range(3)])
    assert await wait_calls(redis) == before
    assert await redis.zcard("arq:queue:default") == 4


async def test_wait_longer_than_the_socket_timeout_still_reads_its_answer(
    redis: Redis, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_MIN_REPLICAS="1", SCALR_QUEUE_MIN_REPLICAS_TIMEOUT="1500ms", SCALR_QUEUE_REDIS_TIMEOUT="500ms")
    with pytest.raises(NotReplicatedError, match="after 1.5s"):
        await scalr_queue.enqueue("send_invoice_email", invoice_id=1)


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("SCALR_QUEUE_MIN_REPLICAS", "-1", "greater than or equal to 0"),
        ("SCALR_QUEUE_MIN_REPLICAS", "one", "whole number"),
        ("SCALR_QUEUE_MIN_REPLICAS_TIMEOUT", "0", "greater than zero"),
    ],
)
def test_bad_min_replicas_setting_is_one_line(
    set_env: Callable[..., None], var: str, value: str, expected: str
) -> None:
    set_env(**{var: value})
    with pytest.raises(ConfigurationError, match=expected):
        load_settings()


def test_min_replicas_defaults_to_off(set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MIN_REPLICAS=None)
    assert load_settings().min_replicas == 0
