"""Every Redis key scalr_queue reads or writes, named in one place.

The ``arq:`` keys keep arq's layout, so arq's own ``Job`` API reads our jobs when it is given the
full queue key and :func:`scalr_queue.arq_deserializer` (see ``_arq_read``);
the ``scalr:`` keys are the additions (wake-ups, worker registry, failed set). A Redis ACL that
allows ``~arq:* ~scalr:*`` is therefore enough for the whole flow.
"""

from __future__ import annotations

# sorted set of job ids scored by the epoch-ms at which they may run; one per logical queue
QUEUE_PREFIX = "arq:queue:"
# JSON payload of a queued or running job; no TTL unless the caller passed ``_expires``
JOB_PREFIX = "arq:job:"
# lease marker of a running job (value: worker id); short PX, renewed by the live worker
IN_PROGRESS_PREFIX = "arq:in-progress:"
# JSON result of a finished job; PX = keep_result
RESULT_PREFIX = "arq:result:"
# how many times the job has been claimed; deleted when the job finishes
RETRY_PREFIX = "arq:retry:"
# arq's health-check key suffix, appended to the queue key (``arq --check`` reads it)
HEALTH_CHECK_SUFFIX = ":health-check"

# sorted set of running jobs scored by their lease deadline; an expired entry is a dead worker's job
LEASES_PREFIX = "scalr:leases:"
# list pushed on enqueue so that an idle worker blocked in BRPOP wakes at once (bounded to 1 item)
WAKE_PREFIX = "scalr:wake:"
# hash worker-id -> JSON (module, pid, task signatures, last seen); expires when no worker renews it
WORKERS_PREFIX = "scalr:workers:"
# sorted set of failed job ids scored by failed-at epoch-ms; never expires, capped
FAILED_PREFIX = "scalr:failed:"
# hash job-id -> JSON failure record, paired with the sorted set above
FAILED_JOBS_PREFIX = "scalr:failed-jobs:"
# payload of a replacement waiting for the running job with the same id to end; TTL as the job key's
NEXT_PREFIX = "scalr:next:"
# present while a queue is paused (value: JSON with the pause time); never expires, so a pause outlives restarts
PAUSED_PREFIX = "scalr:paused:"
# hash "<task>[ where <kw> <op> <json>]" -> JSON hold rule CLAIM applies; never expires, so holds outlive restarts
HOLDS_PREFIX = "scalr:holds:"
# sorted set of held job ids scored by their due time; never expires (their payloads stay, as queued jobs do)
HELD_PREFIX = "scalr:held:"
# hash job-id -> cancel mark ("<result px>\n<result suffix>") of running jobs asked to stop; PX a day
CANCELS_PREFIX = "scalr:cancels:"
# pub/sub channel (not a key): a cancel of a running job publishes its id; every worker listens
CANCEL_CHANNEL_PREFIX = "scalr:cancel:"
# JSON progress a task reported (current, total, message, at_ms); PX = job timeout + keep_result
PROGRESS_PREFIX = "scalr:progress:"
# arq's own sorted set of job ids to abort (``arq.jobs.Job.abort()``), shared by every queue
ARQ_ABORT_KEY = "arq:abort"
# sorted set of recently finished job ids scored by finish epoch-ms, one per queue and end state
# (complete, failed, cancelled); capped by SCALR_QUEUE_FINISHED_MAX, PX = keep_result, renewed by each finish
FINISHED_PREFIX = "scalr:finished:"
# list of one JSON record per try of a job (try, start, end, outcome, error); PX = the job's result's
TRIES_PREFIX = "scalr:tries:"
# id of the one worker that exports the queue's depth metrics; PX = 3 heartbeats, renewed by it
REPORTER_PREFIX = "scalr:reporter:"

DEFAULT_QUEUE = "default"


def queue_key(queue: str) -> str:
    return QUEUE_PREFIX + queue


def leases_key(queue: str) -> str:
    return LEASES_PREFIX + queue


def wake_key(queue: str) -> str:
    return WAKE_PREFIX + queue


def workers_key(queue: str) -> str:
    return WORKERS_PREFIX + queue


def failed_key(queue: str) -> str:
    return FAILED_PREFIX + queue


def failed_jobs_key(queue: str) -> str:
    return FAILED_JOBS_PREFIX + queue


def paused_key(queue: str) -> str:
    return PAUSED_PREFIX + queue


def holds_key(queue: str) -> str:
    return HOLDS_PREFIX + queue


def held_key(queue: str) -> str:
    return HELD_PREFIX + queue


def reporter_key(queue: str) -> str:
    return REPORTER_PREFIX + queue


def health_check_key(queue: str) -> str:
    return queue_key(queue) + HEALTH_CHECK_SUFFIX


def cancels_key(queue: str) -> str:
    return CANCELS_PREFIX + queue


def cancel_channel(queue: str) -> str:
    return CANCEL_CHANNEL_PREFIX + queue


def finished_key(queue: str, state: str) -> str:
    """``state`` is ``complete``, ``failed`` or ``cancelled`` (see ``FINISHED_STATES``)."""
    return f"{FINISHED_PREFIX}{queue}:{state}"


FINISHED_STATES = ("complete", "failed", "cancelled")


def tries_key(job_id: str) -> str:
    return TRIES_PREFIX + job_id


def progress_key(queue: str, job_id: str) -> str:
    return f"{PROGRESS_PREFIX}{queue}:{job_id}"
