"""The producer side: ``enqueue`` and friends, over one lazily created pool per process."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from . import _scripts
from ._codec import encode_kwargs, job_payload
from ._connection import REDIS_ERRORS, ScalrRedis, create_redis, unavailable
from ._constants import (
    JOB_PREFIX,
    RESULT_PREFIX,
    failed_key,
    leases_key,
    queue_key,
    wake_key,
)
from ._errors import EnqueueError, JobOptionsError, PayloadError
from ._job import Job
from ._registry import WorkerInfo, live_workers
from ._sender import ScriptSender
from ._settings import QUEUE_NAME_HELP, QUEUE_NAME_RE, Settings, get_settings
from ._tasks import TaskSignature, TaskSpec, as_task_spec, did_you_mean, unknown_task

if TYPE_CHECKING:
    from ._failed import FailedJobs

logger = logging.getLogger("scalr_queue")
T = TypeVar("T")
MAX_TASK_NAME = 200
MAX_JOB_ID = 256
REGISTRY_CACHE_S = 5.0
_OPTIONS = ("_job_id", "_queue_name", "_defer_by", "_defer_until", "_expires", "_job_try")
# a job with ``_expires`` keeps its key at most this long past its expiry, in case no worker
# ever looks at it again (the worker fails expired jobs with a reason long before that)
EXPIRED_KEY_GRACE_MS = 86_400_000


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
    job_id: str
    queue: str
    score: int
    payload: bytes
    check_exists: bool
    px: int


def _check_job_id(job_id: object) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise JobOptionsError(f"_job_id must be a non-empty string, not {job_id!r}")
    if len(job_id) > MAX_JOB_ID:
        raise JobOptionsError(f"_job_id is {len(job_id)} characters long; at most {MAX_JOB_ID} are allowed")
    if not job_id.isprintable() or any(c.isspace() for c in job_id):
        raise JobOptionsError(
            f"_job_id {job_id!r} contains whitespace or control characters; use letters, digits and -_.:/"
        )
    return job_id


def _seconds(option: str, value: object) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise JobOptionsError(f"{option} must be seconds (a number) or a timedelta, not {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise JobOptionsError(f"{option} must be a finite number of seconds >= 0, not {value!r}")
    return seconds


class QueueClient:
    """Enqueue jobs and look them up. One per process is plenty (see :func:`get_client`).

    The pool is created on first use and re-created if the event loop changes (a test runner
    or a worker thread with its own loop), so a handle never talks through a dead loop.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._redis: ScalrRedis | None = None
        self._sender: ScriptSender | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._strict: dict[str, TaskSpec] | None = None
        self._specs: dict[int, TaskSpec] = {}
        self._registry: dict[str, tuple[float, dict[str, TaskSignature]]] = {}
        self._registry_reads: dict[str, asyncio.Future[dict[str, TaskSignature]]] = {}
        self._warned: dict[str, float] = {}

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    async def redis(self) -> ScalrRedis:
        loop = asyncio.get_running_loop()
        if self._redis is None or self._loop is not loop:
            self._redis = create_redis(self.settings)
            self._redis.scalr_client = self
            self._loop = loop
            self._sender = None
        return self._redis

    async def _enqueue_sender(self) -> ScriptSender:
        redis = await self.redis()
        if self._sender is None or self._sender.redis is not redis:
            self._sender = ScriptSender(redis, _scripts.ENQUEUE)
        return self._sender

    async def run(self, awaitable: Awaitable[T], doing: str) -> T:
        """Await a Redis call, turning connection-level failures into QueueUnavailableError."""
        try:
            return await awaitable
        except REDIS_ERRORS as exc:
            raise unavailable(exc, self.settings, doing) from None

    async def close(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None and self._loop is asyncio.get_running_loop():
            await redis.aclose(close_connection_pool=True)

    # -- checks ---------------------------------------------------------------------------

    def _strict_tasks(self) -> dict[str, TaskSpec] | None:
        if self.settings.tasks is None:
            return None
        if self._strict is None:
            from ._loader import load_worker_config

            self._strict = load_worker_config(self.settings.tasks).tasks
        return self._strict

    def _spec_for(self, fn: Any) -> TaskSpec:
        spec = self._specs.get(id(fn))
        if spec is None or (spec.coroutine is not fn and spec is not fn):
            spec = as_task_spec(fn)
            self._specs[id(fn)] = spec
        return spec

    def spec(self, name: str | None) -> TaskSpec | None:
        """The TaskSpec for a name when this process knows the worker's tasks (for results)."""
        if not name:
            return None
        for spec in self._specs.values():
            if spec.name == name:
                return spec
        strict = self._strict_tasks() if self.settings.tasks else None
        return strict.get(name) if strict is not None else None

    def convert_result(self, name: str | None, value: Any) -> Any:
        spec = self.spec(name)
        return spec.convert_result(value) if spec is not None else value

    async def _published(self, queue: str, task: str) -> dict[str, TaskSignature]:
        """Live workers' task signatures, cached briefly; concurrent misses share one read."""
        cached = self._registry.get(queue)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._registry_reads.get(queue)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = self._registry_reads[queue] = asyncio.ensure_future(self._read_registry(queue))
            pending.add_done_callback(lambda _f: self._registry_reads.pop(queue, None))
        return await self.run(asyncio.shield(pending), f"enqueue {task!r}")

    async def _read_registry(self, queue: str) -> dict[str, TaskSignature]:
        redis = await self.redis()
        merged: dict[str, TaskSignature] = {}
        for worker in await live_workers(redis, queue):
            merged.update(worker.tasks)
        self._registry[queue] = (time.monotonic() + REGISTRY_CACHE_S, merged)
        return merged

    async def _check(self, task: Any, queue: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        if not isinstance(task, str):
            spec = self._spec_for(task)
            if not args:
                spec.check_call(kwargs)
            return spec.name
        if not task or len(task) > MAX_TASK_NAME or not task.isprintable():
            shown = task if len(task) <= 60 else task[:57] + "..."
            raise EnqueueError(f"task name {shown!r} is not valid: names are 1-{MAX_TASK_NAME} printable characters")
        strict = self._strict_tasks()
        if strict is not None:
            known = strict.get(task)
            if known is None:
                raise unknown_task(task, strict, f"SCALR_QUEUE_TASKS={self.settings.tasks}")
            if not args:
                known.check_call(kwargs)
            return task
        published = await self._published(queue, task)
        if not published:
            return task
        sig = published.get(task)
        if sig is None:
            key = f"{queue}:{task}"
            if self._warned.get(key, 0) < time.monotonic():
                self._warned[key] = time.monotonic() + 60
                logger.warning(
                    "no live worker on queue %r knows task %r%s; enqueued anyway (a newer worker may run it; "
                    "set SCALR_QUEUE_TASKS to make this an error)",
                    queue,
                    task,
                    did_you_mean(task, published),
                )
        elif not args:
            sig.check(task, kwargs)
        return task

    # -- enqueue --------------------------------------------------------------------------

    async def _prepare(self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Prepared:
        options = {k: kwargs.pop(k) for k in [k for k in kwargs if k.startswith("_")]}
        for key in options:
            if key not in _OPTIONS:
                raise JobOptionsError(
                    f"unknown enqueue option {key!r}{did_you_mean(key, _OPTIONS)}; options are "
                    f"{', '.join(_OPTIONS[:-1])} (task arguments cannot start with '_')"
                )
        queue = options.get("_queue_name") or self.settings.queue_name
        if not isinstance(queue, str) or not QUEUE_NAME_RE.match(queue):
            raise JobOptionsError(f"_queue_name {queue!r} is not valid: expected {QUEUE_NAME_HELP}")
        given_id = options.get("_job_id")
        # 128 random bits as 32 hex digits: arq's uuid4().hex format, without building a UUID object
        job_id = _check_job_id(given_id) if given_id is not None else secrets.token_hex(16)
        now_ms = int(time.time() * 1000)
        score = now_ms
        defer_by, defer_until = options.get("_defer_by"), options.get("_defer_until")
        if defer_by is not None and defer_until is not None:
            raise JobOptionsError("use either _defer_by or _defer_until, not both")
        if defer_by is not None:
            score = now_ms + int(_seconds("_defer_by", defer_by) * 1000)
        elif defer_until is not None:
            if not isinstance(defer_until, datetime):
                raise JobOptionsError(f"_defer_until must be a datetime, not {type(defer_until).__name__}")
            if defer_until.tzinfo is None:
                raise JobOptionsError(
                    "_defer_until must be timezone-aware, e.g. datetime.now(timezone.utc) + timedelta(hours=1)"
                )
            # a time in the past is not an error: the job is simply due now
            score = max(now_ms, int(defer_until.timestamp() * 1000))
        expires_ms: int | None = None
        px = 0
        if options.get("_expires") is not None:
            seconds = _seconds("_expires", options["_expires"])
            if seconds <= 0:
                raise JobOptionsError("_expires must be greater than zero")
            expires_ms = now_ms + int(seconds * 1000)
            px = max(expires_ms, score) - now_ms + EXPIRED_KEY_GRACE_MS
        job_try = options.get("_job_try")
        if job_try is not None and (not isinstance(job_try, int) or job_try < 1):
            raise JobOptionsError(f"_job_try must be a whole number >= 1, not {job_try!r}")

        name = await self._check(task, queue, args, kwargs)
        kwargs_json = encode_kwargs(name, kwargs)
        if args:
            encode_kwargs(name, {"positional arguments": list(args)})
        payload = job_payload(
            name,
            kwargs_json,
            now_ms,
            args=list(args) if args else None,
            job_try=job_try,
            expires_ms=expires_ms,
        )
        if len(payload) > self.settings.max_payload:
            raise PayloadError(
                f"the payload of task {name!r} is {len(payload)} bytes, over the SCALR_QUEUE_MAX_PAYLOAD cap of "
                f"{self.settings.max_payload} bytes: store large data elsewhere and pass a reference"
            )
        return _Prepared(name, job_id, queue, score, payload, given_id is not None, px)

    @staticmethod
    def _script_args(p: _Prepared) -> tuple[list[str], list[bytes | str | int]]:
        keys = [JOB_PREFIX + p.job_id, queue_key(p.queue), wake_key(p.queue), RESULT_PREFIX + p.job_id]
        return keys, [p.job_id, p.score, p.payload, "1" if p.check_exists else "0", p.px]

    async def enqueue_call(self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Job:
        prepared = await self._prepare(task, args, kwargs)
        sender = await self._enqueue_sender()
        keys, argv = self._script_args(prepared)
        written = await self.run(sender.call(keys, argv), f"enqueue {prepared.name!r}")
        return Job(prepared.job_id, prepared.queue, self, created=bool(written), task=prepared.name)

    async def enqueue(self, task: Any, /, *args: Any, **kwargs: Any) -> Job:
        """Enqueue ``task`` (a name or the task function) with keyword arguments.

        Options: ``_job_id`` (idempotency: an existing job with that id is returned instead),
        ``_queue_name``, ``_defer_by`` (seconds or timedelta), ``_defer_until`` (aware datetime),
        ``_expires`` (give up if not started within that long: the job goes to the failed set).
        Raises an EnqueueError subclass for mistakes, QueueUnavailableError when Redis can't take it;
        in both cases nothing was written.
        """
        return await self.enqueue_call(task, args, kwargs)

    async def enqueue_many(self, calls: Iterable[tuple[Any, Mapping[str, Any]]]) -> list[Job]:
        """Enqueue many ``(task, kwargs)`` pairs in one pipelined round trip.

        Every call is checked and encoded before anything is sent, so one bad call rejects the
        whole batch with nothing written.
        """
        prepared = [await self._prepare(task, (), dict(kwargs)) for task, kwargs in calls]
        if not prepared:
            return []
        sender = await self._enqueue_sender()
        commands = [sender.command(*self._script_args(p)) for p in prepared]
        results = await self.run(sender.send(commands), f"enqueue_many of {len(prepared)} jobs")
        for r in results:
            if isinstance(r, Exception):
                raise unavailable(r, self.settings, f"enqueue_many of {len(prepared)} jobs")
        return [
            Job(p.job_id, p.queue, self, created=bool(r), task=p.name) for p, r in zip(prepared, results, strict=True)
        ]

    # -- lookups --------------------------------------------------------------------------

    def job(self, job_id: str, queue: str | None = None) -> Job:
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


async def enqueue(task: Any, /, **kwargs: Any) -> Job:
    """Enqueue a job on the process's client; see :meth:`QueueClient.enqueue`.

    Example::

        job = await enqueue("send_invoice_email", invoice_id=42)
        return {"job_id": job.job_id}
    """
    return await get_client().enqueue_call(task, (), kwargs)


async def enqueue_many(calls: Iterable[tuple[Any, Mapping[str, Any]]]) -> list[Job]:
    """Enqueue ``(task, kwargs)`` pairs in one round trip; see :meth:`QueueClient.enqueue_many`."""
    return await get_client().enqueue_many(calls)


def get_job(job_id: str, queue: str | None = None) -> Job:
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
