"""The producer side: ``enqueue`` and friends, over one lazily created client per process.

``QueueClient`` puts three parts together: the Redis client for the running loop
(``_pool``), the enqueue options (``_options``) and the checks of task names and arguments
(``_catalog``). What the client adds is the enqueue itself: one script call that writes the
job, queues it and wakes a worker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import _scripts
from ._catalog import TaskCatalog
from ._codec import encode_kwargs, job_payload
from ._connection import ScalrRedis, unavailable
from ._constants import (
    JOB_PREFIX,
    RESULT_PREFIX,
    failed_key,
    leases_key,
    queue_key,
    wake_key,
)
from ._errors import JobOptionsError, PayloadError
from ._job import Job
from ._options import DEFAULT, JobOptions, Placement
from ._pool import LoopPool
from ._producer_metrics import producer_metrics
from ._registry import WorkerInfo, live_workers
from ._sender import ScriptSender
from ._settings import Settings, get_settings
from ._tasks import P, R, TaskFn, TaskSpec

if TYPE_CHECKING:
    from ._failed import FailedJobs

T = TypeVar("T")


@dataclass(frozen=True)
class QueueStats:
    """Counts for one queue (the page's ``llen`` is wrong: arq's queue is a sorted set)."""

    queue: str
    ready: int  # due now, waiting for a worker slot
    scheduled: int  # deferred, or waiting out a retry backoff
    in_progress: int  # leased by a running worker
    failed: int  # in the failed set
    workers: int  # live workers serving this queue

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Prepared:
    name: str
    placement: Placement
    payload: bytes


class QueueClient:
    """Enqueue jobs and look them up. One per process is plenty (see :func:`get_client`).

    ``tasks`` is for a worker: the tasks it has loaded, used for strict checks instead of
    importing the ``SCALR_QUEUE_TASKS`` module again.
    """

    def __init__(self, settings: Settings | None = None, *, tasks: Mapping[str, TaskSpec] | None = None) -> None:
        self._pool = LoopPool(settings, owner=self)
        self._catalog = TaskCatalog(self._pool, tasks)
        self._sender: ScriptSender | None = None

    @property
    def settings(self) -> Settings:
        return self._pool.settings

    async def redis(self) -> ScalrRedis:
        """The Redis client for the running event loop (created on first use)."""
        return await self._pool.redis()

    def use_redis(self, redis: ScalrRedis) -> None:
        """Share ``redis``, made on the running loop by its owner, who also closes it (a worker's pool)."""
        self._pool.adopt(redis)

    async def _enqueue_sender(self) -> ScriptSender:
        redis = await self._pool.redis()
        if self._sender is None or self._sender.redis is not redis:
            self._sender = ScriptSender(redis, _scripts.ENQUEUE)
        return self._sender

    async def run(self, awaitable: Awaitable[T], doing: str) -> T:
        """Await a Redis call, turning connection-level failures into QueueUnavailableError."""
        return await self._pool.run(awaitable, doing)

    async def close(self) -> None:
        await self._pool.close()

    def spec(self, name: str | None) -> TaskSpec | None:
        """The TaskSpec for a name when this process knows the worker's tasks (for results)."""
        return self._catalog.spec(name)

    def convert_result(self, task: str | None, value: Any) -> Any:
        return self._catalog.convert_result(task, value)

    # -- enqueue --------------------------------------------------------------------------

    async def _prepare(
        self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], options: JobOptions | None = None
    ) -> _Prepared:
        given = {k: kwargs.pop(k) for k in [k for k in kwargs if k.startswith("_")]}
        if options is None:
            options = JobOptions.from_kwargs(given) if given else DEFAULT
        elif given:
            raise JobOptionsError(
                f"{', '.join(sorted(given))} given next to JobOptions: put every option in JobOptions "
                "(task arguments cannot start with '_')"
            )
        now_ms = int(time.time() * 1000)
        placement = options.place(self.settings.queue_name, now_ms)
        name = await self._catalog.check(task, placement.queue, args, kwargs)
        kwargs_json = encode_kwargs(name, kwargs)
        if args:
            encode_kwargs(name, {"positional arguments": list(args)})
        payload = job_payload(
            name,
            kwargs_json,
            now_ms,
            args=list(args) if args else None,
            job_try=placement.job_try,
            expires_ms=placement.expires_ms,
        )
        if len(payload) > self.settings.max_payload:
            raise PayloadError(
                f"the payload of task {name!r} is {len(payload)} bytes, over the SCALR_QUEUE_MAX_PAYLOAD cap of "
                f"{self.settings.max_payload} bytes: store large data elsewhere and pass a reference"
            )
        return _Prepared(name, placement, payload)

    @staticmethod
    def _script_args(p: _Prepared) -> tuple[list[str], list[bytes | str | int]]:
        pl = p.placement
        keys = [JOB_PREFIX + pl.job_id, queue_key(pl.queue), wake_key(pl.queue), RESULT_PREFIX + pl.job_id]
        return keys, [pl.job_id, pl.score, p.payload, "1" if pl.given_id else "0", pl.px]

    async def enqueue_call(
        self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], options: JobOptions | None = None
    ) -> Job[Any]:
        """The untyped core of every enqueue: ``_``-prefixed ``kwargs`` are options, the rest the task's."""
        prepared = await self._prepare(task, args, kwargs, options)
        sender = await self._enqueue_sender()
        keys, argv = self._script_args(prepared)
        written = await self._pool.run(sender.call(keys, argv), f"enqueue {prepared.name!r}")
        pl = prepared.placement
        if written:
            producer_metrics().count(pl.queue, prepared.name)
        return Job(pl.job_id, pl.queue, self, created=bool(written), task=prepared.name)

    @overload
    async def enqueue(self, task: TaskSpec[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Job[R]: ...

    @overload
    async def enqueue(self, task: TaskFn[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Job[R]: ...

    @overload
    async def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> Job[Any]: ...

    async def enqueue(self, task: Any, /, *args: Any, **kwargs: Any) -> Job[Any]:
        """Enqueue ``task`` (a name or the task function) with its arguments.

        A task function (or ``task(...)`` spec) is type-checked like a direct call and gives a
        ``Job[R]``; options for it go through :meth:`enqueue_with`. By name, options are
        keywords: ``_job_id`` (idempotency: an existing job with that id is returned instead),
        ``_queue_name``, ``_defer_by`` (seconds or timedelta), ``_defer_until`` (aware datetime),
        ``_expires`` (give up if not started within that long: the job goes to the failed set),
        ``_job_try``. Raises an EnqueueError subclass for mistakes, QueueUnavailableError when
        Redis can't take it; in both cases nothing was written.
        """
        return await self.enqueue_call(task, args, kwargs)

    @overload
    async def enqueue_with(
        self, options: JobOptions, task: TaskSpec[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Job[R]: ...

    @overload
    async def enqueue_with(
        self,
        options: JobOptions,
        task: TaskFn[P, R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Job[R]: ...

    @overload
    async def enqueue_with(self, options: JobOptions, task: str, /, *args: Any, **kwargs: Any) -> Job[Any]: ...

    async def enqueue_with(self, options: JobOptions, task: Any, /, *args: Any, **kwargs: Any) -> Job[Any]:
        """Enqueue with :class:`JobOptions`: the typed path's way to give a job id, queue or due time."""
        return await self.enqueue_call(task, args, kwargs, options)

    async def enqueue_many(self, calls: Iterable[tuple[Any, Mapping[str, Any]]]) -> list[Job[Any]]:
        """Enqueue many ``(task, kwargs)`` pairs in one pipelined round trip.

        Every call is checked and encoded before anything is sent, so one bad call rejects the
        whole batch with nothing written.
        """
        prepared = [await self._prepare(task, (), dict(kwargs)) for task, kwargs in calls]
        if not prepared:
            return []
        sender = await self._enqueue_sender()
        commands = [sender.command(*self._script_args(p)) for p in prepared]
        results = await self._pool.run(sender.send(commands), f"enqueue_many of {len(prepared)} jobs")
        for r in results:
            if isinstance(r, Exception):
                raise unavailable(r, self.settings, f"enqueue_many of {len(prepared)} jobs")
        counter = producer_metrics()
        for p, r in zip(prepared, results, strict=True):
            if r:
                counter.count(p.placement.queue, p.name)
        return [
            Job(p.placement.job_id, p.placement.queue, self, created=bool(r), task=p.name)
            for p, r in zip(prepared, results, strict=True)
        ]

    # -- lookups --------------------------------------------------------------------------

    def job(self, job_id: str, queue: str | None = None) -> Job[Any]:
        return Job(job_id, queue or self.settings.queue_name, self)

    @property
    def failed(self) -> FailedJobs:
        from ._failed import FailedJobs

        return FailedJobs(self)

    async def workers(self, queue: str | None = None) -> list[WorkerInfo]:
        redis = await self.redis()
        return await self.run(live_workers(redis, queue or self.settings.queue_name), "list workers")

    async def ping(self) -> float:
        """Round-trip time to Redis in seconds; raises QueueUnavailableError."""
        redis = await self.redis()
        start = time.perf_counter()
        await self.run(redis.ping(), "ping")
        return time.perf_counter() - start

    async def queue_stats(self, queue: str | None = None) -> QueueStats:
        queue = queue or self.settings.queue_name
        redis = await self.redis()
        now_ms = int(time.time() * 1000)
        key, leases = queue_key(queue), leases_key(queue)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zcard(key)
            pipe.zcount(key, "-inf", now_ms)
            pipe.zcard(leases)
            pipe.zcount(leases, "-inf", now_ms)  # a dead worker's jobs, due to run again
            pipe.zcard(failed_key(queue))
            total, due, leased, orphaned, failed = await self.run(pipe.execute(), "queue stats")
        workers = await self.workers(queue)
        return QueueStats(
            queue,
            int(due) + int(orphaned),
            int(total) - int(due),
            int(leased) - int(orphaned),
            int(failed),
            len(workers),
        )


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


def get_job(job_id: str, queue: str | None = None) -> Job[Any]:
    """A handle on an existing job (no Redis call until you ask it something)."""
    return get_client().job(job_id, queue)


async def queue_stats(queue: str | None = None) -> QueueStats:
    return await get_client().queue_stats(queue)


async def close() -> None:
    """Close the process's pool and forget cached settings (call from your app's shutdown)."""
    global _default
    client, _default = _default, None
    get_settings.cache_clear()
    if client is not None:
        await client.close()
