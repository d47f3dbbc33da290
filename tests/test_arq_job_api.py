"""arq's own ``Job`` API reads jobs that scalr_queue enqueued and ran, given the queue key and
``scalr_queue.arq_deserializer``; without them it cannot, and what it cannot see is stated."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq.jobs import DeserializationError, Job, JobDef, JobResult, JobStatus, ResultNotFound
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import Fail, JobFailedError
from tests.support import running_worker, wait_until

QUEUE_KEY = "arq:queue:default"
GATE = asyncio.Event()  # binds to the loop of the one test that waits on it


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def held(ctx: dict[str, Any]) -> str:
    await GATE.wait()
    return "released"


async def refuse(ctx: dict[str, Any], invoice_id: int) -> None:
    raise Fail(f"invoice {invoice_id} does not exist")


def arq_job(job_id: str, redis: Redis) -> Job:
    return Job(job_id, redis, _queue_name=QUEUE_KEY, _deserializer=scalr_queue.arq_deserializer)


async def test_arq_reads_a_queued_and_a_deferred_job(redis: Redis) -> None:
    queued = await scalr_queue.enqueue("add", a=2, b=3)
    deferred = await scalr_queue.enqueue("add", a=1, b=1, _defer_by=60)

    assert await arq_job(queued.job_id, redis).status() is JobStatus.queued
    assert await arq_job(deferred.job_id, redis).status() is JobStatus.deferred
    info = await arq_job(queued.job_id, redis).info()
    assert isinstance(info, JobDef) and not isinstance(info, JobResult)
    assert (info.function, info.kwargs, info.args) == ("add", {"a": 2, "b": 3}, [])
    assert info.score is not None and info.enqueue_time.tzinfo is not None


async def test_without_the_queue_key_and_deserializer_arq_cannot_read_our_jobs(redis: Redis) -> None:
    job = await scalr_queue.enqueue("add", a=2, b=3)
    assert await Job(job.job_id, redis).status() is JobStatus.not_found  # arq's default key is arq:queue
    with pytest.raises(DeserializationError):  # arq decodes with pickle by default
        await Job(job.job_id, redis, _queue_name=QUEUE_KEY).info()


async def test_arq_reads_a_running_job_but_its_result_wait_stops_at_the_claim(redis: Redis) -> None:
    GATE.clear()
    async with running_worker([held]):
        job = await scalr_queue.enqueue("held")
        seen = arq_job(job.job_id, redis)
        await wait_until(lambda: _status_is(seen, JobStatus.in_progress), what="arq's status to read in_progress")
        running = await seen.info()
        assert isinstance(running, JobDef) and not isinstance(running, JobResult) and running.function == "held"
        with pytest.raises(ResultNotFound):  # the running job has left the queue for the leases set
            await seen.result(timeout=5, poll_delay=0.05)
        GATE.set()
        assert await job.result(timeout=5) == "released"
    assert await seen.status() is JobStatus.complete
    assert await seen.result(timeout=1) == "released"


async def test_arq_reads_a_completed_job_and_its_result(redis: Redis) -> None:
    async with running_worker([add]):
        job = await scalr_queue.enqueue("add", a=2, b=3)
        assert await job.result(timeout=5) == 5
    seen = arq_job(job.job_id, redis)
    assert await seen.status() is JobStatus.complete
    assert await seen.result(timeout=1) == 5
    info = await seen.result_info()
    assert info is not None and info.success is True
    assert (info.function, info.kwargs, info.job_try, info.queue_name, info.job_id) == (
        "add",
        {"a": 2, "b": 3},
        1,
        "default",
        job.job_id,
    )
    assert info.finish_time >= info.start_time >= info.enqueue_time


async def test_arq_reads_a_failed_job_as_complete_and_raises_its_error(redis: Redis) -> None:
    async with running_worker([refuse]):
        job = await scalr_queue.enqueue("refuse", invoice_id=7)
        with pytest.raises(JobFailedError):
            await job.result(timeout=5)
    seen = arq_job(job.job_id, redis)
    assert await seen.status() is JobStatus.complete  # arq has no failed state
    with pytest.raises(JobFailedError) as raised:
        await seen.result(timeout=1)
    assert raised.value.error_type == "scalr_queue._errors.Fail"
    assert raised.value.message == "invoice 7 does not exist" and raised.value.job_id == job.job_id
    info = await seen.result_info()
    assert info is not None and info.success is False and isinstance(info.result, JobFailedError)


def test_the_deserializer_refuses_what_is_not_a_json_object() -> None:
    with pytest.raises(ValueError):
        scalr_queue.arq_deserializer(b"\x80\x05garbage")
    with pytest.raises(ValueError, match="JSON object"):
        scalr_queue.arq_deserializer(b"[1, 2]")


async def _status_is(job: Job, status: JobStatus) -> bool:
    return await job.status() is status
