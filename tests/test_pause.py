"""Pause and resume a queue: workers stop claiming, running jobs finish, nothing enqueued is lost."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import ConfigurationError, JobStatus
from scalr_queue.redis._keys import paused_key, wake_key
from scalr_queue.redis._server import RedisServer
from tests.support import run_cli, spawn_worker, wait_until

SLOW_MODULE = """
import asyncio, time

async def slow(ctx, secs: float = 0.0) -> None:
    r = ctx["redis"]
    await r.rpush("starts", time.time())
    await asyncio.sleep(secs)
    await r.rpush("ends", time.time())

tasks = [slow]
"""


def stop(*procs: subprocess.Popen[str]) -> list[str]:
    outs = []
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        outs.append(proc.communicate(timeout=30)[0])
    return outs


async def count(redis: Redis, key: str) -> int:
    return int(await redis.llen(key))


async def test_pause_stops_two_workers_claiming_lets_running_jobs_finish_and_resume_runs_everything(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    # a long safety poll: a start soon after resume can only come from the wake-up resume pushes
    set_env(SCALR_QUEUE_POLL_INTERVAL="10s")
    cwd = worker_module(SLOW_MODULE)
    workers = [spawn_worker("jobs_mod", cwd), spawn_worker("jobs_mod", cwd)]
    try:
        await wait_until(lambda: _workers(2), timeout=15, what="two workers")
        running = await scalr_queue.enqueue("slow", secs=1.5)
        await wait_until(lambda: count(redis, "starts"), what="the running job")
        out = run_cli("pause")
        assert out.returncode == 0, out.stderr
        assert "queue 'default' paused" in out.stdout
        jobs = [await scalr_queue.enqueue("slow") for _ in range(10)]
        assert all(job.created for job in jobs), "enqueue keeps accepting"
        await asyncio.sleep(1.6)
        assert await count(redis, "starts") == 1, "nothing new started while paused"
        assert await count(redis, "ends") == 1, "the running job finished"
        assert await running.status() is JobStatus.COMPLETE
        stats = json.loads(run_cli("stats", "--json").stdout)
        assert (stats["paused"], stats["ready"]) == (True, 10)
        resumed = time.time()
        assert await scalr_queue.resume()
        await wait_until(lambda: _counted(redis, "ends", 11), timeout=5, what="every job after resume")
        first_start = min(float(t) for t in (await redis.lrange("starts", 1, -1)))
        assert first_start - resumed < 2.0, "woken by resume, not by the 10 s poll"
        assert not await redis.exists(paused_key("default"))
    finally:
        outs = stop(*workers)
    assert all("queue 'default' paused: claiming nothing until resumed" in out for out in outs), outs


async def _workers(n: int) -> bool:
    return len(await scalr_queue.get_client().workers()) >= n


async def _no_wake(redis: Redis) -> bool:
    return not await redis.exists(wake_key("default"))


async def _counted(redis: Redis, key: str, n: int) -> bool:
    return await count(redis, key) >= n


async def test_a_pause_holds_for_a_worker_started_later_and_never_expires(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    assert await scalr_queue.pause()
    assert not await scalr_queue.pause(), "paused already"
    assert await redis.pttl(paused_key("default")) == -1, "a pause is not a lease: it stays until resumed"
    await scalr_queue.enqueue("slow")
    proc = spawn_worker("jobs_mod", worker_module(SLOW_MODULE))
    try:
        await wait_until(lambda: _workers(1), timeout=15, what="the worker")
        await asyncio.sleep(1.5)
        assert await count(redis, "starts") == 0
        assert (await scalr_queue.queue_stats()).paused
        assert await scalr_queue.get_client().is_paused()
        assert await scalr_queue.resume()
        await wait_until(lambda: _counted(redis, "ends", 1), timeout=5, what="the job after resume")
    finally:
        stop(proc)
    assert not await scalr_queue.resume(), "not paused any more"
    assert not await scalr_queue.get_client().is_paused()


async def test_pausing_one_queue_leaves_the_others_running(redis: Redis, worker_module: Callable[..., Path]) -> None:
    out = run_cli("pause", "--queue", "other", "--json")
    assert json.loads(out.stdout) == {"queue": "other", "paused": True, "changed": True}
    assert "paused" not in run_cli("stats").stdout.split("workers=")[1]
    assert "paused" in run_cli("stats", "--queue", "other").stdout
    proc = spawn_worker("jobs_mod", worker_module(SLOW_MODULE))
    try:
        job = await scalr_queue.enqueue("slow")
        assert await job.result(timeout=10) is None
    finally:
        stop(proc)
    out = run_cli("resume", "--queue", "other")
    assert out.stdout.startswith("queue 'other' resumed"), out.stdout
    assert run_cli("resume", "--queue", "other").stdout.startswith("queue 'other' was not paused")


async def test_pause_names_a_bad_queue_in_one_line(redis: Redis) -> None:
    with pytest.raises(ConfigurationError, match="queue name 'no way' is not valid"):
        await scalr_queue.pause("no way")
    out = run_cli("pause", "--queue", "no way")
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "is not valid" in out.stderr
    assert await redis.dbsize() == 0


async def test_a_pause_survives_a_redis_restart_with_a_worker_attached(
    redis_url: str, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    with RedisServer(appendonly=True) as server:
        set_env(REDIS_URL=server.url)
        proc = spawn_worker("jobs_mod", worker_module(SLOW_MODULE))
        redis: Redis = Redis.from_url(server.url)
        try:
            await wait_until(lambda: _workers(1), timeout=15, what="the worker")
            assert await scalr_queue.pause()
            server.restart()  # a clean stop: the append-only file has the pause
            await scalr_queue.close()
            set_env(REDIS_URL=server.url)
            await scalr_queue.enqueue("slow")
            # the worker is back: it took the wake-up the enqueue pushed (and then claimed nothing)
            await wait_until(lambda: _no_wake(redis), timeout=15, what="the worker to reconnect")
            await asyncio.sleep(1.5)
            assert await count(redis, "starts") == 0, "still paused after the restart"
            assert await scalr_queue.resume()
            await wait_until(lambda: _counted(redis, "ends", 1), timeout=10, what="the job after resume")
        finally:
            await redis.aclose()
            stop(proc)
            await scalr_queue.close()
