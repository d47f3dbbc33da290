"""A full Redis (small maxmemory, noeviction): enqueue refuses loudly, the backend answers 503,
nothing queued is lost, and a real worker drains the queue while Redis is still at its limit.

(tests/test_redis_full.py proves the same with an in-process worker; this one uses the real
worker process and the template backend, and records the figures.)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import QueueUnavailableError
from scalr_queue.redis._server import RedisServer
from tests.support import wait_until
from tests.template.template_support import Stack, base_env

from .rsupport import count_keys, start_worker, worker_env, write_module

QUEUE = "full"
MODULE = """
async def work(ctx, i: int, pad: str = "") -> int:
    return i  # writes nothing itself: its Redis is full on purpose

tasks = [work]
"""
DONE_RE = re.compile(r"← (f\d+):work\b")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


async def test_full_redis_refuses_new_jobs_and_a_real_worker_drains_the_rest(
    tmp_path: Path, set_env: Callable[..., None], full: bool, record: Callable[..., None]
) -> None:
    maxmemory = "16mb" if full else "4mb"
    server = RedisServer(extra_args=("--maxmemory", maxmemory, "--maxmemory-policy", "noeviction")).start()
    set_env(REDIS_URL=server.url)
    stack = Stack(redis=server, log_dir=tmp_path, env=base_env(server.url))
    redis = Redis.from_url(server.url)
    client = scalr_queue.QueueClient()
    accepted: list[str] = []
    try:
        stack.start_backend()
        http = stack.client()
        deadline = time.monotonic() + 60
        with pytest.raises(QueueUnavailableError) as refused:
            for i in range(500_000):
                assert time.monotonic() < deadline, "Redis never filled up"
                job_id = f"f{i:06d}"
                await client.enqueue("work", i=i, pad="x" * 500, _job_id=job_id, _queue_name=QUEUE)
                accepted.append(job_id)
        message = str(refused.value)
        assert "Redis is out of memory" in message and "\n" not in message
        memory = await redis.info("memory")
        used_at_refusal, limit = int(memory["used_memory"]), int(memory["maxmemory"])
        answer = http.post("/invoices/1/send")
        assert answer.status_code == 503, answer.text
        # the public body says only that the queue is unavailable; the backend's log says why
        assert answer.json() == {
            "error": "queue_unavailable",
            "detail": "the job queue is unavailable; try again shortly",
        }
        assert "Redis is out of memory" in stack.procs[0].log()
        # nothing already queued was lost or evicted
        assert await redis.zcard(f"arq:queue:{QUEUE}") == len(accepted)
        assert await count_keys(redis, "arq:job:*") == len(accepted)

        cwd = write_module(tmp_path / "mod", MODULE)
        env = worker_env(server.url, SCALR_QUEUE_CONCURRENCY="50", SCALR_QUEUE_KEEP_RESULT="2s")
        worker = start_worker("worker", cwd, env, tmp_path, "--queue", QUEUE)
        stack.procs.append(worker)  # stopped (by PID) with the stack
        started = time.monotonic()
        peak = used_at_refusal

        async def drained() -> bool:
            nonlocal peak
            peak = max(peak, int((await redis.info("memory"))["used_memory"]))
            return int(await redis.zcard(f"arq:queue:{QUEUE}")) == 0

        await wait_until(drained, timeout=120, interval=0.1, what="the worker to drain a full Redis")
        drain_s = time.monotonic() - started
        await wait_until(lambda: len(set(DONE_RE.findall(worker.log()))) >= len(accepted), timeout=10, what="log")
        completed = set(DONE_RE.findall(worker.log()))
        # once the drained jobs' short-lived results expire, Redis takes new work again
        await wait_until(lambda: _enqueue_ok(client), timeout=60, interval=0.5, what="enqueue to be accepted again")
        assert http.post("/invoices/2/send").status_code == 202
        assert worker.alive()
        failed = await redis.zcard(f"scalr:failed:{QUEUE}")
        errors = [line for line in worker.log().splitlines() if " ERROR " in line]
    finally:
        await client.close()
        await redis.aclose()
        stack.close()

    lost = [j for j in accepted if j not in completed]
    record(
        order=6,
        scenario=f"Redis full (maxmemory {maxmemory}, noeviction)",
        jobs=len(accepted),
        kills=0,
        restarts=0,
        lost=len(lost),
        duplicates=None,
        reconnect=None,
        notes=f"enqueue refused at {used_at_refusal / 2**20:.1f} MiB of {limit / 2**20:.1f} MiB "
        f"(QueueUnavailableError, backend 503); real worker drained it in {drain_s:.1f}s at the limit "
        f"(peak {peak / 2**20:.1f} MiB); enqueue accepted again once results expired",
    )
    assert not lost
    assert failed == 0
    assert not errors, errors[:5]


async def _enqueue_ok(client: scalr_queue.QueueClient) -> bool:
    try:
        await client.enqueue("work", i=-1, _queue_name="after-full")
    except QueueUnavailableError:
        return False
    return True
