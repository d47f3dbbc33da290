"""``Job``: a handle on one job, returned by ``enqueue``; status, result and info on demand."""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic

from .._codec import BadPayload, loads, parse_job
from .._errors import JobCancelledError, JobFailedError, JobNotFoundError
from .._priority import BAND_MS, DEFAULT_PRIORITY, due_ms, payload_priority
from .._tasks import R
from ..redis._keys import (
    failed_jobs_key,
    held_key,
    in_progress_key,
    job_key,
    leases_key,
    next_key,
    parked_ids_key,
    progress_key,
    queue_key,
    result_key,
    retry_key,
)

if TYPE_CHECKING:
    from .._protocols import QueueAccess
    from ..control._cancel import CancelOutcome


class JobStatus(enum.StrEnum):
    """Where a job is in its life (arq's statuses plus ``failed``)."""

    DEFERRED = "deferred"  # queued, not due yet (deferred, or waiting out a retry backoff)
    QUEUED = "queued"  # due, waiting for a free worker slot
    IN_PROGRESS = "in_progress"  # a worker holds its lease
    COMPLETE = "complete"  # finished successfully; result kept for SCALR_QUEUE_KEEP_RESULT
    FAILED = "failed"  # in the failed set (or its failure result is still kept)
    CANCELLED = "cancelled"  # cancelled before or while it ran; kept for SCALR_QUEUE_KEEP_RESULT
    HELD = "held"  # moved aside by a hold (``scalr_queue.hold``); runs after ``release``
    PARKED = "parked"  # due, waiting for a slot of its task's max_concurrent; runs when one frees
    NOT_FOUND = "not_found"  # never queued, purged, or its result expired


HELD_MARK = b"held"  # the snapshot's running slot of a job in the held set
PARKED_MARK = b"parked"  # the snapshot's running slot of a job waiting for a concurrency slot


PARKED_SHIFT = 5 * BAND_MS  # keeps banded scores positive in the parked set's lex order (LIMITS)


def parked_due(member: bytes, job_id: str) -> float:
    """The queue score in a parked-set member ``<limit>|<score + 5 bands, 15 digits>|<job id>``."""
    end = len(member) - len(job_id.encode()) - 1
    return float(member[end - 15 : end]) - PARKED_SHIFT


def ms_to_datetime(ms: float | int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class JobInfo:
    """Everything known about a job right now."""

    job_id: str
    queue: str
    status: JobStatus
    task: str | None
    kwargs: dict[str, Any]
    args: list[Any]
    tries: int
    enqueue_time: datetime | None
    scheduled_at: datetime | None
    start_time: datetime | None
    finish_time: datetime | None
    result: Any
    error: dict[str, str] | None
    # a ``_replace``/``_debounce`` enqueue waiting for this run to end: its kwargs, args and due time
    replacement: dict[str, Any] | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    progress: dict[str, Any] | None = None  # the task's last report: current, total, message, at
    priority: int = DEFAULT_PRIORITY  # 0-9: among due jobs, a higher one starts first

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["status"] = self.status.value
        for key in ("enqueue_time", "scheduled_at", "start_time", "finish_time", "cancelled_at"):
            value = out[key]
            out[key] = value.isoformat() if value else None
        if self.replacement is not None:
            due = self.replacement["scheduled_at"]
            out["replacement"] = {**self.replacement, "scheduled_at": due.isoformat() if due else None}
        return out


class Job(Generic[R]):
    """A handle on a job by id; cheap to create, reads Redis only when asked.

    ``created`` is False when ``enqueue`` found a job with the same ``_job_id`` already queued,
    running or with a kept result, and returned that job instead of enqueueing a second one.
    ``Job[R]``: enqueueing a task function ``async def t(ctx, ...) -> R`` gives a handle whose
    ``result()`` is typed ``R``; by name, ``Job[Any]``.
    """

    __slots__ = ("_client", "created", "job_id", "queue", "task")
    job_id: str
    queue: str
    created: bool
    task: str | None

    def __init__(
        self, job_id: str, queue: str, client: QueueAccess, *, created: bool = True, task: str | None = None
    ) -> None:
        self.job_id = job_id
        self.queue = queue
        self.created = created
        self.task = task
        self._client = client

    def __repr__(self) -> str:
        return f"<Job {self.job_id} queue={self.queue} task={self.task}>"

    async def _snapshot(
        self,
    ) -> tuple[bytes | None, bytes | None, bytes | None, float | None, bytes | None, bytes | None]:
        snapshot, _progress = await self._snapshot_with_progress()
        return snapshot

    async def _snapshot_with_progress(
        self,
    ) -> tuple[tuple[bytes | None, bytes | None, bytes | None, float | None, bytes | None, bytes | None], bytes | None]:
        redis = await self._client.redis()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(result_key(self.job_id, self.queue))
            pipe.get(job_key(self.job_id, self.queue))
            pipe.exists(in_progress_key(self.job_id, self.queue))
            pipe.zscore(queue_key(self.queue), self.job_id)
            pipe.hget(failed_jobs_key(self.queue), self.job_id)
            pipe.get(retry_key(self.job_id, self.queue))
            pipe.zscore(leases_key(self.queue), self.job_id)
            pipe.get(progress_key(self.queue, self.job_id))
            pipe.zscore(held_key(self.queue), self.job_id)
            pipe.hget(parked_ids_key(self.queue), self.job_id)
            result, payload, running, score, failed, tries, leased, progress, held, parked = await self._client.run(
                pipe.execute(), "job lookup"
            )
        # a lease without its marker is a dead worker's job: due to run again, like a queued one
        if score is None:
            score = leased
        # a held job's running slot says so: it is neither running nor queued
        state = b"1" if running else (HELD_MARK if held is not None and score is None else None)
        if score is None:
            score = held
        if state is None and score is None and parked is not None:
            state, score = PARKED_MARK, parked_due(parked, self.job_id)  # waiting for a concurrency slot
        # queue, held and parked scores carry the priority's band; a lease's end is a plain time (band 0)
        snapshot = (result, payload, state, None if score is None else due_ms(score), failed, tries)
        return snapshot, progress

    @staticmethod
    def _status(result: bytes | None, running: bytes | None, score: float | None, failed: bytes | None) -> JobStatus:
        if failed is not None:
            return JobStatus.FAILED
        if result is not None:
            data = loads(result)
            if data.get("cancelled"):
                return JobStatus.CANCELLED
            return JobStatus.COMPLETE if data.get("s") else JobStatus.FAILED
        if running == HELD_MARK:
            return JobStatus.HELD
        if running == PARKED_MARK:
            return JobStatus.PARKED
        if running:
            return JobStatus.IN_PROGRESS
        if score is not None:
            return JobStatus.DEFERRED if score > time.time() * 1000 else JobStatus.QUEUED
        return JobStatus.NOT_FOUND

    async def status(self) -> JobStatus:
        result, _payload, running, score, failed, _tries = await self._snapshot()
        return self._status(result, running, score, failed)

    async def info(self) -> JobInfo:
        """Raise JobNotFoundError when Redis knows nothing of the job."""
        (result, payload, running, score, failed, tries), progress = await self._snapshot_with_progress()
        status = self._status(result, running, score, failed)
        if status is JobStatus.NOT_FOUND:
            raise JobNotFoundError(f"no job {self.job_id!r} on queue {self.queue!r}")
        record: dict[str, Any] = {}
        error: dict[str, str] | None = None
        res: Any = None
        start = finish = None
        cancelled: dict[str, Any] = {}
        if failed is not None:
            record = loads(failed)
            error = record.get("error")
        if result is not None:
            data = loads(result)
            record = record or data
            start, finish = data.get("st"), data.get("ft")
            cancelled = data.get("cancelled") or {}
            if data.get("s"):
                res = self._client.convert_result(data.get("f"), data.get("r"))
            else:
                error = error or data.get("r")
        elif payload is not None:
            try:
                record = parse_job(payload)
            except BadPayload as exc:
                error = {"type": "BadPayload", "message": str(exc), "traceback": ""}
        try_count = int(tries) if tries else int(record.get("t") or 0)
        replacement = await self._replacement(score) if status is JobStatus.IN_PROGRESS else None
        return JobInfo(
            job_id=self.job_id,
            queue=self.queue,
            status=status,
            task=record.get("f") or record.get("task"),
            kwargs=record.get("k", record.get("kwargs", {})) or {},
            args=record.get("a", record.get("args", [])) or [],
            tries=int(record.get("tries", try_count)),
            enqueue_time=ms_to_datetime(record.get("et", record.get("enqueued_ms"))),
            scheduled_at=ms_to_datetime(score) if score is not None and running != b"1" else None,
            start_time=ms_to_datetime(start),
            finish_time=ms_to_datetime(finish or record.get("failed_ms")),
            result=res,
            error=error,
            replacement=replacement,
            cancelled_at=ms_to_datetime(cancelled.get("at_ms")),
            cancel_reason=cancelled.get("reason"),
            progress=read_progress(progress),
            priority=payload_priority(record, "p" if "p" in record else "priority"),
        )

    async def _replacement(self, score: float | None) -> dict[str, Any] | None:
        """The replacement waiting for this running job, if any (one more read, for running jobs only)."""
        redis = await self._client.redis()
        raw = await self._client.run(redis.get(next_key(self.job_id, self.queue)), "job lookup")
        if raw is None:
            return None
        waiting = loads(raw)  # written by the REPLACE script from an enqueue's checked payload
        return {"kwargs": waiting.get("k") or {}, "args": waiting.get("a") or [], "scheduled_at": ms_to_datetime(score)}

    async def cancel(self, reason: str | None = None) -> CancelOutcome:
        """Cancel this job, whatever state it is in; see :class:`scalr_queue.CancelOutcome`.

        Queued or scheduled: removed at once and kept as ``cancelled``. Running: the worker that
        holds it cancels the task within milliseconds (its ``finally`` and ``except
        CancelledError`` blocks run) and records it as ``cancelled``. Finished: nothing changes
        and ``CancelOutcome.FINISHED`` says so. Raises JobNotFoundError for an unknown job.

        Example::

            outcome = await job.cancel(reason="customer closed the account")
        """
        from ..control._cancel import cancel_job

        return await cancel_job(self._client, self.job_id, self.queue, reason)

    async def result(self, timeout: float | None = None, *, poll_interval: float = 0.05) -> R:  # noqa: ASYNC109
        """Wait for the job to finish and return its result.

        Raises JobFailedError when it failed for good, JobNotFoundError when Redis has no trace
        of it, and TimeoutError when ``timeout`` seconds pass first. The poll starts fast and
        backs off to 0.5 s, so short jobs return promptly without hammering Redis.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll_interval
        while True:
            result, _payload, running, score, failed, _tries = await self._snapshot()
            status = self._status(result, running, score, failed)
            if status is JobStatus.COMPLETE:
                assert result is not None
                data = loads(result)
                value: R = self._client.convert_result(data.get("f"), data.get("r"))
                return value
            if status is JobStatus.FAILED:
                err = loads(failed).get("error") if failed is not None else loads(result or b"{}").get("r")
                err = err if isinstance(err, dict) else {"type": "Error", "message": str(err)}
                raise JobFailedError(
                    self.job_id, err.get("type", "Error"), err.get("message", ""), err.get("traceback", "")
                )
            if status is JobStatus.CANCELLED:
                assert result is not None
                raise JobCancelledError(self.job_id, (loads(result).get("cancelled") or {}).get("reason"))
            if status is JobStatus.NOT_FOUND:
                raise JobNotFoundError(
                    f"no job {self.job_id!r} on queue {self.queue!r} (never queued, or its result expired)"
                )
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.job_id} still {status.value} after {timeout}s")
            sleep = delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic()))
            await asyncio.sleep(sleep)
            delay = min(delay * 1.5, 0.5)


def read_progress(raw: bytes | None) -> dict[str, Any] | None:
    """A stored progress report as a dict (``at`` an ISO time), or None when there is none."""
    if raw is None:
        return None
    try:
        data = loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    at = ms_to_datetime(data.pop("at_ms", None))
    return {**data, "at": at.isoformat() if at else None}
