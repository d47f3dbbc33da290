"""The read commands as a user runs them: ``python -m scalr_queue.cli`` against a real Redis and a real worker.

queues, jobs (paged by cursor), job (the timeline), workers, snapshot (once, watched, stopped
by Ctrl-C), and the bulk failed-set actions over 100,000 jobs with their progress.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

import scalr_queue
from scalr_queue._codec import job_payload
from scalr_queue.redis._keys import JOB_PREFIX, queue_key
from tests.support import ROOT, run_cli, spawn_worker, wait_until
from tests.test_failed_retry_all import add_failed

MODULE = """
import asyncio

async def flaky(ctx, n: int) -> int:
    if ctx["job_try"] == 1:
        raise RuntimeError(f"first try of {n} fails")
    return n * 2

async def nap(ctx, secs: float) -> str:
    await asyncio.sleep(secs)
    return "rested"

tasks = [flaky, nap]
"""


async def test_queues_jobs_job_and_workers_show_a_live_system(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="3")
    proc = spawn_worker("jobs_mod", worker_module(MODULE), "--concurrency", "4")
    try:
        done = await scalr_queue.enqueue("flaky", n=21)
        assert await done.result(timeout=15) == 42
        napping = await scalr_queue.enqueue("nap", secs=30)
        await wait_until(lambda: redis.exists(f"arq:in-progress:{napping.job_id}"), what="nap running")
        await scalr_queue.enqueue("nap", secs=1, _defer_by=300)

        queues = json.loads(run_cli("queues", "--json").stdout)
        default = next(q for q in queues if q["queue"] == "default")
        assert (default["running"], default["scheduled"], default["workers"], default["complete_last_hour"]) == (
            1,
            1,
            1,
            1,
        )
        table = run_cli("queues").stdout
        assert "oldest ready" in table and any(line.startswith("default") for line in table.splitlines())

        running = json.loads(run_cli("jobs", "--state", "running", "--json").stdout)
        assert [j["job_id"] for j in running["jobs"]] == [napping.job_id] and running["jobs"][0]["worker"]
        complete = run_cli("jobs", "--state", "complete")
        assert done.job_id in complete.stdout and "flaky" in complete.stdout

        shown = run_cli("job", done.job_id)
        assert shown.returncode == 0, shown.stderr
        assert "status: complete" in shown.stdout and "result: 42" in shown.stdout
        assert "Tries" in shown.stdout and "RuntimeError: first try of 21 fails" in shown.stdout
        assert "traceback of try 1:" in shown.stdout
        timeline = json.loads(run_cli("job", done.job_id, "--json").stdout)
        assert [a["outcome"] for a in timeline["attempts"]] == ["retry", "complete"]
        assert timeline["events"][0]["event"] == "enqueued"

        workers = json.loads(run_cli("workers", "--json").stdout)
        assert len(workers) == 1
        assert (workers[0]["pid"], workers[0]["concurrency"], workers[0]["running_jobs"]) == (
            proc.pid,
            4,
            [napping.job_id],
        )
        assert workers[0]["last_heartbeat"] is not None
        await napping.cancel()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


async def test_jobs_pages_with_the_cursor_it_prints(redis: Redis) -> None:
    ids = [f"page-{i:03d}" for i in range(120)]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.set(JOB_PREFIX + job_id, job_payload("flaky", b'{"n":1}', 1_000))
        pipe.zadd(queue_key("default"), dict.fromkeys(ids, 1_000))
        await pipe.execute()
    seen: list[str] = []
    args = ["jobs", "--limit", "50", "--json"]
    while True:
        page = json.loads(run_cli(*args).stdout)
        seen += [j["job_id"] for j in page["jobs"]]
        if page["next_cursor"] is None:
            break
        args = ["jobs", "--limit", "50", "--json", "--cursor", page["next_cursor"]]
    assert seen == ids
    text = run_cli("jobs", "--limit", "50").stdout
    assert "next page: scalr-queue jobs --queue default --state ready --limit 50 --cursor '1000:page-049'" in text


async def test_snapshot_once_watched_and_stopped_by_ctrl_c(redis: Redis, redis_url: str) -> None:
    await scalr_queue.enqueue("flaky", n=1)
    once = json.loads(run_cli("snapshot", "--json").stdout)
    assert [q["queue"] for q in once["queues"]] == ["default"] and once["queues"][0]["ready"] == 1
    watched = run_cli("snapshot", "--watch", "0.1", "--count", "3")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.count("scalr-queue snapshot at") == 3 and "Queues" in watched.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "scalr_queue.cli", "snapshot", "--watch"],
        cwd=ROOT,
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "scalr-queue snapshot at" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0 and "Traceback" not in err


def test_read_command_mistakes_are_one_line(redis_url: str) -> None:
    cases = [
        (["jobs", "--state", "finished"], 2, "state 'finished' is not valid"),
        (["jobs", "--limit", "0"], 2, "limit 0 is not valid"),
        (["jobs", "--cursor", "garbage"], 2, "cursor 'garbage' is not valid"),
        (["job", "missing"], 1, "no job 'missing'"),
        (["snapshot", "--watch", "0"], 2, "--watch 0 is not valid"),
        (["queues", "--queue", "no way"], 2, "queue name 'no way' is not valid"),
        (["jobs", "--limit", "many"], 2, "(see scalr-queue jobs --help)"),
    ]
    for args, code, says in cases:
        out = run_cli(*args)
        assert out.returncode == code, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and says in out.stderr and out.stdout == "", (args, out.stderr)


BULK = 100_000


async def write_failed(redis: Redis, count: int) -> None:
    for start in range(0, count, 10_000):
        ids = [f"bulk-{i:06d}" for i in range(start, start + 10_000)]
        await add_failed(redis, ids, retriable=True, score=1_000 + start // 1000)


async def test_failed_retry_all_over_100k_jobs_in_batches_with_progress(redis: Redis) -> None:
    await write_failed(redis, BULK)
    started = time.monotonic()
    out = run_cli("failed", "retry", "--all", timeout=300)
    took = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"retried {BULK} failed job(s)"
    progress = out.stderr.splitlines()
    assert progress[-1] == f"retrying failed jobs: {BULK}/{BULK}" and 5 <= len(progress) <= 11, progress
    assert await redis.zcard("arq:queue:default") == BULK and await redis.zcard("scalr:failed:default") == 0
    assert took < 300


async def test_failed_purge_all_over_100k_jobs_in_batches_with_a_bar_on_a_terminal(redis: Redis) -> None:
    await write_failed(redis, BULK)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scalr_queue.cli", "failed", "purge", "--all"],
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "100"},
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        out, _ = proc.communicate(timeout=300)
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    assert proc.returncode == 0
    assert out.splitlines()[0] == f"purged {BULK} failed job(s):"
    assert out.splitlines()[1] == f"  bulk-{BULK - 1:06d}", "the newest removed come first"
    assert b"purging failed jobs" in seen and b"\x1b[" in seen, "a Rich bar drawn on the terminal"
    assert await redis.exists("scalr:failed:default", "scalr:failed-jobs:default") == 0
