"""The producer side: ``enqueue`` and friends, over one lazily created client per process.

``QueueClient`` puts three parts together: the Redis client for the running loop
(``_pool``), the enqueue options (``_options``) and the checks of task names and arguments
(``_catalog``). What the client adds is the enqueue itself: one script call that writes the
job, queues it and wakes a worker.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast, overload

from .._codec import dumps, encode_kwargs, job_payload
from .._errors import ConfigurationError, JobOptionsError, PayloadError, QueueUnavailableError
from .._settings import QUEUE_NAME_HELP, QUEUE_NAME_RE, Settings, get_settings
from .._shards import shard_for
from .._tasks import P, R, TaskFn, TaskSpec
from ..control._holds import Released, check_task, hold_field, hold_rule, parse_where
from ..observe._producer_metrics import producer_metrics
from ..observe._tracing import configured_tracing
from ..redis import _scripts
from ..redis._connection import REDIS_ERRORS, ScalrRedis, aw, eval_script, unavailable
from ..redis._keys import (
    failed_jobs_key,
    failed_key,
    held_key,
    holds_key,
    in_progress_key,
    job_key,
    leases_key,
    next_key,
    parked_ids_key,
    parked_key,
    paused_key,
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


class QueueClient:
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
