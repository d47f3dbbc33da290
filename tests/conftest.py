"""Shared fixtures: one real redis-server per test session on a free loopback port.

Each test gets a flushed database, its own settings from the environment, and helpers to run
a worker in-process (fast) or as a real subprocess (entrypoint, signals, crashes).
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue._settings import get_settings
from scalr_queue.redis._server import RedisServer

# fast but realistic knobs for tests; individual tests override through set_env
TEST_ENV = {
    "SCALR_QUEUE_RETRY_DELAY": "50ms",
    "SCALR_QUEUE_RETRY_MAX_DELAY": "400ms",
    "SCALR_QUEUE_HEALTH_INTERVAL": "1s",
    "SCALR_QUEUE_SHUTDOWN_GRACE": "5s",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full", action="store_true", help="run the long reliability versions")
    parser.addoption(
        "--docker", action="store_true", help="run tests/docker against a Docker engine (make test-docker)"
    )
    parser.addoption("--sentinel", action="store_true", help="run the Sentinel failover tests (make test-sentinel)")
    parser.addoption("--cluster", action="store_true", help="run the Redis Cluster tests (make test-cluster)")


SENTINEL_TESTS = Path(__file__).parent / "reliability" / "test_sentinel_failover.py"
CLUSTER_TESTS = Path(__file__).parent / "cluster"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/docker needs a Docker engine and root: only `make test-docker` (--docker) collects it."""
    if collection_path == Path(__file__).parent / "docker" and not config.getoption("--docker"):
        return True
    # six Redis processes and several failovers take over a minute: their own target, run by .ci/run
    if collection_path == SENTINEL_TESTS and not config.getoption("--sentinel"):
        return True
    # six cluster nodes and a failover: their own target (make test-cluster), run by .ci/run
    if collection_path == CLUSTER_TESTS and not config.getoption("--cluster"):
        return True
    return None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set env vars (SCALR_QUEUE_* or REDIS_URL) and forget cached settings."""

    def apply(**values: Any) -> None:
        for key, value in values.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, str(value))
        get_settings.cache_clear()

    return apply


@pytest.fixture
async def redis_url(redis_server: RedisServer, set_env: Callable[..., None]) -> AsyncIterator[str]:
    if redis_server.process is None or redis_server.process.poll() is not None or not redis_server.ping():
        redis_server.start()
    set_env(REDIS_URL=redis_server.url, **TEST_ENV)
    client: Redis = Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    yield redis_server.url
    await scalr_queue.close()
    get_settings.cache_clear()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def worker_module(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a worker module into a temp dir; returns the dir to use as cwd."""

    def write(source: str, name: str = "jobs_mod") -> Path:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return tmp_path

    return write
