"""``WorkerSettings``: the platform page's "full WorkerSettings" path with scalr_queue's semantics.

``python -m arq src.worker.WorkerSettings`` builds arq's own Worker from the class's *own*
attributes, so this base class fills in the defaults there when arq reads them, from the
settings at that moment (concurrency, timeouts, tries, the JSON serializer, Redis settings
from ``REDIS_URL``, a SIGTERM drain), and wraps each function so that any exception or
timeout retries with backoff and a job that fails for good lands in the failed set. ``python
-m scalr_queue.worker src.worker:WorkerSettings`` reads the same class and adds the rest:
leases, instant wake-ups, batched claims.
"""

from __future__ import annotations

import asyncio
import time
from types import MappingProxyType
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.worker import Function, Retry

from .._codec import dumps, error_record, loads
from .._settings import Settings, get_settings
from .._tasks import TaskSpec, as_task_spec
from ..control._failed import failure_record
from ..redis._keys import QUEUE_PREFIX, failed_jobs_key, failed_key, queue_key
from ..redis._url import is_cluster_url, is_sentinel_url, parse_sentinel_url
from ..worker._retry import decide

# arq gives every job key a TTL; make arq-enqueued jobs (its cron) effectively never expire
TEN_YEARS_MS = 10 * 365 * 86_400_000
ARQ_TIMEOUT_MARGIN_S = 5.0


def redis_settings(settings: Settings) -> RedisSettings:
    """arq's RedisSettings for ``REDIS_URL``; a Sentinel URL uses arq's own Sentinel support."""
    if is_cluster_url(settings.redis_url):
        raise ValueError(
            "arq's own Worker has no Redis Cluster support: run scalr_queue's worker on a redis+cluster:// URL"
        )
    if is_sentinel_url(settings.redis_url):
        target = parse_sentinel_url(settings.redis_url)
        rs = RedisSettings(
            host=list(target.sentinels),
            database=target.db,
            username=target.username,
            password=target.password,
            ssl=target.tls,
            sentinel=True,
            sentinel_master=target.service,
        )
    else:
        rs = RedisSettings.from_dsn(settings.redis_url)
    rs.conn_timeout = max(1, int(settings.redis_timeout))
    if rs.ssl:
        rs.ssl_cert_reqs = settings.tls_cert_reqs
        rs.ssl_ca_certs = settings.tls_ca_certs
        rs.ssl_check_hostname = settings.tls_check_hostname
    return rs


def retrying(spec: TaskSpec, settings: Settings, queue: str, default_timeout: float, max_tries: int) -> Function:
    """Wrap a task for arq's own Worker: exceptions and timeouts become ``Retry(defer=backoff)``."""
    timeout = spec.timeout_s or default_timeout

    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job_try = int(ctx.get("job_try", 1))
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await spec.coroutine(ctx, *args, **spec.convert_kwargs(kwargs))
        except Retry:
            raise
        except Exception as exc:
            timed_out = deadline.expired()
            failure: BaseException = TimeoutError(f"task exceeded its {timeout:g}s timeout") if timed_out else exc
            decision = decide(failure, spec, job_try, settings, timed_out=timed_out, max_tries=max_tries)
            if decision.retry:
                raise Retry(defer=decision.delay) from exc
            job = {
                "f": spec.name,
                "a": list(args),
                "k": kwargs,
                "et": int(ctx["enqueue_time"].timestamp() * 1000) if ctx.get("enqueue_time") else None,
            }
            record = failure_record(
                job_id=ctx["job_id"],
                queue=queue,
                job=job,
                tries=job_try,
                reason=decision.reason,
                error=error_record(failure),
            )
            async with ctx["redis"].pipeline(transaction=True) as pipe:
                pipe.zadd(failed_key(queue), {ctx["job_id"]: int(time.time() * 1000)})
                pipe.hset(failed_jobs_key(queue), ctx["job_id"], record)
                await pipe.execute()
            if timed_out:
                # our TimeoutError stands for the cancellation; its internal chain is noise
                raise failure from None
            raise  # the task's own exception, with its own cause and context, as arq logs it

    run.__qualname__ = run.__name__ = spec.name
    return Function(spec.name, run, timeout + ARQ_TIMEOUT_MARGIN_S, spec.keep_result_s, None, spec.max_tries)


def _namespace(cls: type) -> MappingProxyType[str, Any]:
    """A class's own attributes as Python stores them (``type.__dict__``, not the override below)."""
    namespace: MappingProxyType[str, Any] = _TYPE_DICT.__get__(cls)
    return namespace


_TYPE_DICT = type.__dict__["__dict__"]


def arq_attributes(cls: type, settings: Settings) -> dict[str, Any]:
    """What arq's Worker is built from: the class's own and inherited attributes over scalr_queue's
    defaults from ``settings``, and each function wrapped to retry and fail the scalr_queue way."""
    declared: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is not object and klass is not WorkerSettings:
            declared.update(_namespace(klass))
    queue = declared.get("queue_name") or queue_key(settings.queue_name)
    if not str(queue).startswith(QUEUE_PREFIX):
        queue = queue_key(str(queue))
    defaults: dict[str, Any] = {
        "queue_name": queue,
        "max_jobs": settings.concurrency,
        "job_timeout": settings.job_timeout,
        "max_tries": settings.max_tries,
        "keep_result": settings.keep_result,
        "health_check_interval": settings.health_interval,
        "job_serializer": dumps,
        "job_deserializer": loads,
        "redis_settings": redis_settings(settings),
        "expires_extra_ms": TEN_YEARS_MS,
        "job_completion_wait": int(settings.shutdown_grace),
        "poll_delay": min(settings.poll_interval, 0.5),
    }
    merged = {**defaults, **declared}
    default_timeout = float(merged["job_timeout"])
    max_tries = int(merged["max_tries"])
    merged["functions"] = [
        retrying(as_task_spec(f), settings, str(queue).removeprefix(QUEUE_PREFIX), default_timeout, max_tries)
        for f in declared.get("functions", [])
    ]
    return merged


def _arq_namespace(cls: type) -> MappingProxyType[str, Any]:
    if cls is WorkerSettings:
        return _namespace(cls)
    return MappingProxyType(arq_attributes(cls, get_settings()))


class _ReadAtStart(type):
    """Settings are read when arq's runner starts the worker, not when the class is defined.

    ``python -m arq src.worker.WorkerSettings`` builds its Worker from ``cls.__dict__`` (arq's
    ``get_kwargs``), which would otherwise need every value copied onto the class as it is
    defined, reading the environment at import. This metaclass answers that one read with
    :func:`arq_attributes` over :func:`get_settings` at that moment instead. Attribute access
    (``cls.max_jobs``) is not affected: it shows what the class declares. Type checkers see
    ``type.__dict__`` as final; overriding it is the point here.
    """

    __dict__ = property(_arq_namespace)  # type: ignore[misc]


class WorkerSettings(metaclass=_ReadAtStart):
    """Subclass instead of writing a bare arq WorkerSettings class.

    Unset attributes take their values from the settings (the environment) when the worker
    starts, under either runner.

    Example::

        class WorkerSettings(scalr_queue.WorkerSettings):
            functions = [send_invoice_email]
            max_jobs = 50
            job_timeout = 1800
            max_tries = 3
    """

    functions: ClassVar[list[Any]] = []
