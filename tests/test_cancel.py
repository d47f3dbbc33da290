"""Cancel: queued and scheduled jobs never run, running ones stop at once on any worker, finished ones stay."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from arq.jobs import Job as ArqJob
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import CancelOutcome, JobCancelledError, JobNotFoundError, JobStatus
from scalr_queue.control._cancel import cancel_suffix
from scalr_queue.redis._keys import cancels_key, leases_key, queue_key
from tests.support import run_cli, running_worker, spawn_worker, wait_until

CANCEL_MODULE = """
import asyncio, time

async def sleepy(ctx, secs: float) -> str:
    r = ctx["redis"]
    await r.rpush("started", ctx["job_id"])
    try:
        await asyncio.sleep(secs)
    except asyncio.CancelledError:
        await r.rpush("cancelled-at", f"{ctx['job_id']} {time.time()}")
        raise
    finally:
        await r.rpush("finally", ctx["job_id"])
    await r.rpush("completed", ctx["job_id"])
    return "done"

async def stubborn(ctx) -> str:
    try:
        await asyncio.sleep(3600)
    finally:
        raise RuntimeError("cleanup failed")

tasks = [sleepy, stubborn]
"""


@pytest.fixture
def worker_proc(worker_module: Callable[..., Path]) -> Iterator[subprocess.Popen[str]]:
    proc = spawn_worker("jobs_mod", worker_module(CANCEL_MODULE))
    yield proc
    if proc.poll() is None:
        proc.terminate()
        proc.communicate(timeout=30)


async def listed(redis: Redis, key: str) -> list[str]:
    return [v.decode() for v in await redis.lrange(key, 0, -1)]


async def has_started(redis: Redis, job_id: str) -> bool:
    return job_id in await listed(redis, "started")


async def test_cancel_of_a_queued_job_removes_it_and_keeps_it_cancelled_with_its_reason(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    job = await scalr_queue.enqueue("sleepy", secs=0)
    before = time.time()
    assert await job.cancel(reason="customer left") is CancelOutcome.CANCELLED
    assert await job.status() is JobStatus.CANCELLED
    info = await job.info()
    assert info.cancel_reason == "customer left"
    assert info.cancelled_at is not None and info.cancelled_at.timestamp() >= before - 1
    assert info.task == "sleepy" and info.kwargs == {"secs": 0}
    assert info.to_json()["status"] == "cancelled"
    assert await redis.zcard(queue_key("default")) == 0
    assert 0 < await redis.pttl(f"arq:result:{job.job_id}") <= 3600_000, "kept like a result"
    assert not await redis.exists(f"arq:job:{job.job_id}")
    with pytest.raises(JobCancelledError, match="customer left"):
        await job.result(timeout=1)
    proc = spawn_worker("jobs_mod", worker_module(CANCEL_MODULE), "--burst")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert await listed(redis, "started") == [], "a cancelled job never runs"
    assert await scalr_queue.get_client().failed.count() == 0, "not in the failed set"


async def test_cancel_of_a_scheduled_job_removes_it_before_it_is_due(redis: Redis) -> None:
    job = await scalr_queue.enqueue("sleepy", secs=0, _defer_by=60)
    assert await job.status() is JobStatus.DEFERRED
    assert await scalr_queue.cancel(job.job_id) is CancelOutcome.CANCELLED
    info = await job.info()
    assert info.status is JobStatus.CANCELLED and info.cancel_reason is None
    assert info.error is not None and info.error["type"] == "JobCancelled"
    assert await redis.zcard(queue_key("default")) == 0


async def test_cancel_of_a_running_job_stops_it_at_once_runs_its_cleanup_and_ends_cancelled(
    redis: Redis, worker_proc: subprocess.Popen[str]
) -> None:
    job = await scalr_queue.enqueue("sleepy", secs=3600)
    await wait_until(lambda: has_started(redis, job.job_id), what="job start")
    await asyncio.sleep(0.2)  # the listener is subscribed long before; this is just a running task
    sent = time.time()
    assert await job.cancel(reason="stop") is CancelOutcome.CANCELLING
    await wait_until(lambda: _is(job, JobStatus.CANCELLED), timeout=5, what="status cancelled")
    (entry,) = await listed(redis, "cancelled-at")
    job_id, at = entry.split()
    assert job_id == job.job_id
    # the bench measures the latency (p50/p99); here a generous bound for a shared, loaded machine
    assert float(at) - sent < 1.0, f"cancelled {float(at) - sent:.3f}s after the request"
    assert await listed(redis, "finally") == [job.job_id], "the task's finally ran"
    assert await listed(redis, "completed") == []
    info = await job.info()
    assert info.cancel_reason == "stop" and info.tries == 1
    assert not await redis.exists(f"arq:in-progress:{job.job_id}"), "lease released"
    assert await redis.zcard(leases_key("default")) == 0
    assert not await redis.exists(f"arq:retry:{job.job_id}"), "not to be retried"
    assert not await redis.hlen(cancels_key("default")), "the cancel mark is gone"
    assert await scalr_queue.get_client().failed.count() == 0
    await asyncio.sleep(0.3)
    assert await listed(redis, "started") == [job.job_id], "never run again"


async def _is(job: scalr_queue.Job[object], status: JobStatus) -> bool:
    return await job.status() is status


async def test_a_task_whose_cleanup_raises_while_cancelled_ends_cancelled_not_retried(
    redis: Redis, worker_proc: subprocess.Popen[str]
) -> None:
    job = await scalr_queue.enqueue("stubborn")
    await wait_until(lambda: _is(job, JobStatus.IN_PROGRESS), what="job start")
    assert await job.cancel() is CancelOutcome.CANCELLING
    await wait_until(lambda: _is(job, JobStatus.CANCELLED), timeout=5, what="status cancelled")
    assert await scalr_queue.get_client().failed.count() == 0
    assert await redis.zcard(queue_key("default")) == 0


async def test_cancel_of_a_finished_job_says_so_and_changes_nothing(
    redis: Redis, worker_proc: subprocess.Popen[str]
) -> None:
    job = await scalr_queue.enqueue("sleepy", secs=0)
    assert await job.result(timeout=10) == "done"
    before = await redis.get(f"arq:result:{job.job_id}")
    assert await job.cancel() is CancelOutcome.FINISHED
    assert await redis.get(f"arq:result:{job.job_id}") == before
    assert await job.status() is JobStatus.COMPLETE
    cli = run_cli("cancel", job.job_id)
    assert cli.returncode == 3, cli.stderr
    assert cli.stdout.strip() == f"job {job.job_id} had already finished (complete): nothing changed"


async def test_cancel_of_an_unknown_job_raises_and_the_cli_says_so_in_one_line(redis_url: str) -> None:
    with pytest.raises(JobNotFoundError, match="no job 'nope' on queue 'default'"):
        await scalr_queue.cancel("nope")
    cli = run_cli("cancel", "nope")
    assert cli.returncode == 1
    assert cli.stderr.strip().count("\n") == 0 and "no job 'nope'" in cli.stderr
    assert "Traceback" not in cli.stderr


async def test_cli_cancel_reports_what_it_did_as_text_and_json(redis: Redis) -> None:
    job = await scalr_queue.enqueue("sleepy", secs=0, _defer_by=60)
    cli = run_cli("cancel", job.job_id, "--reason", "dup", "--json")
    assert cli.returncode == 0, cli.stderr
    assert '"outcome": "cancelled"' in cli.stdout and f'"job_id": "{job.job_id}"' in cli.stdout
    shown = run_cli("job", job.job_id, "--json")
    assert '"status": "cancelled"' in shown.stdout and '"cancel_reason": "dup"' in shown.stdout
    again = run_cli("cancel", job.job_id)
    assert again.returncode == 3 and "(cancelled): nothing changed" in again.stdout


async def test_cancels_racing_the_claim_never_let_a_job_complete_nor_retry(
    redis: Redis, worker_proc: subprocess.Popen[str]
) -> None:
    """A cancel sent right after the enqueue lands before, during or just after the claim."""
    await wait_until(lambda: _worker_seen(), what="worker registered")
    outcomes = []
    for _ in range(30):
        job = await scalr_queue.enqueue("sleepy", secs=0.3)
        outcomes.append((job, await job.cancel()))
    for job, outcome in outcomes:
        await wait_until(lambda j=job: _settled(j), timeout=10, what=f"job {job.job_id} settled")
        assert outcome is not CancelOutcome.FINISHED
        assert await job.status() is JobStatus.CANCELLED, outcome
    assert await listed(redis, "completed") == []
    assert await scalr_queue.get_client().failed.count() == 0
    assert await redis.zcard(leases_key("default")) == 0


async def _worker_seen() -> bool:
    return bool(await scalr_queue.get_client().workers())


async def _settled(job: scalr_queue.Job[object]) -> bool:
    return await job.status() in (JobStatus.CANCELLED, JobStatus.COMPLETE, JobStatus.FAILED)


async def test_a_cancel_heard_before_the_claim_reply_is_honoured_when_the_job_starts(redis: Redis) -> None:
    """The publish can overtake the CLAIM's reply (two connections): the worker notes the id."""

    async def sleepy(ctx: dict[str, object], secs: float) -> str:
        await redis.rpush("started", str(ctx["job_id"]))
        return "done"

    async with running_worker([sleepy]) as worker:
        # the CANCEL script marked the job as running (the claim is done) and published its id;
        # the publish reached this worker before the claim's reply did
        mark = b"60000\n" + cancel_suffix("early", "default", "raced", int(time.time() * 1000))
        await redis.hset(cancels_key("default"), "early", mark)
        worker.cancel_locally("early", None)
        job = await scalr_queue.get_client().enqueue("sleepy", secs=0, _job_id="early")
        await wait_until(lambda: _is(job, JobStatus.CANCELLED), timeout=5, what="status cancelled")
        assert (await job.info()).cancel_reason == "raced"
        assert not await redis.exists(cancels_key("default"))
        # an id heard cancelled whose mark is gone (that job finished) is a new job: it runs
        worker.cancel_locally("reused", None)
        reused = await scalr_queue.get_client().enqueue("sleepy", secs=0, _job_id="reused")
        assert await reused.result(timeout=5) == "done"
    assert await listed(redis, "started") == ["reused"]


async def test_arq_job_abort_cancels_a_running_job_and_then_reports_it_aborted(
    redis: Redis, worker_proc: subprocess.Popen[str]
) -> None:
    job = await scalr_queue.enqueue("sleepy", secs=3600)
    await wait_until(lambda: has_started(redis, job.job_id), what="job start")
    arq_job = ArqJob(job.job_id, redis, _queue_name=queue_key("default"), _deserializer=scalr_queue.arq_deserializer)
    # arq's result() gives up on a claimed job (it left the queue), so this first call says False
    assert await arq_job.abort(timeout=2, poll_delay=0.05) is False
    await wait_until(lambda: _is(job, JobStatus.CANCELLED), timeout=5, what="status cancelled")
    assert (await job.info()).cancel_reason == "aborted with arq's Job.abort()"
    assert await listed(redis, "finally") == [job.job_id]
    assert await redis.zcard("arq:abort") == 0, "the abort request is consumed"
    assert await arq_job.abort(timeout=2, poll_delay=0.05) is True


async def test_each_of_two_workers_cancels_the_jobs_it_holds(redis: Redis, worker_module: Callable[..., Path]) -> None:
    cwd = worker_module(CANCEL_MODULE)
    procs = [spawn_worker("jobs_mod", cwd, "--concurrency", "3") for _ in range(2)]
    try:
        jobs = [await scalr_queue.enqueue("sleepy", secs=3600) for _ in range(6)]
        await wait_until(lambda: _all_started(redis, 6), timeout=15, what="six starts")
        owners = {(await redis.get(f"arq:in-progress:{j.job_id}")).split(b":")[1] for j in jobs}
        assert len(owners) == 2, "both workers hold some of the jobs"
        outcomes = {await j.cancel() for j in jobs}
        assert outcomes == {CancelOutcome.CANCELLING}
        for job in jobs:
            await wait_until(lambda j=job: _is(j, JobStatus.CANCELLED), timeout=5, what="cancelled")
        assert sorted(await listed(redis, "finally")) == sorted(j.job_id for j in jobs)
    finally:
        for proc in procs:
            proc.terminate()
            proc.communicate(timeout=30)


async def _all_started(redis: Redis, n: int) -> bool:
    return int(await redis.llen("started")) >= n


async def test_a_cancel_published_while_the_listener_was_down_lands_when_it_resubscribes(redis: Redis) -> None:
    """The publish is fire-and-forget; the mark the CANCEL script leaves is read on every resubscribe."""

    async def sleepy(ctx: dict[str, object], secs: float) -> str:
        await redis.rpush("started", str(ctx["job_id"]))
        await asyncio.sleep(secs)
        return "done"

    async with running_worker([sleepy]) as worker:
        assert worker.cancel_watcher is not None
        watcher = worker.cancel_watcher
        await wait_until(watcher.subscribed.is_set, what="listener subscribed")
        job = await scalr_queue.enqueue("sleepy", secs=3600)
        await wait_until(lambda: has_started(redis, job.job_id), what="job start")
        # the mark as CANCEL writes it, but its publish lost (the listener was cut at that moment)
        mark = b"60000\n" + cancel_suffix(job.job_id, "default", "lost publish", int(time.time() * 1000))
        await redis.hset(cancels_key("default"), job.job_id, mark)
        await asyncio.sleep(0.2)
        assert await job.status() is JobStatus.IN_PROGRESS, "a mark alone is not pushed"
        before = watcher.subscriptions
        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await wait_until(lambda: watcher.subscriptions > before, what="listener resubscribed")
        await wait_until(lambda: _is(job, JobStatus.CANCELLED), timeout=5, what="cancelled after resubscribing")
        assert (await job.info()).cancel_reason == "lost publish"


async def test_a_mark_whose_publish_was_missed_is_found_by_the_next_lease_renewal(
    redis: Redis, set_env: Callable[..., None]
) -> None:
    """The safety net for a job taken over from a dead worker, which never heard its cancel."""
    set_env(SCALR_QUEUE_LEASE="1s")

    async def sleepy(ctx: dict[str, object], secs: float) -> str:
        await redis.rpush("started", str(ctx["job_id"]))
        await asyncio.sleep(secs)
        return "done"

    async with running_worker([sleepy]):
        job = await scalr_queue.enqueue("sleepy", secs=3600)
        await wait_until(lambda: has_started(redis, job.job_id), what="job start")
        mark = b"60000\n" + cancel_suffix(job.job_id, "default", "taken over", int(time.time() * 1000))
        await redis.hset(cancels_key("default"), job.job_id, mark)  # marked, never published
        await wait_until(lambda: _is(job, JobStatus.CANCELLED), timeout=3, what="cancelled by the renewal")
        assert (await job.info()).cancel_reason == "taken over"
