"""The failed set: every job that ran out of tries, or must not be retried, kept with its reason.

Per queue, a sorted set of ids by failed-at time plus a hash of JSON records. It never
expires; ``SCALR_QUEUE_FAILED_MAX`` caps it (the oldest entries are dropped, with a warning
in the worker log). ``retry`` puts a job back with a fresh try count.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._codec import dumps, job_payload, loads
from .._errors import JobNotFoundError, ScalrQueueError
from ..producer._job import Job, ms_to_datetime
from ..redis import _scripts
from ..redis._connection import aw, eval_script
from ..redis._keys import failed_jobs_key, failed_key, queue_key, wake_key

if TYPE_CHECKING:
    from .._protocols import QueueAccess


# told (done, total) after each batch of a bulk retry or purge
Progress = Callable[[int, int], None]

# why retry_all left a job in the failed set
NO_PAYLOAD = "no valid payload to run again; purge it instead"
ALREADY_QUEUED = "queued or running again already"
GONE = "no longer in the failed set"


@dataclass(frozen=True)
class RetryAllReport:
    """What ``FailedJobs.retry_all`` re-drove, oldest first, and why it left the others alone."""

    retried: list[str]
    not_retried: dict[str, str]  # job id -> reason


PURGE_IDS_KEPT = 100  # ids a purge_all report names (newest first); the count is always exact


@dataclass(frozen=True)
class PurgeAllReport:
    """What ``FailedJobs.purge_all`` removed: how many, and the newest ``PURGE_IDS_KEPT`` ids."""

    count: int
    job_ids: list[str]


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
        q = failed.queue if queue is None else queue
        why_not = await self._redrive(failed, q)
        if why_not == GONE:
            raise JobNotFoundError(f"job {job_id!r} is not in the failed set of queue {q!r}")
        if why_not == NO_PAYLOAD:
            raise ScalrQueueError(
                f"job {job_id!r} has no valid payload to run again ({failed.error_message}); purge it instead"
            )
        if why_not is not None:
            raise ScalrQueueError(f"job {job_id!r} is {why_not}; not re-driven twice")
        return Job(job_id, q, self._client, task=failed.task)

    async def _redrive(self, failed: FailedJob, q: str) -> str | None:
        """Move one failed job back onto queue ``q``; None when done, else why it was left alone.

        Only a Redis failure raises (QueueUnavailableError), so a caller walking many jobs can
        tell "this job cannot run again" from "Redis cannot take the work".
        """
        if failed.task is None:
            return NO_PAYLOAD
        now_ms = int(time.time() * 1000)
        payload = job_payload(failed.task, dumps(failed.kwargs), now_ms, args=failed.args or None)
        redis = await self._client.redis()
        keys = [failed_key(q), failed_jobs_key(q), queue_key(q), wake_key(q)]
        done = await self._client.run(
            eval_script(redis, _scripts.REDRIVE, keys, [failed.job_id, now_ms, payload]), "retry failed job"
        )
        return {1: None, 0: GONE}.get(int(done), ALREADY_QUEUED)

    async def retry_all(
        self, queue: str | None = None, *, batch_size: int = 500, progress: Progress | None = None
    ) -> RetryAllReport:
        """Re-drive every failed job of the queue, oldest first, ``batch_size`` ids per read.

        The walk moves a cursor over failed-at times instead of an offset, so entries leaving the
        set as they are retried (or purged by someone else) never make it skip one; and it stops
        at the newest entry present when it started, so a job that fails again meanwhile is not
        picked up twice. Jobs it cannot re-drive stay in the set, each with the reason in the
        report. ``progress(done, total)`` is called after each batch (total: the set's size at the
        start). QueueUnavailableError propagates: what was retried so far is queued, the rest is
        still in the failed set, and running it again carries on from there.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        q = self._queue(queue)
        redis = await self._client.redis()
        key = failed_key(q)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrange(key, -1, -1, withscores=True)
            pipe.zcard(key)
            newest, total = await self._client.run(pipe.execute(), "list failed jobs")
        if not newest:
            return RetryAllReport(retried=[], not_retried={})
        until = newest[0][1]
        retried: list[str] = []
        not_retried: dict[str, str] = {}
        seen: set[str] = set()
        low = "-inf"
        while True:
            rows = await self._client.run(
                redis.zrangebyscore(key, low, until, start=0, num=batch_size, withscores=True), "list failed jobs"
            )
            if not rows:
                break
            last = rows[-1][1]
            ids = [member for member, _ in rows]
            if len(rows) == batch_size:
                # the batch may end inside a run of equal failed-at times: take the whole run
                ties = await self._client.run(redis.zrangebyscore(key, last, last), "list failed jobs")
                ids = [member for member, score in rows if score < last] + list(ties)
            low = f"({last!r}"
            records = await self._client.run(aw(redis.hmget(failed_jobs_key(q), ids)), "list failed jobs")
            batch: dict[str, FailedJob | None] = {}
            for member, raw in zip(ids, records, strict=True):
                job_id = member.decode() if isinstance(member, bytes) else str(member)
                if job_id not in seen:
                    seen.add(job_id)
                    batch[job_id] = None if raw is None else FailedJob.from_record(loads(raw))
            for job_id, why_not in (await self._redrive_batch(batch, q)).items():
                if why_not is None:
                    retried.append(job_id)
                else:
                    not_retried[job_id] = why_not
            if progress is not None:
                progress(len(seen), max(int(total), len(seen)))
        return RetryAllReport(retried=retried, not_retried=not_retried)

    async def _redrive_batch(self, batch: dict[str, FailedJob | None], q: str) -> dict[str, str | None]:
        """``_redrive`` for a batch: the REDRIVE calls of the batch share one pipelined round trip."""
        out: dict[str, str | None] = {}
        runnable: list[FailedJob] = []
        for job_id, failed in batch.items():
            if failed is None:
                out[job_id] = GONE
            elif failed.task is None:
                out[job_id] = NO_PAYLOAD
            else:
                out[job_id] = None  # keeps the walk's order; settled below
                runnable.append(failed)
        if not runnable:
            return out
        redis = await self._client.redis()
        await self._client.run(aw(redis.script_load(_scripts.REDRIVE)), "retry failed job")
        keys = [failed_key(q), failed_jobs_key(q), queue_key(q), wake_key(q)]
        now_ms = int(time.time() * 1000)
        async with redis.pipeline(transaction=False) as pipe:
            for failed in runnable:
                assert failed.task is not None
                payload = job_payload(failed.task, dumps(failed.kwargs), now_ms, args=failed.args or None)
                pipe.execute_command(
                    "EVALSHA", _scripts.sha(_scripts.REDRIVE), len(keys), *keys, failed.job_id, now_ms, payload
                )
            replies = await self._client.run(pipe.execute(), "retry failed job")
        for failed, done in zip(runnable, replies, strict=True):
            out[failed.job_id] = {1: None, 0: GONE}.get(int(done), ALREADY_QUEUED)
        return out

    async def purge(self, job_id: str, queue: str | None = None) -> int:
        """Delete one failed job; returns 1, or 0 when it was not in the set.

        There is no "no id means everything": that is ``purge_all``, named so it cannot happen
        by leaving an argument out.
        """
        if not job_id:
            raise TypeError("purge() needs a job id; purge_all() removes every failed job of the queue")
        q = self._queue(queue)
        redis = await self._client.redis()
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(failed_key(q), job_id)
            pipe.hdel(failed_jobs_key(q), job_id)
            removed, _ = await self._client.run(pipe.execute(), "purge failed job")
        return int(removed)

    async def purge_all(
        self, queue: str | None = None, *, batch_size: int | None = None, progress: Progress | None = None
    ) -> PurgeAllReport:
        """Delete every failed job of the queue; says how many, and which.

        By default in one transaction: the ids read are the newest ``PURGE_IDS_KEPT``, taken in
        the same MULTI as the delete, so the report names exactly what was removed without
        holding a huge set in memory. With ``batch_size``, oldest first, ``batch_size`` per
        transaction, so Redis never blocks on one huge delete and ``progress(done, total)`` can
        follow it; jobs failing meanwhile are purged too, and the report names the newest removed.
        """
        q = self._queue(queue)
        redis = await self._client.redis()
        if batch_size is not None:
            return await self._purge_batches(q, batch_size, progress)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zcard(failed_key(q))
            pipe.zrevrange(failed_key(q), 0, PURGE_IDS_KEPT - 1)
            pipe.delete(failed_key(q), failed_jobs_key(q))
            count, ids, _ = await self._client.run(pipe.execute(), "purge failed jobs")
        return PurgeAllReport(count=int(count), job_ids=[i.decode() if isinstance(i, bytes) else str(i) for i in ids])

    async def _purge_batches(self, q: str, batch_size: int, progress: Progress | None) -> PurgeAllReport:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        redis = await self._client.redis()
        total = int(await self._client.run(aw(redis.zcard(failed_key(q))), "purge failed jobs"))
        newest: deque[str] = deque(maxlen=PURGE_IDS_KEPT)
        count = 0
        while True:
            ids = await self._client.run(redis.zrange(failed_key(q), 0, batch_size - 1), "purge failed jobs")
            if not ids:
                break
            async with redis.pipeline(transaction=True) as pipe:
                pipe.zrem(failed_key(q), *ids)
                pipe.hdel(failed_jobs_key(q), *ids)
                removed, _ = await self._client.run(pipe.execute(), "purge failed jobs")
            count += int(removed)
            newest.extend(i.decode() if isinstance(i, bytes) else str(i) for i in ids)
            if progress is not None:
                progress(count, max(total, count))
        return PurgeAllReport(count=count, job_ids=list(reversed(newest)))
