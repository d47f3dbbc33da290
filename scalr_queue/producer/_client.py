"""The producer's client: ``QueueClient``, whose enqueue is one script call per job.

``QueueClient`` puts its parts together: the Redis client for the running loop (``_pool``), the
enqueue options (``_options``), the checks of task names and arguments (``_catalog``) and the
queue controls (``_queue_control``: pause, hold). What it adds is the enqueue itself, one script
call that writes the job, queues it and wakes a worker, and the reads over a queue. The
process's default client and ``scalr_queue.enqueue`` and friends are in ``_default``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast, overload

from .._codec import encode_kwargs, job_payload
from .._errors import ConfigurationError, JobOptionsError, PayloadError, QueueUnavailableError
from .._settings import Settings
from .._shards import shard_for
from .._tasks import P, R, TaskFn, TaskSpec
from ..observe._producer_metrics import producer_metrics
from ..observe._tracing import configured_tracing
from ..redis import _scripts
from ..redis._connection import REDIS_ERRORS, ScalrRedis, unavailable
from ..redis._keys import (
    failed_jobs_key,
    failed_key,
    in_progress_key,
    job_key,
    leases_key,
    next_key,
    parked_ids_key,
    parked_key,
    queue_key,
    result_key,
    retry_key,
    tagged_keys,
    wake_key,
)
from ..worker._registry import WorkerInfo, live_workers
from ._catalog import TaskCatalog
from ._cluster_sender import ClusterScriptSender
from ._job import Job
from ._options import DEFAULT, JobOptions, Placement
from ._pool import LoopPool
from ._queue_control import QueueControl
from ._sender import ScriptSender

if TYPE_CHECKING:
    from ..control._cancel import CancelOutcome
    from ..control._failed import FailedJobs
    from ..observe._otel import Tracing
    from ..observe._views import JobPage, JobTimeline, QueueOverview, WorkerDetail

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
    paused: bool = False  # workers claim nothing from it until ``resume``
    held: int = 0  # moved aside by a hold; run after ``release``
    parked: int = 0  # due, waiting for a slot of their task's max_concurrent

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Prepared(NamedTuple):
    """One checked, encoded job: a tuple, the cheapest record to build once per enqueue."""

    name: str
    placement: Placement
    payload: bytes


def _pop_options(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Take the enqueue options (``_job_id=...``: keywords starting with ``_``) out of ``kwargs``."""
    for key in kwargs:
        if key.startswith("_"):  # rare: a plain loop keeps the usual call free of a comprehension
            given = {k: v for k, v in kwargs.items() if k.startswith("_")}
            for k in given:
                del kwargs[k]
            return given
    return None


class QueueClient(QueueControl):
    """Enqueue jobs and look them up. One per process is plenty (see :func:`get_client`).

    ``tasks`` is for a worker: the tasks it has loaded, used for strict checks instead of
    importing the ``SCALR_QUEUE_TASKS`` module again.
    """

    def __init__(self, settings: Settings | None = None, *, tasks: Mapping[str, TaskSpec] | None = None) -> None:
        self._pool = LoopPool(settings, owner=self)
        self._catalog = TaskCatalog(self._pool, tasks)
        self._sender: ScriptSender | None = None
        self._replace_sender: ScriptSender | None = None
        self._tracing: Tracing | None = None
        self._tracing_known = False

    def _decide_tracing(self) -> Tracing | None:
        """At the first enqueue: trace for the client's whole life, or never (see _tracing)."""
        self._tracing, self._tracing_known = configured_tracing(), True
        return self._tracing

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
            self._sender = self._script_sender(redis, _scripts.ENQUEUE)
        return self._sender

    async def _replacing_sender(self) -> ScriptSender:
        redis = await self._pool.redis()
        if self._replace_sender is None or self._replace_sender.redis is not redis:
            self._replace_sender = self._script_sender(redis, _scripts.REPLACE)
        return self._replace_sender

    def _script_sender(self, redis: ScalrRedis, script: str) -> ScriptSender:
        s = self.settings
        if tagged_keys():
            if s.min_replicas:
                raise ConfigurationError(
                    "SCALR_QUEUE_MIN_REPLICAS works with redis:// and redis+sentinel:// only: on redis+cluster:// "
                    "an enqueue is not confirmed by WAIT yet (unset it; docs/cluster.md has the loss window)"
                )
            return cast(ScriptSender, ClusterScriptSender(redis, script))
        return ScriptSender(
            redis, script, min_replicas=s.min_replicas, replicas_timeout=s.min_replicas_timeout, timeout=s.redis_timeout
        )

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
        now_ms = int(time.time() * 1000)
        placement = self._place(kwargs, options, now_ms)
        # the name and the arguments are checked before anything is encoded; the check needs no
        # await unless the workers' published signatures must be read (every few seconds at most)
        name = self._catalog.check_known(task, placement.queue, args, kwargs)
        if name is None:
            name = await self._catalog.check(task, placement.queue, args, kwargs)
        return self._encode(name, placement, now_ms, args, kwargs)

    def _place(self, kwargs: dict[str, Any], options: JobOptions | None, now_ms: int) -> Placement:
        """Take the ``_``-prefixed options out of ``kwargs`` and resolve them against the clock."""
        given = _pop_options(kwargs)
        if options is None:
            options = JobOptions.from_kwargs(given) if given else DEFAULT
        elif given:
            raise JobOptionsError(
                f"{', '.join(sorted(given))} given next to JobOptions: put every option in JobOptions "
                "(task arguments cannot start with '_')"
            )
        settings = self.settings
        placement = options.place(settings.queue_name, now_ms)
        if settings.shards:  # a split hot queue: the job's shard, by a hash of its id
            count = settings.shard_count(placement.queue)
            if count > 1:
                placement = placement._replace(queue=shard_for(placement.queue, placement.job_id, count))
        return placement

    def _encode(
        self, name: str, placement: Placement, now_ms: int, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Prepared:
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
            priority=placement.priority,
        )
        max_payload = self.settings.max_payload
        if len(payload) > max_payload:
            raise PayloadError(
                f"the payload of task {name!r} is {len(payload)} bytes, over the SCALR_QUEUE_MAX_PAYLOAD cap of "
                f"{max_payload} bytes: store large data elsewhere and pass a reference"
            )
        return _Prepared(name, placement, payload)

    @staticmethod
    def _script_args(p: _Prepared) -> tuple[list[str], list[bytes | str | int]]:
        pl = p.placement
        if pl.replace:
            job_id = pl.job_id
            keys = [
                job_key(job_id, pl.queue),
                queue_key(pl.queue),
                wake_key(pl.queue),
                result_key(job_id, pl.queue),
                in_progress_key(job_id, pl.queue),
                next_key(job_id, pl.queue),
                retry_key(job_id, pl.queue),
                leases_key(pl.queue),
                failed_key(pl.queue),
                failed_jobs_key(pl.queue),
                parked_key(pl.queue),
                parked_ids_key(pl.queue),
            ]
            return keys, [job_id, pl.score, p.payload, pl.px]
        keys = [job_key(pl.job_id, pl.queue), queue_key(pl.queue), wake_key(pl.queue), result_key(pl.job_id, pl.queue)]
        return keys, [pl.job_id, pl.score, p.payload, "1" if pl.given_id else "0", pl.px]

    async def enqueue_call(
        self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], options: JobOptions | None = None
    ) -> Job[Any]:
        """The untyped core of every enqueue: ``_``-prefixed ``kwargs`` are options, the rest the task's."""
        prepared = await self._prepare(task, args, kwargs, options)
        tracing = self._tracing if self._tracing_known else self._decide_tracing()
        if tracing is not None:
            pl = prepared.placement

            def send(payload: bytes) -> Awaitable[Job[Any]]:
                return self._send(prepared._replace(payload=payload))

            return await tracing.enqueue(prepared.name, pl.job_id, pl.queue, prepared.payload, send)
        return await self._send(prepared)

    async def _send(self, prepared: _Prepared) -> Job[Any]:
        pl = prepared.placement
        sender = self._ready_sender(pl.replace) or await (
            self._replacing_sender() if pl.replace else self._enqueue_sender()
        )
        keys, argv = self._script_args(prepared)
        try:
            written = await sender.call(keys, argv)
        except REDIS_ERRORS as exc:  # what self.run does, without a coroutine of its own per enqueue
            raise unavailable(exc, self.settings, f"enqueue {prepared.name!r}") from None
        if written:
            producer_metrics().count(pl.queue, prepared.name)
        return Job(pl.job_id, pl.queue, self, created=written == 1, task=prepared.name)

    def _ready_sender(self, replacing: bool) -> ScriptSender | None:
        """The sender already made for the running loop's Redis client, else None (then await one)."""
        redis = self._pool.current()
        sender = self._replace_sender if replacing else self._sender
        return sender if sender is not None and redis is not None and sender.redis is redis else None

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
        ``_job_try``, ``_priority`` (0-9, default 5: higher starts first among due jobs).
        Raises an EnqueueError subclass for mistakes, QueueUnavailableError when
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
        tracing = self._tracing if self._tracing_known else self._decide_tracing()
        if tracing is not None:
            jobs = [(p.name, p.placement.job_id, p.placement.queue, p.payload) for p in prepared]

            def send(payloads: list[bytes]) -> Awaitable[list[Job[Any]]]:
                return self._send_many([p._replace(payload=x) for p, x in zip(prepared, payloads, strict=True)])

            return await tracing.enqueue_many(jobs, send)
        return await self._send_many(prepared)

    async def _send_many(self, prepared: list[_Prepared]) -> list[Job[Any]]:
        results: list[Any] = [None] * len(prepared)
        doing = f"enqueue_many of {len(prepared)} jobs"
        # replacements go in a pipeline of their own, after the plain ones (one more round trip if mixed)
        for sender, picked in (
            (await self._enqueue_sender(), [i for i, p in enumerate(prepared) if not p.placement.replace]),
            (await self._replacing_sender(), [i for i, p in enumerate(prepared) if p.placement.replace]),
        ):
            if not picked:
                continue
            commands = [sender.command(*self._script_args(prepared[i])) for i in picked]
            for i, r in zip(picked, await self._pool.run(sender.send(commands), doing), strict=True):
                if isinstance(r, QueueUnavailableError):  # NotReplicatedError: written, not yet copied
                    raise r
                if isinstance(r, Exception):
                    raise unavailable(r, self.settings, doing)
                results[i] = r
        counter = producer_metrics()
        for p, r in zip(prepared, results, strict=True):
            if r:
                counter.count(p.placement.queue, p.name)
        return [
            Job(p.placement.job_id, p.placement.queue, self, created=r == 1, task=p.name)
            for p, r in zip(prepared, results, strict=True)
        ]

    # -- lookups --------------------------------------------------------------------------

    def job(self, job_id: str, queue: str | None = None) -> Job[Any]:
        return Job(job_id, queue or self.settings.queue_name, self)

    async def cancel(self, job_id: str, queue: str | None = None, *, reason: str | None = None) -> CancelOutcome:
        """Cancel a job by id; see :meth:`Job.cancel`."""
        return await self.job(job_id, queue).cancel(reason)

    @property
    def failed(self) -> FailedJobs:
        from ..control._failed import FailedJobs

        return FailedJobs(self)

    async def workers(self, queue: str | None = None) -> list[WorkerInfo]:
        redis = await self.redis()
        return await self.run(live_workers(redis, queue or self.settings.queue_name), "list workers")

    # -- the read model (what the CLI and the dashboard show; see scalr_queue.observe._inspect) --

    async def list_queues(self, queues: Sequence[str] | None = None) -> list[QueueOverview]:
        """Counts of every queue found (or of ``queues``): ready, scheduled, running, held, failed..."""
        from ..observe import _inspect

        return await _inspect.list_queues(self, queues)

    async def list_jobs(
        self,
        queue: str | None = None,
        state: str = "ready",
        *,
        task: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """A page of one state's jobs, fast at any queue size; see :func:`scalr_queue.observe._inspect.list_jobs`."""
        from ..observe import _inspect

        return await _inspect.list_jobs(self, queue, state, task=task, limit=limit, cursor=cursor)

    async def job_timeline(self, job_id: str, queue: str | None = None) -> JobTimeline:
        """A job's status, arguments, result or error, and every try; JobNotFoundError if unknown."""
        from ..observe import _inspect

        return await _inspect.job_timeline(self, job_id, queue)

    async def worker_details(self, queues: Sequence[str] | None = None) -> list[WorkerDetail]:
        """Live workers with host, pid, concurrency, last heartbeat and the jobs they run now."""
        from ..observe import _inspect

        return await _inspect.list_workers(self, queues)

    async def ping(self) -> float:
        """Round-trip time to Redis in seconds; raises QueueUnavailableError."""
        redis = await self.redis()
        start = time.perf_counter()
        await self.run(redis.ping(), "ping")
        return time.perf_counter() - start

    async def queue_stats(self, queue: str | None = None) -> QueueStats:
        """One queue's counts: the read model's overview of that queue (one round trip)."""
        q = (await self.list_queues([queue or self.settings.queue_name]))[0]
        return QueueStats(q.queue, q.ready, q.scheduled, q.running, q.failed, q.workers, q.paused, q.held, q.parked)
