"""Fixtures for template-app's tests: each queue test runs twice, on a real redis-server and on
``REDIS_URL=memory://``, plus an HTTP client and a worker that runs what is queued.

The Redis mode uses a real redis-server, started once per session on a random loopback port
(never your Redis on 6379): the queue's behaviour lives in Redis (Lua scripts, sorted sets).
The memory mode is scalr_queue's in-process store, which runs those same scripts and the same
worker inside this process: what your own unit tests can use without any server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

import scalr_queue
from scalr_queue.testing import RedisServer, clear_memory, drain, run_in_process

BACKEND_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["redis", "memory"])
async def queue_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """An empty queue store, and scalr_queue pointed at it (settings are re-read after close())."""
    monkeypatch.setenv("SCALR_QUEUE_TASKS", "src.worker")
    monkeypatch.setenv("SCALR_QUEUE_RETRY_DELAY", "20ms")
    if request.param == "memory":
        url = "memory://"
        await clear_memory()
    else:
        url = request.getfixturevalue("redis_server").url
    monkeypatch.setenv("REDIS_URL", url)
    await scalr_queue.close()
    await (await scalr_queue.get_client().redis()).flushdb()
    yield url
    await scalr_queue.close()


@pytest.fixture
async def client(queue_url: str) -> AsyncIterator[httpx.AsyncClient]:
    from src.main import app

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


@pytest.fixture
def run_worker(queue_url: str) -> Callable[[], Awaitable[None]]:
    """Run ``src.worker`` until the queue is empty: a real worker process (``--burst``) on Redis,
    the same worker in this event loop on ``memory://`` (no other process can see that store)."""

    async def run() -> None:
        if queue_url == "memory://":
            async with run_in_process("src.worker"):
                await drain()
            return
        worker = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "scalr_queue.worker", "src.worker", "--burst"],
            cwd=BACKEND_DIR,
            env={**os.environ, "REDIS_URL": queue_url},
            capture_output=True,
            text=True,
            timeout=45,
        )
        assert worker.returncode == 0, worker.stderr[-2000:]

    return run
