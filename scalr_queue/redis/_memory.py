"""``REDIS_URL=memory://``: the queue in this process's memory, for unit tests and demos.

The store is fakeredis with its Lua runtime (lupa): one in-memory server per process, reached
through redis-py's own asyncio client with fakeredis's connection class, so every part of
scalr_queue (the producer, the worker, our Lua scripts, pub/sub for cancels, BRPOP wake-ups)
runs the very code it runs against Redis. Nothing is durable and no other process can see it.

fakeredis runs a script's text as it is, while Redis strips its ``#!lua flags=...`` shebang
line first: the socket below does the same before handing the script to Lua. The script keeps
its SHA1 (the cache holds the text as sent), so EVALSHA and SCRIPT LOAD behave as with Redis.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from .._settings import Settings
    from ._connection import ScalrRedis

logger = logging.getLogger("scalr_queue")

MEMORY_URL = "memory://"
REDIS_VERSION = (7, 4)  # what the store answers like: our scripts' shebang flags need 7.0
INSTALL_HINT = "pip install 'scalr-queue[memory]'"


def is_memory_url(url: str) -> bool:
    return url.startswith(MEMORY_URL)


def missing_extra() -> str | None:
    """Why ``memory://`` cannot work here (one line), or None when fakeredis and lupa import."""
    try:
        for name in ("fakeredis", "lupa"):  # fakeredis runs Lua scripts through lupa (its `lua` extra)
            importlib.import_module(name)
    except ImportError as exc:
        return f"memory:// needs the in-memory store ({exc.name} is not installed): {INSTALL_HINT}"
    return None


@dataclass
class _Store:
    server: Any  # fakeredis.FakeServer, typed loosely so this module imports without the extra
    warned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_store: _Store | None = None
_store_lock = threading.Lock()


def _the_store() -> _Store:
    """The process's one in-memory server, made on first use."""
    global _store
    with _store_lock:
        if _store is None:
            from fakeredis import FakeServer

            _store = _Store(FakeServer(server_type="redis", version=REDIS_VERSION))
        return _store


def _warn_once(store: _Store, settings: Settings) -> None:
    with store.lock:
        if store.warned:
            return
        store.warned = True
    runs = (
        f"an in-process worker runs {settings.memory_worker}'s tasks"
        if settings.memory_worker
        else "only an in-process worker runs them (scalr_queue.testing.run_in_process)"
    )
    logger.warning(
        "REDIS_URL=memory://: jobs live in this process's memory and %s; nothing is durable or shared "
        "with another process (for unit tests and demos, see docs/in-process.md)",
        runs,
    )


@functools.cache
def _connection_class() -> type[Any]:
    from fakeredis.aioredis import AsyncFakeSocket, FakeAsyncRedisConnection

    class ShebangSocket(AsyncFakeSocket):
        """Runs a script without its ``#!lua`` line, as Redis does; the cache keeps the text as sent."""

        def eval(self, script: bytes, numkeys: int, *keys_and_args: bytes) -> Any:
            if script.startswith(b"#!"):
                newline = script.find(b"\n")
                script = b"" if newline < 0 else script[newline + 1 :]
            return super().eval(script, numkeys, *keys_and_args)

    class MemoryConnection(FakeAsyncRedisConnection):
        async def _connect(self) -> None:
            await super()._connect()
            sock = self._sock
            assert sock is not None, "fakeredis connected without a socket"
            sock.__class__ = ShebangSocket

    return MemoryConnection


def create_memory_redis(settings: Settings) -> ScalrRedis:
    """A client on the process's in-memory store; warns once per process that nothing is durable."""
    problem = missing_extra()
    if problem is not None:
        raise ConfigurationError(f"REDIS_URL={MEMORY_URL}: {problem}")
    from ._connection import ScalrRedis

    store = _the_store()
    _warn_once(store, settings)
    return ScalrRedis(connection_pool=_pool(store))


def _pool(store: _Store) -> Any:
    from redis.asyncio import ConnectionPool

    return ConnectionPool(
        connection_class=_connection_class(),
        server=store.server,
        version=REDIS_VERSION,
        server_type="redis",
        lua_modules=None,
    )


async def clear() -> None:
    """FLUSHALL on the process's store, if it exists (``scalr_queue.testing.clear_memory``)."""
    if _store is None:
        return
    from redis.asyncio import Redis

    client: Redis = Redis(
        connection_pool=_pool(_store),
    )
    try:
        await client.flushall()
    finally:
        await client.aclose(close_connection_pool=True)
