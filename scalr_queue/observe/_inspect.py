"""What is in the queues: the read model the CLI and the dashboard share.

Every function reads; none writes (stale worker entries are skipped, not pruned). Each answers in
a bounded number of round trips whatever the queue size: counts come from ``ZCARD``/``ZCOUNT``,
pages of jobs from the ``PAGE`` script (a rank or score range with a limit, never the whole set),
and only the jobs on the page are read. Queues are discovered with ``SCAN`` (never ``KEYS``), which
walks the whole keyspace: pass the queue names when you know them, or cache the discovery.

States a job can be listed in (``JOB_STATES``):

* ``ready``: due, waiting for a worker slot (the queue's sorted set, oldest first);
* ``scheduled``: deferred, or waiting out a retry backoff (soonest first);
* ``running``: leased by a worker (by lease deadline);
* ``held``: moved aside by a hold (by due time);
* ``failed``: the failed set (newest first);
* ``complete``, ``cancelled``: the finished index the worker keeps (newest first, within
  ``SCALR_QUEUE_KEEP_RESULT`` and at most ``SCALR_QUEUE_FINISHED_MAX`` per queue).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._codec import BadPayload, loads, parse_job
from .._errors import ConfigurationError, JobNotFoundError
from .._priority import BAND_MS, BANDS, due_ms, ready_ranges
from .._settings import QUEUE_NAME_RE
from ..producer._job import Job, JobInfo, ms_to_datetime
from ..redis import _scripts
from ..redis._connection import aw, eval_script
from ..redis._keys import (
    FAILED_PREFIX,
    HELD_PREFIX,
    PAUSED_PREFIX,
    QUEUE_PREFIX,
    WORKERS_PREFIX,
    failed_jobs_key,
    failed_key,
    finished_key,
    held_key,
    in_progress_key,
    job_key,
    leases_key,
    parked_key,
    paused_key,
    queue_key,
    result_key,
    retry_key,
    tagged_keys,
    tries_key,
    untag,
    workers_key,
)
from ..worker._registry import WorkerInfo
from ._tracing import trace_id_of
from ._views import (
    JOB_STATES,
    Attempt,
    JobPage,
    JobSummary,
    JobTimeline,
    QueueOverview,
    WorkerDetail,
)

if TYPE_CHECKING:
    from .._protocols import QueueAccess

MAX_LIMIT = 1000  # jobs one page may hold
TASK_SCAN_PAGES = 10  # a task filter reads at most this many pages of ``limit`` (at least 1000 jobs) per call
THROUGHPUT_WINDOW_MS = 3600 * 1000  # the "last hour" of the overview's finished counts
SCAN_COUNT = 5000
MAX_RUNNING_LISTED = 10_000  # leases read to map running jobs to workers
_FAR = 2**53  # a score beyond any epoch-ms


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _now_ms() -> int:
    return int(time.time() * 1000)


def check_queue(queue: str) -> str:
    if not QUEUE_NAME_RE.match(queue):
        raise ConfigurationError(f"queue name {queue!r} is not valid: letters, digits, '_', '.', '-' (1-64)")
    return queue


# -- queues ------------------------------------------------------------------------------


async def discover_queues(client: QueueAccess) -> list[str]:
    """Every queue with something in Redis: jobs, failed jobs, workers, a pause or held jobs.

    One ``SCAN`` walk of the keyspace (two patterns per step, pipelined): cost grows with the
    number of keys, so a caller refreshing often should keep the answer for a while.
    """
    redis = await client.redis()
    prefixes = (QUEUE_PREFIX, FAILED_PREFIX, WORKERS_PREFIX, PAUSED_PREFIX, HELD_PREFIX)
    found: set[str] = {client.settings.queue_name}
    if tagged_keys():
        # a cluster's keys are spread over its masters: redis-py's scan_iter walks each of them
        for pattern in ("arq:queue:*", "scalr:[fwph]*"):
            async for raw in redis.scan_iter(match=pattern, count=SCAN_COUNT):
                _found_queue(_text(raw), prefixes, found)
        return sorted(found)
    cursors = {"arq:queue:*": 0, "scalr:[fwph]*": 0}
    while cursors:
        async with redis.pipeline(transaction=False) as pipe:
            for pattern, cursor in cursors.items():
                pipe.scan(cursor, match=pattern, count=SCAN_COUNT)
            replies = await client.run(pipe.execute(), "list queues")
        for pattern, (cursor, keys) in zip(list(cursors), replies, strict=True):
            for raw in keys:
                _found_queue(_text(raw), prefixes, found)
            if int(cursor) == 0:
                del cursors[pattern]
            else:
                cursors[pattern] = int(cursor)
    return sorted(found)


def _found_queue(key: str, prefixes: tuple[str, ...], found: set[str]) -> None:
    for prefix in prefixes:
        name = untag(key[len(prefix) :])
        if key.startswith(prefix) and QUEUE_NAME_RE.match(name):
            found.add(name)


async def list_queues(client: QueueAccess, queues: Sequence[str] | None = None) -> list[QueueOverview]:
    """Counts for ``queues`` (default: every queue found), in one pipelined round trip."""
    names = [check_queue(q) for q in queues] if queues is not None else await discover_queues(client)
    if not names:
        return []
    redis = await client.redis()
    now = _now_ms()
    since = now - THROUGHPUT_WINDOW_MS
    async with redis.pipeline(transaction=False) as pipe:
        for q in names:
            key, leases = queue_key(q), leases_key(q)
            pipe.zcard(key)
            pipe.zcard(leases)
            pipe.zcount(leases, "-inf", now)
            pipe.zcard(failed_key(q))
            pipe.exists(paused_key(q))
            pipe.zcard(held_key(q))
            pipe.zcard(parked_key(q))
            pipe.zrange(leases, 0, 0, withscores=True)
            pipe.hvals(workers_key(q))
            for state in ("complete", "failed", "cancelled"):
                pipe.zcount(finished_key(q, state), since, "+inf")
            for lo, hi in ready_ranges(now):  # the due part of each priority band: its count and oldest job
                pipe.zcount(key, lo, hi)
                pipe.zrangebyscore(key, lo, hi, start=0, num=1, withscores=True)
        replies = await client.run(pipe.execute(), "queue overview")
    out: list[QueueOverview] = []
    bands = len(ready_ranges(now))
    per = 12 + 2 * bands
    for i, q in enumerate(names):
        row = replies[i * per : (i + 1) * per]
        total, leased, orphans, failed, paused, held, parked, first_l, workers, done, bad, gone = row[:12]
        due = sum(int(n) for n in row[12::2])
        firsts = [due_ms(score) for first in row[13::2] for _, score in first]
        oldest = min([*firsts, *(score for _, score in first_l if score <= now)], default=None)
        out.append(
            QueueOverview(
                queue=q,
                parked=int(parked),
                ready=int(due) + int(orphans),
                scheduled=int(total) - int(due),
                running=int(leased) - int(orphans),
                held=int(held),
                failed=int(failed),
                oldest_ready_age=None if oldest is None else (now - oldest) / 1000,
                workers=sum(1 for w in workers if _live(w, now)),
                paused=bool(paused),
                complete_last_hour=int(done),
                failed_last_hour=int(bad),
                cancelled_last_hour=int(gone),
            )
        )
    return out


def _live(raw: bytes, now: int) -> bool:
    try:
        return int(loads(raw).get("expires_ms", 0)) >= now
    except (ValueError, AttributeError, TypeError):
        return False


# -- jobs --------------------------------------------------------------------------------


def _page_sources(queue: str, state: str, now: int, keep_ms: int) -> tuple[str, list[tuple[int, int]], bool]:
    """The sorted set a state's jobs live in, its score ranges in listing order, and whether newest come first.

    Queue and held scores carry the priority band (``scalr_queue._priority``): ready jobs are the
    due part of each band, highest priority first, and scheduled ones the rest of each band.
    """
    if state == "ready":
        return queue_key(queue), ready_ranges(now), False
    if state == "scheduled":
        return queue_key(queue), [(b * BAND_MS + now + 1, (b + 1) * BAND_MS - 1) for b in BANDS], False
    if state == "running":
        return leases_key(queue), [(0, _FAR)], False
    if state == "held":
        return held_key(queue), [(-_FAR, _FAR)], False
    if state == "failed":
        return failed_key(queue), [(0, _FAR)], True
    # the index is trimmed by count; entries past the keep-result window have lost their result
    return finished_key(queue, state), [(now - keep_ms, _FAR)], True


def parse_cursor(cursor: str) -> tuple[str, str]:
    """A cursor is ``<score>:<job id>`` (the last row of the previous page)."""
    score, sep, job_id = cursor.partition(":")
    try:
        float(score)
    except ValueError:
        score = ""
    if not sep or not score or not job_id:
        raise ConfigurationError(f"cursor {cursor!r} is not valid: pass back the next_cursor a page gave you")
    return score, job_id


async def list_jobs(
    client: QueueAccess,
    queue: str | None = None,
    state: str = "ready",
    *,
    task: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> JobPage:
    """A page of ``queue``'s jobs in ``state`` (one of ``JOB_STATES``), after ``cursor``.

    Reads one page of ids (``PAGE``, O(log N + limit)) and those jobs only, so it stays fast
    at millions of queued jobs. With ``task``, rows of other tasks are skipped: it reads on
    until ``limit`` match or ``TASK_SCAN_PAGES`` pages were read, and ``next_cursor`` carries on
    from the last row read (a page may then hold fewer than ``limit`` jobs, even none).
    """
    q = check_queue(queue or client.settings.queue_name)
    if state not in JOB_STATES:
        raise ConfigurationError(f"state {state!r} is not valid: expected one of {', '.join(JOB_STATES)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ConfigurationError(f"limit {limit} is not valid: expected 1 to {MAX_LIMIT}")
    at_score, at_id = parse_cursor(cursor) if cursor else ("0", "")
    redis = await client.redis()
    key, ranges, rev = _page_sources(q, state, _now_ms(), int(client.settings.keep_result * 1000))
    # resume in the range (priority band) the cursor's row lies in
    seg = next((i for i, (lo, hi) in enumerate(ranges) if lo <= float(at_score) <= hi), 0) if cursor else 0
    batch = limit if task is None else max(limit, 100)
    budget = 1 if task is None else max(TASK_SCAN_PAGES, 1000 // batch)
    jobs: list[JobSummary] = []
    scanned = 0
    next_cursor: str | None = None
    reads = 0
    while reads < budget + len(ranges):  # empty bands cost a read each, and no budget
        lo, hi = ranges[seg]
        rows = await client.run(
            eval_script(redis, _scripts.PAGE, [key], [lo, hi, batch, int(rev), at_id, at_score]), "list jobs"
        )
        reads += 1
        pairs = [(_text(rows[i]), _text(rows[i + 1])) for i in range(0, len(rows), 2)]
        if pairs:
            summaries = await _summaries(client, q, state, pairs)
            for (job_id, score), summary in zip(pairs, summaries, strict=True):
                scanned += 1
                at_id, at_score = job_id, score
                if task is None or summary.task == task:
                    jobs.append(summary)
                    if len(jobs) == limit:
                        break
        full = len(jobs) >= limit
        if len(pairs) < batch and not full:  # this band is read to its end: the next one, from its start
            seg += 1
            if seg == len(ranges):
                next_cursor = None
                break
            at_id, at_score = "", "0"
            if not pairs:
                reads -= 1  # an empty band is free
            continue
        next_cursor = f"{at_score}:{at_id}"
        if full or reads >= budget:
            break
    return JobPage(queue=q, state=state, jobs=jobs, next_cursor=next_cursor, scanned=scanned)


async def _summaries(client: QueueAccess, queue: str, state: str, pairs: list[tuple[str, str]]) -> list[JobSummary]:
    """Read the jobs of one page: payloads, failure records or results, in one round trip."""
    redis = await client.redis()
    ids = [job_id for job_id, _ in pairs]
    async with redis.pipeline(transaction=False) as pipe:
        if state == "failed":
            pipe.hmget(failed_jobs_key(queue), ids)
        elif state in ("complete", "cancelled"):
            pipe.mget([result_key(i, queue) for i in ids])
        else:
            pipe.mget([job_key(i, queue) for i in ids])
        if state == "running":
            pipe.mget([in_progress_key(i, queue) for i in ids])
        if state in ("running", "ready", "scheduled"):
            pipe.mget([retry_key(i, queue) for i in ids])
        replies = await client.run(pipe.execute(), "list jobs")
    records = replies[0]
    owners = replies[1] if state == "running" else [None] * len(ids)
    tries = replies[-1] if state in ("running", "ready", "scheduled") else [None] * len(ids)
    out: list[JobSummary] = []
    for (job_id, score), raw, owner, tried in zip(pairs, records, owners, tries, strict=True):
        out.append(_summary(job_id, queue, state, float(score), raw, owner, tried))
    return out


def _summary(
    job_id: str, queue: str, state: str, score: float, raw: bytes | None, owner: bytes | None, tried: bytes | None
) -> JobSummary:
    data: dict[str, Any] = {}
    error: str | None = None
    if raw is not None:
        if state in ("failed", "complete", "cancelled"):
            try:
                data = loads(raw)
            except ValueError:
                data = {}
        else:
            try:
                data = parse_job(raw)
            except BadPayload as exc:
                error = f"BadPayload: {exc}"
    if state == "failed":
        err = data.get("error") or {}
        error = f"{err.get('type', '')}: {err.get('message', '')}" if err else data.get("reason")
        return JobSummary(
            job_id=job_id,
            queue=queue,
            state=state,
            task=data.get("task"),
            args=data.get("args") or [],
            kwargs=data.get("kwargs") or {},
            enqueued_at=ms_to_datetime(data.get("enqueued_ms")),
            at=ms_to_datetime(due_ms(score)),
            tries=int(data.get("tries") or 0),
            error=error,
        )
    tries = int(tried) if tried else (int(data["t"]) if data.get("t") else None)
    if state == "complete" or state == "cancelled":
        tries = int(data.get("tries") or data.get("t") or 0) or None
    return JobSummary(
        job_id=job_id,
        queue=queue,
        state=state,
        task=data.get("f"),
        args=data.get("a") or [],
        kwargs=data.get("k") or {},
        enqueued_at=ms_to_datetime(data.get("et")),
        at=ms_to_datetime(due_ms(score)),
        tries=tries,
        worker=_text(owner) if owner is not None else None,
        error=error,
    )


# -- one job -----------------------------------------------------------------------------


async def job_timeline(client: QueueAccess, job_id: str, queue: str | None = None) -> JobTimeline:
    """Everything about one job: status, arguments, result or failure, cancel, progress, every try.

    Without ``queue``, the default queue is asked first, then the queue its result names.
    Raises JobNotFoundError when Redis knows nothing of the job (never queued, purged, expired).
    """
    redis = await client.redis()
    candidates = [check_queue(queue)] if queue else [client.settings.queue_name]
    if queue is None:
        raw = await client.run(redis.get(result_key(job_id, candidates[0])), "job lookup")
        named = _result_queue(raw)
        if named and named not in candidates:
            candidates.append(named)
    info: JobInfo | None = None
    for q in candidates:
        try:
            info = await Job(job_id, q, client).info()
            break
        except JobNotFoundError:
            continue
    if info is None:
        where = f"queue {candidates[0]!r}" if queue else f"queue {candidates[0]!r} (pass --queue for another)"
        raise JobNotFoundError(f"no job {job_id!r} on {where}: never queued, purged, or its result expired")
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lrange(tries_key(job_id, info.queue), 0, -1)
        pipe.get(result_key(job_id, info.queue))
        records, result = await client.run(pipe.execute(), "job lookup")
    attempts = [Attempt.from_record(loads(r)) for r in records]
    last = _last_try(info, result)
    if last is not None and not (attempts and attempts[-1].outcome == last.outcome):
        attempts.append(last)
    trace_id = next((a.trace_id for a in reversed(attempts) if a.trace_id), None)
    if trace_id is None:
        payload = await client.run(redis.get(job_key(job_id, info.queue)), "job lookup")
        trace_id = _trace_id(payload)
    return JobTimeline(info=info, attempts=attempts, trace_id=trace_id)


def _last_try(info: JobInfo, result: bytes | None) -> Attempt | None:
    """A job's final try as its result tells it (the worker records none for a job that ends on its first)."""
    status = info.status.value
    if status not in ("complete", "failed") or info.finish_time is None:
        return None
    data: dict[str, Any] = {}
    if result is not None:
        try:
            data = loads(result)
        except ValueError:
            data = {}
    start, end = info.start_time, info.finish_time
    return Attempt(
        try_number=info.tries,
        started_at=start,
        ended_at=end,
        duration=(end - start).total_seconds() if start is not None else None,
        outcome=status,
        worker=data.get("w"),
        error=info.error if status == "failed" else None,
        trace_id=data.get("ti"),
    )


def _result_queue(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        q = loads(raw).get("q")
    except (ValueError, AttributeError):
        return None
    return q if isinstance(q, str) and QUEUE_NAME_RE.match(q) else None


def _trace_id(payload: bytes | None) -> str | None:
    if payload is None:
        return None
    try:
        return trace_id_of(parse_job(payload).get("tc"))
    except BadPayload:
        return None


# -- workers -----------------------------------------------------------------------------


async def list_workers(client: QueueAccess, queues: Sequence[str] | None = None) -> list[WorkerDetail]:
    """Live workers of ``queues`` (default: every queue found) with the jobs each holds now.

    Running jobs come from the leases (who holds each lease marker), so they are current, not
    as of the last heartbeat; ``last_heartbeat`` says how fresh the rest is.
    """
    names = [check_queue(q) for q in queues] if queues is not None else await discover_queues(client)
    redis = await client.redis()
    now = _now_ms()
    async with redis.pipeline(transaction=False) as pipe:
        for q in names:
            pipe.hvals(workers_key(q))
            pipe.zrange(leases_key(q), 0, MAX_RUNNING_LISTED - 1)
        replies = await client.run(pipe.execute(), "list workers")
    out: list[WorkerDetail] = []
    for i, q in enumerate(names):
        entries, leased = replies[2 * i], replies[2 * i + 1]
        workers = []
        for raw in entries:
            try:
                data = loads(raw)
                if int(data.get("expires_ms", 0)) >= now:
                    workers.append(WorkerInfo.from_json(q, data))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        holders: dict[str, list[str]] = {}
        if workers and leased:
            ids = [_text(i) for i in leased]
            owners = await client.run(aw(redis.mget([in_progress_key(i, q) for i in ids])), "list workers")
            for job_id, owner in zip(ids, owners, strict=True):
                if owner is not None:
                    holders.setdefault(_text(owner), []).append(job_id)
        for w in sorted(workers, key=lambda w: w.started_ms):
            out.append(WorkerDetail(info=w, running_jobs=holders.get(w.worker_id, [])))
    return out
