"""Pause and hold: the queue controls of :class:`~scalr_queue.producer._client.QueueClient`.

A pause is one key per queue that every worker's CLAIM reads; a hold is a field of the queue's
holds hash that CLAIM matches against each due job (``scalr_queue.control._holds`` parses
``where``). Both live in Redis with no expiry, so they outlast worker and Redis restarts, and
both are one script call. The mixin reads the client's settings, Redis and ``run``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from .._codec import dumps
from .._errors import ConfigurationError
from .._settings import QUEUE_NAME_HELP, QUEUE_NAME_RE, Settings
from ..control._holds import Released, check_task, hold_field, hold_rule, parse_where
from ..redis import _scripts
from ..redis._connection import ScalrRedis, aw, eval_script
from ..redis._keys import held_key, holds_key, paused_key, queue_key, wake_key

T = TypeVar("T")


class QueueControl:
    """Pause, resume, hold and release a queue (mixed into ``QueueClient``, which provides the rest)."""

    if TYPE_CHECKING:  # provided by QueueClient

        @property
        def settings(self) -> Settings: ...

        async def redis(self) -> ScalrRedis: ...

        async def run(self, awaitable: Awaitable[T], doing: str) -> T: ...

    # -- pause ----------------------------------------------------------------------------

    async def pause(self, queue: str | None = None) -> bool:
        """Stop every worker of ``queue`` from claiming; running jobs finish, enqueues still land.

        The pause is a key in Redis with no expiry: it holds across worker and Redis restarts
        (with persistence) until :meth:`resume`. Returns False if the queue was paused already.
        """
        return await self._pause_script(_scripts.PAUSE, queue, "pause")

    async def resume(self, queue: str | None = None) -> bool:
        """Let workers claim from ``queue`` again, waking an idle one at once. False if it was not paused."""
        return await self._pause_script(_scripts.RESUME, queue, "resume")

    async def is_paused(self, queue: str | None = None) -> bool:
        redis = await self.redis()
        return bool(await self.run(redis.exists(paused_key(queue or self.settings.queue_name)), "read the pause"))

    async def _pause_script(self, script: str, queue: str | None, doing: str) -> bool:
        queue = self._control_queue(queue)
        redis = await self.redis()
        if script is _scripts.PAUSE:
            keys: list[str] = [paused_key(queue)]
            args: list[str | int] = [dumps({"paused_ms": int(time.time() * 1000)}).decode()]
        else:
            keys, args = [paused_key(queue), wake_key(queue)], []
        return bool(await self.run(eval_script(redis, script, keys, args), f"{doing} queue {queue!r}"))

    def _control_queue(self, queue: str | None) -> str:
        queue = queue or self.settings.queue_name
        if not QUEUE_NAME_RE.match(queue):
            raise ConfigurationError(f"queue name {queue!r} is not valid: expected {QUEUE_NAME_HELP}")
        return queue

    # -- hold -----------------------------------------------------------------------------

    async def hold(self, task: str, where: str | None = None, queue: str | None = None) -> bool:
        """Keep ``task``'s jobs (those matching ``where``, e.g. ``"customer_id == 42"``) from running.

        Workers move a matching job aside when they would claim it: it stays in Redis, burns no
        try, counts as ``held`` in :meth:`queue_stats` and runs after :meth:`release`. The hold has
        no expiry (it outlives worker and Redis restarts). Returns False if it existed already.
        Raises ConfigurationError for a bad ``where`` before touching Redis.
        """
        check_task(task)
        clause = parse_where(where) if where is not None else None
        queue = self._control_queue(queue)
        redis = await self.redis()
        args = [hold_field(task, clause), hold_rule(task, clause)]
        return bool(await self.run(eval_script(redis, _scripts.HOLD, [holds_key(queue)], args), f"hold {task!r}"))

    async def release(
        self, task: str, where: str | None = None, queue: str | None = None, *, drop: bool = False
    ) -> Released:
        """Remove the hold on ``task`` (only the one with this ``where``, else every hold on it).

        Held jobs no remaining hold matches go back to the queue at their due time (now, if it
        has passed) and an idle worker wakes at once; with ``drop=True`` they are deleted
        instead and their ids returned. ``holds_removed == 0`` means there was no such hold.
        """
        check_task(task)
        field = hold_field(task, parse_where(where)) if where is not None else ""
        queue = self._control_queue(queue)
        redis = await self.redis()
        keys = [holds_key(queue), held_key(queue), queue_key(queue), wake_key(queue)]
        args = [int(time.time() * 1000), int(drop), task, field]
        removed, released, dropped, still = await self.run(
            eval_script(redis, _scripts.RELEASE, keys, args), f"release {task!r}"
        )
        return Released(int(removed), int(released), [d.decode() for d in dropped], int(still))

    async def holds(self, queue: str | None = None) -> list[str]:
        """The queue's holds, by name (``task`` or ``task where keyword op value``), sorted."""
        redis = await self.redis()
        fields = await self.run(aw(redis.hkeys(holds_key(self._control_queue(queue)))), "read the holds")
        return sorted(f.decode() for f in fields)
