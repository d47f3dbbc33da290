"""Progress: a task reports through ctx["progress"]; writes are coalesced; readers see the last value."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobStatus
from scalr_queue.redis._keys import progress_key
from scalr_queue.worker._progress import ProgressReporter
from tests.support import run_cli, spawn_worker, wait_until

PROGRESS_MODULE = """
import asyncio

async def crawl(ctx, pages: int, pause: float) -> int:
    for page in range(1, pages + 1):
        await ctx["progress"](page, total=pages, message=f"page {page}")
        await asyncio.sleep(pause)
    return pages

async def halfway(ctx) -> None:
    await ctx["progress"](5, total=10, message="halfway")
    await ctx["redis"].set("halfway-reported", 1)
    await asyncio.sleep(3600)

async def silent(ctx) -> str:
    return "quiet"

tasks = [crawl, halfway, silent]
"""


@pytest.fixture
def worker_proc(worker_module: Callable[..., Path]) -> Iterator[subprocess.Popen[str]]:
    proc = spawn_worker("jobs_mod", worker_module(PROGRESS_MODULE))
    yield proc
    if proc.poll() is None:
        proc.terminate()
        proc.communicate(timeout=30)


async def test_a_running_jobs_progress_is_visible_in_info_and_the_cli(
    redis: Redis, worker_proc: subprocess.Popen[str]
) -> None:
    job = await scalr_queue.enqueue("halfway")
    await wait_until(lambda: redis.exists("halfway-reported"), what="progress reported")
    await wait_until(lambda: _has_progress(job), timeout=5, what="progress visible")
    info = await job.info()
    assert info.status is JobStatus.IN_PROGRESS
    assert info.progress is not None
    assert (info.progress["current"], info.progress["total"], info.progress["message"]) == (5, 10, "halfway")
    assert info.progress["at"] is not None
    cli = run_cli("job", job.job_id, "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["progress"]["message"] == "halfway"
    assert "progress: " in run_cli("job", job.job_id).stdout
    await job.cancel()
    await wait_until(lambda: _status_is(job, JobStatus.CANCELLED), timeout=5, what="cancelled")
    assert (await job.info()).progress is not None, "kept with the cancelled job"


async def _has_progress(job: scalr_queue.Job[object]) -> bool:
    return (await job.info()).progress is not None


async def _status_is(job: scalr_queue.Job[object], status: JobStatus) -> bool:
    return await job.status() is status


async def test_progress_writes_are_coalesced_and_the_final_value_always_lands(
    redis: Redis, worker_proc: subprocess.Popen[str]
) -> None:
    """200 reports in ~1 s: a handful of SETs reach Redis, and the last report is what readers see."""
    job = await scalr_queue.enqueue("crawl", pages=200, pause=0.005)
    await wait_until(lambda: _status_is(job, JobStatus.IN_PROGRESS), what="job start")
    before = await _sets(redis)
    assert await job.result(timeout=30) == 200
    writes = await _sets(redis) - before
    assert 1 <= writes <= 12, f"{writes} SETs for 200 reports"
    info = await job.info()
    assert info.progress is not None
    assert (info.progress["current"], info.progress["message"]) == (200, "page 200")
    ttl = await redis.pttl(progress_key("default", job.job_id))
    assert 0 < ttl <= 3600_000, "expires with the job's result"


async def _sets(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_set", {}).get("calls", 0))


async def test_a_task_that_never_reports_leaves_no_progress_key(
    redis: Redis, worker_proc: subprocess.Popen[str]
) -> None:
    job = await scalr_queue.enqueue("silent")
    assert await job.result(timeout=10) == "quiet"
    assert (await job.info()).progress is None
    assert await redis.keys("scalr:progress:*") == []


async def test_progress_rejects_what_is_not_a_number_in_one_line(redis: Redis) -> None:
    reporter = ProgressReporter(redis, "default", "j", ttl_s=10)
    with pytest.raises(TypeError, match="progress current must be a finite number, not 'x'"):
        await reporter("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress total must be a finite number"):
        await reporter(1, total=float("nan"))
    await reporter(1, message="m" * 2000)
    await reporter.close(keep_s=5)
    stored = json.loads(await redis.get(progress_key("default", "j")))
    assert len(stored["message"]) == 500 and stored["message"].endswith("...")
    await reporter(2)  # after the task ended: ignored, nothing written
    assert json.loads(await redis.get(progress_key("default", "j")))["current"] == 1


async def test_progress_with_no_kept_results_is_deleted_when_the_job_ends(redis: Redis) -> None:
    reporter = ProgressReporter(redis, "default", "k", ttl_s=10)
    await reporter(1)
    await wait_until(lambda: redis.exists(progress_key("default", "k")), what="first write")
    await reporter(2)
    await reporter.close(keep_s=0)
    assert not await redis.exists(progress_key("default", "k"))
    assert reporter.writes >= 1
