"""Concurrency and rate limits with two real worker processes, counted from the jobs' own timestamps."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobStatus, WorkerModuleError, task
from scalr_queue.redis._keys import parked_key, slot_counts_key, slots_key
from tests.support import LoggedWorker, run_cli, wait_until

MODULE = """
import asyncio, json, os, time
from scalr_queue import task

async def _run(ctx, kind, hold, key=None):
    start = time.time()
    await ctx["redis"].rpush("started", ctx["job_id"])
    if hold and ctx["job_try"] == 1:
        await asyncio.sleep(hold)
    record = {"id": ctx["job_id"], "kind": kind, "key": key, "start": start, "end": time.time(),
              "try": ctx["job_try"], "pid": os.getpid()}
    await ctx["redis"].rpush("runs", json.dumps(record))

async def two(ctx, n: int = 0, hold: float = 0.3) -> None:
    await _run(ctx, "two", hold)

async def per_customer(ctx, customer_id: int, hold: float = 0.3) -> None:
    await _run(ctx, "per_customer", hold, customer_id)

async def rated(ctx, n: int = 0) -> None:
    await _run(ctx, "rated", 0)

async def plain(ctx, n: int = 0) -> None:
    await _run(ctx, "plain", 0)

tasks = [
    task(two, max_concurrent=MAX_TWO),
    task(per_customer, max_concurrent=1, concurrency_key="customer_id"),
    task(rated, rate_limit="3/s"),
    plain,
]
"""
ENV = {"SCALR_QUEUE_CONCURRENCY": "8"}


def module(max_two: int = 2) -> str:
    return MODULE.replace("MAX_TWO", str(max_two))


async def runs(redis: Redis, kind: str | None = None) -> list[dict[str, Any]]:
    out = [json.loads(r) for r in await redis.lrange("runs", 0, -1)]
    return [r for r in out if kind is None or r["kind"] == kind]


def max_overlap(records: list[dict[str, Any]]) -> int:
    """The most jobs running at one instant, from their own start and end times."""
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


async def _workers(n: int) -> bool:
    return len(await scalr_queue.get_client().workers()) >= n


async def _count(redis: Redis, n: int, kind: str | None = None) -> bool:
    return len(await runs(redis, kind)) >= n


def two_workers(cwd: Path, env: dict[str, str] | None = None) -> list[LoggedWorker]:
    return [LoggedWorker("jobs_mod", cwd, env={**ENV, **(env or {})}) for _ in range(2)]


def stop(workers: list[LoggedWorker]) -> None:
    for w in workers:
        w.stop()


async def test_max_concurrent_holds_across_two_workers_and_parked_jobs_burn_no_try(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    workers = two_workers(worker_module(module()))
    try:
        await wait_until(lambda: _workers(2), timeout=20, what="two workers")
        # 2 s each, two at a time: jobs stay parked for ~6 s, while two CLI processes start below
        jobs = [await scalr_queue.enqueue("two", n=n, hold=2.0) for n in range(8)]
        await wait_until(lambda: _parked_is_more_than(3), what="parked jobs")

        async def last_parked() -> bool:  # a busy machine may claim the last job a moment later
            return await jobs[-1].status() is JobStatus.PARKED

        await wait_until(last_parked, what="the last job parked")
        info = await jobs[-1].info()
        assert info.status is JobStatus.PARKED and info.scheduled_at is not None and info.tries == 0
        assert json.loads(run_cli("job", jobs[-1].job_id, "--json").stdout)["status"] == "parked"
        stats = json.loads(run_cli("stats", "--json").stdout)
        assert stats["parked"] > 0 and stats["in_progress"] <= 2
        await wait_until(lambda: _count(redis, 8), timeout=20, what="all eight jobs")
        records = await runs(redis)
        assert max_overlap(records) == 2, "never more than two at once, and both slots used"
        assert {r["try"] for r in records} == {1}, "waiting for a slot burnt no try"
        assert len({r["pid"] for r in records}) == 2, "both workers ran jobs"

        async def limit_keys_gone() -> bool:  # the last job's finish follows its record by a moment
            return not await redis.exists(parked_key("default"), slots_key("default"), slot_counts_key("default"))

        await wait_until(limit_keys_gone, timeout=5, what="every slot freed and nothing left parked")
    finally:
        stop(workers)


async def _parked_is_more_than(n: int) -> bool:
    return (await scalr_queue.queue_stats()).parked > n


async def test_a_concurrency_key_runs_two_keys_in_parallel_and_one_key_never(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    workers = two_workers(worker_module(module()))
    try:
        await wait_until(lambda: _workers(2), timeout=20, what="two workers")
        for n in range(3):
            for customer in (1, 2):
                await scalr_queue.enqueue("per_customer", customer_id=customer, hold=0.3 + 0.01 * n)
        await wait_until(lambda: _count(redis, 6), timeout=20, what="six jobs")
        records = await runs(redis)
        assert max_overlap([r for r in records if r["key"] == 1]) == 1
        assert max_overlap([r for r in records if r["key"] == 2]) == 1
        assert max_overlap(records) == 2, "two customers run side by side"
        listed = json.loads(run_cli("workers", "--json").stdout)
        assert listed[0]["limits"]["per_customer"] == {
            "max_concurrent": 1,
            "concurrency_key": "customer_id",
            "rate_limit": None,
        }
        assert " rated:rate_limit=3/s" in run_cli("workers").stdout
    finally:
        stop(workers)


async def test_a_rate_limit_caps_starts_per_window_across_two_workers(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    workers = two_workers(worker_module(module()))
    try:
        await wait_until(lambda: _workers(2), timeout=20, what="two workers")
        begun = time.time()
        for n in range(9):
            await scalr_queue.enqueue("rated", n=n)
        await wait_until(lambda: _count(redis, 9), timeout=20, what="nine rated jobs")
        starts = sorted(r["start"] for r in await runs(redis))
        # 3 per second: any 4 consecutive starts span at least a second (50 ms for clock reads)
        assert min(starts[i + 3] - starts[i] for i in range(len(starts) - 3)) > 0.95
        assert starts[-1] - begun < 4.5, "each window's jobs start when it opens, not on a slow poll"
        assert {r["try"] for r in await runs(redis)} == {1}
    finally:
        stop(workers)


async def test_a_parked_job_blocks_nothing_behind_it_and_is_woken_when_a_slot_frees(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_POLL_INTERVAL="30s")  # a start soon after a slot frees can only come from a wake-up
    workers = two_workers(worker_module(module()))
    try:
        await wait_until(lambda: _workers(2), timeout=20, what="two workers")
        first = [await scalr_queue.enqueue("two", n=n, hold=6.0) for n in range(2)]
        await asyncio.sleep(0.01)  # a later due millisecond: jobs due in the same one are ordered by id
        parked = await scalr_queue.enqueue("two", n=9, hold=0)
        await wait_until(lambda: _parked_is_more_than(0), what="the third job parked")
        assert await parked.status() is JobStatus.PARKED
        enqueued = time.time()
        await scalr_queue.enqueue("plain", n=1)
        await wait_until(lambda: _count(redis, 1, "plain"), timeout=5, what="the plain job behind it")
        # the slots stay full for 6 s: a plain job done well before that was not stuck behind the parked one
        assert (await runs(redis, "plain"))[0]["end"] - enqueued < 2.0, "no head-of-line blocking"
        await wait_until(lambda: _count(redis, 3, "two"), timeout=15, what="the parked job")
        assert max_overlap(await runs(redis, "two")) == 2, "the parked job never ran beside the two holders"
        records = {r["id"]: r for r in await runs(redis, "two")}
        freed = min(records[j.job_id]["end"] for j in first)
        assert records[parked.job_id]["start"] - freed < 0.5, "woken by the finish, not by the 30 s poll"
    finally:
        stop(workers)


async def test_a_slot_held_by_a_killed_worker_frees_within_one_lease(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_LEASE="2s")
    workers = two_workers(worker_module(module(max_two=1)))
    try:
        await wait_until(lambda: _workers(2), timeout=20, what="two workers")
        stuck = await scalr_queue.enqueue("two", n=0, hold=60)  # its first try never ends by itself
        await wait_until(lambda: _started(redis, 1), what="the first job")
        behind = await scalr_queue.enqueue("two", n=1, hold=0)
        await wait_until(lambda: _parked_is_more_than(0), what="the second job parked")
        holder = (await redis.get(f"arq:in-progress:{stuck.job_id}") or b"").decode()
        pid = int(holder.split(":")[1])
        victim = next(w for w in workers if w.proc.pid == pid)
        os.kill(pid, signal.SIGKILL)  # by its PID: this test's own worker
        victim.proc.wait(10)
        killed = time.time()
        await wait_until(lambda: _count(redis, 2), timeout=15, what="both jobs after the kill")
        records = {r["id"]: r for r in await runs(redis)}
        assert records[stuck.job_id]["try"] == 2, "the killed run counts as a try"
        assert records[behind.job_id]["try"] == 1
        # the slot's lease and the job's lease end within a millisecond of each other: either job may
        # take the freed slot first, the other waits for it
        first = min(records.values(), key=lambda r: r["start"])
        assert first["start"] - killed < 2.0 + 1.0, "the slot freed within one lease (plus a claim)"
        assert max_overlap(list(records.values())) == 1, "still one at a time"
    finally:
        stop(workers)


async def _started(redis: Redis, n: int) -> bool:
    return int(await redis.llen("started")) >= n


async def test_two_workers_declaring_different_limits_each_apply_their_own_and_the_second_warns(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    one = worker_module(module(max_two=1), "jobs_mod")
    strict = LoggedWorker("jobs_mod", one, env=ENV)
    loose_dir = one / "loose"
    loose_dir.mkdir()
    (loose_dir / "jobs_mod.py").write_text(textwrap.dedent(module(max_two=3)))
    try:
        await wait_until(lambda: _workers(1), timeout=20, what="the first worker")
        loose = LoggedWorker("jobs_mod", loose_dir, env=ENV)
        try:
            await wait_until(lambda: _workers(2), timeout=20, what="the second worker")
            warning = "task 'two' has limits (max_concurrent=3) here but (max_concurrent=1) on worker"
            await wait_until(lambda: warning in loose.log(), what="the second worker's warning")
            for n in range(9):
                await scalr_queue.enqueue("two", n=n, hold=0.4)
            await wait_until(lambda: _count(redis, 9), timeout=20, what="nine jobs")
            records = await runs(redis)
            assert max_overlap(records) <= 3, "the larger declaration is the most that ever runs"
            for r in records:
                if r["pid"] == strict.proc.pid:  # the strict worker only ever starts one when none runs
                    assert not [o for o in records if o is not r and o["start"] < r["start"] - 0.05 < o["end"] - 0.1]
        finally:
            loose.stop()
    finally:
        strict.stop()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrent": 0}, "task 'two': max_concurrent=0 must be a whole number of at least 1"),
        ({"max_concurrent": 1, "concurrency_key": "customer"}, "concurrency_key='customer' is not one of its keyword"),
        ({"concurrency_key": "n"}, "concurrency_key='n' needs max_concurrent"),
        ({"rate_limit": "100 per m"}, "rate_limit='100 per m' is not a rate: write it as COUNT/UNIT"),
        ({"rate_limit": "0/s"}, "rate_limit='0/s' allows no start"),
    ],
)
def test_a_bad_limit_declaration_fails_at_task_with_one_line(options: dict[str, Any], message: str) -> None:
    async def two(ctx: dict[str, Any], n: int = 0) -> None: ...

    with pytest.raises(WorkerModuleError) as caught:
        task(two, **options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_rate_limit_reads_seconds_minutes_and_hours() -> None:
    async def t(ctx: dict[str, Any]) -> None: ...

    assert task(t, rate_limit="100/m").limits.rate == (100, 60_000)  # type: ignore[union-attr]
    assert task(t, rate_limit=" 5 / s ").limits.rate == (5, 1_000)  # type: ignore[union-attr]
    assert task(t, rate_limit="2/h").limits.rate == (2, 3_600_000)  # type: ignore[union-attr]
    assert task(t).limits is None
