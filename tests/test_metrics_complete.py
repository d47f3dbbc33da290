"""Every metric driven by real jobs and read over HTTP from a real worker process.

Enqueued (counted by the producer), punctuality, lease losses, cancelled (declared), and the
queue's depth by state, oldest ready age and live workers, exported by one worker per queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue._priority import encode
from scalr_queue.observe._producer_metrics import metrics_registry
from scalr_queue.redis._server import free_port
from tests.metrics_support import MetricsWorker, Samples, value
from tests.support import wait_until

pytestmark = pytest.mark.timeout(90)

MODULE = """
import asyncio

import scalr_queue


async def good(ctx) -> None:
    pass


async def bad(ctx) -> None:
    raise scalr_queue.Fail("no")


async def nap(ctx, seconds: float) -> None:
    await asyncio.sleep(seconds)


async def fan_out(ctx) -> None:
    await ctx["redis"].enqueue_job("good")

tasks = [good, bad, nap, fan_out]
"""
Q = "default"


@pytest.fixture
def cwd(worker_module: Callable[..., Path]) -> Path:
    return worker_module(MODULE)


@contextlib.contextmanager
def metrics_worker(cwd: Path, *args: str, **env: str) -> Iterator[MetricsWorker]:
    worker = MetricsWorker(cwd, "jobs_mod", free_port(), *args, **env)
    try:
        yield worker
    finally:
        worker.stop()


async def scraped(worker: MetricsWorker, ok: Callable[[Samples], bool], what: str) -> Samples:
    seen: dict[str, Samples] = {}

    def check() -> bool:
        seen["s"] = worker.scrape()
        return ok(seen["s"])

    await wait_until(check, timeout=20, interval=0.1, what=what)
    return seen["s"]


async def test_enqueued_counts_new_jobs_in_the_producer_not_a_given_id_again(redis: Redis) -> None:
    registry = metrics_registry()

    def count(task: str) -> float:
        return registry.get_sample_value("scalr_queue_jobs_enqueued_total", {"queue": "mail", "task": task}) or 0.0

    before = count("good")
    await scalr_queue.enqueue("good", _queue_name="mail")
    await scalr_queue.enqueue("good", _queue_name="mail", _job_id="once")
    await scalr_queue.enqueue("good", _queue_name="mail", _job_id="once")  # the same job: not counted again
    await scalr_queue.enqueue_many([("good", {"_queue_name": "mail"}), ("bad", {"_queue_name": "mail"})])
    assert count("good") - before == 3
    assert count("bad") >= 1
    assert await redis.zcard("arq:queue:mail") == 4


async def test_punctuality_measures_start_minus_due_time_and_every_task_series_exists(redis: Redis, cwd: Path) -> None:
    late = await scalr_queue.enqueue("good", _priority=9)
    # due 5 s ago: as if it had waited that long for a worker (its score in priority 9's band)
    await redis.zadd(f"arq:queue:{Q}", {late.job_id: encode(int(time.time() * 1000) - 5000, 9)}, xx=True)
    with metrics_worker(cwd) as worker:
        await scalr_queue.enqueue("fan_out")  # enqueues one more "good", from inside the worker
        s = await scraped(
            worker,
            lambda s: value(s, "scalr_queue_jobs_succeeded_total", queue=Q, task="good") == 2,
            "both good jobs to finish",
        )
    good = {"queue": Q, "task": "good"}
    assert value(s, "scalr_queue_job_punctuality_seconds_count", **good) == 2
    assert value(s, "scalr_queue_job_punctuality_seconds_bucket", le="2.5", **good) == 1  # the one on time
    assert value(s, "scalr_queue_job_punctuality_seconds_bucket", le="10.0", **good) == 2  # and the late one
    assert 5 <= (value(s, "scalr_queue_job_punctuality_seconds_sum", **good) or 0) < 10
    assert value(s, "scalr_queue_jobs_cancelled_total", **good) == 0  # declared: nothing cancels yet
    assert value(s, "scalr_queue_jobs_enqueued_total", **good) == 1  # by fan_out, counted in the worker


async def test_a_lost_lease_is_counted_once(redis: Redis, cwd: Path) -> None:
    with metrics_worker(cwd, SCALR_QUEUE_LEASE="600ms") as worker:
        job = await scalr_queue.enqueue("nap", seconds=3)
        await wait_until(lambda: redis.exists(f"arq:in-progress:{job.job_id}"), what="the job to run")
        await redis.set(f"arq:in-progress:{job.job_id}", "another-worker")  # its lease went elsewhere
        await scraped(
            worker, lambda s: value(s, "scalr_queue_lease_losses_total", queue=Q) == 1, "the lease loss to count"
        )
        await job.result(timeout=15)
        s = worker.scrape()
    assert value(s, "scalr_queue_lease_losses_total", queue=Q) == 1, "renewals after the loss do not count it again"
    assert worker.log().count("lease lost on job") == 1


async def test_depth_by_state_oldest_age_and_workers_come_from_the_reporter(redis: Redis, cwd: Path) -> None:
    with metrics_worker(cwd, "--concurrency", "1") as worker:
        await scalr_queue.enqueue("bad")  # -> the failed set
        await wait_until(lambda: redis.zcard(f"scalr:failed:{Q}"), what="the failed job")
        running = await scalr_queue.enqueue("nap", seconds=4)  # holds the only slot
        await wait_until(lambda: redis.exists(f"arq:in-progress:{running.job_id}"), what="the nap to run")
        ready = [await scalr_queue.enqueue("good") for _ in range(2)]  # wait behind it
        await scalr_queue.enqueue("good", _defer_by=3600)
        want = {"ready": 2, "scheduled": 1, "running": 1, "failed": 1}
        s = await scraped(
            worker,
            lambda s: (
                all(value(s, "scalr_queue_queue_depth", queue=Q, state=k) == v for k, v in want.items())
                and (value(s, "scalr_queue_oldest_ready_age_seconds", queue=Q) or 0) > 0.2
            ),
            f"the depth to read {want}",
        )
        assert value(s, "scalr_queue_workers", queue=Q) == 1
        text = httpx.get(worker.url, timeout=5).text
        assert not re.search(r"[0-9a-f]{32}", text), "no job id in any label"
        assert all(j.job_id not in text for j in [running, *ready])
        # once the queue drains, nothing is ready and nothing is old
        await ready[-1].result(timeout=20)
        s = await scraped(
            worker,
            lambda s: value(s, "scalr_queue_queue_depth", queue=Q, state="ready") == 0,
            "the queue to drain",
        )
        assert value(s, "scalr_queue_oldest_ready_age_seconds", queue=Q) == 0


async def test_only_one_worker_per_queue_reports_the_depth_and_another_takes_over(redis: Redis, cwd: Path) -> None:
    def reports(s: Samples) -> bool:
        return value(s, "scalr_queue_queue_depth", queue=Q, state="ready") is not None

    def beating(s: Samples) -> bool:
        return value(s, "scalr_queue_jobs_running", queue=Q) is not None

    with metrics_worker(cwd) as first, metrics_worker(cwd) as second:
        for w in (first, second):
            await scraped(w, beating, "a heartbeat")
        await wait_until(lambda: reports(first.scrape()) or reports(second.scrape()), what="a reporter")
        # for three heartbeats (SCALR_QUEUE_HEALTH_INTERVAL=1s here), always exactly one
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert reports(first.scrape()) != reports(second.scrape())
            await asyncio.sleep(0.2)
        reporter, other = (first, second) if reports(first.scrape()) else (second, first)
        s = other.scrape()
        assert value(s, "scalr_queue_workers", queue=Q) is None
        assert reporter.stop() == 0  # hands the role over as it stops
        s = await scraped(other, reports, "the other worker to take over")
        assert value(s, "scalr_queue_workers", queue=Q) == 1
