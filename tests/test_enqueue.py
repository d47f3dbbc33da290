"""enqueue: arq's key layout, JSON payloads, options, idempotent ids, batches, and Redis down."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobOptionsError, JobStatus, PayloadError, QueueUnavailableError
from scalr_queue.redis._server import free_port


async def test_queue_is_arqs_sorted_set_and_payload_is_readable_json(redis: Redis) -> None:
    job = await scalr_queue.enqueue("send_invoice_email", invoice_id=7)
    assert await redis.type("arq:queue:default") == b"zset"
    assert await redis.zscore("arq:queue:default", job.job_id) is not None
    payload = orjson.loads(await redis.get(f"arq:job:{job.job_id}"))
    assert payload["f"] == "send_invoice_email" and payload["k"] == {"invoice_id": 7}
    assert payload["a"] == [] and isinstance(payload["et"], int)
    assert await redis.ttl(f"arq:job:{job.job_id}") == -1, "a queued job must never expire silently"
    assert await job.status() is JobStatus.QUEUED


async def test_queue_name_option_uses_its_own_key(redis: Redis) -> None:
    job = await scalr_queue.enqueue("resize", _queue_name="bulk", size=3)
    assert job.queue == "bulk"
    assert await redis.zscore("arq:queue:bulk", job.job_id) is not None
    assert await redis.zcard("arq:queue:default") == 0


async def test_enqueue_accepts_the_task_function_itself(redis: Redis) -> None:
    async def send_invoice_email(ctx: dict[str, object], invoice_id: int) -> None: ...

    job = await scalr_queue.enqueue(send_invoice_email, invoice_id=1)
    assert job.task == "send_invoice_email"
    with pytest.raises(scalr_queue.TaskArgumentsError, match="missing required argument"):
        await scalr_queue.enqueue(send_invoice_email)


async def test_same_job_id_is_not_enqueued_twice_while_queued_running_or_result_kept(redis: Redis) -> None:
    first = await scalr_queue.enqueue("t", _job_id="invoice-42", x=1)
    again = await scalr_queue.enqueue("t", _job_id="invoice-42", x=2)
    assert first.created and not again.created and again.job_id == "invoice-42"
    assert orjson.loads(await redis.get("arq:job:invoice-42"))["k"] == {"x": 1}
    # running: the payload is still there while a worker holds the lease
    await redis.set("arq:in-progress:invoice-42", "w")
    assert not (await scalr_queue.enqueue("t", _job_id="invoice-42")).created
    # result kept: the job is gone from the queue but its result is still there
    await redis.delete("arq:job:invoice-42", "arq:in-progress:invoice-42")
    await redis.zrem("arq:queue:default", "invoice-42")
    await redis.set("arq:result:invoice-42", orjson.dumps({"s": True, "r": 1, "f": "t"}), px=60_000)
    assert not (await scalr_queue.enqueue("t", _job_id="invoice-42")).created
    assert await redis.zcard("arq:queue:default") == 0


async def test_defer_by_and_defer_until_set_the_score(redis: Redis) -> None:
    before = time.time() * 1000
    job = await scalr_queue.enqueue("t", _defer_by=timedelta(minutes=5))
    score = await redis.zscore("arq:queue:default", job.job_id)
    assert before + 299_000 < score < before + 301_000 + 1000
    assert await job.status() is JobStatus.DEFERRED
    when = datetime.now(UTC) + timedelta(hours=1)
    job2 = await scalr_queue.enqueue("t", _defer_until=when)
    assert abs(await redis.zscore("arq:queue:default", job2.job_id) - when.timestamp() * 1000) < 2
    past = await scalr_queue.enqueue("t", _defer_until=datetime.now(UTC) - timedelta(days=1))
    assert await past.status() is JobStatus.QUEUED, "a time in the past means: due now"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"_job_id": ""}, "_job_id must be a non-empty string"),
        ({"_job_id": "has space"}, "whitespace or control characters"),
        ({"_job_id": "tab\there"}, "whitespace or control characters"),
        ({"_job_id": "x" * 300}, "at most 256"),
        ({"_queue_name": "no spaces"}, "_queue_name 'no spaces' is not valid"),
        ({"_defer_by": -1}, "finite number of seconds >= 0"),
        ({"_defer_by": math.inf}, "finite number of seconds >= 0"),
        ({"_defer_by": "soon"}, "seconds (a number) or a timedelta"),
        ({"_defer_until": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"_defer_by": 1, "_defer_until": datetime.now(UTC)}, "not both"),
        ({"_expires": 0}, "greater than zero"),
        ({"_defer": 5}, "unknown enqueue option '_defer' (did you mean '_defer_by'?)"),
    ],
)
async def test_bad_options_fail_at_enqueue_with_nothing_written(
    redis: Redis, options: dict[str, object], message: str
) -> None:
    with pytest.raises(JobOptionsError) as info:
        await scalr_queue.enqueue("t", **options)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert await redis.dbsize() == 0


async def test_odd_but_valid_job_ids_work(redis: Redis) -> None:
    for job_id in ("order:42/refund", "ünïcode-id", "a" * 256, "x@y.z+1=2"):
        job = await scalr_queue.enqueue("t", _job_id=job_id)
        assert job.created and await redis.exists(f"arq:job:{job_id}")


async def test_very_long_task_name_is_refused(redis: Redis) -> None:
    with pytest.raises(scalr_queue.EnqueueError, match="names are 1-200 printable characters"):
        await scalr_queue.enqueue("x" * 5000)
    assert await redis.dbsize() == 0


class Opaque:
    pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"blob": b"\x00\x01"}, "argument 'blob' of task 't' cannot be sent as JSON: bytes have no JSON form"),
        ({"obj": Opaque()}, "argument 'obj' of task 't' cannot be sent as JSON: Opaque has no JSON form"),
        ({"ratio": float("nan")}, "argument 'ratio' of task 't' cannot be sent as JSON: NaN and Infinity"),
        ({"n": 2**70}, "argument 'n' of task 't' cannot be sent as JSON"),
        ({"nested": {"deep": [1, {2, 3}, Opaque()]}}, "argument 'nested'"),
    ],
)
async def test_value_json_cannot_carry_fails_at_enqueue_naming_the_argument(
    redis: Redis, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(PayloadError) as info:
        await scalr_queue.enqueue("t", ok=1, **kwargs)
    assert message in str(info.value)
    assert await redis.dbsize() == 0


async def test_payload_over_the_size_cap_is_refused(redis: Redis, set_env: Callable[..., None]) -> None:
    with pytest.raises(PayloadError, match="over the SCALR_QUEUE_MAX_PAYLOAD cap of 1048576 bytes"):
        await scalr_queue.enqueue("t", text="x" * (1024 * 1024))
    set_env(SCALR_QUEUE_MAX_PAYLOAD="2MiB")
    await scalr_queue.close()
    assert (await scalr_queue.enqueue("t", text="x" * (1024 * 1024))).created
    assert await redis.zcard("arq:queue:default") == 1


async def test_enqueue_many_writes_a_batch_in_one_pipeline(redis: Redis) -> None:
    jobs = await scalr_queue.enqueue_many([("t", {"i": i}) for i in range(500)] + [("t", {"_job_id": "fixed"})])
    assert len(jobs) == 501 and all(j.created for j in jobs)
    assert await redis.zcard("arq:queue:default") == 501
    again = await scalr_queue.enqueue_many([("t", {"_job_id": "fixed"})])
    assert not again[0].created


async def test_enqueue_many_rejects_the_whole_batch_on_one_bad_call(redis: Redis) -> None:
    with pytest.raises(PayloadError, match="argument 'bad'"):
        await scalr_queue.enqueue_many([("t", {"i": 1}), ("t", {"bad": b"x"})])
    assert await redis.dbsize() == 0


async def test_enqueue_with_redis_down_fails_fast_and_clearly(set_env: Callable[..., None]) -> None:
    set_env(REDIS_URL=f"redis://app:supersecret@127.0.0.1:{free_port()}/0")
    start = time.monotonic()
    with pytest.raises(QueueUnavailableError) as info:
        await scalr_queue.enqueue("t", x=1)
    assert time.monotonic() - start < 2.5
    message = str(info.value)
    assert "enqueue 't' failed: cannot connect to Redis" in message
    assert "supersecret" not in message and "app:***@127.0.0.1" in message
    await scalr_queue.close()


async def test_enqueue_to_a_redis_that_never_answers_gives_up_within_the_timeout(
    set_env: Callable[..., None],
) -> None:
    # a loopback socket that accepts connections but never replies: a hung Redis
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        set_env(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0", SCALR_QUEUE_REDIS_TIMEOUT="300ms")
        start = time.monotonic()
        with pytest.raises(QueueUnavailableError, match="did not answer within 0.3s"):
            await scalr_queue.enqueue("t")
        assert time.monotonic() - start < 1.5
        await scalr_queue.close()


async def test_wrong_password_is_a_clear_error(
    redis_server: object, set_env: Callable[..., None], redis: Redis
) -> None:
    await redis.execute_command("ACL", "SETUSER", "app", "on", ">rightpass", "~*", "&*", "+@all")
    port = redis_server.port  # type: ignore[attr-defined]
    set_env(REDIS_URL=f"redis://app:wrongpass@127.0.0.1:{port}/0")
    with pytest.raises(QueueUnavailableError, match="Redis refused the credentials") as info:
        await scalr_queue.enqueue("t")
    assert "wrongpass" not in str(info.value)
    await scalr_queue.close()
    set_env(REDIS_URL=f"redis://app:rightpass@127.0.0.1:{port}/0")
    assert (await scalr_queue.enqueue("t")).created
    await redis.execute_command("ACL", "DELUSER", "app")


async def test_concurrent_enqueues_share_round_trips_and_stay_exact(redis: Redis) -> None:
    await redis.config_resetstat()
    calls = [scalr_queue.enqueue("t", i=i) for i in range(1500)]
    calls += [scalr_queue.enqueue("t", _job_id="same-id", i=-1) for _ in range(20)]
    jobs = await asyncio.gather(*calls)
    assert await redis.zcard("arq:queue:default") == 1501
    assert sum(1 for j in jobs if j.job_id == "same-id" and j.created) == 1
    assert all(j.created for j in jobs[:1500])
    stats = await redis.info("stats")
    # per job: EVALSHA + SET + ZADD + LLEN inside it (LPUSH only when the wake list is empty); one HGETALL
    assert stats["total_commands_processed"] <= 1521 * 4 + 30, "no per-job extras"
    # a single enqueue is still sent alone, at once
    assert (await scalr_queue.enqueue("t", i=9999)).created


async def test_enqueues_waiting_behind_a_failed_send_fail_too_and_write_nothing(
    set_env: Callable[..., None],
) -> None:
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        set_env(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0", SCALR_QUEUE_REDIS_TIMEOUT="300ms")

        async def t(ctx: dict[str, object], i: int) -> None: ...

        start = time.monotonic()  # passing the function skips the registry read: straight to the sender
        results = await asyncio.gather(*[scalr_queue.enqueue(t, i=i) for i in range(50)], return_exceptions=True)
        assert all(isinstance(r, QueueUnavailableError) for r in results)
        assert time.monotonic() - start < 1.5
        await scalr_queue.close()


async def test_database_number_in_redis_url_is_used(redis_server: object, set_env: Callable[..., None]) -> None:
    port = redis_server.port  # type: ignore[attr-defined]
    set_env(REDIS_URL=f"redis://127.0.0.1:{port}/3")
    job = await scalr_queue.enqueue("t", i=1)
    db3 = Redis.from_url(f"redis://127.0.0.1:{port}/3")
    db0 = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        assert await db3.zscore("arq:queue:default", job.job_id) is not None
        assert await db0.zscore("arq:queue:default", job.job_id) is None
    finally:
        await db3.flushdb()
        await db3.aclose()
        await db0.aclose()
        await scalr_queue.close()
