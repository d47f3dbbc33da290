"""The read model: queues, pages of jobs by state, a job's every try, workers and their jobs.

Against a real Redis with a real in-process worker; large queues are written directly with a
pipeline so paging is exercised at sizes where reading a whole set would show.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import ConfigurationError, JobFailedError, JobNotFoundError
from scalr_queue._codec import job_payload
from scalr_queue.redis._keys import FAILED_PREFIX, JOB_PREFIX, queue_key, tries_key
from tests.support import running_worker, wait_until

SEEN: dict[str, int] = {}


async def flaky(ctx: dict[str, Any], n: int) -> int:
    """Fails its first try, then returns n * 2."""
    SEEN[ctx["job_id"]] = SEEN.get(ctx["job_id"], 0) + 1
    if ctx["job_try"] == 1:
        raise RuntimeError(f"first try of {n} fails")
    return n * 2


async def quick(ctx: dict[str, Any]) -> str:
    return "done"


async def broken(ctx: dict[str, Any]) -> None:
    raise ValueError("always broken")


async def slow(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(30)


def client() -> scalr_queue.QueueClient:
    return scalr_queue.get_client()


async def test_every_try_is_recorded_with_its_error_and_traceback(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="2")
    async with running_worker([flaky, broken]):
        ok = await scalr_queue.enqueue("flaky", n=21)
        bad = await scalr_queue.enqueue("broken")
        assert await ok.result(timeout=10) == 42
        with pytest.raises(JobFailedError):
            await bad.result(timeout=10)
    timeline = await client().job_timeline(ok.job_id)
    assert timeline.info.status.value == "complete"
    assert [(a.try_number, a.outcome) for a in timeline.attempts] == [(1, "retry"), (2, "complete")]
    first = timeline.attempts[0]
    assert first.error is not None and first.error["message"] == "first try of 21 fails"
    assert "RuntimeError" in first.error["traceback"]
    assert first.retry_at is not None and first.duration is not None and first.duration >= 0
    assert first.worker is not None and first.worker == timeline.attempts[1].worker
    assert timeline.events()[0][1] == "enqueued"
    assert 0 < await redis.pttl(tries_key(ok.job_id)) <= 3600 * 1000, "the history expires with the result"
    failed = await client().job_timeline(bad.job_id)
    assert [a.outcome for a in failed.attempts] == ["retry", "failed"]
    assert failed.to_json()["attempts"][1]["error"]["type"] == "ValueError"


async def test_a_job_done_on_its_first_try_shows_that_try_from_its_result(redis: Redis) -> None:
    async with running_worker([quick]) as worker:
        job = await scalr_queue.enqueue("quick")
        assert await job.result(timeout=10) == "done"
    assert not await redis.exists(tries_key(job.job_id)), "no try record on the common path"
    timeline = await client().job_timeline(job.job_id)
    [only] = timeline.attempts
    assert (only.try_number, only.outcome, only.worker) == (1, "complete", worker.worker_id)
    assert only.started_at is not None and only.duration is not None
    assert timeline.info.result == "done"


async def test_finished_jobs_are_listed_newest_first_by_end_state(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="1")
    async with running_worker([flaky, broken]):
        jobs = [await scalr_queue.enqueue("flaky", n=i, _job_try=2) for i in range(3)]
        for job in jobs:
            await job.result(timeout=10)
        bad = await scalr_queue.enqueue("broken")
        with pytest.raises(JobFailedError):
            await bad.result(timeout=10)
    later = await scalr_queue.enqueue("flaky", n=9, _defer_by=60)
    await later.cancel(reason="not needed")
    complete = await client().list_jobs(state="complete")
    assert {j.job_id for j in complete.jobs} == {j.job_id for j in jobs}
    ends = [j.at.timestamp() if j.at else 0.0 for j in complete.jobs]
    assert ends == sorted(ends, reverse=True)
    assert complete.next_cursor is None
    failed = await client().list_jobs(state="failed")
    assert [(j.job_id, j.task, j.error) for j in failed.jobs] == [(bad.job_id, "broken", "ValueError: always broken")]
    cancelled = await client().list_jobs(state="cancelled")
    assert [(j.job_id, j.task, j.kwargs) for j in cancelled.jobs] == [(later.job_id, "flaky", {"n": 9})]


async def test_finished_index_keeps_the_newest_up_to_its_cap(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_FINISHED_MAX="3")
    async with running_worker([flaky]):
        jobs = [await scalr_queue.enqueue("flaky", n=i, _job_try=2) for i in range(6)]
        for job in jobs:
            await job.result(timeout=10)
    key = "scalr:finished:default:complete"
    assert await redis.zcard(key) == 3
    assert 0 < await redis.pttl(key) <= 3600 * 1000


async def write_queue(redis: Redis, queue: str, count: int, score: int, task: str = "flaky") -> list[str]:
    """``count`` jobs written straight into Redis, all due at ``score`` (ties on purpose)."""
    ids = [f"job-{i:06d}" for i in range(count)]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.set(JOB_PREFIX + job_id, job_payload(task, b'{"n":1}', score))
        pipe.zadd(queue_key(queue), dict.fromkeys(ids, score))
        await pipe.execute()
    return ids


async def test_pages_walk_a_queue_of_equal_scores_without_skipping_or_repeating(redis: Redis) -> None:
    ids = await write_queue(redis, "big", 2500, 1_000)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await client().list_jobs("big", "ready", limit=1000, cursor=cursor)
        pages += 1
        assert page.scanned == len(page.jobs) <= 1000
        seen += [j.job_id for j in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids
    assert pages in (3, 4)


async def test_a_cursor_whose_job_left_carries_on_after_its_score(redis: Redis) -> None:
    await write_queue(redis, "moving", 10, 1_000)
    await redis.zadd(queue_key("moving"), {"late-1": 2_000, "late-2": 3_000})
    await redis.set(JOB_PREFIX + "late-1", job_payload("flaky", b"{}", 1))
    await redis.set(JOB_PREFIX + "late-2", job_payload("flaky", b"{}", 1))
    page = await client().list_jobs("moving", "ready", limit=11)
    assert page.jobs[-1].job_id == "late-1" and page.next_cursor is not None
    await redis.zrem(queue_key("moving"), "late-1")  # claimed meanwhile
    rest = await client().list_jobs("moving", "ready", limit=11, cursor=page.next_cursor)
    assert [j.job_id for j in rest.jobs] == ["late-2"]
    assert rest.next_cursor is None


async def test_task_filter_reads_a_bounded_number_of_rows_per_call(redis: Redis) -> None:
    await write_queue(redis, "mixed", 3000, 1_000, task="other")
    await redis.zadd(queue_key("mixed"), {"wanted": 5_000})
    await redis.set(JOB_PREFIX + "wanted", job_payload("flaky", b"{}", 1))
    page = await client().list_jobs("mixed", "ready", task="flaky", limit=5)
    assert page.jobs == [] and page.next_cursor is not None
    assert page.scanned == 1000, "one call reads at most 10 pages of 100 rows"
    found: list[str] = []
    cursor: str | None = page.next_cursor
    while cursor is not None:
        page = await client().list_jobs("mixed", "ready", task="flaky", limit=5, cursor=cursor)
        found += [j.job_id for j in page.jobs]
        cursor = page.next_cursor
    assert found == ["wanted"]


async def test_queues_counts_every_state_of_every_queue_found(redis: Redis) -> None:
    now = await redis.time()
    now_ms = now[0] * 1000
    await write_queue(redis, "mail", 3, now_ms - 5000)
    await redis.zadd(queue_key("mail"), {"future": now_ms + 600_000})
    await redis.zadd(FAILED_PREFIX + "only-failed", {"x": 1})
    await scalr_queue.pause("paused-q")
    queues = {q.queue: q for q in await client().list_queues()}
    assert set(queues) == {"default", "mail", "only-failed", "paused-q"}
    mail = queues["mail"]
    assert (mail.ready, mail.scheduled, mail.running, mail.held, mail.failed, mail.workers, mail.paused) == (
        3,
        1,
        0,
        0,
        0,
        0,
        False,
    )
    assert mail.oldest_ready_age is not None and 4.5 < mail.oldest_ready_age < 60
    assert queues["only-failed"].failed == 1 and queues["only-failed"].oldest_ready_age is None
    assert queues["paused-q"].paused
    assert [q.queue for q in await client().list_queues(["mail"])] == ["mail"]


async def test_workers_show_host_pid_concurrency_and_the_jobs_they_run(redis: Redis) -> None:
    async with running_worker([slow], concurrency=3) as worker:
        job = await scalr_queue.enqueue("slow")
        await wait_until(lambda: job.job_id in worker.tasks, what="job running")
        details = await client().worker_details(["default"])
        assert len(details) == 1
        d = details[0].to_json()
        assert (d["worker_id"], d["concurrency"], d["running_jobs"], d["pid"]) == (
            worker.worker_id,
            3,
            [job.job_id],
            os.getpid(),
        )
        assert d["last_heartbeat"] is not None and d["host"]
        running = await client().list_jobs(state="running")
        assert [(j.job_id, j.worker, j.task) for j in running.jobs] == [(job.job_id, worker.worker_id, "slow")]
        await job.cancel()


async def test_bad_state_limit_cursor_or_job_id_say_what_is_wrong(redis: Redis) -> None:
    with pytest.raises(ConfigurationError, match="state 'done' is not valid"):
        await client().list_jobs(state="done")
    with pytest.raises(ConfigurationError, match="limit 0 is not valid"):
        await client().list_jobs(limit=0)
    with pytest.raises(ConfigurationError, match="cursor 'nope' is not valid"):
        await client().list_jobs(cursor="nope")
    with pytest.raises(ConfigurationError, match="queue name"):
        await client().list_jobs("bad queue")
    with pytest.raises(JobNotFoundError, match="no job 'missing'"):
        await client().job_timeline("missing")


async def test_ready_and_scheduled_pages_go_band_by_band_highest_priority_first(redis: Redis) -> None:
    """Queue scores carry the priority band: listing decodes them and pages across the bands."""
    names = {}
    for n, (priority, defer) in enumerate([(5, 0), (9, 0), (0, 0), (5, 0), (9, 600), (2, 600)]):
        job = await scalr_queue.enqueue("quick", _priority=priority, _defer_by=defer or None, _job_id=f"j{n}")
        names[job.job_id] = (priority, defer)
    ready: list[str] = []
    cursor = None
    while True:  # pages of one job each: the cursor carries on into the next band
        page = await client().list_jobs(state="ready", limit=1, cursor=cursor)
        ready += [j.job_id for j in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert ready == ["j1", "j0", "j3", "j2"], "priority 9, then 5 (FIFO), then 0"
    scheduled = await client().list_jobs(state="scheduled", limit=10)
    assert [j.job_id for j in scheduled.jobs] == ["j4", "j5"]
    assert all(j.at is not None and j.at.year >= 2026 for j in scheduled.jobs), "due times, not banded scores"
    overview = {q.queue: q for q in await client().list_queues()}["default"]
    assert (overview.ready, overview.scheduled) == (4, 2)
    assert overview.oldest_ready_age is not None and overview.oldest_ready_age < 60
