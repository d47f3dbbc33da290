"""JSON, not pickle: typed round trips, readable records, and foreign payloads never executed."""

from __future__ import annotations

import enum
import pickle
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from arq.jobs import Job as ArqJob
from arq.jobs import JobStatus as ArqJobStatus
from pydantic import BaseModel
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobFailedError, JobStatus
from scalr_queue._codec import job_payload, loads
from tests.support import running_worker, wait_until


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


class Customer(BaseModel):
    id: int
    name: str
    since: date


SEEN: dict[str, Any] = {}


async def typed(
    ctx: dict[str, Any],
    when: datetime,
    day: date,
    ref: uuid.UUID,
    amount: Decimal,
    tier: Tier,
    customer: Customer,
    wait: timedelta,
    tags: set[str],
) -> Customer:
    SEEN.update(when=when, day=day, ref=ref, amount=amount, tier=tier, customer=customer, wait=wait, tags=tags)
    return customer.model_copy(update={"name": customer.name.upper()})


async def test_rich_types_round_trip_through_annotations(redis: Redis) -> None:
    values = dict(
        when=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        day=date(2026, 11, 25),
        ref=uuid.uuid4(),
        amount=Decimal("12.30"),
        tier=Tier.GOLD,
        customer=Customer(id=1, name="ada", since=date(2020, 1, 2)),
        wait=timedelta(seconds=90),
        tags={"a", "b"},
    )
    async with running_worker([typed]):
        job = await scalr_queue.enqueue(typed, **values)
        result = await job.result(timeout=5)
    assert values == SEEN
    assert isinstance(SEEN["amount"], Decimal) and str(SEEN["amount"]) == "12.30"
    # the caller passed the function, so the result comes back as the annotated model
    assert result == Customer(id=1, name="ADA", since=date(2020, 1, 2))
    # a process that does not know the task gets the documented JSON form
    other = scalr_queue.QueueClient()
    plain = await other.job(job.job_id).result()
    await other.close()
    assert plain == {"id": 1, "name": "ADA", "since": "2020-01-02"}


async def test_job_record_is_readable_json_in_redis(redis: Redis) -> None:
    job = await scalr_queue.enqueue("report", day=date(2026, 1, 2), amount=Decimal("1.10"), tier=Tier.SILVER)
    raw = await redis.get(f"arq:job:{job.job_id}")
    assert raw.startswith(b"{")
    assert orjson.loads(raw)["k"] == {"day": "2026-01-02", "amount": "1.10", "tier": "silver"}


async def boom(ctx: dict[str, Any]) -> None:
    raise scalr_queue.Fail("invoice 9 does not exist")


async def test_exceptions_are_stored_as_type_message_and_traceback(redis: Redis) -> None:
    async with running_worker([boom]):
        job = await scalr_queue.enqueue("boom")
        with pytest.raises(JobFailedError) as info:
            await job.result(timeout=5)
    err = info.value
    assert err.error_type == "scalr_queue._errors.Fail"
    assert err.message == "invoice 9 does not exist"
    assert "raise scalr_queue.Fail" in err.traceback
    stored = loads(await redis.get(f"arq:result:{job.job_id}"))
    assert stored["s"] is False and stored["r"]["type"] == "scalr_queue._errors.Fail"


EXECUTED: list[str] = []


async def victim(ctx: dict[str, Any], **kwargs: Any) -> None:
    EXECUTED.append(ctx["job_id"])


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (EXECUTED.append, ("pickle executed!",))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (pickle.dumps({"t": 1, "f": "victim", "a": [], "k": {"x": Evil()}, "et": 1}), "is a Python pickle"),
        (b"\x00\xffgarbage", "payload is not valid JSON"),
        (b"[1, 2, 3]", "JSON but not an object"),
        (b'{"f": 1}', "no task name"),
        (b'{"f": "victim", "k": [1]}', "wrong shape"),
    ],
)
async def test_foreign_payload_is_never_executed_and_lands_in_failed_set(redis: Redis, raw: bytes, reason: str) -> None:
    EXECUTED.clear()
    await redis.set("arq:job:hostile", raw)
    await redis.zadd("arq:queue:default", {"hostile": 1})
    async with running_worker([victim]) as worker:
        await wait_until(lambda: redis.zscore("scalr:failed:default", "hostile"), what="failed entry")
        ok = await scalr_queue.enqueue("victim")
        await ok.result(timeout=5)  # the worker keeps running after refusing the payload
        failed = await scalr_queue.get_client().failed.get("hostile")
    assert [ok.job_id] == EXECUTED
    assert reason in failed.reason and failed.error_type == "BadPayload"
    assert not failed.retriable
    assert worker.jobs_failed == 1
    assert not await redis.exists("arq:job:hostile")


async def test_arqs_own_job_api_reads_our_queue(redis: Redis) -> None:
    job = await scalr_queue.enqueue("victim", _job_id="compat-1", n=1)
    arq_job = ArqJob("compat-1", redis, _queue_name="arq:queue:default", _deserializer=loads)
    assert await arq_job.status() == ArqJobStatus.queued
    info = await arq_job.info()
    assert info is not None and info.function == "victim" and info.kwargs == {"n": 1}
    async with running_worker([victim]):
        await job.result(timeout=5)
    assert await arq_job.status() == ArqJobStatus.complete
    assert await arq_job.result(timeout=1) is None


async def test_task_code_can_enqueue_through_ctx_redis_the_arq_way(redis: Redis) -> None:
    async def parent(ctx: dict[str, Any]) -> str:
        child = await ctx["redis"].enqueue_job("victim", _job_id="child-1", via="arq-api")
        assert child is not None
        return str(child.job_id)

    async with running_worker([parent, victim]):
        job = await scalr_queue.enqueue("parent")
        assert await job.result(timeout=5) == "child-1"
        await scalr_queue.get_job("child-1").result(timeout=5)
    assert await scalr_queue.get_job("child-1").status() is JobStatus.COMPLETE


@pytest.mark.parametrize(
    ("task", "args", "job_try", "et"),
    [
        ("send_invoice_email", None, None, 1_700_000_000_123),  # the usual enqueue: the cached head
        ('quo"te\\ and é', None, None, 0),
        ("send_invoice_email", [1, "two"], None, 5),
        ("send_invoice_email", None, 3, 5),
    ],
)
def test_job_record_bytes_are_the_same_with_or_without_the_cached_head(
    task: str, args: list[Any] | None, job_try: int | None, et: int
) -> None:
    record = job_payload(task, b'{"invoice_id":1}', et, args=args, job_try=job_try)
    full = {"t": job_try, "f": task, "a": args or [], "et": et, "k": {"invoice_id": 1}}
    assert record == orjson.dumps(full)
