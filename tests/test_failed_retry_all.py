"""``FailedJobs.retry_all``: walks the whole failed set, reports what it could not re-drive, and
stops on a Redis that cannot take the work instead of reporting success."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import QueueUnavailableError
from scalr_queue.control._failed import failure_record
from scalr_queue.testing import RedisServer, free_port
from tests.support import run_cli, wait_until

ERROR = {"type": "RuntimeError", "message": "gateway refused", "traceback": ""}


async def add_failed(redis: Redis, job_ids: list[str], *, retriable: bool, score: int, queue: str = "default") -> None:
    """Write failed-set entries as the worker does, every one with the same failed-at score."""
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            job = {"f": "charge", "a": [], "k": {"order_id": job_id}, "et": score} if retriable else None
            record = failure_record(
                job_id=job_id, queue=queue, job=job, tries=1, reason="failed", error=ERROR, raw=b"\x00not json"
            )
            pipe.zadd(f"scalr:failed:{queue}", {job_id: score})
            pipe.hset(f"scalr:failed-jobs:{queue}", job_id, record)
        await pipe.execute()


async def test_retry_all_reaches_old_jobs_behind_500_newer_ones_it_cannot_retry(redis: Redis) -> None:
    old = [f"old-{i}" for i in range(120)]
    unparseable = [f"bad-{i}" for i in range(520)]
    await add_failed(redis, old, retriable=True, score=1_000)
    await add_failed(redis, unparseable, retriable=False, score=2_000)

    report = await scalr_queue.get_client().failed.retry_all()

    assert await redis.zcard("arq:queue:default") == len(old)
    assert await redis.zcard("scalr:failed:default") == len(unparseable)
    assert sorted(report.retried) == sorted(old)
    assert set(report.not_retried) == set(unparseable)
    assert set(report.not_retried.values()) == {"no valid payload to run again; purge it instead"}


async def test_retry_all_in_small_batches_skips_nothing_as_retried_entries_leave_the_set(redis: Redis) -> None:
    # equal scores straddle every batch boundary; retried entries vanish while the walk goes on
    good = [f"good-{i:03}" for i in range(50)]
    bad = [f"bad-{i:03}" for i in range(25)]
    for n, chunk in enumerate(range(0, 50, 10)):
        await add_failed(redis, good[chunk : chunk + 10], retriable=True, score=1_000 + n)
        await add_failed(redis, bad[chunk // 2 : chunk // 2 + 5], retriable=False, score=1_000 + n)
    await redis.set("arq:job:good-007", b"{}")  # queued again by someone else meanwhile

    report = await scalr_queue.get_client().failed.retry_all(batch_size=4)

    assert sorted(report.retried) == [j for j in good if j != "good-007"]
    assert report.not_retried["good-007"] == "queued or running again already"
    assert set(report.not_retried) == {*bad, "good-007"}
    assert await redis.zcard("scalr:failed:default") == len(bad) + 1


async def test_retry_all_of_an_empty_failed_set_reports_nothing(redis: Redis) -> None:
    report = await scalr_queue.get_client().failed.retry_all()
    assert (report.retried, report.not_retried) == ([], {})


async def test_retry_all_raises_when_redis_refuses_writes_instead_of_reporting_success(redis: Redis) -> None:
    await add_failed(redis, [f"job-{i}" for i in range(30)], retriable=True, score=1_000)
    used = int((await redis.info("memory"))["used_memory"])
    await redis.config_set("maxmemory", used)
    await redis.config_set("maxmemory-policy", "noeviction")
    try:
        with pytest.raises(QueueUnavailableError, match="out of memory"):
            await scalr_queue.get_client().failed.retry_all()
    finally:
        await redis.config_set("maxmemory", 0)
    assert await redis.zcard("scalr:failed:default") == 30, "nothing was lost from the failed set"


async def test_retry_all_stops_with_queue_unavailable_when_redis_goes_away_midway(
    set_env: Callable[..., None],
) -> None:
    server = RedisServer().start()
    try:
        set_env(REDIS_URL=server.url, SCALR_QUEUE_REDIS_TIMEOUT="2s")
        raw: Redis = Redis.from_url(server.url)
        ids = [f"job-{i:05}" for i in range(4000)]
        for n, start in enumerate(range(0, len(ids), 500)):
            await add_failed(raw, ids[start : start + 500], retriable=True, score=1_000 + n)
        walk = asyncio.create_task(scalr_queue.get_client().failed.retry_all())
        await wait_until(lambda: raw.zcard("arq:queue:default"), timeout=20, what="the walk to start")
        assert server.process is not None
        assert not walk.done(), "the walk finished before Redis went away; give it more entries"
        server.process.kill()  # by its PID: this test's own redis-server, gone mid-walk
        server.process.wait(10)
        await raw.aclose()
        with pytest.raises(QueueUnavailableError, match="cannot connect to Redis|Redis did not answer"):
            await asyncio.wait_for(walk, 30)
    finally:
        await scalr_queue.close()
        server.close()


async def test_cli_retry_all_names_the_jobs_it_left_and_why(redis: Redis) -> None:
    await add_failed(redis, ["good-1", "good-2"], retriable=True, score=1_000)
    await add_failed(redis, [f"bad-{i:02}" for i in range(25)], retriable=False, score=2_000)
    text = run_cli("failed", "retry", "--all")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[:3] == [
        "retried 2 failed job(s)",
        "not retried 25 (still in the failed set):",
        "  bad-00: no valid payload to run again; purge it instead",
    ]
    assert len(lines) == 2 + 20 + 1 and lines[-1] == "  ... and 5 more (scalr-queue failed list)"
    as_json = json.loads(run_cli("failed", "retry", "--all", "--json").stdout)
    assert as_json["retried"] == [] and len(as_json["not_retried"]) == 25


async def test_cli_retry_all_exits_1_with_one_line_when_redis_is_down(set_env: Callable[..., None]) -> None:
    set_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    result = run_cli("failed", "retry", "--all")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("scalr-queue: error: list failed jobs failed: cannot connect to Redis")
    assert len(result.stderr.splitlines()) == 1
