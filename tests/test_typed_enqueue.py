"""Enqueue by task function: the typed path runs like the by-name one, and JobOptions carry the options."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import orjson
import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import FailedJobs, Job, JobOptions, JobOptionsError, Settings, task
from scalr_queue.redis._connection import ScalrRedis
from tests.support import running_worker

T = TypeVar("T")


async def next_business_day(ctx: dict[str, Any], day: date, skip: int = 1) -> date:
    return day + timedelta(days=skip)


async def scale(ctx: dict[str, Any], *values: int, factor: int) -> list[int]:
    return [v * factor for v in values]


@task(name="invoice_pdf", max_tries=1)
async def render_invoice(ctx: dict[str, Any], invoice_id: int) -> str:
    return f"invoice-{invoice_id}.pdf"


async def test_task_function_result_comes_back_as_its_annotated_type(redis: Redis) -> None:
    async with running_worker([next_business_day]):
        job = await scalr_queue.enqueue(next_business_day, day=date(2026, 12, 4), skip=3)
        assert job.task == "next_business_day"
        # JSON stores the date as a string; the handle converts it back because it knows the function
        assert await job.result(timeout=5) == date(2026, 12, 7)


async def test_positional_arguments_of_a_task_function_reach_the_task(redis: Redis) -> None:
    job = await scalr_queue.enqueue(scale, 1, 2, 3, factor=10)
    payload = orjson.loads(await redis.get(f"arq:job:{job.job_id}"))  # read before a worker can take it
    assert payload["a"] == [1, 2, 3] and payload["k"] == {"factor": 10}
    async with running_worker([scale]):
        assert await job.result(timeout=5) == [10, 20, 30]


async def test_task_spec_enqueues_under_its_own_name(redis: Redis) -> None:
    async with running_worker([render_invoice]):
        job = await scalr_queue.enqueue(render_invoice, invoice_id=7)
        assert job.task == "invoice_pdf"
        assert await job.result(timeout=5) == "invoice-7.pdf"


async def test_job_options_set_id_queue_and_due_time(redis: Redis) -> None:
    before = time.time() * 1000
    options = JobOptions(job_id="invoice-42", queue_name="billing", defer_by=timedelta(minutes=5))
    job = await options.enqueue(render_invoice, invoice_id=42)
    assert (job.job_id, job.queue, job.created) == ("invoice-42", "billing", True)
    score = await redis.zscore("arq:queue:billing", "invoice-42")
    assert before + 299_000 < score < before + 301_000 + 1000
    again = await options.enqueue(render_invoice, invoice_id=43)
    assert not again.created, "the same job_id is not enqueued twice"
    assert orjson.loads(await redis.get("arq:job:invoice-42"))["k"] == {"invoice_id": 42}


async def test_job_options_on_a_client_and_by_name(redis: Redis) -> None:
    client = scalr_queue.get_client()
    expires = JobOptions(expires=60, defer_until=datetime.now(UTC) - timedelta(days=1))
    job = await client.enqueue_with(expires, "cleanup", older_than=30)
    payload = orjson.loads(await redis.get(f"arq:job:{job.job_id}"))
    assert payload["f"] == "cleanup" and payload["k"] == {"older_than": 30}
    assert await redis.pttl(f"arq:job:{job.job_id}") > 0, "a job with an expiry keeps a TTL on its key"
    assert await job.status() is scalr_queue.JobStatus.QUEUED, "a past defer_until means due now"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"job_id": ""}, "job_id must be a non-empty string, not ''"),
        ({"job_id": "a b"}, "job_id 'a b' contains whitespace"),
        ({"queue_name": "no spaces"}, "queue_name 'no spaces' is not valid"),
        ({"defer_by": -1}, "defer_by must be a finite number of seconds >= 0"),
        ({"defer_by": 1, "defer_until": datetime.now(UTC)}, "use either defer_by or defer_until, not both"),
        ({"defer_until": datetime(2030, 1, 1)}, "defer_until must be timezone-aware"),
        ({"expires": 0}, "expires must be greater than zero"),
        ({"job_try": 0}, "job_try must be a whole number >= 1"),
    ],
)
def test_bad_job_options_fail_when_built_naming_the_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(JobOptionsError) as info:
        JobOptions(**options)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


async def test_underscore_options_next_to_job_options_are_refused_with_nothing_written(redis: Redis) -> None:
    with pytest.raises(JobOptionsError, match="_job_id given next to JobOptions"):
        await JobOptions(queue_name="billing").enqueue("t", _job_id="x", n=1)
    assert await redis.dbsize() == 0


async def test_typed_call_still_checks_arguments_at_run_time(redis: Redis) -> None:
    bad: Any = {"day": "not a date"}
    with pytest.raises(scalr_queue.TaskArgumentsError, match="argument 'day' of task 'next_business_day'"):
        await scalr_queue.enqueue(next_business_day, **bad)
    assert await redis.dbsize() == 0


async def test_by_name_enqueue_takes_keyword_arguments_only(redis: Redis) -> None:
    positional: Any = scalr_queue.enqueue
    with pytest.raises(TypeError, match="by task name takes the task's arguments as keywords only"):
        await positional("t", 1)
    assert await redis.dbsize() == 0


class OnlyTheProtocol:
    """Exactly QueueAccess and nothing else: a Job or FailedJobs reaching for more fails here."""

    def __init__(self, settings: Settings) -> None:
        self._inner = scalr_queue.QueueClient(settings)
        self.settings = settings

    async def redis(self) -> ScalrRedis:
        return await self._inner.redis()

    async def run(self, awaitable: Awaitable[T], doing: str) -> T:
        return await self._inner.run(awaitable, doing)

    def convert_result(self, task: str | None, value: Any) -> Any:
        return value

    async def close(self) -> None:
        await self._inner.close()


async def test_job_and_failed_set_need_only_the_queue_access_protocol(redis: Redis) -> None:
    access = OnlyTheProtocol(scalr_queue.get_settings())
    try:
        async with running_worker([render_invoice]):
            enqueued = await scalr_queue.enqueue(render_invoice, invoice_id=1)
            job: Job[Any] = Job(enqueued.job_id, "default", access)
            assert await job.result(timeout=5) == "invoice-1.pdf"
            assert (await job.info()).status is scalr_queue.JobStatus.COMPLETE
        failed = FailedJobs(access)
        assert await failed.count() == 0 and await failed.list() == []
    finally:
        await access.close()
