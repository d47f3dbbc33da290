"""Cancel under a least-privilege Redis user: pushed when the ACL allows the cancel channel, polled when not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import CancelOutcome, JobStatus
from scalr_queue.redis._server import RedisServer
from tests.support import wait_until

from .rsupport import start_worker, worker_env, write_module
from .test_security import ACL_RULES, PASSWORD, PASSWORD_URL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
MODULE = """
import asyncio, time

async def sleepy(ctx) -> None:
    r = ctx["redis"]
    await r.rpush("scalr:test:started", ctx["job_id"])
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await r.set("scalr:test:cancelled-at", repr(time.time()))
        raise

tasks = [sleepy]
"""


@pytest.mark.parametrize("channel", [True, False], ids=["with-the-channel", "without-the-channel"])
async def test_a_least_privilege_user_cancels_a_running_job(tmp_path: Path, channel: bool) -> None:
    server = RedisServer().start()
    admin = Redis.from_url(server.url)
    # the README's line allows the cancel channel; without it, the same line minus those rules
    documented = ACL_RULES.format(password=PASSWORD)
    channel_rules = ("&scalr:cancel:*", "+subscribe", "+publish")
    assert all(rule in documented.split() for rule in channel_rules)
    rules = documented if channel else " ".join(w for w in documented.split() if w not in channel_rules)
    await admin.execute_command("ACL", "SETUSER", "scalr", *rules.split())
    url = f"redis://scalr:{PASSWORD_URL}@127.0.0.1:{server.port}/0"
    cwd = write_module(tmp_path / "mod", MODULE, name="cancel_jobs")
    worker = start_worker("acl-cancel", cwd, worker_env(url), tmp_path, module="cancel_jobs")
    client = scalr_queue.QueueClient(scalr_queue.Settings(REDIS_URL=url))  # type: ignore[call-arg]
    try:
        job = await client.enqueue("sleepy")
        await wait_until(lambda: _llen(admin, "scalr:test:started"), timeout=20, what="job start")
        sent = time.time()
        assert await job.cancel() is CancelOutcome.CANCELLING
        await wait_until(lambda: _is_cancelled(job), timeout=10, what="cancelled")
        took = float(await admin.get("scalr:test:cancelled-at") or 0) - sent
    finally:
        worker.stop(timeout=30)
        await client.close()
        await admin.aclose()
        server.close()
    log = worker.log()
    assert "Traceback" not in log and "lost Redis" not in log, log[-3000:]
    warned = "may not subscribe to scalr:cancel:default" in log
    assert warned is not channel, log[-3000:]
    # pushed: milliseconds; polled: within one 0.5 s poll (plus a loaded machine's slack)
    assert took < (0.5 if channel else 2.0), f"cancelled {took:.3f}s after the request"


async def _llen(redis: Redis, key: str) -> bool:
    return int(await redis.llen(key)) > 0


async def _is_cancelled(job: Any) -> bool:
    return await job.status() is JobStatus.CANCELLED
