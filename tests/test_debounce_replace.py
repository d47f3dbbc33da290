"""``_debounce`` and ``_replace``: one run per key, with the last arguments Redis applied, never two at once.

Workers are real processes. "Last" means the last enqueue Redis applied: the tests read that from
Redis's own MONITOR stream (commands in the order the server ran them), not from the callers.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobOptions, JobOptionsError, JobStatus
from scalr_queue.redis import _scripts
from scalr_queue.redis._keys import NEXT_PREFIX
from tests.support import ROOT, run_cli, spawn_worker, wait_until

RECORD_MODULE = """
import asyncio, json, time

async def record(ctx, n: int, secs: float = 0.0, fail: bool = False) -> int:
    r = ctx["redis"]
    await r.rpush("starts", json.dumps({"n": n, "t": time.time(), "id": ctx["job_id"], "try": ctx["job_try"]}))
    if secs and not await r.get("fast"):
        await asyncio.sleep(secs)
    await r.rpush("ends", json.dumps({"n": n, "t": time.time()}))
    if fail:
        raise RuntimeError("this run fails")
    return n

tasks = [record]
"""

# one process of the concurrency test: 25 tasks, each on its own client (own connection), all at once
ENQUEUER = """
import asyncio, json, sys, time
from scalr_queue import QueueClient

async def one(n, option):
    client = QueueClient()
    try:
        await client.redis()  # connect first, so the enqueues really race
        await start.wait()
        before = time.time()
        await client.enqueue("record", n=n, _job_id="K", **option)
        return n, before
    finally:
        await client.close()

async def main():
    global start
    start = asyncio.Event()
    first, option = int(sys.argv[1]), json.loads(sys.argv[2])
    tasks = [asyncio.ensure_future(one(n, option)) for n in range(first, first + 25)]
    await asyncio.sleep(0.5)
    start.set()
    print(json.dumps(dict(await asyncio.gather(*tasks))))

asyncio.run(main())
"""


async def runs(redis: Redis, key: str = "starts") -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in await redis.lrange(key, 0, -1)]


async def started(redis: Redis, n: int) -> bool:
    return int(await redis.llen("starts")) >= n


def stop(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=30)


async def race_fifty(redis_url: str, option: dict[str, Any]) -> tuple[int, float, float]:
    """50 enqueues of key K from 2 processes; returns (n Redis applied last, its caller's send time, MONITOR time)."""
    monitor_client: Redis = Redis.from_url(redis_url)
    applied: list[tuple[float, int]] = []
    sha = _scripts.sha(_scripts.REPLACE)

    async def watch() -> None:
        async with monitor_client.monitor() as monitor:
            async for cmd in monitor.listen():
                command = cmd["command"]
                if command.startswith(f"EVALSHA {sha}"):
                    found = re.search(r'"n":(\d+)', command)
                    assert found, command
                    applied.append((cmd["time"], int(found.group(1))))
                elif command == "ECHO race-over":
                    return

    await monitor_client.script_load(_scripts.REPLACE)  # no NOSCRIPT retry shows up as a second call
    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0.2)  # MONITOR is on before the first enqueue
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", ENQUEUER, str(first), json.dumps(option), cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        for first in (0, 25)
    ]
    outs = [await proc.communicate() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outs
    await redis_echo(redis_url)
    await asyncio.wait_for(watcher, 10)
    await monitor_client.aclose()
    sent: dict[int, float] = {}
    for out, _ in outs:
        sent.update({int(n): t for n, t in json.loads(out).items()})
    assert sorted(n for _, n in applied) == list(range(50)), "every enqueue reached Redis once"
    last_time, last_n = applied[-1]
    return last_n, sent[last_n], last_time


async def redis_echo(redis_url: str) -> None:
    client: Redis = Redis.from_url(redis_url)
    await client.echo("race-over")
    await client.aclose()


async def test_fifty_concurrent_debounced_enqueues_run_once_with_the_last_applied_arguments_after_the_window(
    redis: Redis, redis_url: str, worker_module: Callable[..., Path]
) -> None:
    proc = spawn_worker("jobs_mod", worker_module(RECORD_MODULE))
    try:
        last_n, last_sent, _ = await race_fifty(redis_url, {"_debounce": 1.0})
        await wait_until(lambda: started(redis, 1), timeout=15, what="the debounced run")
        await asyncio.sleep(1.5)  # long enough for a second run to show up if there were one
        (run,) = await runs(redis)
    finally:
        stop(proc)
    assert run["n"] == last_n, "the arguments of the last enqueue Redis applied"
    assert run["t"] >= last_sent + 1.0 - 0.01, "not before the window after the last enqueue"
    assert run["t"] <= last_sent + 1.0 + 3.0, "and promptly after it"
    assert run["id"] == "K"
    assert await scalr_queue.get_job("K").result(timeout=5) == last_n


async def test_fifty_concurrent_replaces_leave_one_job_with_the_last_applied_arguments(
    redis: Redis, redis_url: str, worker_module: Callable[..., Path]
) -> None:
    await scalr_queue.enqueue("record", n=-1, _job_id="K", _defer_by=60)
    last_n, _, _ = await race_fifty(redis_url, {"_replace": True, "_defer_by": 0.5})
    assert await redis.zcard("arq:queue:default") == 1, "one job, however many enqueues"
    proc = spawn_worker("jobs_mod", worker_module(RECORD_MODULE))
    try:
        await wait_until(lambda: started(redis, 1), timeout=15, what="the replaced job")
        await asyncio.sleep(1.0)
        (run,) = await runs(redis)
    finally:
        stop(proc)
    assert run["n"] == last_n


async def test_replace_swaps_a_scheduled_jobs_arguments_and_time(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    first = await scalr_queue.enqueue("record", n=1, _job_id="K", _defer_by=3600)
    again = await scalr_queue.enqueue("record", n=2, _job_id="K", _replace=True)
    assert (first.created, again.created) == (True, False), "the second replaced the first"
    assert await again.status() is JobStatus.QUEUED, "due now instead of in an hour"
    proc = spawn_worker("jobs_mod", worker_module(RECORD_MODULE))
    try:
        assert await again.result(timeout=15) == 2
        await asyncio.sleep(0.5)
    finally:
        stop(proc)
    assert [r["n"] for r in await runs(redis)] == [2]


async def test_replace_of_a_finished_job_runs_it_again_instead_of_returning_the_kept_result(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    proc = spawn_worker("jobs_mod", worker_module(RECORD_MODULE))
    try:
        assert await (await scalr_queue.enqueue("record", n=1, _job_id="K")).result(timeout=15) == 1
        assert not (await scalr_queue.enqueue("record", n=2, _job_id="K")).created, "plain: the kept result wins"
        again = await scalr_queue.enqueue("record", n=3, _job_id="K", _replace=True)
        assert again.created
        await wait_until(lambda: started(redis, 2), timeout=15, what="the second run")
        assert await again.result(timeout=15) == 3
    finally:
        stop(proc)
    assert [r["n"] for r in await runs(redis)] == [1, 3]


async def test_replace_of_a_running_job_runs_after_it_never_beside_it(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    cwd = worker_module(RECORD_MODULE)
    workers = [spawn_worker("jobs_mod", cwd), spawn_worker("jobs_mod", cwd)]  # one is always free to run it beside
    try:
        running = await scalr_queue.enqueue("record", n=1, secs=1.5, _job_id="K")
        await wait_until(lambda: started(redis, 1), timeout=15, what="the first run")
        assert (await running.info()).replacement is None
        second = await scalr_queue.enqueue("record", n=2, _job_id="K", _replace=True)
        third = await scalr_queue.enqueue("record", n=3, _job_id="K", _replace=True)
        assert not second.created and not third.created
        assert await redis.exists(NEXT_PREFIX + "K"), "the replacement waits for the running job"
        info = await third.info()
        assert info.status is JobStatus.IN_PROGRESS and info.kwargs == {"n": 1, "secs": 1.5}
        assert info.replacement is not None and info.replacement["kwargs"] == {"n": 3}
        assert info.to_json()["replacement"]["scheduled_at"] is not None
        await wait_until(lambda: started(redis, 2), timeout=15, what="the replacement")
        await asyncio.sleep(0.5)
    finally:
        stop(*workers)
    first, replacement = await runs(redis)
    (first_end, *_) = await runs(redis, "ends")
    assert [first["n"], replacement["n"]] == [1, 3], "the last replacement, once"
    assert replacement["t"] >= first_end["t"], "after the running one, not beside it"
    assert replacement["t"] - first_end["t"] < 2.0, "and soon after it"
    assert replacement["try"] == 1, "a fresh try count"
    assert not await redis.exists(NEXT_PREFIX + "K")


async def test_a_replacement_waiting_on_a_crashed_worker_runs_after_the_rerun(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_LEASE="1s", SCALR_QUEUE_JOB_TIMEOUT="1h")
    cwd = worker_module(RECORD_MODULE)
    victim = spawn_worker("jobs_mod", cwd)
    try:
        await scalr_queue.enqueue("record", n=1, secs=3600, _job_id="K")
        await wait_until(lambda: started(redis, 1), timeout=15, what="the first run")
        await scalr_queue.enqueue("record", n=2, _job_id="K", _replace=True)
        victim.kill()
        victim.communicate(timeout=10)
        await redis.set("fast", 1)
        rescuer = spawn_worker("jobs_mod", cwd)
        try:
            await wait_until(lambda: started(redis, 3), timeout=15, what="the rerun and the replacement")
            await asyncio.sleep(0.5)
        finally:
            stop(rescuer)
    finally:
        stop(victim)
    assert [(r["n"], r["try"]) for r in await runs(redis)] == [(1, 1), (1, 2), (2, 1)], "nothing lost"


async def test_a_replacement_takes_the_place_of_a_retry(redis: Redis, worker_module: Callable[..., Path]) -> None:
    proc = spawn_worker("jobs_mod", worker_module(RECORD_MODULE))
    try:
        await scalr_queue.enqueue("record", n=1, secs=1.0, fail=True, _job_id="K")
        await wait_until(lambda: started(redis, 1), timeout=15, what="the first run")
        job = await scalr_queue.enqueue("record", n=2, _job_id="K", _replace=True)
        assert await job.result(timeout=15) == 2
        await asyncio.sleep(0.5)
    finally:
        stop(proc)
    assert [(r["n"], r["try"]) for r in await runs(redis)] == [(1, 1), (2, 1)], "the failed run is not retried"


async def test_enqueue_many_takes_replacements_beside_plain_jobs(redis: Redis) -> None:
    jobs = await scalr_queue.enqueue_many(
        [
            ("record", {"n": 1, "_job_id": "K", "_defer_by": 60}),
            ("record", {"n": 2}),
            ("record", {"n": 3, "_job_id": "K", "_replace": True}),
        ]
    )
    assert [j.created for j in jobs] == [True, True, False]
    info = await scalr_queue.get_job("K").info()
    assert info.kwargs == {"n": 3} and info.status is JobStatus.QUEUED
    assert info.replacement is None and info.to_json()["replacement"] is None
    typed = await JobOptions(job_id="K", debounce=30).enqueue("record", n=4)
    info = await typed.info()
    assert info.kwargs == {"n": 4} and info.status is JobStatus.DEFERRED, "the typed spelling debounces too"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"_debounce": 2.0}, "_debounce needs _job_id"),
        ({"_replace": True}, "_replace needs _job_id"),
        ({"_job_id": "K", "_debounce": 0}, "_debounce must be greater than zero"),
        ({"_job_id": "K", "_debounce": "2s"}, "_debounce must be seconds"),
        ({"_job_id": "K", "_debounce": 1, "_defer_by": 5}, "use either _debounce or _defer_by"),
        ({"_job_id": "K", "_replace": "yes"}, "_replace must be True or False"),
        ({"_job_id": "K", "_debouce": 1}, "did you mean '_debounce'"),
    ],
)
async def test_bad_debounce_and_replace_options_are_refused_at_enqueue_with_nothing_written(
    redis: Redis, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(JobOptionsError, match=message):
        await scalr_queue.enqueue("record", n=1, **options)
    assert await redis.dbsize() == 0


def test_job_options_spell_debounce_and_replace_as_fields() -> None:
    with pytest.raises(JobOptionsError, match="^debounce needs job_id"):
        JobOptions(debounce=1.0)
    placed = JobOptions(job_id="K", debounce=2.0).place("default", 1_000)
    assert (placed.score, placed.replace) == (3_000, True)
    assert JobOptions(job_id="K", replace=True).place("default", 1_000).replace
    assert not JobOptions(job_id="K").place("default", 1_000).replace


async def test_cli_enqueue_debounces_by_job_id(redis: Redis, redis_url: str) -> None:
    for n in (1, 2):
        out = run_cli("enqueue", "record", f"n={n}", "--job-id", "K", "--debounce", "30")
        assert out.returncode == 0, out.stderr
    info = await scalr_queue.get_job("K").info()
    assert info.kwargs == {"n": 2} and info.status is JobStatus.DEFERRED
    assert info.scheduled_at is not None and info.scheduled_at.timestamp() > time.time() + 25
    out = run_cli("enqueue", "record", "n=3", "--job-id", "K", "--replace")
    assert out.stdout.startswith("K (replaced the waiting job"), out.stderr
    info = await scalr_queue.get_job("K").info()
    assert info.kwargs == {"n": 3} and info.status is JobStatus.QUEUED, "replaced, due now"


async def test_a_replacement_waiting_on_a_run_that_fails_for_good_runs_instead_of_a_failure_record(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="1")
    proc = spawn_worker("jobs_mod", worker_module(RECORD_MODULE))
    try:
        await scalr_queue.enqueue("record", n=1, secs=1.0, fail=True, _job_id="K")
        await wait_until(lambda: started(redis, 1), timeout=15, what="the first run")
        job = await scalr_queue.enqueue("record", n=2, _job_id="K", _replace=True)
        assert await job.result(timeout=15) == 2, "the replacement's outcome, not the superseded failure"
    finally:
        stop(proc)
    assert await scalr_queue.get_client().failed.count() == 0


async def test_replace_of_a_failed_job_runs_it_again_and_takes_it_out_of_the_failed_set(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="1")
    proc = spawn_worker("jobs_mod", worker_module(RECORD_MODULE))
    try:
        await scalr_queue.enqueue("record", n=1, fail=True, _job_id="K")
        await wait_until(lambda: _failed_count(1), timeout=15, what="the failed set")
        job = await scalr_queue.enqueue("record", n=2, _job_id="K", _replace=True)
        assert await job.result(timeout=15) == 2
    finally:
        stop(proc)
    assert await scalr_queue.get_client().failed.count() == 0


async def _failed_count(n: int) -> bool:
    return await scalr_queue.get_client().failed.count() == n


async def test_debounced_enqueues_during_a_run_give_one_more_run_after_it_and_after_the_window(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    proc = spawn_worker("jobs_mod", worker_module(RECORD_MODULE))
    try:
        await scalr_queue.enqueue("record", n=1, secs=1.0, _job_id="K", _debounce=0.3)
        await wait_until(lambda: started(redis, 1), timeout=15, what="the first run")
        for n in (2, 3):
            sent = time.time()
            await scalr_queue.enqueue("record", n=n, _job_id="K", _debounce=0.3)
        await wait_until(lambda: started(redis, 2), timeout=15, what="the second run")
        await asyncio.sleep(1.0)
    finally:
        stop(proc)
    first, second = await runs(redis)
    first_end = (await runs(redis, "ends"))[0]
    assert (first["n"], second["n"]) == (1, 3)
    assert second["t"] >= max(first_end["t"], sent + 0.3 - 0.01)
