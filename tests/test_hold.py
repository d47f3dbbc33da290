"""Hold and release with real worker processes: matching jobs wait in Redis, the rest run, nothing is lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import ConfigurationError, JobStatus
from scalr_queue.redis._keys import held_key, holds_key
from scalr_queue.redis._server import RedisServer
from tests.support import LoggedWorker, run_cli, wait_until

MODULE = """
import time

async def bill(ctx, customer_id: int, n: int = 0) -> None:
    await ctx["redis"].rpush("ran", f"{customer_id}:{n}:{time.time()}")

tasks = [bill]
"""


async def ran(redis: Redis) -> list[str]:
    return sorted(":".join(r.decode().split(":")[:2]) for r in await redis.lrange("ran", 0, -1))


async def held(queue: str = "default") -> int:
    return (await scalr_queue.queue_stats(queue)).held


async def _workers(n: int) -> bool:
    return len(await scalr_queue.get_client().workers()) >= n


async def test_a_hold_keeps_matching_jobs_across_worker_restarts_and_release_runs_them(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_POLL_INTERVAL="10s")  # a start soon after release can only come from its wake-up
    cwd = worker_module(MODULE)
    out = run_cli("hold", "bill", "--where", "customer_id == 42", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["changed"] is True
    worker = LoggedWorker("jobs_mod", cwd)
    try:
        await wait_until(lambda: _workers(1), timeout=15, what="the worker")
        held_jobs = [await scalr_queue.enqueue("bill", customer_id=42, n=n) for n in range(3)]
        await scalr_queue.enqueue("bill", customer_id=7)
        await wait_until(lambda: _held_is(3), what="three held jobs")
        assert await held_jobs[0].status() is JobStatus.HELD
        info = await held_jobs[0].info()
        assert info.status is JobStatus.HELD and info.scheduled_at is not None
        assert json.loads(run_cli("job", held_jobs[1].job_id, "--json").stdout)["status"] == "held"
        await wait_until(lambda: _ran_is(redis, ["7:0"]), what="the job of another customer")
        assert "held=3" in run_cli("stats").stdout
        assert json.loads(run_cli("stats", "--json").stdout)["held"] == 3
        assert worker.stop() == 0
        worker = LoggedWorker("jobs_mod", cwd)  # a restarted worker keeps holding
        await wait_until(lambda: _workers(1), timeout=15, what="the restarted worker")
        await scalr_queue.enqueue("bill", customer_id=42, n=9)
        await scalr_queue.enqueue("bill", customer_id=8)
        await wait_until(lambda: _ran_is(redis, ["7:0", "8:0"]), timeout=15, what="the job behind the held one")
        await wait_until(lambda: _held_is(4), what="the new matching job held")
        released = time.time()
        out = run_cli("release", "bill", "--where", "customer_id==42")
        assert out.stdout.startswith("released 'bill where customer_id==42': 4 job(s) back on queue 'default'"), out
        await wait_until(lambda: _ran_is(redis, ["42:0", "42:1", "42:2", "42:9", "7:0", "8:0"]), what="the held jobs")
        assert await held_jobs[0].status() is JobStatus.COMPLETE
        starts = [float(r.decode().split(":")[2]) for r in await redis.lrange("ran", 0, -1)]
        assert max(starts) - released < 5, "woken by the release, not by the 10 s poll"
        assert not await redis.exists(holds_key("default"), held_key("default"))
        assert not any(await redis.keys("arq:retry:*")), "no held job burnt a try"
    finally:
        worker.stop()


async def _held_is(n: int) -> bool:
    return await held() == n


async def _ran_is(redis: Redis, expected: list[str]) -> bool:
    return await ran(redis) == expected


async def test_a_hold_and_its_held_jobs_survive_a_redis_restart(
    redis_url: str, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    with RedisServer(appendonly=True) as server:
        set_env(REDIS_URL=server.url)
        worker = LoggedWorker("jobs_mod", worker_module(MODULE))
        redis: Redis = Redis.from_url(server.url)
        try:
            await wait_until(lambda: _workers(1), timeout=15, what="the worker")
            assert await scalr_queue.hold("bill")
            assert not await scalr_queue.hold("bill"), "held already"
            await scalr_queue.enqueue("bill", customer_id=1)
            await wait_until(lambda: _held_is(1), what="the held job")
            server.restart()  # a clean stop: the append-only file has the hold and the held job
            await scalr_queue.close()
            set_env(REDIS_URL=server.url)
            await scalr_queue.enqueue("bill", customer_id=2)
            await wait_until(lambda: _held_is(2), timeout=15, what="the worker to reconnect and hold the new job")
            assert await scalr_queue.get_client().holds() == ["bill"]
            assert await ran(redis) == []
            out = await scalr_queue.release("bill")
            assert (out.holds_removed, out.released, out.dropped, out.still_held) == (1, 2, [], 0)
            await wait_until(lambda: _ran_is(redis, ["1:0", "2:0"]), timeout=10, what="the released jobs")
        finally:
            await redis.aclose()
            worker.stop()
            await scalr_queue.close()


async def test_release_drop_lists_and_deletes_the_held_jobs(redis: Redis, worker_module: Callable[..., Path]) -> None:
    assert await scalr_queue.hold("bill", "customer_id >= 100", queue="other")
    jobs = [await scalr_queue.enqueue("bill", customer_id=c, _queue_name="other") for c in (100, 200, 5)]
    worker = LoggedWorker("jobs_mod", worker_module(MODULE), "--queue", "other")
    try:
        await wait_until(lambda: _held_in("other", 2), timeout=15, what="held")
        await wait_until(lambda: _ran_is(redis, ["5:0"]), what="the job under the threshold")
        out = run_cli("release", "bill", "--queue", "other", "--drop")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == "released 'bill': dropped 2 job(s)"
        assert sorted(line.strip() for line in lines[1:]) == sorted(j.job_id for j in jobs[:2])
        for job in jobs[:2]:
            assert not await redis.exists(f"arq:job:{job.job_id}")
        assert await held("other") == 0
        await asyncio.sleep(0.5)
        assert await ran(redis) == ["5:0"], "dropped jobs never run"
    finally:
        worker.stop()
    out = run_cli("release", "bill", "--queue", "other", "--json")
    assert json.loads(out.stdout)["holds_removed"] == 0
    assert run_cli("release", "bill", "--queue", "other").stdout.startswith(
        "no hold 'bill' on queue 'other' (holds: none)"
    )


async def _held_in(queue: str, n: int) -> bool:
    return await held(queue) == n


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("customer_id", "is not a comparison"),
        ("customer_id ~ 4", "is not a comparison"),
        ("customer_id === 4", "unknown operator"),
        ("customer_id ==", "is not a comparison"),
        ("1x == 4", "is not a comparison"),
        ("ids == [1, 2]", "list or object"),
        ("n < true", "orders numbers or text"),
        ("n > null", "orders numbers or text"),
        ("n == NaN", "JSON cannot carry"),
    ],
)
async def test_a_bad_where_is_one_line_and_exit_2_before_touching_redis(redis: Redis, where: str, says: str) -> None:
    for command in ("hold", "release"):
        out = run_cli(command, "bill", "--where", where, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
        assert out.returncode == 2, out
        assert out.stderr.count("\n") == 1 and says in out.stderr, out.stderr
    with pytest.raises(ConfigurationError, match=says):
        await scalr_queue.hold("bill", where)
    assert await redis.dbsize() == 0


async def test_a_bad_task_or_queue_name_is_refused(redis: Redis) -> None:
    with pytest.raises(ConfigurationError, match="task name ' bill' is not valid"):
        await scalr_queue.hold(" bill")
    with pytest.raises(ConfigurationError, match="queue name 'no way' is not valid"):
        await scalr_queue.release("bill", queue="no way")
    assert await redis.dbsize() == 0
