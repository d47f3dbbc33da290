"""``WorkerSettings``: the platform page's "full WorkerSettings" path with scalr_queue's semantics.

``python -m arq src.worker.WorkerSettings`` builds arq's own Worker from the class's *own*
attributes, so this base class copies the defaults onto each subclass as it is defined
(concurrency, timeouts, tries, the JSON serializer, Redis settings from ``REDIS_URL``,
a SIGTERM drain) and wraps each function so that any exception or timeout retries with
backoff and a job that fails for good lands in the failed set. ``python -m
scalr_queue.worker src.worker:WorkerSettings`` reads the same class and adds the rest:
leases, instant wake-ups, batched claims.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.worker import Function, Retry

from ._codec import dumps, error_record, loads
from ._constants import QUEUE_PREFIX, failed_jobs_key, failed_key, queue_key
from ._failed import failure_record
from ._retry import decide
from ._settings import Settings, get_settings
from ._tasks import TaskSpec, as_task_spec

# arq gives every job key a TTL; make arq-enqueued jobs (its cron) effectively never expire
TEN_YEARS_MS = 10 * 365 * 86_400_000
ARQ_TIMEOUT_MARGIN_S = 5.0


def redis_settings(settings: Settings) -> RedisSettings:
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


class WorkerSettings:
    """Subclass instead of writing a bare arq WorkerSettings class.

    Example::

        class WorkerSettings(scalr_queue.WorkerSettings):
            functions = [send_invoice_email]
            max_jobs = 50
            job_timeout = 1800
            max_tries = 3
    """

    functions: ClassVar[list[Any]] = []
    scalr_tasks: ClassVar[list[TaskSpec]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        settings = get_settings()
        own = cls.__dict__
        queue = own.get("queue_name") or queue_key(settings.queue_name)
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
        for key, value in defaults.items():
            if key not in own:
                setattr(cls, key, value)
        # stays readable by scalr_queue's loader, which wants the unwrapped tasks
        cls.scalr_tasks = [as_task_spec(f) for f in own.get("functions", [])]
        default_timeout = float(cls.__dict__["job_timeout"])
        max_tries = int(cls.__dict__["max_tries"])
        cls.functions = [
            retrying(spec, settings, str(queue).removeprefix(QUEUE_PREFIX), default_timeout, max_tries)
            for spec in cls.scalr_tasks
        ]
