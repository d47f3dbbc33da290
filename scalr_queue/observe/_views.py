"""What the read model answers with: a queue's overview, a page of jobs, a job's timeline, a worker.

Plain frozen dataclasses with ``as_dict()`` for ``--json`` and the dashboard's API, built by
:mod:`scalr_queue.observe._inspect`; nothing here reads Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from ..producer._job import JobInfo, ms_to_datetime
from ..worker._registry import WorkerInfo

JobState = Literal["ready", "scheduled", "running", "held", "failed", "complete", "cancelled"]
JOB_STATES: tuple[str, ...] = get_args(JobState)


@dataclass(frozen=True)
class QueueOverview:
    """One queue's counts at one moment: what ``scalr-queue queues`` prints per row."""

    queue: str
    ready: int  # due (and a dead worker's jobs whose lease ran out): waiting for a slot
    scheduled: int  # deferred or waiting out a retry backoff
    running: int  # live leases
    held: int
    failed: int  # in the failed set
    oldest_ready_age: float | None  # seconds the oldest ready job has waited; None when none is ready
    workers: int  # live workers
    paused: bool
    complete_last_hour: int  # from the finished index (0 when keep_result is 0)
    failed_last_hour: int
    cancelled_last_hour: int
    parked: int = 0  # waiting for a concurrency slot (``task(..., max_concurrent=N)``)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class JobSummary:
    """One row of a page of jobs: enough to list it; ``job_timeline`` has the rest."""

    job_id: str
    queue: str
    state: str
    task: str | None
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: datetime | None
    at: datetime | None  # the row's score: due time, lease deadline, failed or finished time
    tries: int | None = None
    worker: str | None = None  # running: the worker holding the lease (None: its lease ran out)
    error: str | None = None  # failed: "Type: message"

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("enqueued_at", "at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@dataclass(frozen=True)
class JobPage:
    """A page of one state's jobs; pass ``next_cursor`` back for the next one (None: the end)."""

    queue: str
    state: str
    jobs: list[JobSummary]
    next_cursor: str | None
    scanned: int  # rows read to fill it (more than ``len(jobs)`` under a task filter)

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "state": self.state,
            "jobs": [j.to_json() for j in self.jobs],
            "next_cursor": self.next_cursor,
            "scanned": self.scanned,
        }


@dataclass(frozen=True)
class Attempt:
    """One try of a job, as its worker recorded it when the try ended."""

    try_number: int
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None  # seconds
    outcome: str  # complete, retry, failed, cancelled, requeued
    worker: str | None
    reason: str | None = None
    error: dict[str, str] | None = None  # type, message, traceback
    retry_at: datetime | None = None
    trace_id: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Attempt:
        start, end = record.get("start_ms"), record.get("end_ms")
        return cls(
            try_number=int(record.get("try") or 0),
            started_at=ms_to_datetime(start),
            ended_at=ms_to_datetime(end),
            duration=(end - start) / 1000 if start is not None and end is not None else None,
            outcome=str(record.get("outcome", "?")),
            worker=record.get("worker"),
            reason=record.get("reason"),
            error=record.get("error"),
            retry_at=ms_to_datetime(record.get("retry_at_ms")),
            trace_id=record.get("trace_id"),
        )

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("started_at", "ended_at", "retry_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@dataclass(frozen=True)
class JobTimeline:
    """A job's whole story: what it is now (``info``) and every try it had (oldest first)."""

    info: JobInfo
    attempts: list[Attempt]
    trace_id: str | None

    def events(self) -> list[tuple[datetime, str]]:
        """The timeline as (time, what happened) lines, oldest first."""
        out: list[tuple[datetime, str]] = []
        if self.info.enqueue_time:
            out.append((self.info.enqueue_time, "enqueued"))
        for a in self.attempts:
            if a.started_at:
                out.append((a.started_at, f"try {a.try_number} started on {a.worker or '?'}"))
            if a.ended_at:
                what = f"try {a.try_number} {a.outcome}"
                if a.error:
                    what += f": {a.error.get('type', '')}: {a.error.get('message', '')}"
                elif a.reason:
                    what += f" ({a.reason})"
                out.append((a.ended_at, what))
        if self.info.cancelled_at and not any(a.outcome == "cancelled" for a in self.attempts):
            out.append(
                (
                    self.info.cancelled_at,
                    "cancelled" + (f" ({self.info.cancel_reason})" if self.info.cancel_reason else ""),
                )
            )
        return sorted(out, key=lambda e: e[0])

    def to_json(self) -> dict[str, Any]:
        return {
            **self.info.to_json(),
            "attempts": [a.to_json() for a in self.attempts],
            "trace_id": self.trace_id,
            "events": [{"at": at.isoformat(), "event": what} for at, what in self.events()],
        }


@dataclass(frozen=True)
class WorkerDetail:
    """A live worker and the jobs it holds leases on right now."""

    info: WorkerInfo
    running_jobs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        i = self.info
        return {
            "worker_id": i.worker_id,
            "queue": i.queue,
            "host": i.host,
            "pid": i.pid,
            "module": i.module,
            "concurrency": i.concurrency,
            "running": len(self.running_jobs),
            "running_jobs": self.running_jobs,
            "complete": i.complete,
            "failed": i.failed,
            "retried": i.retried,
            "started_at": _iso(i.started_ms),
            "last_heartbeat": _iso(i.seen_ms),
            "tasks": sorted(i.tasks),
        }


def _iso(ms: int | None) -> str | None:
    at = ms_to_datetime(ms) if ms else None
    return at.isoformat() if at else None
