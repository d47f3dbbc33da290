"""Helpers for your own tests: the name check the platform page recommends, a real Redis, and an
in-process worker for unit tests with ``REDIS_URL=memory://`` (docs/in-process.md).

Example::

    from scalr_queue.testing import assert_task_names

    def test_enqueued_names_exist():
        assert_task_names("src", "src.worker")

    async def test_the_invoice_is_sent(monkeypatch):
        monkeypatch.setenv("REDIS_URL", "memory://")
        async with run_in_process("src.worker"):
            job = await enqueue("send_invoice_email", invoice_id=42)
            await drain()
            assert (await job.info()).status == "complete"
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .producer._names import NameUse, find_enqueued_names, find_unknown_task_names
from .redis._server import RedisServer, free_port
from .worker._inprocess import InProcessWorker

__all__ = [
    "InProcessWorker",
    "NameUse",
    "RedisServer",
    "assert_task_names",
    "clear_memory",
    "drain",
    "find_enqueued_names",
    "find_unknown_task_names",
    "free_port",
    "run_in_process",
]


def assert_task_names(src_dir: str | os.PathLike[str], worker_module: str) -> None:
    """Fail with one line per ``enqueue("name")`` in ``src_dir`` that the worker module lacks."""
    problems = find_unknown_task_names(src_dir, worker_module)
    if problems:
        raise AssertionError("\n".join(problems))


@contextlib.asynccontextmanager
async def run_in_process(
    tasks: str | Sequence[Any], *, queue: str | None = None, concurrency: int | None = None
) -> AsyncIterator[InProcessWorker]:
    """Run a worker in this event loop for the block: the same worker class as a worker process.

    ``tasks`` is a worker module (``"src.worker"``, with its ``on_startup`` and cron jobs) or a
    list of task functions and ``task(...)`` specs. Settings come from the environment, as for
    a worker process. On exit it stops like a worker on SIGTERM: running jobs get the shutdown
    grace. Works with ``REDIS_URL=memory://`` and with a real Redis alike.
    """
    from ._settings import get_settings
    from ._tasks import build_task_map
    from .worker._loader import WorkerConfig, load_worker_config

    if isinstance(tasks, str):
        config = load_worker_config(tasks)
    else:
        config = WorkerConfig(module="in-process", tasks=build_task_map(tasks))
    runner = InProcessWorker(config, get_settings(), queue=queue, concurrency=concurrency)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def drain(queue: str | None = None, *, within: float = 10.0) -> None:
    """Wait until ``queue`` has nothing waiting (ready, deferred, backing off) or running.

    A worker must serve the queue (:func:`run_in_process`, or ``SCALR_QUEUE_MEMORY_WORKER``);
    raises TimeoutError naming what is left after ``within`` seconds. Held jobs are not waited for.
    """
    from .producer._default import get_client
    from .worker._inprocess import drain_queue

    client = get_client()
    await drain_queue(await client.redis(), queue or client.settings.queue_name, within)


async def clear_memory() -> None:
    """Empty the process's ``memory://`` store (between tests); nothing happens if it was never used."""
    from .redis._memory import clear

    await clear()
