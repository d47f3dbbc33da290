"""The happy path end to end, in one process: enqueue by name, a worker runs it, a result comes back."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobStatus
from tests.support import running_worker

RAN: list[Any] = []


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    RAN.append((ctx["job_id"], ctx["job_try"]))
    return a + b


async def test_enqueued_job_runs_and_its_result_comes_back(redis: Redis) -> None:
    async with running_worker([add]):
        job = await scalr_queue.enqueue("add", a=2, b=3)
        assert await job.result(timeout=5) == 5
        assert await job.status() is JobStatus.COMPLETE
    assert RAN[-1] == (job.job_id, 1)
