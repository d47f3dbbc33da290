"""A worker inside the app's own process and event loop.

It is the same :class:`ScalrWorker` that ``python -m scalr_queue.worker`` runs, started as an
asyncio task instead of a process: the same claim, retries with backoff, timeouts, failed set,
cancels, progress and holds. ``REDIS_URL=memory://`` starts one for ``SCALR_QUEUE_MEMORY_WORKER``
at the process's first queue call (:func:`autostart`); ``scalr_queue.testing.run_in_process``
starts one explicitly (against a real Redis too).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

from redis.asyncio import Redis

from .._settings import Settings
from ..redis._connection import aw, create_redis
from ..redis._keys import leases_key, paused_key, queue_key, wake_key
from ..redis._memory import is_memory_url
from ._loader import WorkerConfig, load_worker_config
from ._worker import ScalrWorker

logger = logging.getLogger("scalr_queue.worker")


class InProcessWorker:
    """A :class:`ScalrWorker` run as a task on the running event loop; ``start``, ``drain``, ``stop``."""

    def __init__(
        self, config: WorkerConfig, settings: Settings, *, queue: str | None = None, concurrency: int | None = None
    ) -> None:
        self.worker = ScalrWorker(config, settings, queue=queue, concurrency=concurrency, handle_signals=False)
        self._task: asyncio.Task[None] | None = None

    @property
    def queue(self) -> str:
        return self.worker.queue

    async def start(self) -> None:
        """Start the worker and return once it is registered and claiming (or raise why it could not)."""
        task = self._task = asyncio.get_running_loop().create_task(self.worker.run_async())
        serving = asyncio.ensure_future(self.worker.serving.wait())
        try:
            await asyncio.wait({task, serving}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the caller was cancelled while the worker started: do not leave it running
            self._task = None
            task.cancel()
            raise
        finally:
            serving.cancel()
        if task.done():
            self._task = None
            task.result()  # start-up failed (on_startup raised, say): raise it here
            raise RuntimeError("the in-process worker stopped before it started serving")

    async def stop(self) -> None:
        """Stop claiming, let running jobs finish within the shutdown grace (then requeue them), return."""
        task, self._task = self._task, None
        if task is None:
            return
        self.worker.request_stop()
        await asyncio.wait_for(task, self.worker.settings.shutdown_grace + 10)
        if is_memory_url(self.worker.settings.redis_url):
            await _end_blocked_read(self.worker.settings, self.queue)

    async def drain(self, within: float = 10.0) -> None:
        """Wait until this worker's queue has nothing ready, scheduled (retry backoff included) or running."""
        if self._task is not None and self._task.done():
            self._task.result()
        await drain_queue(self.worker.pool, self.queue, within)


async def _end_blocked_read(settings: Settings, queue: str) -> None:
    """Let the stopped worker's last BRPOP on the in-process store return now, on this loop.

    Against Redis, closing the connection ends a blocked read. The in-memory store keeps it
    waiting (on a callback bound to this event loop) until its timeout; a test runner that closes
    the loop first leaves that callback behind, and the next write to the store would call into a
    closed loop. A wake-up item ends the read at once; any left unread only wakes the next worker.
    """
    redis = create_redis(settings)
    try:
        await aw(redis.lpush(wake_key(queue), "1"))
        for _ in range(5):  # the store signals the reader through the loop: let it run
            await asyncio.sleep(0)
    finally:
        await redis.aclose(close_connection_pool=True)


async def drain_queue(redis: Redis, queue: str, within: float) -> None:
    """Poll (one MULTI of two ZCARDs, so a job moving between the two sets is never missed) until both
    the queue and its leases are empty; TimeoutError naming what is left after ``within`` seconds.

    Held jobs are not waited for: they run after a release.
    """
    deadline = time.monotonic() + within
    interval = 0.001
    while True:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zcard(queue_key(queue))
            pipe.zcard(leases_key(queue))
            pipe.exists(paused_key(queue))
            waiting, running, paused = await pipe.execute()
        if not waiting and not running:
            return
        if time.monotonic() >= deadline:
            why = " (the queue is paused)" if paused else ""
            raise TimeoutError(
                f"drain: queue {queue!r} still has {waiting} waiting and {running} running job(s) after "
                f"{within:g}s{why}"
            )
        await asyncio.sleep(interval)
        interval = min(interval * 2, 0.02)


_autostarted: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, InProcessWorker] = weakref.WeakKeyDictionary()


async def autostart(settings: Settings) -> None:
    """``memory://`` with ``SCALR_QUEUE_MEMORY_WORKER``: run that module's worker on this loop, once."""
    module = settings.memory_worker
    loop = asyncio.get_running_loop()
    if module is None or loop in _autostarted:
        return
    runner = InProcessWorker(load_worker_config(module), settings)
    _autostarted[loop] = runner
    try:
        await runner.start()
    except BaseException:
        _autostarted.pop(loop, None)
        raise


async def stop_autostarted() -> None:
    """Stop the worker :func:`autostart` started on this loop, if any (``scalr_queue.close()`` calls it)."""
    runner = _autostarted.pop(asyncio.get_running_loop(), None)
    if runner is not None:
        await runner.stop()


def autostarted() -> InProcessWorker | None:
    """The worker :func:`autostart` runs on this loop, if any."""
    return _autostarted.get(asyncio.get_running_loop())
