"""The worker's /healthz: real worker processes, a real redis-server, real HTTP.

200 while the loop runs, Redis answers and the worker is not stopping; 503 naming the reason for
a stopped Redis, a drain after SIGTERM, and a loop blocked by a task that calls time.sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue.observe._health import WorkerHealth
from scalr_queue.redis._server import RedisServer, free_port
from tests.support import LoggedWorker, spawn_worker, wait_until
from tests.test_metrics import listening_addresses

pytestmark = pytest.mark.timeout(90)

MODULE = """
import asyncio
import time


async def nap(ctx, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "rested"


async def hog(ctx, seconds: float) -> str:
    time.sleep(seconds)  # blocks the whole event loop: the mistake /healthz must show
    return "done"

tasks = [nap, hog]
"""


class Worker(LoggedWorker):
    """A worker process serving this test's module, with its output in a file."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__("jobs_mod", cwd, *args, env=env)


@contextlib.contextmanager
def worker(cwd: Path, *args: str, **env: str) -> Iterator[Worker]:
    w = Worker(cwd, *args, env=env)
    try:
        yield w
    finally:
        w.stop()


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


async def wait_status(port: int, status: int, w: Worker, timeout: float = 20) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        assert w.proc.poll() is None, f"worker exited early:\n{w.log()}"
        code, seen["body"] = healthz(port)
        return code == status

    await wait_until(check, timeout=timeout, interval=0.1, what=f"/healthz to answer {status}")
    return seen["body"]


@pytest.fixture
def cwd(worker_module: Callable[..., Path]) -> Path:
    return worker_module(MODULE)


async def test_healthz_is_200_with_a_small_body_and_binds_loopback_only(redis: Redis, cwd: Path) -> None:
    port = free_port()
    with worker(cwd, "--health-port", str(port), "--queue", "bulk") as w:
        body = await wait_status(port, 200, w)
        assert body["status"] == "ok" and body["queue"] == "bulk" and body["running"] == 0
        assert body["worker_id"].split(":")[1] == str(w.proc.pid)
        assert body["redis_answered_s_ago"] < 5 and "reasons" not in body
        assert listening_addresses(port) == {"127.0.0.1"}
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404
        assert f"health on http://127.0.0.1:{port}/healthz" in w.log()
    assert w.proc.returncode == 0
    assert listening_addresses(port) == set()


async def test_healthz_is_503_while_redis_is_stopped_and_200_once_it_is_back(cwd: Path) -> None:
    port = free_port()
    with RedisServer() as server, worker(cwd, REDIS_URL=server.url, SCALR_QUEUE_HEALTH_PORT=str(port)) as w:
        await wait_status(port, 200, w)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGTERM)  # this test's own redis-server, by its PID
        server.process.wait(10)
        body = await wait_status(port, 503, w)
        assert body["status"] == "unhealthy"
        assert any(r.startswith("Redis unreachable for ") for r in body["reasons"]), body
        assert "127.0.0.1" not in str(body), "the Redis address stays in the log"
        server.start()  # same port
        await wait_status(port, 200, w)
        assert "Redis is back after" in w.log()


async def test_healthz_is_503_while_draining_after_sigterm(redis: Redis, cwd: Path) -> None:
    port = free_port()
    with worker(cwd, "--health-port", str(port)) as w:
        await wait_status(port, 200, w)
        job = await scalr_queue.enqueue("nap", seconds=3)
        await wait_until(lambda: healthz(port)[1].get("running") == 1, what="the job to run")
        w.proc.send_signal(signal.SIGTERM)
        body = await wait_status(port, 503, w, timeout=5)
        assert body["reasons"] == ["shutting down (1 running jobs finishing)"], body
        assert await job.result(timeout=15) == "rested"  # the drain let it finish
        assert w.proc.wait(15) == 0


async def test_healthz_is_503_while_a_task_blocks_the_event_loop(redis: Redis, cwd: Path) -> None:
    port = free_port()
    with worker(cwd, SCALR_QUEUE_HEALTH_PORT=str(port), SCALR_QUEUE_HEALTH_MAX_LAG="500ms") as w:
        await wait_status(port, 200, w)
        job = await scalr_queue.enqueue("hog", seconds=4)
        body = await wait_status(port, 503, w, timeout=10)
        (reason,) = body["reasons"]
        assert reason.startswith("event loop blocked for ") and reason.endswith("(bound 0.5s)"), body
        # how far the loop is behind its ticker (which stamps every bound/4 = 0.125 s here)
        assert body["loop_lag_s"] >= 0.5 - 0.125, body
        assert await job.result(timeout=15) == "done"
        await wait_status(port, 200, w)


async def test_a_taken_health_port_exits_2_with_one_line(redis: Redis, cwd: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = spawn_worker("jobs_mod", cwd, "--health-port", str(port))
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    (line,) = [line for line in out.splitlines() if "error" in line]
    assert line.startswith("python -m scalr_queue.worker: error: the health endpoint cannot listen on 127.0.0.1:")
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--health-port", "70000"], {}, "--health-port 70000 is out of range: expected 1 to 65535"),
        ([], {"SCALR_QUEUE_HEALTH_PORT": "http"}, "invalid setting SCALR_QUEUE_HEALTH_PORT='http'"),
        ([], {"SCALR_QUEUE_HEALTH_MAX_LAG": "0"}, "invalid setting SCALR_QUEUE_HEALTH_MAX_LAG='0'"),
    ],
)
def test_bad_health_settings_exit_2_naming_them(cwd: Path, args: list[str], env: dict[str, str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scalr_queue.worker", "jobs_mod", *args],
        cwd=cwd,
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_redis_that_stops_answering_without_an_error_is_unhealthy_after_two_heartbeats() -> None:
    """A hung connection raises nothing until its timeout: the age of the last answer tells."""
    health = WorkerHealth(queue="q", worker_id="w", running=lambda: 0, max_lag=5, heartbeat=1)
    assert health.report(health.ticked_at)[1]["reasons"] == ["Redis has not answered yet"]
    health.redis_answered()
    assert health.redis_answered_at is not None
    at = health.redis_answered_at
    health.ticked_at = at + 2.5
    assert health.report(at + 2.0)[0] == 200
    code, body = health.report(at + 2.5)
    assert code == 503 and body["reasons"] == ["Redis has not answered for 2.5s"]
