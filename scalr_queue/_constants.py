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


def reporter_key(queue: str) -> str:
    return REPORTER_PREFIX + queue


def health_check_key(queue: str) -> str:
    return queue_key(queue) + HEALTH_CHECK_SUFFIX
