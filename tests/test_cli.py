"""The shell commands not covered elsewhere: enqueue, job, workers, and JSON logs from the worker."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobStatus
from tests.support import run_cli, spawn_worker, wait_until

MODULE = """
async def greet(ctx, name: str, times: int = 1) -> str:
    return " ".join([f"hello {name}"] * times)

tasks = [greet]
"""


async def test_enqueue_then_job_then_workers_from_the_shell(
    redis: Redis, redis_url: str, worker_module: Callable[..., Path]
) -> None:
    out = run_cli("enqueue", "greet", "name=ada", "times=2", "--job-id", "cli-1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cli-1"
    again = run_cli("enqueue", "greet", "name=ada", "--job-id", "cli-1")
    assert again.stdout.strip() == "cli-1 (already exists; not enqueued twice)"
    queued = json.loads(run_cli("job", "cli-1", "--json").stdout)
    assert (queued["status"], queued["task"], queued["kwargs"]) == ("queued", "greet", {"name": "ada", "times": 2})

    proc = spawn_worker("jobs_mod", worker_module(MODULE))
    try:
        assert await scalr_queue.get_job("cli-1").result(timeout=10) == "hello ada hello ada"
        await wait_until(lambda: redis.exists("scalr:workers:default"), what="registry")
        workers = json.loads(run_cli("workers", "--json").stdout)
        assert len(workers) == 1 and workers[0]["module"] == "jobs_mod" and workers[0]["tasks"] == ["greet"]
        [row] = [line for line in run_cli("workers").stdout.splitlines() if workers[0]["worker_id"] in line]
        assert "jobs_mod" in row and "0/10" in row, "the table's row: module and running/concurrency"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    done = run_cli("job", "cli-1")
    assert "status: complete" in done.stdout and "result: hello ada hello ada" in done.stdout
    missing = run_cli("job", "nope")
    assert missing.returncode == 1 and "no job 'nope' on queue 'default'" in missing.stderr
    assert await scalr_queue.get_job("cli-1").status() is JobStatus.COMPLETE


def test_enqueue_mistakes_are_one_line_from_the_shell(redis_url: str) -> None:
    bad = run_cli("enqueue", "greet", "oops")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "scalr-queue: error: argument 'oops' is not key=value (values are JSON, or plain text)"
    worse = run_cli("enqueue", "greet", "blob=1", "--job-id", "has space")
    assert worse.returncode == 1 and "whitespace or control characters" in worse.stderr


async def test_worker_logs_json_lines_when_asked(
    redis: Redis, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_LOG_FORMAT="json")
    proc = spawn_worker("jobs_mod", worker_module(MODULE), "--burst")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert {"ts", "level", "logger", "msg"} <= records[0].keys()
    assert any("redis_version=" in r["msg"] for r in records)
