"""The bodies template-app's HTTP API answers with, one model per status a route can answer.

They are the OpenAPI contract: every route declares each status it answers with one of these
(``responses=`` in ``main.py``), and the contract test drives generated requests against it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from scalr_queue import JobStatus

# what a public 503 says; the exception's own text (host, port, Redis URL) goes to the log only
QUEUE_UNAVAILABLE = "the job queue is unavailable; try again shortly"
RETRY_AFTER_S = 5


class JobAccepted(BaseModel):
    """202: the job is queued; poll ``GET /jobs/{job_id}``."""

    job_id: str


class JobError(BaseModel):
    """A job's last error as a client sees it: no traceback (that stays in the worker's log)."""

    type: str
    message: str


class JobProgress(BaseModel):
    """What the task last reported with ``ctx["progress"](current, total, message)``."""

    current: float
    total: float | None
    message: str | None
    at: datetime | None


class JobState(BaseModel):
    """Where one job is, its try count, and its result or last error."""

    job_id: str
    queue: str
    task: str | None
    status: JobStatus
    tries: int
    enqueue_time: datetime | None
    result: Any = Field(description="the task's return value once complete, else null")
    error: JobError | None
    progress: JobProgress | None = Field(default=None, description="the task's last progress report, if any")
    cancelled_at: datetime | None = Field(default=None, description="when it was cancelled (status cancelled)")
    cancel_reason: str | None = Field(default=None, description="the reason given to the cancel, if any")
    priority: int = Field(default=5, description="0-9: among due jobs, a higher priority starts first")


class JobNotFound(BaseModel):
    """404: never queued, purged, or its result expired."""

    error: Literal["job_not_found"] = "job_not_found"
    job_id: str


class QueueUnavailable(BaseModel):
    """503: Redis is down or refusing writes; retry after ``Retry-After`` seconds."""

    error: Literal["queue_unavailable"] = "queue_unavailable"
    detail: str = QUEUE_UNAVAILABLE


class QueueCounts(BaseModel):
    queue: str
    ready: int
    scheduled: int
    in_progress: int
    failed: int
    workers: int
    paused: bool = False
    held: int = 0
    parked: int = 0


class Health(BaseModel):
    """200: Redis answers; whether a live worker serves the queue."""

    redis: Literal["ok"] = "ok"
    worker_seen: bool
    workers: int
    queue: QueueCounts


class HealthDown(BaseModel):
    """503 from ``/healthz``: Redis does not answer."""

    redis: Literal["down"] = "down"
    detail: str = "the job queue is unavailable"


class Ok(BaseModel):
    ok: bool


def unavailable_response(model: type[BaseModel] = QueueUnavailable) -> dict[int | str, dict[str, Any]]:
    """The 503 entry for ``responses=``: its body model and the Retry-After header it always sends."""
    return {
        503: {
            "model": model,
            "description": "Redis is down or refusing writes",
            "headers": {
                "Retry-After": {
                    "description": "seconds to wait before retrying",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            },
        }
    }
