"""One Redis client per process and event loop, and Redis errors turned into one clear line.

A web process may run more than one event loop over its life (a test runner, a worker thread
with its own loop): a redis-py client is bound to the loop it was created on, so the client is
re-created when the running loop changes, and a handle never talks through a dead loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from .._protocols import Enqueuer
from .._settings import Settings, get_settings
from ..redis._connection import REDIS_ERRORS, ScalrRedis, create_redis, unavailable
from ..redis._memory import is_memory_url

T = TypeVar("T")


class LoopPool:
    """The Redis client for the running loop, created on first use from the settings.

    ``owner`` is the client that ``enqueue_job`` on this Redis client enqueues through (arq's
    cron and task code call it on ``ctx["redis"]``).
    """

    def __init__(self, settings: Settings | None = None, owner: Enqueuer | None = None) -> None:
        self._settings = settings
        self._redis: ScalrRedis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._adopted = False
        self.owner = owner

    @property
    def settings(self) -> Settings:
        """The settings given, else the process's, read on first use (never at import)."""
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    async def redis(self) -> ScalrRedis:
        loop = asyncio.get_running_loop()
        if self._redis is None or self._loop is not loop:
            redis = self._redis = create_redis(self.settings)
            redis.scalr_client = self.owner
            self._loop = loop
            self._adopted = False
            if self.settings.memory_worker and is_memory_url(self.settings.redis_url):
                from ..worker._inprocess import autostart

                await autostart(self.settings)  # memory://: the tasks run here, in this loop
            return redis
        return self._redis

    def current(self) -> ScalrRedis | None:
        """The client made for the running loop, without awaiting; None until :meth:`redis` made one."""
        return self._redis if self._loop is asyncio.get_running_loop() else None

    def adopt(self, redis: ScalrRedis) -> None:
        """Use ``redis``, made on the running loop by someone else (the worker shares its own).

        Its maker closes it: :meth:`close` only lets go of it.
        """
        self._redis, self._loop, self._adopted = redis, asyncio.get_running_loop(), True
        redis.scalr_client = self.owner

    async def run(self, awaitable: Awaitable[T], doing: str) -> T:
        """Await a Redis call, turning connection-level failures into QueueUnavailableError."""
        try:
            return await awaitable
        except REDIS_ERRORS as exc:
            raise unavailable(exc, self.settings, doing) from None

    async def close(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None and not self._adopted and self._loop is asyncio.get_running_loop():
            await redis.aclose(close_connection_pool=True)
