"""The failed set: every job that ran out of tries, or must not be retried, kept with its reason.

Per queue, a sorted set of ids by failed-at time plus a hash of JSON records. It never
expires; ``SCALR_QUEUE_FAILED_MAX`` caps it (the oldest entries are dropped, with a warning
in the worker log). ``retry`` puts a job back with a fresh try count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import _scripts
from ._codec import dumps, job_payload, loads
from ._connection import aw, eval_script
from ._constants import failed_jobs_key, failed_key, queue_key, wake_key
from ._errors import JobNotFoundError, ScalrQueueError
from ._job import Job, ms_to_datetime

if TYPE_CHECKING:
    from ._protocols import QueueAccess


@dataclass(frozen=True)
class FailedJob:
    """A failed job as the worker recorded it."""

    job_id: str
    queue: str
    task: str | None
    args: list[Any]
    kwargs: dict[str, Any]
    tries: int
    reason: str
    error_type: str
    error_message: str
    traceback: str
    enqueued_at: datetime | None
    failed_at: datetime | None
    retriable: bool

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FailedJob:
        error = record.get("error") or {}
        return cls(
            job_id=record["job_id"],
            queue=record.get("queue", "?"),
            task=record.get("task"),
            args=record.get("args") or [],
            kwargs=record.get("kwargs") or {},
            tries=int(record.get("tries", 0)),
            reason=record.get("reason", ""),
            error_type=error.get("type", ""),
            error_message=error.get("message", ""),
            traceback=error.get("traceback", ""),
            enqueued_at=ms_to_datetime(record.get("enqueued_ms")),
            failed_at=ms_to_datetime(record.get("failed_ms")),
            retriable=record.get("task") is not None,
        )

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("enqueued_at", "failed_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def failure_record(
    *,
    job_id: str,
    queue: str,
    job: dict[str, Any] | None,
    tries: int,
    reason: str,
    error: dict[str, str],
    raw: bytes | None = None,
) -> bytes:
    """The JSON kept in the failed set. A payload we could not parse is kept as a text preview."""
    record: dict[str, Any] = {
        "job_id": job_id,
        "queue": queue,
        "tries": tries,
        "reason": reason,
        "error": error,
        "failed_ms": int(time.time() * 1000),
        "task": job.get("f") if job else None,
        "args": job.get("a", []) if job else [],
        "kwargs": job.get("k", {}) if job else {},
        "enqueued_ms": job.get("et") if job else None,
    }
    if job is None and raw is not None:
        record["payload_preview"] = raw[:200].decode("utf-8", "backslashreplace")
    return dumps(record)


class FailedJobs:
    """List, inspect, re-drive and purge failed jobs: ``get_client().failed``."""

    def __init__(self, client: QueueAccess) -> None:
        self._client = client

    def _queue(self, queue: str | None) -> str:
        return queue or self._client.settings.queue_name

    async def count(self, queue: str | None = None) -> int:
        redis = await self._client.redis()
        return int(await self._client.run(aw(redis.zcard(failed_key(self._queue(queue)))), "count failed jobs"))

    async def list(self, queue: str | None = None, *, limit: int = 100, offset: int = 0) -> list[FailedJob]:
        """Newest first."""
        q = self._queue(queue)
        redis = await self._client.redis()
        ids = await self._client.run(redis.zrevrange(failed_key(q), offset, offset + limit - 1), "list failed jobs")
        if not ids:
            return []
        records = await self._client.run(aw(redis.hmget(failed_jobs_key(q), ids)), "list failed jobs")
        return [FailedJob.from_record(loads(r)) for r in records if r is not None]

    async def get(self, job_id: str, queue: str | None = None) -> FailedJob:
        q = self._queue(queue)
        redis = await self._client.redis()
        raw = await self._client.run(aw(redis.hget(failed_jobs_key(q), job_id)), "show failed job")
        if raw is None:
            raise JobNotFoundError(f"job {job_id!r} is not in the failed set of queue {q!r}")
        return FailedJob.from_record(loads(raw))

    async def retry(self, job_id: str, queue: str | None = None) -> Job[Any]:
        """Put the job back on its queue, due now, with a fresh try count."""
        failed = await self.get(job_id, queue)
        if failed.task is None:
            raise ScalrQueueError(
                f"job {job_id!r} has no valid payload to run again ({failed.error_message}); purge it instead"
            )
        q = failed.queue if queue is None else queue
        now_ms = int(time.time() * 1000)
        payload = job_payload(failed.task, dumps(failed.kwargs), now_ms, args=failed.args or None)
        redis = await self._client.redis()
        keys = [failed_key(q), failed_jobs_key(q), queue_key(q), wake_key(q)]
        done = await self._client.run(
            eval_script(redis, _scripts.REDRIVE, keys, [job_id, now_ms, payload]), "retry failed job"
        )
        if done == 0:
            raise JobNotFoundError(f"job {job_id!r} is not in the failed set of queue {q!r}")
        if done == -1:
            raise ScalrQueueError(f"job {job_id!r} is queued or running again already; not re-driven twice")
        return Job(job_id, q, self._client, task=failed.task)

    async def retry_all(self, queue: str | None = None) -> int:
        count = 0
        while True:
            batch = await self.list(queue, limit=500)
            if not batch:
                return count
            progressed = False
            for job in batch:
                if job.task is None:
                    continue
                try:
                    await self.retry(job.job_id, queue)
                except JobNotFoundError:
                    continue
                except ScalrQueueError:
                    continue
                count += 1
                progressed = True
            if not progressed:
                return count

    async def purge(self, job_id: str | None = None, queue: str | None = None) -> int:
        """Delete one failed job, or all of the queue's; returns how many were removed."""
        q = self._queue(queue)
        redis = await self._client.redis()
        if job_id is not None:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.zrem(failed_key(q), job_id)
                pipe.hdel(failed_jobs_key(q), job_id)
                removed, _ = await self._client.run(pipe.execute(), "purge failed job")
            return int(removed)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zcard(failed_key(q))
            pipe.delete(failed_key(q), failed_jobs_key(q))
            count, _ = await self._client.run(pipe.execute(), "purge failed jobs")
        return int(count)
