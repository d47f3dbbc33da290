"""Fixtures for template-app's tests: a real redis-server on a free port, and an HTTP client.

No fakes: the queue's behaviour lives in Redis (Lua scripts, sorted sets), so the tests use the
real thing, started once per session on a random loopback port (never your Redis on 6379).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

import scalr_queue
from scalr_queue.testing import RedisServer

BACKEND_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    with RedisServer() as server:
        yield server


@pytest.fixture
async def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A clean database, and scalr_queue pointed at it (settings are re-read after close())."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("SCALR_QUEUE_TASKS", "src.worker")
    await scalr_queue.close()
    import redis.asyncio as aioredis

    raw = aioredis.Redis.from_url(redis_server.url)
    await raw.flushdb()
    await raw.aclose()
    yield redis_server.url
    await scalr_queue.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    from src.main import app

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http
