"""Concurrent enqueues from one process share round trips: send now when idle, batch when busy.

A web process under load enqueues from many requests at once. The first call is sent at once;
calls made while it is in flight wait and go out together, pipelined on one connection, as soon
as it returns. A lone enqueue therefore costs exactly one round trip with no added delay, and a
busy process pays the per-call costs (connection checkout, syscalls, reading) once per batch.
If a send fails, the calls waiting behind it fail with the same error without being sent, so
nothing is written and nobody waits longer than one timeout.

Commands are packed into RESP by hiredis's ``pack_command`` (C), the packer redis-py's own
synchronous connections use when hiredis is installed; hiredis is a dependency anyway. In
``python -m bench.sender`` it packs an enqueue in 11-23 % of the time redis-py's asyncio
``pack_commands`` (pure Python) takes and in about half the time of the hand-written packer
this module used to carry (bench/README.md, "Enqueue sender"). What this module adds is the
batching, not the protocol.

With ``SCALR_QUEUE_MIN_REPLICAS`` set, a ``WAIT`` closes each pipeline: one wait covers every
enqueue of the batch (WAIT counts the replicas that have all of the connection's writes so
far), and it costs no extra round trip, only the replication delay. Callers whose job was
written but not confirmed by enough replicas get :class:`NotReplicatedError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from .._errors import NotReplicatedError
from ..redis import _scripts
from ..redis._connection import exchange

Command = tuple[bytes | str | int, ...]  # one command's arguments, packed when sent
Call = tuple[Command, "asyncio.Future[Any]"]
MAX_BATCH = 500  # calls per pipeline: bounds one reply's size and the wait of the last caller in it

# hiredis's stub types the argument as a 1-tuple; it takes a command of any length
_pack_command = cast(Callable[[Command], bytes], hiredis.pack_command)


class ScriptSender:
    """Runs one Lua script for many concurrent callers over one Redis client."""

    def __init__(
        self,
        redis: Any,
        script: str,
        *,
        min_replicas: int = 0,
        replicas_timeout: float = 1.0,
        timeout: float | None = None,
    ) -> None:
        """``timeout``: how long one pipeline's round trip may take (default: the connection's own
        read timeout, else none); a WAIT adds ``replicas_timeout`` to it."""
        self.redis = redis
        self.script = script
        self.sha = _scripts.sha(script).encode()
        self.min_replicas = min_replicas
        self.replicas_timeout = replicas_timeout
        self.timeout = timeout
        self._busy = False
        self._waiting: list[Call] = []
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to batches in flight

    def command(self, keys: Sequence[str], args: Sequence[bytes | str | int]) -> Command:
        return (b"EVALSHA", self.sha, len(keys), *keys, *args)

    async def call(self, keys: Sequence[str], args: Sequence[bytes | str | int]) -> Any:
        command = self.command(keys, args)
        if self._busy:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append((command, fut))
            return await fut
        self._busy = True
        try:
            (result,) = await self.send([command])
        except BaseException as exc:
            self._fail_waiting(exc)
            raise
        self._send_waiting()
        if isinstance(result, Exception):
            raise result
        return result

    def _fail_waiting(self, exc: BaseException) -> None:
        waiting, self._waiting = self._waiting, []
        self._busy = False
        error = exc if isinstance(exc, Exception) else RedisConnectionError("enqueue interrupted")
        for _, fut in waiting:
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
        batch = [call for call in batch if not call[1].done()]  # a caller that gave up is not sent
        try:
            results = await self.send([command for command, _ in batch])
        except BaseException as exc:
            self._fail_waiting(exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RedisConnectionError("interrupted"))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)
        self._send_waiting()

    async def send(self, commands: list[Command]) -> list[Any]:
        """Pipeline ``commands``; load the script and resend if Redis lost it (restart, flush, failover)."""
        results = await self._pipeline(commands)
        if any(isinstance(r, NoScriptError) for r in results):
            await self.redis.execute_command("SCRIPT", "LOAD", self.script)
            results = await self._pipeline(commands)
        return results

    def _not_replicated(self, acked: int) -> NotReplicatedError:
        return NotReplicatedError(
            f"enqueue not confirmed: {acked} of the {self.min_replicas} replicas SCALR_QUEUE_MIN_REPLICAS "
            f"asks for have the job after {self.replicas_timeout:g}s (SCALR_QUEUE_MIN_REPLICAS_TIMEOUT); "
            "it is on the master only and is lost if the master fails now: retry with the same _job_id"
        )

    def encode(self, conn: Any, commands: list[Command]) -> list[bytes]:
        """``commands`` in RESP, ready for ``conn.send_packed_command`` (bench/sender.py swaps this)."""
        return [b"".join(map(_pack_command, commands))]

    def _pipeline(self, commands: list[Command]) -> Awaitable[list[Any]]:
        """One exchange on one connection; without a WAIT, that exchange itself (no coroutine of its own)."""
        pool = self.redis.connection_pool
        wait = self.min_replicas > 0
        sent = [*commands, (b"WAIT", self.min_replicas, int(self.replicas_timeout * 1000))] if wait else commands
        limit = self.timeout if self.timeout is not None else pool.connection_kwargs.get("socket_timeout")
        if wait and limit is not None:
            limit += self.replicas_timeout  # WAIT blocks up to its own timeout
        exchanged = exchange(pool, lambda conn: self.encode(conn, sent), len(sent), limit=limit)
        return self._replicated(exchanged) if wait else exchanged

    async def _replicated(self, exchanged: Awaitable[list[Any]]) -> list[Any]:
        """The replies of a pipeline that ends with WAIT: each write not on enough replicas is an error."""
        out = await exchanged
        acked = out.pop()
        if isinstance(acked, Exception):
            raise acked
        if int(acked) < self.min_replicas:
            out = [r if isinstance(r, Exception) else self._not_replicated(int(acked)) for r in out]
        return out
