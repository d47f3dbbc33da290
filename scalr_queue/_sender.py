"""Concurrent enqueues from one process share round trips: send now when idle, batch when busy.

A web process under load enqueues from many requests at once. The first call is sent at once;
calls made while it is in flight wait and go out together in one pipeline as soon as it
returns. A lone enqueue therefore costs exactly one round trip with no added delay, and a busy
process pays redis-py's per-call overhead (connection checkout, send, read) once per batch
instead of once per job. If a send fails, the calls waiting behind it fail with the same error
without being sent, so nothing is written and nobody waits longer than one timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError

from . import _scripts
from ._connection import eval_script

Call = tuple[list[str], list[Any], "asyncio.Future[Any]"]
MAX_BATCH = 500  # calls per pipeline: bounds one reply's size and the wait of the last caller in it


class ScriptSender:
    """Runs one Lua script for many concurrent callers over one Redis client."""

    def __init__(self, redis: Any, script: str) -> None:
        self.redis = redis
        self.script = script
        self._busy = False
        self._waiting: list[Call] = []
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to batches in flight

    async def call(self, keys: list[str], args: list[Any]) -> Any:
        if self._busy:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append((keys, args, fut))
            return await fut
        self._busy = True
        try:
            result = await eval_script(self.redis, self.script, keys, args)
        except BaseException as exc:
            self._fail_waiting(exc)
            raise
        self._send_waiting()
        return result

    def _fail_waiting(self, exc: BaseException) -> None:
        waiting, self._waiting = self._waiting, []
        self._busy = False
        error = exc if isinstance(exc, Exception) else ConnectionError("enqueue interrupted")
        for _, _, fut in waiting:
            if not fut.done():
                fut.set_exception(error)

    def _send_waiting(self) -> None:
        if not self._waiting:
            self._busy = False
            return
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        task = asyncio.get_running_loop().create_task(self._send_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_batch(self, batch: list[Call]) -> None:
        batch = [call for call in batch if not call[2].done()]  # a caller that gave up is not sent
        try:
            results = await self._pipeline(batch)
            if any(isinstance(r, NoScriptError) for r in results):
                await self.redis.execute_command("SCRIPT", "LOAD", self.script)
                results = await self._pipeline(batch)
        except BaseException as exc:
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else ConnectionError("enqueue interrupted"))
            self._fail_waiting(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, fut), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)
        self._send_waiting()

    async def _pipeline(self, batch: list[Call]) -> list[Any]:
        sha = _scripts.sha(self.script)
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args, _ in batch:
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))
