"""The process's default client and the module-level API over it (``scalr_queue.enqueue`` and friends).

Web code calls ``await scalr_queue.enqueue(...)`` without building a client: the first call
creates one from the environment's settings, and ``close()`` (the app's shutdown) ends it. Each
function here is a one-line forward to :class:`~scalr_queue.producer._client.QueueClient`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, overload

from .._settings import get_settings
from .._tasks import P, R, TaskFn, TaskSpec
from ._client import QueueClient, QueueStats
from ._job import Job

if TYPE_CHECKING:
    from ..control._cancel import CancelOutcome
    from ..control._holds import Released

_default: QueueClient | None = None


def get_client() -> QueueClient:
    """The process's client, created on first use from the environment's settings."""
    global _default
    if _default is None:
        _default = QueueClient()
    return _default


@overload
async def enqueue(task: TaskSpec[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Job[R]: ...


@overload
async def enqueue(task: TaskFn[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Job[R]: ...


@overload
async def enqueue(task: str, /, **kwargs: Any) -> Job[Any]: ...


async def enqueue(task: Any, /, *args: Any, **kwargs: Any) -> Job[Any]:
    """Enqueue a job on the process's client; see :meth:`QueueClient.enqueue`.

    Given the task function (or its ``task(...)`` spec), type checkers check the arguments
    against its signature and the handle is a ``Job[R]`` whose ``result()`` is the task's
    return type. By name, arguments are checked at run time only, and options are keywords
    (``_job_id=...``); with a function, options go in :class:`JobOptions`.

    Example::

        job = await enqueue(send_invoice_email, invoice_id=42)     # Job[None], checked
        job = await enqueue("send_invoice_email", invoice_id=42)   # Job[Any]
        job = await JobOptions(job_id="invoice-42").enqueue(send_invoice_email, invoice_id=42)
    """
    if args and isinstance(task, str):
        raise TypeError("enqueue() by task name takes the task's arguments as keywords only")
    return await get_client().enqueue_call(task, args, kwargs)


async def enqueue_many(calls: Iterable[tuple[Any, Mapping[str, Any]]]) -> list[Job[Any]]:
    """Enqueue ``(task, kwargs)`` pairs in one round trip; see :meth:`QueueClient.enqueue_many`."""
    return await get_client().enqueue_many(calls)


async def pause(queue: str | None = None) -> bool:
    """Pause a queue on the process's client; see :meth:`QueueClient.pause`."""
    return await get_client().pause(queue)


async def resume(queue: str | None = None) -> bool:
    """Resume a paused queue on the process's client; see :meth:`QueueClient.resume`."""
    return await get_client().resume(queue)


async def hold(task: str, where: str | None = None, queue: str | None = None) -> bool:
    """Hold a task's jobs on the process's client; see :meth:`QueueClient.hold`."""
    return await get_client().hold(task, where, queue)


async def release(task: str, where: str | None = None, queue: str | None = None, *, drop: bool = False) -> Released:
    """Release a hold on the process's client; see :meth:`QueueClient.release`."""
    return await get_client().release(task, where, queue, drop=drop)


def get_job(job_id: str, queue: str | None = None) -> Job[Any]:
    """A handle on an existing job (no Redis call until you ask it something)."""
    return get_client().job(job_id, queue)


async def cancel(job_id: str, queue: str | None = None, *, reason: str | None = None) -> CancelOutcome:
    """Cancel a job by id on the process's client; see :meth:`Job.cancel`.

    Example::

        outcome = await scalr_queue.cancel(job_id, reason="duplicate order")
    """
    return await get_client().cancel(job_id, queue, reason=reason)


async def queue_stats(queue: str | None = None) -> QueueStats:
    return await get_client().queue_stats(queue)


async def close() -> None:
    """Close the process's pool and forget cached settings (call from your app's shutdown).

    With ``REDIS_URL=memory://``, also stops the in-process worker started for ``SCALR_QUEUE_MEMORY_WORKER``.
    """
    global _default
    client, _default = _default, None
    get_settings.cache_clear()
    inprocess = sys.modules.get("scalr_queue.worker._inprocess")  # memory://'s worker, only if one was started
    if inprocess is not None:
        await inprocess.stop_autostarted()
    if client is not None:
        await client.close()
