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
# list one worker pushes to end its own wake BRPOP when it stops (see CLAIM's pipelined form); PX 60 s
STOP_PREFIX = "scalr:stop:"
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
# sorted set per queue and end state of finished job ids by finish epoch-ms; capped, PX = keep_result
FINISHED_PREFIX = "scalr:finished:"
# list of one JSON record per try of a job (try, start, end, outcome, error); expires with its result
TRIES_PREFIX = "scalr:tries:"
# id of the one worker that exports the queue's depth metrics; PX = 3 heartbeats, renewed by it
REPORTER_PREFIX = "scalr:reporter:"

# Concurrency and rate limits (``task(..., max_concurrent=, rate_limit=)``): only workers with limited
# tasks touch these. A limit's name is "c" or "r" plus a JSON array: ["task"] or ["task", key value].
# sorted set of job ids holding a concurrency slot, scored by lease end (an expired one is a dead worker's)
SLOTS_PREFIX = "scalr:slots:"
# hash job-id -> the concurrency limit whose slot it holds, paired with the sorted set above
SLOT_LIMITS_PREFIX = "scalr:slot-limits:"
# hash concurrency limit -> slots in use; a field leaves when its count falls to 0
SLOT_COUNTS_PREFIX = "scalr:slot-counts:"
# sorted set (score 0, read by lex) "<limit>|<due ms, 15 digits>|<job id>" of jobs waiting for a slot; no TTL
PARKED_PREFIX = "scalr:parked:"
# hash job-id -> its member in the parked set above (for cancel and job lookups)
PARKED_IDS_PREFIX = "scalr:parked-ids:"
# sorted set (score 0, read by lex) "<limit>|<start ms, 15 digits>|<job id>" of recent starts; PX = 1 hour
STARTS_PREFIX = "scalr:starts:"

DEFAULT_QUEUE = "default"

# Redis Cluster (``redis+cluster://``): every key of queue q carries the hash tag ``{q}`` (right after
# the prefix: ``arq:queue:{q}``, and before the id in per-job keys: ``arq:job:{q}<id>``), so every key
# one Lua call touches is in one slot, and different queues spread over the shards. On one Redis
# (and Sentinel) the names stay exactly arq's. A process talks to one Redis deployment, so the
# layout is a per-process choice made by ``_connection.create_redis`` from ``REDIS_URL``.
PER_JOB_PREFIXES = (JOB_PREFIX, IN_PROGRESS_PREFIX, RESULT_PREFIX, RETRY_PREFIX, NEXT_PREFIX)


class _Layout:
    tagged = False


def use_tagged_keys(tagged: bool) -> None:
    """Called with True by a ``redis+cluster://`` client, with False by any other."""
    _Layout.tagged = tagged


def tagged_keys() -> bool:
    return _Layout.tagged


def tag(queue: str) -> str:
    """The queue's part of every key name: ``{queue}`` in cluster mode, else the name itself."""
    return "{" + queue + "}" if _Layout.tagged else queue


def untag(name: str) -> str:
    """The queue name back from the part of a key name :func:`tag` made."""
    return name[1:-1] if name.startswith("{") and name.endswith("}") else name


def key_tag(key: str) -> str:
    """The hash tag of a key name, braces included (``"{q}"`` of ``arq:queue:{q}``); "" when it has none."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start : end + 1] if start >= 0 and end > start + 1 else ""


def job_tag(queue: str) -> str:
    """What goes between a per-job prefix and the job id: nothing on one Redis, ``{queue}`` on a cluster."""
    return "{" + queue + "}" if _Layout.tagged else ""


def job_key(job_id: str, queue: str = DEFAULT_QUEUE) -> str:
    return JOB_PREFIX + job_tag(queue) + job_id


def in_progress_key(job_id: str, queue: str = DEFAULT_QUEUE) -> str:
    return IN_PROGRESS_PREFIX + job_tag(queue) + job_id


def result_key(job_id: str, queue: str = DEFAULT_QUEUE) -> str:
    return RESULT_PREFIX + job_tag(queue) + job_id


def retry_key(job_id: str, queue: str = DEFAULT_QUEUE) -> str:
    return RETRY_PREFIX + job_tag(queue) + job_id


def next_key(job_id: str, queue: str = DEFAULT_QUEUE) -> str:
    return NEXT_PREFIX + job_tag(queue) + job_id


def queue_key(queue: str) -> str:
    return QUEUE_PREFIX + tag(queue)


def leases_key(queue: str) -> str:
    return LEASES_PREFIX + tag(queue)


def wake_key(queue: str) -> str:
    return WAKE_PREFIX + tag(queue)


def stop_key(queue: str, worker_id: str) -> str:
    return STOP_PREFIX + tag(queue) + ":" + worker_id


def workers_key(queue: str) -> str:
    return WORKERS_PREFIX + tag(queue)


def failed_key(queue: str) -> str:
    return FAILED_PREFIX + tag(queue)


def failed_jobs_key(queue: str) -> str:
    return FAILED_JOBS_PREFIX + tag(queue)


def paused_key(queue: str) -> str:
    return PAUSED_PREFIX + tag(queue)


def holds_key(queue: str) -> str:
    return HOLDS_PREFIX + tag(queue)


def held_key(queue: str) -> str:
    return HELD_PREFIX + tag(queue)


def reporter_key(queue: str) -> str:
    return REPORTER_PREFIX + tag(queue)


def health_check_key(queue: str) -> str:
    return queue_key(queue) + HEALTH_CHECK_SUFFIX


def cancels_key(queue: str) -> str:
    return CANCELS_PREFIX + tag(queue)


def cancel_channel(queue: str) -> str:
    return CANCEL_CHANNEL_PREFIX + tag(queue)


def finished_key(queue: str, state: str) -> str:
    """``state`` is ``complete``, ``failed`` or ``cancelled`` (see ``FINISHED_STATES``)."""
    return f"{FINISHED_PREFIX}{tag(queue)}:{state}"


FINISHED_STATES = ("complete", "failed", "cancelled")


def tries_key(job_id: str, queue: str = DEFAULT_QUEUE) -> str:
    return TRIES_PREFIX + job_tag(queue) + job_id


def progress_key(queue: str, job_id: str) -> str:
    return f"{PROGRESS_PREFIX}{tag(queue)}:{job_id}"


def slots_key(queue: str) -> str:
    return SLOTS_PREFIX + tag(queue)


def slot_limits_key(queue: str) -> str:
    return SLOT_LIMITS_PREFIX + tag(queue)


def slot_counts_key(queue: str) -> str:
    return SLOT_COUNTS_PREFIX + tag(queue)


def parked_key(queue: str) -> str:
    return PARKED_PREFIX + tag(queue)


def parked_ids_key(queue: str) -> str:
    return PARKED_IDS_PREFIX + tag(queue)


def starts_key(queue: str) -> str:
    return STARTS_PREFIX + tag(queue)


def limit_keys(queue: str) -> list[str]:
    """The keys the limit blocks of CLAIM, FINISH and RENEW read, in the order they declare them."""
    return [
        slots_key(queue),
        slot_limits_key(queue),
        slot_counts_key(queue),
        parked_key(queue),
        parked_ids_key(queue),
        starts_key(queue),
    ]
