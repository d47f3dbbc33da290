"""SIGTERM a busy worker again and again: running jobs finish within the grace, the rest go back.

A real worker process (concurrency 20, ``SCALR_QUEUE_SHUTDOWN_GRACE=2s``) runs a mix of short
jobs (≤0.5 s) and long ones (60 s). Each SIGTERM must let the short jobs finish and exit within
the grace; long jobs are cancelled, put back on the queue, and later run again with
``job_try == 1`` (a shutdown is not a failed try). At the end every job ran to completion once.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

import scalr_queue
from tests.support import wait_until

from .rsupport import count_keys, leased_by_pid, run_counts, start_worker, worker_env, write_module

QUEUE = "drain"
GRACE = 2.0
CONCURRENCY = 20
LONG = 60.0

MODULE = """
import asyncio

async def job(ctx, i: int, secs: float) -> None:
    r = ctx["redis"]
    await r.rpush("rel:starts", f"{ctx['job_id']}:{ctx['job_try']}")
    if secs > 5 and await r.exists("rel:fast"):
        secs = 0.01  # the long jobs' re-run, after the shutdowns, is quick
    await asyncio.sleep(secs)
    await r.hincrby("rel:runs", ctx["job_id"], 1)

tasks = [job]
"""
CANCELLED_RE = re.compile(r"(s\d+):job cancelled by shutdown: back on the queue, not counted as a try")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_sigterm_under_load_finishes_within_grace_and_requeues_the_rest_uncounted(
    redis: Redis, redis_url: str, tmp_path: Path, full: bool, record: Callable[..., None]
) -> None:
    n_jobs, cycles = (3_000, 6) if full else (300, 2)
    rng = random.Random(3)
    secs = {f"s{i:05d}": (LONG if rng.random() < 0.05 else round(rng.uniform(0.05, 0.5), 3)) for i in range(n_jobs)}
    jobs = [
        ("job", {"i": i, "secs": s, "_job_id": job_id, "_queue_name": QUEUE})
        for i, (job_id, s) in enumerate(secs.items())
    ]
    for start in range(0, n_jobs, 1000):
        await scalr_queue.enqueue_many(jobs[start : start + 1000])

    cwd = write_module(tmp_path / "mod", MODULE)
    env = worker_env(
        redis_url,
        SCALR_QUEUE_SHUTDOWN_GRACE=f"{GRACE}s",
        SCALR_QUEUE_CONCURRENCY=str(CONCURRENCY),
        SCALR_QUEUE_LEASE="5s",
    )
    cancelled: Counter[str] = Counter()
    exits: list[float] = []
    for cycle in range(cycles):
        proc = start_worker(f"worker-{cycle}", cwd, env, tmp_path, "--queue", QUEUE)
        try:
            pid = proc.popen.pid
            await wait_until(lambda pid=pid: _busy(redis, pid), timeout=30, what=f"worker {cycle} to fill its slots")
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            running = await leased_by_pid(redis, QUEUE, pid)
            proc.popen.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            await asyncio.to_thread(proc.popen.wait, GRACE + 15)
            exits.append(time.monotonic() - sent)
        finally:
            proc.stop(timeout=5, sig=signal.SIGKILL)
        log = proc.log()
        assert proc.popen.returncode == 0, log[-2000:]
        now_cancelled = CANCELLED_RE.findall(log)
        cancelled.update(now_cancelled)
        runs = await run_counts(redis)
        short_running = [j for j in running if secs[j] < GRACE]
        assert all(runs.get(j) == 1 for j in short_running), "a job running at SIGTERM did not finish in the grace"
        assert all(secs[j] == LONG for j in now_cancelled), "only jobs longer than the grace are cancelled"
        assert {j for j in running if secs[j] == LONG} <= set(now_cancelled)
        assert f"{len(now_cancelled)} requeued at shutdown" in log

    await redis.set("rel:fast", 1)
    drain = start_worker("worker-drain", cwd, env, tmp_path, "--queue", QUEUE, "--burst")
    try:
        await asyncio.to_thread(drain.popen.wait, 300)
    finally:
        drain.stop(timeout=5, sig=signal.SIGKILL)
    assert drain.popen.returncode == 0, drain.log()[-2000:]

    runs = await run_counts(redis)
    starts = [s.decode().rsplit(":", 1) for s in await redis.lrange("rel:starts", 0, -1)]
    started = Counter(job_id for job_id, _ in starts)
    lost = [j for j in secs if j not in runs]
    record(
        order=4,
        scenario=f"SIGTERM under load ({cycles} times, grace {GRACE:g}s)",
        jobs=n_jobs,
        kills=cycles,
        restarts=cycles,
        lost=len(lost),
        duplicates=sum(n - 1 for n in runs.values()),
        reconnect=None,
        notes=f"{sum(cancelled.values())} long jobs cancelled after the grace and re-run with job_try 1; "
        f"worker exit {max(exits):.2f}s after SIGTERM at worst",
    )
    assert not lost
    assert set(runs.values()) == {1}, "every job completed exactly once"
    assert cancelled, "some long jobs were running at a SIGTERM"
    assert all(started[j] == 1 + cancelled[j] for j in secs), "each cancelled job was re-run once per cancellation"
    assert {t for _, t in starts} == {"1"}, "a shutdown never counts as a try"
    assert max(exits) <= GRACE + 1.5
    assert await redis.zcard(f"scalr:failed:{QUEUE}") == 0
    assert await redis.zcard(f"arq:queue:{QUEUE}") == 0
    assert await count_keys(redis, "arq:retry:*") == 0


async def _busy(redis: Redis, pid: int) -> bool:
    return len(await leased_by_pid(redis, QUEUE, pid)) >= CONCURRENCY // 2
