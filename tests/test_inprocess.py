"""REDIS_URL=memory://: the queue in this process's memory, run by the same worker in the same loop.

Here the in-memory store (fakeredis running our own Lua scripts) is the product under test; the
Redis-mode tests elsewhere keep using a real redis-server. Each behaviour below is the worker's
own (retries with backoff, timeouts, the failed set, cancel, progress, holds), driven through the
public API and ``scalr_queue.testing``, with no worker process and no Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import scalr_queue
from scalr_queue import ConfigurationError, Fail, JobCancelledError, JobFailedError, task
from scalr_queue._settings import get_settings, load_settings
from scalr_queue._tasks import build_task_map
from scalr_queue.redis._connection import create_redis
from scalr_queue.testing import clear_memory, drain, run_in_process
from scalr_queue.worker import _inprocess
from tests.conftest import TEST_ENV
from tests.support import ROOT, wait_until

ATTEMPTS: list[tuple[int, float]] = []


@pytest.fixture
async def memory(set_env: Callable[..., None]) -> AsyncIterator[None]:
    """REDIS_URL=memory:// with the fast test knobs, an empty store, and everything closed after."""
    set_env(REDIS_URL="memory://", SCALR_QUEUE_MEMORY_WORKER=None, **TEST_ENV)
    await clear_memory()
    ATTEMPTS.clear()
    yield
    await scalr_queue.close()


async def flaky(ctx: dict[str, Any], n: int) -> int:
    ATTEMPTS.append((ctx["job_try"], time.monotonic()))
    if ctx["job_try"] < 4:
        raise ValueError("smtp down")
    return n * 2


async def test_memory_mode_retries_with_backoff_and_keeps_the_result(
    memory: None, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_RETRY_DELAY="100ms", SCALR_QUEUE_RETRY_JITTER="0")
    async with run_in_process([flaky]):
        job = await scalr_queue.enqueue(flaky, n=21)
        await drain()
        info = await job.info()
    assert (info.status, info.result, info.tries) == ("complete", 42, 4)
    assert await job.result() == 42
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(ATTEMPTS)]
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4], strict=True):
        assert expected * 0.9 <= gap <= expected + 0.15, (gaps, expected)


async def sleepy(ctx: dict[str, Any]) -> None:
    ATTEMPTS.append((ctx["job_try"], time.monotonic()))
    await asyncio.sleep(30)


async def test_memory_mode_times_out_each_try_then_records_the_job_in_the_failed_set(memory: None) -> None:
    async with run_in_process([task(sleepy, timeout=0.1, max_tries=2)]):
        job = await scalr_queue.enqueue("sleepy")
        await drain()
    assert [t for t, _ in ATTEMPTS] == [1, 2]
    assert (await job.info()).status == "failed"
    with pytest.raises(JobFailedError, match="timeout"):
        await job.result()
    failed = await scalr_queue.get_client().failed.get(job.job_id)
    assert failed.tries == 2 and failed.error_type == "TimeoutError"
    assert (await scalr_queue.queue_stats()).failed == 1


async def refuses(ctx: dict[str, Any]) -> None:
    ATTEMPTS.append((ctx["job_try"], time.monotonic()))
    raise Fail("invoice was deleted")


async def test_memory_mode_fail_goes_to_the_failed_set_at_once_and_retry_redrives_it(memory: None) -> None:
    async with run_in_process([refuses]):
        job = await scalr_queue.enqueue("refuses")
        await drain()
        assert len(ATTEMPTS) == 1
        failed = scalr_queue.get_client().failed
        assert [f.job_id for f in await failed.list()] == [job.job_id]
        await failed.retry(job.job_id)
        await drain()
    assert len(ATTEMPTS) == 2 and await failed.count() == 1


async def waits(ctx: dict[str, Any]) -> None:
    await ctx["progress"](3, total=10, message="page 3")
    await asyncio.sleep(30)


async def test_memory_mode_shows_progress_and_cancels_a_running_job(memory: None) -> None:
    async with run_in_process([waits]):
        job = await scalr_queue.enqueue("waits")

        async def progressed() -> bool:
            return (await job.info()).progress is not None

        await wait_until(progressed, timeout=5, what="the progress report")  # coalesced: lands within 0.25 s
        info = await job.info()
        assert info.status == "in_progress"
        assert info.progress is not None and (info.progress["current"], info.progress["total"]) == (3, 10)
        assert await job.cancel(reason="customer left") == "cancelling"
        await drain(within=5)
    info = await job.info()
    assert (info.status, info.cancel_reason) == ("cancelled", "customer left")
    with pytest.raises(JobCancelledError):
        await job.result()


async def test_memory_mode_holds_a_task_until_it_is_released(memory: None) -> None:
    async with run_in_process([flaky]):
        assert await scalr_queue.hold("flaky", "n == 1")
        held = await scalr_queue.enqueue(flaky, n=1)
        other = await scalr_queue.enqueue(flaky, n=2)
        await drain()
        assert (await scalr_queue.queue_stats()).held == 1
        assert (await held.info()).status == "held" and (await other.info()).status == "complete"
        released = await scalr_queue.release("flaky")
        assert released.released == 1
        await drain()
    assert await held.result() == 2


async def test_drain_without_a_worker_times_out_naming_what_is_left(memory: None) -> None:
    await scalr_queue.enqueue("anything", x=1)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"queue 'default' still has 1 waiting and 0 running job\(s\) after 0.2s"):
        await drain(within=0.2)
    assert time.monotonic() - started < 2
    await scalr_queue.pause()
    with pytest.raises(TimeoutError, match="the queue is paused"):
        await drain(within=0.05)


async def test_in_process_worker_drain_and_a_start_up_failure_are_reported(memory: None) -> None:
    async with run_in_process([flaky], queue="other") as worker:
        job = await scalr_queue.JobOptions(queue_name="other").enqueue(flaky, n=4)
        await worker.drain()
        assert await job.result() == 8

    async def broken(ctx: dict[str, Any]) -> None:
        raise RuntimeError("no database")

    runner = _inprocess.InProcessWorker(
        _inprocess.WorkerConfig(module="m", tasks=build_task_map([flaky]), on_startup=broken), get_settings()
    )
    with pytest.raises(RuntimeError, match="no database"):
        await runner.start()
    await runner.stop()  # nothing to stop: it never started


WORKER_MODULE = """
from typing import Any

async def double(ctx: dict[str, Any], n: int) -> int:
    return n * 2

tasks = [double]
"""


async def test_memory_worker_module_starts_at_the_first_enqueue_and_close_stops_it(
    memory: None,
    set_env: Callable[..., None],
    worker_module: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(worker_module(WORKER_MODULE, "memory_jobs"))
    monkeypatch.syspath_prepend(str(Path.cwd()))
    set_env(SCALR_QUEUE_MEMORY_WORKER="memory_jobs")
    assert _inprocess.autostarted() is None
    job = await scalr_queue.enqueue("double", n=5)
    runner = _inprocess.autostarted()
    assert runner is not None and runner.worker.config.module == "memory_jobs"
    assert await job.result(timeout=5) == 10
    assert [w.module for w in await scalr_queue.get_client().workers()] == ["memory_jobs"]
    await scalr_queue.close()
    assert _inprocess.autostarted() is None and runner.worker.health.stopping


async def test_a_memory_worker_module_that_cannot_load_fails_the_first_call_in_one_line(
    memory: None, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_MEMORY_WORKER="no_such_module_here")
    with pytest.raises(scalr_queue.WorkerModuleError, match="cannot import worker module 'no_such_module_here'"):
        await scalr_queue.enqueue("double", n=1)
    assert _inprocess.autostarted() is None


async def test_memory_mode_is_never_picked_unless_the_url_says_memory(
    redis_url: str, set_env: Callable[..., None]
) -> None:
    from fakeredis.aioredis import FakeAsyncRedisConnection
    from redis.asyncio import Redis

    set_env(SCALR_QUEUE_MEMORY_WORKER="tests.test_inprocess")  # ignored: REDIS_URL is a real Redis
    client = create_redis(get_settings())
    assert not issubclass(client.connection_pool.connection_class, FakeAsyncRedisConnection)
    await client.aclose()
    job = await scalr_queue.enqueue("anything", x=1)
    assert _inprocess.autostarted() is None
    raw: Redis = Redis.from_url(redis_url)
    assert await raw.exists(f"arq:job:{job.job_id}") == 1  # it went to the real redis-server
    await raw.aclose()
    for url in ("memory", "memory:/", "memory://x", "memory:///0"):
        set_env(REDIS_URL=url)
        with pytest.raises(ConfigurationError, match="REDIS_URL"):
            load_settings()
    set_env(REDIS_URL="redis://memory:6379/0")  # a Redis host that happens to be called memory
    assert load_settings().redis_url == "redis://memory:6379/0"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_memory_mode_warns_once_per_process_that_nothing_is_durable() -> None:
    code = """
    import asyncio, logging
    import scalr_queue
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    async def main() -> None:
        for i in range(3):
            await scalr_queue.enqueue("anything", i=i)
            await scalr_queue.close()

    for _ in range(2):
        asyncio.run(main())  # new loops, new clients, one store
    """
    out = _python(code, REDIS_URL="memory://")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if "memory://" in line]
    assert lines == [
        "WARNING scalr_queue REDIS_URL=memory://: jobs live in this process's memory and only an in-process "
        "worker runs them (scalr_queue.testing.run_in_process); nothing is durable or shared with another "
        "process (for unit tests and demos, see docs/in-process.md)"
    ]


def test_memory_url_without_the_extra_is_one_line_naming_the_install() -> None:
    code = """
    import sys
    sys.modules["lupa"] = None  # what Python does for a package that is not installed
    from scalr_queue import ConfigurationError
    from scalr_queue._settings import load_settings
    try:
        load_settings()
    except ConfigurationError as exc:
        print(exc)
    """
    out = _python(code, REDIS_URL="memory://")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        "invalid setting REDIS_URL='memory://': memory:// needs the in-memory store (lupa is not installed): "
        "pip install 'scalr-queue[memory]'\n"
    )


def test_a_worker_process_refuses_memory_url_in_one_line(tmp_path: Path) -> None:
    out = _python(
        "from scalr_queue.worker._main import main; raise SystemExit(main(['src.worker']))", REDIS_URL="memory://"
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "python -m scalr_queue.worker: error: REDIS_URL=memory:// keeps jobs inside one process, so a worker "
        "process would see none: set SCALR_QUEUE_MEMORY_WORKER in the app instead, or point REDIS_URL at Redis "
        "(docs/in-process.md)"
    ]


async def test_run_in_process_and_drain_work_against_a_real_redis_too(redis_url: str) -> None:
    ATTEMPTS.clear()
    async with run_in_process([flaky]) as worker:
        job = await scalr_queue.enqueue(flaky, n=1)
        await drain()
        assert (await job.info()).tries == 4
        await scalr_queue.pause()
        await scalr_queue.enqueue(flaky, n=2)
        with pytest.raises(TimeoutError, match=r"1 waiting and 0 running job\(s\) after 0.05s \(the queue is paused\)"):
            await worker.drain(within=0.05)
        await scalr_queue.resume()
        await worker.drain()

    async def broken(ctx: dict[str, Any]) -> None:
        raise RuntimeError("no database")

    runner = _inprocess.InProcessWorker(
        _inprocess.WorkerConfig(module="m", tasks=build_task_map([flaky]), on_startup=broken), get_settings()
    )
    with pytest.raises(RuntimeError, match="no database"):
        await runner.start()
    await runner.stop()  # nothing to stop: it never started


def test_a_stopped_in_process_worker_leaves_nothing_bound_to_its_closed_loop() -> None:
    # A loop closed without cancelling its pending tasks (as some test runners do): the worker's
    # blocked read must have ended, or the next write to the store calls into the closed loop.
    code = """
    import asyncio
    import scalr_queue
    from scalr_queue.testing import drain, run_in_process

    async def double(ctx, n: int) -> int:
        return n * 2

    async def once() -> int:
        async with run_in_process([double]):
            job = await scalr_queue.enqueue(double, n=4)
            await drain()
        await scalr_queue.close()
        return await job.result()

    for _ in range(2):
        loop = asyncio.new_event_loop()
        print(loop.run_until_complete(once()))
        loop.close()  # no cancelling of what is left pending
    """
    out = _python(code, REDIS_URL="memory://", SCALR_QUEUE_POLL_INTERVAL="30s")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["8", "8"]
