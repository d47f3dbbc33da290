"""Priorities with a real worker process: higher first among due jobs, FIFO within one, scheduled
jobs wait for their time, retries keep their priority; default-priority jobs look exactly as arq's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from arq.jobs import Job as ArqJob
from arq.jobs import JobStatus as ArqStatus
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobOptions, JobOptionsError, JobStatus
from scalr_queue._priority import BAND_MS
from scalr_queue.observe import _depth
from scalr_queue.redis._keys import JOB_PREFIX, queue_key
from tests.support import LoggedWorker, run_cli, wait_until

MODULE = """
import asyncio, time

async def step(ctx, name: str, pause: float = 0.0) -> None:
    await ctx["redis"].rpush("ran", f"{name}:{ctx['job_try']}:{time.time()}")
    await asyncio.sleep(pause)

async def flaky(ctx, name: str) -> None:
    await ctx["redis"].rpush("ran", f"{name}:{ctx['job_try']}:{time.time()}")
    if ctx["job_try"] == 1:
        raise RuntimeError("first try fails")

tasks = [step, flaky]
"""


async def ran(redis: Redis) -> list[tuple[str, int, float]]:
    rows = [r.decode().split(":") for r in await redis.lrange("ran", 0, -1)]
    return [(name, int(attempt), float(at)) for name, attempt, at in rows]


async def _ran_count(redis: Redis, n: int) -> bool:
    return await redis.llen("ran") >= n


async def _a_worker() -> bool:
    return len(await scalr_queue.get_client().workers()) >= 1


async def test_higher_priority_starts_first_and_fifo_within_a_priority(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    plan = [("a", 5), ("b", 1), ("c", 9), ("d", 5), ("e", 9), ("f", 1), ("g", 7), ("h", 5), ("i", 0)]
    for name, priority in plan:
        await scalr_queue.enqueue("step", name=name, _priority=priority)
        await asyncio.sleep(0.003)  # distinct due ms: FIFO is by due time, as in arq
    worker = LoggedWorker("jobs_mod", worker_module(MODULE), "--concurrency", "1")
    try:
        await wait_until(lambda: _ran_count(redis, len(plan)), timeout=20, what="every job")
    finally:
        assert worker.stop() == 0, worker.log()
    order = [name for name, _, _ in await ran(redis)]
    # stable sort: by priority, highest first, enqueue order kept within one priority
    assert order == [name for name, _ in sorted(plan, key=lambda p: -p[1])] == list("cegadhbfi")


async def test_a_scheduled_job_takes_its_priority_when_due_and_does_not_run_early(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    backlog = 40  # 40 x 0.05 s of default-priority work, ready at once
    worker = LoggedWorker("jobs_mod", worker_module(MODULE), "--concurrency", "1")
    try:
        await wait_until(_a_worker, timeout=15, what="the worker")  # running already: nothing is due early by accident
        due = time.time() + 1.0
        urgent = await JobOptions(defer_by=1.0, priority=9).enqueue("step", name="urgent")
        for n in range(backlog):
            await scalr_queue.enqueue("step", name=f"b{n}", pause=0.05)
        await scalr_queue.enqueue("step", name="low", _priority=0)
        assert await urgent.status() is JobStatus.DEFERRED
        await wait_until(lambda: _ran_count(redis, backlog + 2), timeout=30, what="every job")
    finally:
        assert worker.stop() == 0, worker.log()
    rows = await ran(redis)
    names = [name for name, _, _ in rows]
    at = {name: when for name, _, when in rows}
    assert at["urgent"] >= due - 0.005, "a high priority does not make a scheduled job run early"
    assert names[-1] == "low", "priority 0 waits for every ready job of a higher priority"
    behind = len(names) - 1 - names.index("urgent") - 1
    assert behind >= 10, f"once due, it went ahead of the backlog still waiting ({names})"
    assert (await urgent.info()).priority == 9


async def test_a_retry_keeps_its_priority(redis: Redis, worker_module: Callable[..., Path]) -> None:
    backlog = 20
    job = await scalr_queue.enqueue("flaky", name="hi", _priority=8)
    for n in range(backlog):
        await scalr_queue.enqueue("step", name=f"b{n}", pause=0.05)
    worker = LoggedWorker("jobs_mod", worker_module(MODULE), "--concurrency", "1")
    try:
        await wait_until(lambda: _ran_count(redis, backlog + 2), timeout=30, what="every job")
    finally:
        assert worker.stop() == 0, worker.log()
    tries = [(name, attempt) for name, attempt, _ in await ran(redis)]
    assert tries[0] == ("hi", 1)
    # the retry waits out its backoff (50-400 ms here) and then goes ahead of the default backlog
    assert tries.index(("hi", 2)) <= 10, tries
    info = await job.info()
    assert (info.status, info.tries, info.priority) == (JobStatus.COMPLETE, 2, 8)


async def test_default_priority_jobs_keep_arqs_exact_scores_and_arq_reads_them(redis: Redis) -> None:
    before = int(time.time() * 1000)
    now_job = await scalr_queue.enqueue("step", name="x")
    later = await scalr_queue.enqueue("step", name="y", _defer_by=60)
    after = int(time.time() * 1000)
    score = await redis.zscore(queue_key("default"), now_job.job_id)
    assert score is not None and before <= score <= after, "score = due ms, as arq writes it"
    later_score = await redis.zscore(queue_key("default"), later.job_id)
    assert later_score is not None and before + 60_000 <= later_score <= after + 60_000
    assert b'"p"' not in (await redis.get(JOB_PREFIX + now_job.job_id) or b""), "no priority field by default"
    arq = {j.job_id: ArqJob(j.job_id, redis, _queue_name=queue_key("default")) for j in (now_job, later)}
    assert await arq[now_job.job_id].status() is ArqStatus.queued
    assert await arq[later.job_id].status() is ArqStatus.deferred
    info = await now_job.info()
    assert (info.priority, info.status) == (5, JobStatus.QUEUED)


async def test_stats_depth_and_info_read_banded_scores_as_due_times(redis: Redis) -> None:
    start = time.time()
    scheduled = [
        await scalr_queue.enqueue("step", name="s9", _priority=9, _defer_by=60),
        await scalr_queue.enqueue("step", name="s0", _priority=0, _defer_by=60),
    ]
    ready = [await scalr_queue.enqueue("step", name=f"r{p}", _priority=p) for p in (9, 0, 5)]
    scores = [await redis.zscore(queue_key("default"), j.job_id) for j in scheduled + ready]
    assert scores[0] is not None and scores[0] < 0 and scores[1] is not None and scores[1] >= BAND_MS
    stats = await scalr_queue.queue_stats()
    assert (stats.ready, stats.scheduled) == (3, 2)
    for job in scheduled:
        info = await job.info()
        assert info.status is JobStatus.DEFERRED
        assert info.scheduled_at is not None and 59 < info.scheduled_at.timestamp() - start < 62
    for job, priority in zip(ready, (9, 0, 5), strict=True):
        info = await job.info()
        assert (info.status, info.priority) == (JobStatus.QUEUED, priority)
        assert info.scheduled_at is not None and abs(info.scheduled_at.timestamp() - start) < 2
    depth = await _depth.report(redis, "default", "me", 10)
    assert depth is not None and (depth.ready, depth.scheduled) == (3, 2)
    assert 0 <= depth.oldest_ready_age < 5, "the oldest ready age is a due time's, not a band's"
    out = json.loads(run_cli("job", scheduled[0].job_id, "--json").stdout)
    assert (out["status"], out["priority"]) == ("deferred", 9)
    assert json.loads(run_cli("stats", "--json").stdout)["scheduled"] == 2


@pytest.mark.parametrize("bad", [10, -1, "7", 7.5, True, None])
async def test_a_bad_priority_is_rejected_at_enqueue_with_nothing_written(redis: Redis, bad: object) -> None:
    if bad is None:  # the typed spelling
        with pytest.raises(JobOptionsError, match=r"^priority must be from 0 to 9"):
            JobOptions(priority=12)
        return
    with pytest.raises(JobOptionsError, match=r"^_priority must be") as caught:
        await scalr_queue.enqueue("step", name="x", _priority=bad)
    message = str(caught.value)
    assert "\n" not in message and (repr(bad) in message or str(bad) in message)
    assert await redis.dbsize() == 0


def test_the_cli_enqueues_with_a_priority_and_refuses_a_bad_one(redis_url: str) -> None:
    bad = run_cli("enqueue", "step", "name=x", "--priority", "12")
    assert bad.returncode != 0 and "priority must be from 0 to 9" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
    good = run_cli("enqueue", "step", "name=x", "--priority", "8")
    assert good.returncode == 0, good.stderr
    out = json.loads(run_cli("job", good.stdout.strip(), "--json").stdout)
    assert (out["status"], out["priority"]) == ("queued", 8)
