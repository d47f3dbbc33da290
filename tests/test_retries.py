"""Retries as the platform page promises them: any exception, timeouts too, with backoff."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from arq.worker import Retry
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import Fail, JobFailedError, task
from scalr_queue._settings import load_settings
from scalr_queue.worker._retry import backoff_delay
from tests.support import running_worker

ATTEMPTS: list[tuple[int, float]] = []


async def flaky(ctx: dict[str, Any]) -> None:
    ATTEMPTS.append((ctx["job_try"], time.monotonic()))
    raise ValueError("smtp down")


async def test_any_exception_retries_with_exponential_backoff(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_RETRY_DELAY="100ms", SCALR_QUEUE_RETRY_MAX_DELAY="10s", SCALR_QUEUE_MAX_TRIES="5")
    ATTEMPTS.clear()
    async with running_worker([flaky]):
        job = await scalr_queue.enqueue("flaky")
        with pytest.raises(JobFailedError, match="smtp down"):
            await job.result(timeout=15)
    assert [t for t, _ in ATTEMPTS] == [1, 2, 3, 4, 5]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(ATTEMPTS)]
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4, 0.8], strict=True):
        assert expected * 0.85 <= gap <= expected * 1.1 + 0.15, (gaps, expected)
    failed = await scalr_queue.get_client().failed.get(job.job_id)
    assert failed.tries == 5 and failed.reason == "raised on its last attempt (5 of 5)"


def test_default_backoff_is_about_1_2_4_8_seconds_capped() -> None:
    settings = load_settings(retry_jitter=0)
    assert [backoff_delay(t, settings) for t in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    capped = load_settings(retry_jitter=0, retry_max_delay=3)
    assert backoff_delay(4, capped) == 3.0
    jittered = [backoff_delay(2, load_settings()) for _ in range(200)]
    assert 1.8 <= min(jittered) < max(jittered) <= 2.2


async def sleepy(ctx: dict[str, Any]) -> None:
    ATTEMPTS.append((ctx["job_try"], time.monotonic()))
    await asyncio.sleep(30)


async def test_timeout_cancels_and_retries_the_same_way(redis: Redis) -> None:
    ATTEMPTS.clear()
    async with running_worker([task(sleepy, timeout=0.2, max_tries=3)]):
        job = await scalr_queue.enqueue("sleepy")
        with pytest.raises(JobFailedError) as info:
            await job.result(timeout=10)
    assert [t for t, _ in ATTEMPTS] == [1, 2, 3]
    assert info.value.error_type == "TimeoutError" and "exceeded its 0.2s timeout" in info.value.message
    failed = await scalr_queue.get_client().failed.get(job.job_id)
    assert failed.reason == "timed out on its last attempt (3 of 3)"


class InvoiceMissing(Exception):
    pass


async def missing(ctx: dict[str, Any]) -> None:
    ATTEMPTS.append((ctx["job_try"], time.monotonic()))
    raise InvoiceMissing("invoice 9")


async def failing(ctx: dict[str, Any]) -> None:
    ATTEMPTS.append((ctx["job_try"], time.monotonic()))
    raise Fail("card declined for good")


@pytest.mark.parametrize(
    ("entry", "name", "reason"),
    [
        (task(missing, no_retry=(InvoiceMissing,)), "missing", "InvoiceMissing is in the task's no_retry list"),
        (failing, "failing", "Fail raised: not retried"),
    ],
)
async def test_fail_and_no_retry_go_straight_to_the_failed_set(
    redis: Redis, entry: Any, name: str, reason: str
) -> None:
    ATTEMPTS.clear()
    async with running_worker([entry]):
        job = await scalr_queue.enqueue(name)
        with pytest.raises(JobFailedError):
            await job.result(timeout=5)
    assert [t for t, _ in ATTEMPTS] == [1]
    assert (await scalr_queue.get_client().failed.get(job.job_id)).reason == reason


async def wants_retry(ctx: dict[str, Any]) -> str:
    ATTEMPTS.append((ctx["job_try"], time.monotonic()))
    if ctx["job_try"] < 3:
        raise Retry(defer=0.3)
    return "third time lucky"


async def test_arq_retry_with_defer_keeps_working(redis: Redis) -> None:
    ATTEMPTS.clear()
    async with running_worker([wants_retry]):
        job = await scalr_queue.enqueue("wants_retry")
        assert await job.result(timeout=10) == "third time lucky"
    assert [t for t, _ in ATTEMPTS] == [1, 2, 3]
    assert all(b - a >= 0.28 for (_, a), (_, b) in itertools.pairwise(ATTEMPTS))


async def test_per_task_max_tries_overrides_the_default(redis: Redis) -> None:
    ATTEMPTS.clear()
    async with running_worker([task(flaky, max_tries=2)]):
        job = await scalr_queue.enqueue("flaky")
        with pytest.raises(JobFailedError):
            await job.result(timeout=10)
    assert [t for t, _ in ATTEMPTS] == [1, 2]
