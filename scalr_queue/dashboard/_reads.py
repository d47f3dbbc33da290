"""What the pages show, read through the shared read model (``observe._inspect``) and shaped for templates.

Arguments are redacted and long values cut here, before any template sees them. Queue names
are discovered with a ``SCAN`` of the whole keyspace, which grows with the number of keys, so
the names are kept for ``SCALR_QUEUE_DASHBOARD_RESCAN`` seconds and refreshed in the background
while the page answers with the names it has.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup

from .._codec import loads
from .._errors import JobNotFoundError
from .._settings import QUEUE_NAME_RE
from ..observe import _inspect
from ..observe._views import JOB_STATES
from ..producer._job import JobStatus
from ..redis._keys import failed_jobs_key, failed_key, finished_key, held_key, leases_key, queue_key, result_key
from ._chart import sparkline
from ._context import Dashboard
from ._render import Preview, as_text, preview, redact

STATES: tuple[str, ...] = JOB_STATES
BUCKETS = 12  # the overview's chart: the last hour in five-minute buckets
BUCKET_MS = 3600 * 1000 // BUCKETS
WHEN_LABEL = {
    "ready": "Due",
    "scheduled": "Due",
    "running": "Lease until",
    "held": "Due",
    "failed": "Failed",
    "complete": "Finished",
    "cancelled": "Cancelled",
}

FIRST_SCAN_WAIT = 0.05  # seconds a page waits for the first queue discovery before showing what it has


@dataclass(frozen=True)
class QueueRow:
    name: str
    ready: int
    scheduled: int
    running: int
    held: int
    failed: int
    oldest_ready_ms: float | None
    workers: int
    paused: bool
    done_hour: int
    failed_hour: int
    chart: Markup

    @property
    def failure_rate(self) -> float:
        total = self.done_hour + self.failed_hour
        return 100.0 * self.failed_hour / total if total else 0.0


@dataclass(frozen=True)
class WorkerRow:
    worker_id: str
    queue: str
    host: str
    pid: int
    concurrency: int
    running: int
    complete: int
    failed: int
    jobs: list[str]
    seen_ms: int
    started_ms: int


@dataclass(frozen=True)
class JobRow:
    job_id: str
    task: str | None
    at_ms: float | None
    tries: int | None
    note: str | None


@dataclass(frozen=True)
class JobsPage:
    rows: list[JobRow]
    next_cursor: str | None
    when_label: str
    note: str | None


@dataclass(frozen=True)
class TryRow:
    number: int
    start: datetime | None
    end: datetime | None
    duration_ms: float | None
    outcome: str
    worker: str | None
    error: dict[str, str] | None


@dataclass(frozen=True)
class HoldRow:
    name: str
    task: str
    where: str | None


@dataclass(frozen=True)
class JobView:
    job_id: str
    queue: str
    status: str
    task: str | None
    tries: int
    enqueued: datetime | None
    scheduled: datetime | None
    started: datetime | None
    finished: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    trace_id: str | None
    progress: dict[str, Any] | None
    progress_fraction: float | None
    error: dict[str, str] | None
    in_failed_set: bool
    kwargs_preview: Preview | None
    args_preview: Preview | None
    result_preview: Preview | None
    tries_list: list[TryRow]
    tries_note: str
    events: list[tuple[datetime, str]]


# -- queues ------------------------------------------------------------------------------


async def queue_names(dash: Dashboard) -> list[str]:
    """The configured queues, else the discovered ones: cached, rescanned in the background.

    No page waits long for a ``SCAN``: the first one gets ``FIRST_SCAN_WAIT`` seconds (plenty for
    a small keyspace); past that the page shows the default queue and the live refresh fills in
    the rest when the scan ends. A scan that failed is raised to the page that waited for it.
    """
    configured = dash.settings.queue_list
    if configured is not None:
        return configured
    cached = dash.queue_cache
    if cached is not None and time.monotonic() - cached[0] <= dash.settings.rescan:
        return cached[1]
    loop = asyncio.get_running_loop()
    task = dash.discovery
    if task is None or task.done() or task.get_loop() is not loop:
        task = dash.discovery = loop.create_task(_discover(dash))
    if cached is not None:
        return cached[1]  # stale while the rescan runs
    done, _ = await asyncio.wait({task}, timeout=FIRST_SCAN_WAIT)
    if task in done:
        task.result()
        if dash.discovery_error is not None:
            error, dash.discovery_error = dash.discovery_error, None
            raise error
    return dash.queue_cache[1] if dash.queue_cache is not None else [dash.client.settings.queue_name]


def still_discovering(dash: Dashboard) -> bool:
    """True while the first scan runs: the page lists only the default queue so far."""
    return dash.queue_cache is None and dash.discovery is not None and not dash.discovery.done()


async def _discover(dash: Dashboard) -> None:
    """One scan; its failure is kept for the page waiting on it (a background task raises to no one)."""
    try:
        dash.queue_cache = (time.monotonic(), await _inspect.discover_queues(dash.client))
    except Exception as exc:  # the next page view scans again; stale names, if any, are still shown
        dash.discovery_error = exc


async def _charts(dash: Dashboard, names: Sequence[str]) -> list[tuple[list[int], list[int]]]:
    """Finished and failed jobs per five-minute bucket over the last hour, per queue (one round trip)."""
    redis = await dash.client.redis()
    now = int(time.time() * 1000)
    starts = [now - (BUCKETS - i) * BUCKET_MS for i in range(BUCKETS)]
    async with redis.pipeline(transaction=False) as pipe:
        for q in names:
            for key in (finished_key(q, "complete"), finished_key(q, "failed")):
                for start in starts:
                    pipe.zcount(key, f"({start}", start + BUCKET_MS)
        counts = [int(c) for c in await dash.client.run(pipe.execute(), "queue charts")]
    out = []
    for i in range(len(names)):
        row = counts[i * 2 * BUCKETS : (i + 1) * 2 * BUCKETS]
        out.append((row[:BUCKETS], row[BUCKETS:]))
    return out


async def queue_rows(dash: Dashboard, names: Sequence[str] | None = None) -> list[QueueRow]:
    names = list(names) if names is not None else await queue_names(dash)
    overviews = await _inspect.list_queues(dash.client, names)
    charts = await _charts(dash, names) if names else []
    return [
        QueueRow(
            name=o.queue,
            ready=o.ready,
            scheduled=o.scheduled,
            running=o.running,
            held=o.held,
            failed=o.failed,
            oldest_ready_ms=None if o.oldest_ready_age is None else o.oldest_ready_age * 1000,
            workers=o.workers,
            paused=o.paused,
            done_hour=o.complete_last_hour,
            failed_hour=o.failed_last_hour,
            chart=sparkline(
                done, failed, label=f"last hour, per 5 minutes: {sum(done)} finished, {sum(failed)} failed"
            ),
        )
        for o, (done, failed) in zip(overviews, charts, strict=True)
    ]


async def queue_row(dash: Dashboard, name: str) -> QueueRow:
    return (await queue_rows(dash, [name]))[0]


async def holds(dash: Dashboard, queue: str) -> list[HoldRow]:
    out = []
    for name in await dash.client.holds(queue):
        task, _, where = name.partition(" where ")
        out.append(HoldRow(name, task, where or None))
    return out


async def workers(dash: Dashboard, names: Sequence[str]) -> list[WorkerRow]:
    details = await _inspect.list_workers(dash.client, names)
    return [
        WorkerRow(
            worker_id=d.info.worker_id,
            queue=d.info.queue,
            host=d.info.host,
            pid=d.info.pid,
            concurrency=d.info.concurrency,
            running=len(d.running_jobs),
            complete=d.info.complete,
            failed=d.info.failed,
            jobs=d.running_jobs,
            seen_ms=d.info.seen_ms,
            started_ms=d.info.started_ms,
        )
        for d in details
    ]


# -- jobs --------------------------------------------------------------------------------


async def jobs_page(dash: Dashboard, queue: str, state: str, task: str | None, cursor: str | None) -> JobsPage:
    page = await _inspect.list_jobs(dash.client, queue, state, task=task, limit=dash.settings.page_size, cursor=cursor)
    rows = [
        JobRow(
            job_id=j.job_id,
            task=j.task,
            at_ms=j.at.timestamp() * 1000 if j.at else None,
            tries=j.tries,
            note=j.error or (f"on {j.worker}" if j.worker else None),
        )
        for j in page.jobs
    ]
    note = None
    if task and not rows and page.next_cursor:
        note = f"none in the {page.scanned} jobs read; the next page reads on"
    return JobsPage(rows, page.next_cursor, WHEN_LABEL[state], note)


def _fraction(progress: dict[str, Any] | None) -> float | None:
    if not progress:
        return None
    current, total = progress.get("current"), progress.get("total")
    if isinstance(current, int | float) and isinstance(total, int | float) and total > 0:
        return max(0.0, min(1.0, float(current) / float(total)))
    return None


async def job_view(dash: Dashboard, queue: str, job_id: str) -> JobView:
    timeline = await _inspect.job_timeline(dash.client, job_id, queue)
    info = timeline.info
    keys, limit = dash.settings.redacted_keys, dash.settings.preview_chars
    redis = await dash.client.redis()
    in_failed = await dash.client.run(redis.zscore(failed_key(queue), job_id), "job lookup") is not None
    has_result = info.status is JobStatus.COMPLETE
    tries = [
        TryRow(
            number=a.try_number,
            start=a.started_at,
            end=a.ended_at,
            duration_ms=None if a.duration is None else a.duration * 1000,
            outcome=a.outcome,
            worker=a.worker,
            error=a.error,
        )
        for a in timeline.attempts
    ]
    return JobView(
        job_id=info.job_id,
        queue=info.queue,
        status=info.status.value,
        task=info.task,
        tries=info.tries,
        enqueued=info.enqueue_time,
        scheduled=info.scheduled_at,
        started=info.start_time,
        finished=info.finish_time,
        cancelled_at=info.cancelled_at,
        cancel_reason=info.cancel_reason,
        trace_id=timeline.trace_id,
        progress=info.progress,
        progress_fraction=_fraction(info.progress),
        error=info.error,
        in_failed_set=in_failed,
        kwargs_preview=preview(redact(info.kwargs, keys), limit) if info.kwargs else None,
        args_preview=preview(redact(info.args, keys), limit) if info.args else None,
        result_preview=preview(redact(info.result, keys), limit) if has_result else None,
        tries_list=tries,
        tries_note="not started yet" if info.status in (JobStatus.QUEUED, JobStatus.DEFERRED) else "no tries recorded",
        events=timeline.events(),
    )


async def whole_result(dash: Dashboard, queue: str, job_id: str) -> str:
    """A complete job's whole result as indented JSON, redacted like the page."""
    info = await dash.client.job(job_id, queue).info()
    if info.status is not JobStatus.COMPLETE:
        raise JobNotFoundError(f"job {job_id!r} on queue {queue!r} has no result ({info.status.value})")
    return as_text(redact(info.result, dash.settings.redacted_keys))


async def find_job(dash: Dashboard, job_id: str, names: Sequence[str]) -> str | None:
    """The queue that knows ``job_id``: its result names it, else each queue is asked in one round trip."""
    redis = await dash.client.redis()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(result_key(job_id, dash.client.settings.queue_name))
        for q in names:
            pipe.zscore(queue_key(q), job_id)
            pipe.zscore(leases_key(q), job_id)
            pipe.zscore(held_key(q), job_id)
            pipe.hexists(failed_jobs_key(q), job_id)
        replies = await dash.client.run(pipe.execute(), "find job")
    named = _result_queue(replies[0])
    if named is not None:
        return named
    for i, q in enumerate(names):
        if any(r not in (None, 0, False) for r in replies[1 + 4 * i : 5 + 4 * i]):
            return q
    return None


def _result_queue(raw: bytes | None) -> str | None:
    """The queue a kept result names (``q``), if it names a valid one."""
    try:
        named = loads(raw).get("q") if raw is not None else None
    except (ValueError, AttributeError):
        return None
    return named if isinstance(named, str) and QUEUE_NAME_RE.match(named) else None
