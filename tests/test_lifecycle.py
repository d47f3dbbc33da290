"""Shutdown, crashes, leases, rolling deploys, wake-ups and old backlogs: nothing lost, nothing stolen."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobStatus
from scalr_queue.redis import _scripts
from tests.support import running_worker, spawn_worker, wait_until

SLOW_MODULE = """
import asyncio, time

async def slow(ctx, secs: float) -> str:
    r = ctx["redis"]
    await r.rpush("starts", f"{ctx['job_try']}:{time.time()}")
    if not await r.get("fast"):
        await asyncio.sleep(secs)
    await r.rpush("done", ctx["job_id"])
    return "finished"

tasks = [slow]
"""


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid``, in nanosecond resolution (``/proc/<pid>/stat`` counts 10 ms ticks)."""
    return sum(int((t / "schedstat").read_text().split()[0]) for t in Path(f"/proc/{pid}/task").iterdir()) / 1e9


async def started(redis: Redis, n: int = 1) -> bool:
    return int(await redis.llen("starts")) >= n


async def test_sigterm_lets_running_jobs_finish_within_the_grace(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_SHUTDOWN_GRACE="10s")
    proc = spawn_worker("jobs_mod", worker_module(SLOW_MODULE))
    try:
        job = await scalr_queue.enqueue("slow", secs=1.0)
        await wait_until(lambda: started(redis), what="job start")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert time.monotonic() - sent >= 0.5, "the worker waited for the running job"
    assert await redis.lrange("done", 0, -1) == [job.job_id.encode()]
    assert await job.status() is JobStatus.COMPLETE
    assert "shutdown on SIGTERM" in out


async def test_jobs_cancelled_after_the_grace_go_back_uncounted_and_run_again(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_SHUTDOWN_GRACE="300ms")
    cwd = worker_module(SLOW_MODULE)
    proc = spawn_worker("jobs_mod", cwd)
    job = await scalr_queue.enqueue("slow", secs=60)
    await wait_until(lambda: started(redis), what="job start")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "cancelled by shutdown: back on the queue, not counted as a try" in out
    assert await job.status() is JobStatus.QUEUED
    assert not await redis.exists(f"arq:retry:{job.job_id}"), "the cancelled attempt is not counted"
    assert await scalr_queue.get_client().failed.count() == 0
    await redis.set("fast", 1)
    proc2 = spawn_worker("jobs_mod", cwd, "--burst")
    out2, _ = proc2.communicate(timeout=30)
    assert proc2.returncode == 0, out2
    assert [s.split(b":")[0] for s in await redis.lrange("starts", 0, -1)] == [b"1", b"1"]
    assert await job.result(timeout=1) == "finished"


async def test_sigkilled_workers_jobs_are_redelivered_within_about_one_lease(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_LEASE="1s", SCALR_QUEUE_JOB_TIMEOUT="1h")
    cwd = worker_module(SLOW_MODULE)
    victim = spawn_worker("jobs_mod", cwd)
    rescuer = spawn_worker("jobs_mod", cwd)
    try:
        job = await scalr_queue.enqueue("slow", secs=3600)
        await wait_until(lambda: started(redis), what="job start")
        first = (await redis.lrange("starts", 0, -1))[0]
        owner = (await redis.get(f"arq:in-progress:{job.job_id}")).decode()
        killed = victim if owner.split(":")[1] == str(victim.pid) else rescuer
        survivor = rescuer if killed is victim else victim
        await redis.set("fast", 1)
        killed.kill()
        killed.communicate(timeout=10)
        t_kill = time.time()
        await wait_until(lambda: started(redis, 2), timeout=10, what="redelivery")
        second = (await redis.lrange("starts", 0, -1))[1]
        redelivered_after = float(second.split(b":")[1]) - t_kill
        assert redelivered_after < 1.0 + 1.5, f"redelivered {redelivered_after:.2f}s after the kill"
        assert first.startswith(b"1:") and second.startswith(b"2:"), "a crash counts as a try"
        assert await job.result(timeout=10) == "finished"
    finally:
        for proc in (victim, rescuer):
            if proc.poll() is None:
                proc.terminate()
                proc.communicate(timeout=30)
    assert survivor.returncode == 0


LONG_RUNS: list[str] = []


async def long_job(ctx: dict[str, Any]) -> str:
    LONG_RUNS.append(ctx["worker_id"])
    await asyncio.sleep(2.5)
    return "done once"


async def test_a_live_workers_lease_is_renewed_so_a_long_job_is_never_stolen(
    redis: Redis, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_LEASE="600ms", SCALR_QUEUE_POLL_INTERVAL="100ms")
    LONG_RUNS.clear()
    async with running_worker([long_job]), running_worker([long_job]):
        job = await scalr_queue.enqueue("long_job")
        assert await job.result(timeout=10) == "done once"
    assert len(LONG_RUNS) == 1


SEEN: list[tuple[str, int]] = []


async def old_task(ctx: dict[str, Any]) -> None:
    SEEN.append(("old_task", ctx["job_try"]))


async def new_task(ctx: dict[str, Any]) -> None:
    SEEN.append(("new_task", ctx["job_try"]))


async def test_unknown_task_is_put_back_for_a_newer_worker_not_failed(
    redis: Redis, set_env: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    set_env(SCALR_QUEUE_UNKNOWN_TASK_DELAY="200ms")
    SEEN.clear()

    def put_backs() -> int:
        return sum("this worker has no task 'new_task'" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="scalr_queue.worker"):
        async with running_worker([old_task]):
            job = await scalr_queue.enqueue("new_task")
            await wait_until(lambda: put_backs() >= 2, timeout=5, what="the old worker to put the job back twice")
    # the old worker has stopped: the job waits on the queue, its tries given back each time
    enqueued_at = orjson.loads(await redis.get(f"arq:job:{job.job_id}"))["et"]
    score = await redis.zscore("arq:queue:default", job.job_id)
    assert score is not None and score >= enqueued_at + 2 * 200, "each put-back deferred it by 200 ms"
    assert not await redis.exists(f"arq:retry:{job.job_id}", f"arq:in-progress:{job.job_id}")
    assert await redis.zcard("scalr:leases:default") == 0
    assert SEEN == []
    async with running_worker([old_task, new_task]):
        await job.result(timeout=5)
    assert SEEN == [("new_task", 1)], "put-backs are not counted as tries"
    assert await scalr_queue.get_client().failed.count() == 0


async def test_unknown_task_fails_after_the_configured_bound(redis: Redis, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_UNKNOWN_TASK_DELAY="100ms", SCALR_QUEUE_UNKNOWN_TASK_MAX_AGE="500ms")
    async with running_worker([old_task]):
        job = await scalr_queue.enqueue("old_tsk")
        await wait_until(lambda: redis.zscore("scalr:failed:default", job.job_id), timeout=5, what="failed")
    failed = await scalr_queue.get_client().failed.get(job.job_id)
    assert failed.error_type == "UnknownTask"
    assert "no worker knows task 'old_tsk' (did you mean 'old_task'?)" in failed.reason
    assert failed.retriable


async def stamp(ctx: dict[str, Any]) -> None:
    await ctx["redis"].rpush("picked", time.time())


async def test_an_idle_worker_starts_new_work_within_milliseconds_not_a_poll(
    redis: Redis, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_POLL_INTERVAL="5s")
    delays = []
    async with running_worker([stamp]):
        await asyncio.sleep(0.2)  # idle: blocked on the wake list
        for _ in range(10):
            sent = time.time()
            job = await scalr_queue.enqueue("stamp")
            await job.result(timeout=3)
            delays.append(float((await redis.lrange("picked", -1, -1))[0]) - sent)
            await asyncio.sleep(0.05)
        # a deferred job runs when due, not at the next 5 s poll
        sent = time.time()
        job = await scalr_queue.enqueue("stamp", _defer_by=0.4)
        await job.result(timeout=3)
        deferred_delay = float((await redis.lrange("picked", -1, -1))[0]) - sent
    assert sorted(delays)[5] < 0.05, delays
    assert max(delays) < 0.5, delays
    assert 0.39 <= deferred_delay < 0.7


async def test_an_idle_worker_claims_a_woken_job_on_the_connection_the_wake_arrived_on(
    redis: Redis, redis_url: str, set_env: Callable[..., None]
) -> None:
    """The CLAIM rides behind the BRPOP: Redis runs it as the wake lands, with no second trip."""
    set_env(SCALR_QUEUE_POLL_INTERVAL="30s")
    claim_sha = _scripts.sha(_scripts.CLAIM)
    seen: list[tuple[str, str]] = []  # (client, command head), in the order Redis ran them
    watcher_client: Redis = Redis.from_url(redis_url)

    async def watch() -> None:
        async with watcher_client.monitor() as monitor:
            async for cmd in monitor.listen():
                seen.append((f"{cmd['client_address']}:{cmd['client_port']}", cmd["command"][:60]))
                if cmd["command"] == "ECHO watch-over":
                    return

    async with running_worker([stamp]):
        await asyncio.sleep(0.3)  # idle: the pipelined BRPOP is waiting
        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0.2)
        job = await scalr_queue.enqueue("stamp")
        await job.result(timeout=3)
        await redis.echo("watch-over")
        await asyncio.wait_for(watcher, 10)
    await watcher_client.aclose()
    claims = [i for i, (_, command) in enumerate(seen) if command.startswith(f"EVALSHA {claim_sha}")]
    assert claims, seen
    first = claims[0]
    assert seen[first - 1][1].startswith("LPUSH scalr:wake:"), "the claim ran as the enqueue's wake landed"
    claimer = seen[first][0]
    after = [command for client, command in seen[first + 1 :] if client == claimer]
    assert after and after[0].startswith("BRPOP"), "on the connection that blocks in BRPOP: one trip, not two"


async def nap(ctx: dict[str, Any], secs: float) -> None:
    await ctx["redis"].rpush("napped", time.time())
    await asyncio.sleep(secs)


async def test_a_worker_whose_slots_free_up_with_nothing_queued_waits_for_a_wake_not_a_claim(
    redis: Redis, redis_url: str, set_env: Callable[..., None]
) -> None:
    """Its last claim filled every slot and saw nothing else due, so a freed slot blocks in BRPOP with
    the claim behind it: every CLAIM Redis runs is one an enqueue's wake set off, none comes back empty."""
    set_env(SCALR_QUEUE_POLL_INTERVAL="30s")
    claim_sha = _scripts.sha(_scripts.CLAIM)
    seen: list[str] = []  # command heads, in the order Redis ran them
    watcher_client: Redis = Redis.from_url(redis_url)

    async def watch() -> None:
        async with watcher_client.monitor() as monitor:
            async for cmd in monitor.listen():
                seen.append(cmd["command"][:60])
                if cmd["command"] == "ECHO watch-over":
                    return

    async with running_worker([nap, stamp], concurrency=2):
        await asyncio.sleep(0.3)  # idle: the pipelined BRPOP is waiting
        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0.2)
        naps = []
        for _ in range(2):  # the second fills the last slot
            naps.append(await scalr_queue.enqueue("nap", secs=0.3))
            await asyncio.sleep(0.1)
        for job in naps:
            await job.result(timeout=3)
        await asyncio.sleep(0.3)  # both slots free again; nothing was queued meanwhile
        sent = time.monotonic()
        job = await scalr_queue.enqueue("stamp")
        await job.result(timeout=3)
        took = time.monotonic() - sent
        await redis.echo("watch-over")
        await asyncio.wait_for(watcher, 10)
    await watcher_client.aclose()
    claims = [i for i, command in enumerate(seen) if command.startswith(f"EVALSHA {claim_sha}")]
    assert len(claims) == 3, [seen[i - 1 : i + 1] for i in claims]
    assert all(seen[i - 1].startswith("LPUSH scalr:wake:") for i in claims), [seen[i - 1] for i in claims]
    assert took < 1.0, "the job enqueued after the slots freed started at its wake, not at the 30 s poll"


async def test_a_deferred_job_behind_a_claim_that_filled_every_slot_still_starts_when_due(
    redis: Redis, set_env: Callable[..., None]
) -> None:
    """The full claim that took the running job reported when the deferred one is due, so the worker
    wakes for it then, not at the next safety poll."""
    set_env(SCALR_QUEUE_POLL_INTERVAL="30s")
    async with running_worker([nap, stamp], concurrency=1):
        await asyncio.sleep(0.3)
        sent = time.time()
        later = await scalr_queue.enqueue("stamp", _defer_by=0.6)
        await asyncio.sleep(0.1)
        await scalr_queue.enqueue("nap", secs=0.2)  # takes the only slot, and ends before the stamp is due
        await later.result(timeout=5)
    delay = float((await redis.lrange("picked", -1, -1))[0]) - sent
    assert 0.59 <= delay < 1.0, f"the deferred job started {delay:.2f}s after it was sent, due at 0.6s"


@pytest.mark.parametrize("jobs_before", [0, 1], ids=["fresh", "after-a-job"])
async def test_an_idle_worker_whose_pipelined_claim_meets_a_flushed_script_cache_still_starts_the_job(
    redis: Redis, set_env: Callable[..., None], jobs_before: int
) -> None:
    """Redis lost its scripts (a restart, SCRIPT FLUSH, a failover to a replica) under a waiting
    worker: the claim behind the BRPOP fails with NOSCRIPT after the BRPOP took the wake, and the
    usual claim right after loads the script and takes the job. Also when the worker's last claim
    had taken a job and seen nothing more due (it would otherwise wait for another wake)."""
    set_env(SCALR_QUEUE_POLL_INTERVAL="30s")
    async with running_worker([stamp]):
        for _ in range(jobs_before):
            await (await scalr_queue.enqueue("stamp")).result(timeout=3)
        await asyncio.sleep(0.3)  # idle: the claim is queued behind the BRPOP
        await redis.script_flush()
        sent = time.monotonic()
        job = await scalr_queue.enqueue("stamp")
        await job.result(timeout=5)
    assert time.monotonic() - sent < 2.0, "started at the wake, not at the 30 s poll"


async def test_an_idle_worker_whose_waiting_connection_is_killed_waits_again_on_a_new_one_without_an_outage(
    redis: Redis, set_env: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    """The server drops the connection blocked in BRPOP (CLIENT KILL, an idle-timeout proxy): no
    reply was read, so the wait is sent again on a fresh connection at once. Nothing is logged as
    lost, and the next enqueue starts at its wake, not at the 30 s poll."""
    set_env(SCALR_QUEUE_POLL_INTERVAL="30s")
    async with running_worker([stamp]):
        await asyncio.sleep(0.3)  # idle: blocked in the pipelined BRPOP
        (first,) = [int(c["id"]) for c in await redis.client_list() if c.get("cmd") == "brpop"]
        with caplog.at_level(logging.INFO, logger="scalr_queue.worker"):
            await redis.client_kill_filter(_id=first)
            await wait_until(lambda: _blocked_again(redis, first), what="a new BRPOP connection")
            sent = time.monotonic()
            await (await scalr_queue.enqueue("stamp")).result(timeout=5)
    assert time.monotonic() - sent < 2.0, "started at the wake, not at the 30 s poll"
    assert "lost Redis" not in caplog.text


async def _blocked_again(redis: Redis, old: int) -> bool:
    return any(c.get("cmd") == "brpop" and int(c["id"]) != old for c in await redis.client_list())


async def test_stopping_an_idle_worker_ends_its_wait_at_once_and_claims_nothing(
    redis: Redis, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_POLL_INTERVAL="30s")
    async with running_worker([stamp]) as worker:
        await asyncio.sleep(0.3)  # idle in BRPOP, its claim queued behind it, for up to 30 s
        asked = time.monotonic()  # leaving the block stops the worker and waits for it
    took = time.monotonic() - asked
    job = await scalr_queue.enqueue("stamp")
    await asyncio.sleep(0.2)
    assert took < 2.0, f"the stop waited {took:.2f}s for the 30 s BRPOP"
    assert await job.status() is JobStatus.QUEUED, "the stopped worker's claim took nothing"
    assert await redis.zcard("scalr:leases:default") == 0
    assert await redis.exists(f"scalr:stop:default:{worker.worker_id}") == 0, "the claim cleared its stop list"


async def test_an_idle_worker_uses_under_one_percent_of_a_core(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    """Idle: blocked in BRPOP, a heartbeat every second (the tests' health interval), nothing else.

    Measured at 0.12-0.18 % of a core, 0.23-0.27 % with coverage measuring the worker.
    """
    proc = spawn_worker("jobs_mod", worker_module(SLOW_MODULE))
    try:
        await wait_until(lambda: redis.exists("scalr:workers:default"), what="worker start")
        await asyncio.sleep(0.5)
        before, started_at = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(3)
        used, window = cpu_seconds(proc.pid) - before, time.monotonic() - started_at
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert used / window < 0.01, f"idle worker used {used * 1000:.1f} ms of CPU in {window:.2f} s"


async def test_a_backlog_older_than_a_day_still_runs(redis: Redis) -> None:
    SEEN.clear()
    job = await scalr_queue.enqueue("old_task")
    two_days_ago = int((time.time() - 2 * 86400) * 1000)
    payload = orjson.loads(await redis.get(f"arq:job:{job.job_id}"))
    payload["et"] = two_days_ago
    await redis.set(f"arq:job:{job.job_id}", orjson.dumps(payload))
    await redis.zadd("arq:queue:default", {job.job_id: two_days_ago})
    assert await redis.ttl(f"arq:job:{job.job_id}") == -1
    async with running_worker([old_task]):
        await job.result(timeout=5)
    assert SEEN == [("old_task", 1)]


async def test_a_job_past_its_expires_goes_to_the_failed_set_with_that_reason(redis: Redis) -> None:
    SEEN.clear()
    job = await scalr_queue.enqueue("old_task", _expires=0.2)
    assert await redis.ttl(f"arq:job:{job.job_id}") > 86_000, "only a long backstop TTL"
    await asyncio.sleep(0.3)
    async with running_worker([old_task]):
        with pytest.raises(scalr_queue.JobFailedError, match="expired"):
            await job.result(timeout=5)
    assert SEEN == []
    failed = await scalr_queue.get_client().failed.get(job.job_id)
    assert failed.reason == "expired: not started before its _expires deadline"


async def test_sigterm_with_every_slot_busy_still_honours_the_grace(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_SHUTDOWN_GRACE="300ms")
    proc = spawn_worker("jobs_mod", worker_module(SLOW_MODULE), "--concurrency", "2")
    jobs = [await scalr_queue.enqueue("slow", secs=60) for _ in range(3)]
    await wait_until(lambda: started(redis, 2), what="both slots busy")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert time.monotonic() - sent < 5
    assert [await j.status() for j in jobs] == [JobStatus.QUEUED] * 3


CRON_MODULE = """
from arq import cron

async def send_invoice_email(ctx, invoice_id: int) -> None:
    pass

async def cleanup(ctx) -> None:
    await ctx["redis"].rpush("cron-ran", ctx["job_id"])

tasks = [send_invoice_email]
cron_jobs = [cron(cleanup, run_at_startup=True)]
"""


async def test_cron_jobs_from_the_worker_module_run_even_with_strict_task_checks(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    cwd = worker_module(CRON_MODULE)
    set_env(SCALR_QUEUE_TASKS="jobs_mod")
    proc = spawn_worker("jobs_mod", cwd)
    try:
        await wait_until(lambda: redis.llen("cron-ran"), timeout=10, what="cron run")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert (await redis.lrange("cron-ran", 0, -1))[0].startswith(b"cron:cleanup:")


async def test_a_dead_workers_job_runs_again_ahead_of_the_backlog_behind_it(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_LEASE="1s")
    cwd = worker_module(SLOW_MODULE)
    victim = spawn_worker("jobs_mod", cwd)
    first = await scalr_queue.enqueue("slow", secs=3600)
    await wait_until(lambda: started(redis), what="job start")
    victim.kill()
    victim.communicate(timeout=10)
    assert await first.status() is JobStatus.IN_PROGRESS  # its lease has not run out yet
    backlog = [await scalr_queue.enqueue("slow", secs=0) for _ in range(20)]
    await redis.set("fast", 1)
    await wait_until(lambda: _lease_gone(redis, first.job_id), timeout=5, what="lease expiry")
    assert await first.status() is JobStatus.QUEUED, "a dead worker's job is due again"
    rescuer = spawn_worker("jobs_mod", cwd, "--concurrency", "1", "--burst")
    out, _ = rescuer.communicate(timeout=60)
    assert rescuer.returncode == 0, out
    done = [d.decode() for d in await redis.lrange("done", 0, -1)]
    assert done[0] == first.job_id, "it keeps its place: claimed before the jobs enqueued after it"
    assert sorted(done[1:]) == sorted(j.job_id for j in backlog)


async def _lease_gone(redis: Redis, job_id: str) -> bool:
    return not await redis.exists(f"arq:in-progress:{job_id}")


async def test_a_second_stop_request_cancels_at_once_and_requeues(redis: Redis) -> None:
    async def forever(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(3600)

    async with running_worker([forever]) as worker:
        job = await scalr_queue.enqueue("forever")
        await wait_until(lambda: _running(job), what="start")
        started_at = time.monotonic()
        worker.request_stop()
        worker.request_stop()  # the second one does not wait for the 5 s grace
    assert time.monotonic() - started_at < 3
    assert await job.status() is JobStatus.QUEUED
    assert worker.shutdown_requeued == 1


async def _running(job: scalr_queue.Job) -> bool:
    return await job.status() is JobStatus.IN_PROGRESS
