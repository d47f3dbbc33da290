"""Cancelling a job: one atomic script call, whatever state the job is in.

A queued or scheduled job is removed and kept as ``cancelled`` (like a result, for
``SCALR_QUEUE_KEEP_RESULT``). A running job is marked and its id published on the queue's
cancel channel: the worker holding it, on any host, cancels the task at once (pushed, not
polled; see :mod:`scalr_queue.worker._cancel_watch`), and its finish records it as cancelled. A
finished job is left alone and the caller is told so.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING

from .._codec import dumps
from .._errors import JobNotFoundError
from ..redis import _scripts
from ..redis._connection import eval_script
from ..redis._keys import (
    cancel_channel,
    cancels_key,
    failed_jobs_key,
    finished_key,
    held_key,
    in_progress_key,
    job_key,
    leases_key,
    parked_ids_key,
    parked_key,
    queue_key,
    result_key,
    retry_key,
    tries_key,
)

if TYPE_CHECKING:
    from .._protocols import QueueAccess

# how long a running job's cancel mark may wait for its worker's finish (it is removed then)
MARK_TTL_MS = 24 * 3600 * 1000
MAX_REASON = 1000  # characters of a reason kept; longer ones are cut
CANCELLED_ERROR_TYPE = "JobCancelled"


class CancelOutcome(enum.StrEnum):
    """What ``Job.cancel()`` did."""

    CANCELLED = "cancelled"  # it was queued or scheduled: removed, and kept as cancelled
    CANCELLING = "cancelling"  # it is running: its worker was told and cancels it within milliseconds
    FINISHED = "finished"  # it had already finished (complete, failed or cancelled): nothing changed


def clean_reason(reason: object) -> str | None:
    """A reason as stored: text, at most ``MAX_REASON`` characters; None stays None."""
    if reason is None:
        return None
    text = str(reason)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def cancel_suffix(job_id: str, queue: str, reason: str | None, at_ms: int) -> bytes:
    """The cancel fields of a result record, as a JSON fragment to splice in before its last brace.

    The record stays arq's shape (``s`` false and ``r`` an error, so arq readers see an
    unsuccessful job), plus ``cancelled``: when, and why.
    """
    message = "cancelled" + (f": {reason}" if reason else "")
    fields = {
        "s": False,
        "r": {"type": CANCELLED_ERROR_TYPE, "message": message, "traceback": ""},
        "ft": at_ms,
        "q": queue,
        "id": job_id,
        "cancelled": {"at_ms": at_ms, "reason": reason},
    }
    return b"," + dumps(fields)[1:]


async def cancel_job(client: QueueAccess, job_id: str, queue: str, reason: object = None) -> CancelOutcome:
    """Run the CANCEL script for one job; JobNotFoundError when the queue knows nothing of it."""
    why = clean_reason(reason)
    now = int(time.time() * 1000)
    keys = [
        job_key(job_id, queue),
        queue_key(queue),
        in_progress_key(job_id, queue),
        result_key(job_id, queue),
        retry_key(job_id, queue),
        leases_key(queue),
        cancels_key(queue),
        failed_jobs_key(queue),
        held_key(queue),
        parked_key(queue),
        parked_ids_key(queue),
        finished_key(queue, "cancelled"),
        tries_key(job_id, queue),
    ]
    px = int(client.settings.keep_result * 1000)
    args = [
        job_id,
        px,
        cancel_suffix(job_id, queue, why, now),
        cancel_channel(queue),
        MARK_TTL_MS,
        now,
        client.settings.finished_max,
    ]
    redis = await client.redis()
    answer = await client.run(eval_script(redis, _scripts.CANCEL, keys, args), f"cancel job {job_id!r}")
    outcome = answer.decode() if isinstance(answer, bytes) else str(answer)
    if outcome == "not_found":
        raise JobNotFoundError(f"no job {job_id!r} on queue {queue!r} (never queued, or its result expired)")
    return CancelOutcome(outcome)
