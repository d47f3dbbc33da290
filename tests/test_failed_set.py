"""The failed set: full records kept per queue, inspectable and re-drivable from Python and the CLI."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobFailedError, JobNotFoundError, JobStatus
from tests.support import run_cli, running_worker, wait_until

CALLS: list[int] = []


async def charge(ctx: dict[str, Any], order_id: int) -> str:
    CALLS.append(ctx["job_try"])
    if ctx.get("fixed"):
        return f"charged {order_id}"
    raise RuntimeError(f"gateway refused order {order_id}")


async def test_failed_job_keeps_everything_needed_to_understand_it(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="2")
    before = datetime.now(UTC)
    async with running_worker([charge], queue="billing"):
        job = await scalr_queue.enqueue("charge", order_id=7, _queue_name="billing")
        with pytest.raises(JobFailedError):
            await job.result(timeout=5)
    failed = await scalr_queue.get_client().failed.get(job.job_id, "billing")
    assert (failed.job_id, failed.task, failed.kwargs, failed.queue, failed.tries) == (
        job.job_id,
        "charge",
        {"order_id": 7},
        "billing",
        2,
    )
    assert failed.error_type == "RuntimeError" and failed.error_message == "gateway refused order 7"
    assert "Traceback" in failed.traceback and "raise RuntimeError" in failed.traceback
    assert failed.enqueued_at and failed.failed_at and before <= failed.enqueued_at <= failed.failed_at
    assert await redis.ttl("scalr:failed:billing") == -1, "the failed set is kept until purged"
    assert await job.status() is JobStatus.FAILED
    info = await job.info()
    assert info.status is JobStatus.FAILED and info.error and info.error["type"] == "RuntimeError"
    assert await scalr_queue.get_client().failed.count("default") == 0


async def test_retry_runs_the_job_again_with_a_fresh_try_count(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="2")
    CALLS.clear()
    failed_set = scalr_queue.get_client().failed
    async with running_worker([charge]) as worker:
        job = await scalr_queue.enqueue("charge", order_id=8)
        with pytest.raises(JobFailedError):
            await job.result(timeout=5)
        worker.ctx["fixed"] = True
        again = await failed_set.retry(job.job_id)
        assert await again.result(timeout=5) == "charged 8"
    assert CALLS == [1, 2, 1]
    assert await failed_set.count() == 0
    with pytest.raises(JobNotFoundError):
        await failed_set.retry(job.job_id)


async def test_failed_set_cap_drops_the_oldest_with_a_warning(
    redis: Redis, set_env: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="1", SCALR_QUEUE_FAILED_MAX="3")
    async with running_worker([charge]):
        jobs = []
        for i in range(5):
            job = await scalr_queue.enqueue("charge", order_id=i)
            with pytest.raises(JobFailedError), caplog.at_level(logging.WARNING):
                await job.result(timeout=5)
            jobs.append(job.job_id)
    kept = [j.job_id for j in await scalr_queue.get_client().failed.list()]
    assert kept == list(reversed(jobs[2:]))
    assert "over SCALR_QUEUE_FAILED_MAX=3: dropped the 1 oldest" in caplog.text
    assert await redis.hlen("scalr:failed-jobs:default") == 3


async def test_cli_failed_list_show_retry_purge(redis: Redis, redis_url: str, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="1")
    async with running_worker([charge]):
        ids = []
        for i in range(3):
            job = await scalr_queue.enqueue("charge", order_id=i)
            with pytest.raises(JobFailedError):
                await job.result(timeout=5)
            ids.append(job.job_id)
    listing = run_cli("failed", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert [r["job_id"] for r in rows] == list(reversed(ids)) and rows[0]["error_type"] == "RuntimeError"
    text = run_cli("failed", "list")
    assert f"{ids[0]}" in text.stdout and "RuntimeError: gateway refused order 0" in text.stdout
    show = run_cli("failed", "show", ids[0])
    assert "traceback:" in show.stdout and "kwargs: {'order_id': 0}" in show.stdout
    retried = run_cli("failed", "retry", ids[0], "--json")
    assert json.loads(retried.stdout) == {"retried": ids[0]}
    assert await redis.zscore("arq:queue:default", ids[0]) is not None
    assert run_cli("failed", "retry", "--all").stdout.strip() == "retried 2 failed job(s)"
    assert await redis.zcard("arq:queue:default") == 3
    assert run_cli("failed", "purge", "--all").stdout.strip() == "purged 0 failed job(s)"
    missing = run_cli("failed", "show", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "scalr-queue: error: job 'nope' is not in the failed set of queue 'default'"


async def test_cli_stats_counts_ready_scheduled_running_failed(redis: Redis) -> None:
    await scalr_queue.enqueue("a")
    await scalr_queue.enqueue("a", _defer_by=600)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    # a running job: in the leases set, its lease marker alive
    await redis.zadd("scalr:leases:default", {"running-1": now_ms + 20_000})
    await redis.set("arq:in-progress:running-1", "w", px=20_000)
    # a dead worker's job: its lease ran out, so it is ready to run again
    await redis.zadd("scalr:leases:default", {"orphan-1": now_ms - 1000})
    await redis.zadd("scalr:failed:default", {"f1": 1})
    result = run_cli("stats", "--json")
    assert json.loads(result.stdout) == {
        "queue": "default",
        "ready": 2,
        "scheduled": 1,
        "in_progress": 1,
        "failed": 1,
        "workers": 0,
        "paused": False,
        "held": 0,
        "parked": 0,
    }
    assert run_cli("stats").stdout.strip() == ("queue default: ready=2 scheduled=1 in_progress=1 failed=1 workers=0")


async def test_every_key_a_finished_job_leaves_behind_expires(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="1")

    async def ok(ctx: dict[str, Any]) -> int:
        return 1

    async with running_worker([ok, charge]):
        done = await scalr_queue.enqueue("ok")
        bad = await scalr_queue.enqueue("charge", order_id=1)
        await done.result(timeout=5)
        with pytest.raises(JobFailedError):
            await bad.result(timeout=5)
        await wait_until(lambda: redis.exists("scalr:workers:default"), what="registry")
        keys = sorted(k.decode() for k in await redis.keys("*"))
        permanent = {"scalr:failed:default", "scalr:failed-jobs:default", "scalr:wake:default"}
        for key in keys:
            if key not in permanent:
                assert await redis.pttl(key) > 0, f"{key} has no TTL"
    assert not await redis.exists("arq:queue:default", f"arq:job:{done.job_id}", f"arq:retry:{done.job_id}")
