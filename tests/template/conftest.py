"""Fixtures for the template tests: the template app's real processes on free loopback ports.

Each e2e test gets its own redis-server (so one test may stop and restart it without touching
the session's shared one), uvicorn serving template-app exactly as the image's CMD does, and
the worker exactly as the compose file's worker command runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from template_support import Stack, base_env

from scalr_queue.testing import RedisServer


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A fresh redis-server plus helpers to start the backend and the worker; all torn down after."""
    server = RedisServer().start()
    env = base_env(
        server.url,
        SCALR_QUEUE_RETRY_DELAY="50ms",
        SCALR_QUEUE_RETRY_MAX_DELAY="200ms",
        SCALR_QUEUE_MAX_TRIES="3",
        SCALR_QUEUE_HEALTH_INTERVAL="1s",
    )
    stack = Stack(redis=server, log_dir=tmp_path, env=env)
    try:
        yield stack
    finally:
        stack.close()
