"""Reading scalr_queue's jobs with arq's own ``Job`` API: the JSON deserializer arq needs.

scalr_queue keeps arq's job and result records (``t f a k et`` and ``s r st ft q id``) but
writes them as JSON, and arq decodes with pickle unless it is given a deserializer. The queue
key must be the full one too (``arq:queue:<queue>``: arq's own default is ``arq:queue``)::

    from arq.jobs import Job
    import scalr_queue

    job = Job(job_id, redis, _queue_name="arq:queue:default", _deserializer=scalr_queue.arq_deserializer)
    await job.status()        # deferred, queued, in_progress, complete (also for a failed job), not_found
    await job.info()          # JobDef / JobResult: function, kwargs, job_try, enqueue_time, result
    await job.result()        # the JSON result; a failed job raises JobFailedError, as arq re-raises

What arq cannot see: the failed set (arq has no such state; a failed job reads ``complete``
while its failure result is kept), and ``Job.result()`` stops waiting with arq's
``ResultNotFound`` once a worker has claimed the job, because a running job leaves the queue
for the leases set. ``Job.abort()`` is honoured: the worker running the job cancels it within about
0.5 s (it polls arq's abort set while it runs jobs) and it ends ``cancelled``; arq's ``abort()``
itself still returns False for a job a worker had claimed (its ``result()`` gives up as above), and
True when called on a job already cancelled, whose result reads as ``asyncio.CancelledError``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from .._errors import JobFailedError


def arq_deserializer(data: bytes) -> dict[str, Any]:
    """Decode a scalr_queue job or result record for arq (``Job(..., _deserializer=...)``).

    A failed job's result record keeps its error as type, message and traceback text; it is
    turned into a :class:`JobFailedError` so that arq's ``Job.result()`` raises it, the way arq
    re-raises a task's exception. Anything that is not a JSON object (a pickle, garbage) raises,
    and arq reports that as its ``DeserializationError``.
    """
    record = orjson.loads(data)
    if not isinstance(record, dict):
        raise ValueError(f"a scalr_queue record is a JSON object, not {type(record).__name__}")
    error = record.get("r")
    cancelled = record.get("cancelled")
    if isinstance(cancelled, dict):  # arq's Job.abort() and result() expect the task's CancelledError
        record["r"] = asyncio.CancelledError(cancelled.get("reason") or "cancelled")
        record.setdefault("st", record.get("ft"))  # arq needs a start time; a cancelled job may never have started
    elif record.get("s") is False and isinstance(error, dict) and "type" in error:
        record["r"] = JobFailedError(
            str(record.get("id", "?")),
            str(error.get("type")),
            str(error.get("message", "")),
            str(error.get("traceback", "")),
        )
    return record
