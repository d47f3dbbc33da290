"""template-app's HTTP API: enqueue background jobs and report on them.

Run with ``uvicorn src.main:app`` from ``backend/`` (the image's default command). Every route
declares each status it answers, with its body model (``src/schemas.py``): the OpenAPI schema
at ``/openapi.json`` is the contract, checked by generated requests in the repository's tests.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BeforeValidator

import scalr_queue
import scalr_queue.dashboard
from scalr_queue import JobNotFoundError, QueueUnavailableError, enqueue, get_job

from .schemas import (
    RETRY_AFTER_S,
    Health,
    HealthDown,
    JobAccepted,
    JobError,
    JobNotFound,
    JobProgress,
    JobState,
    Ok,
    QueueCounts,
    QueueUnavailable,
    unavailable_response,
)

logger = logging.getLogger(__name__)

# ids the worker would accept that a path segment can carry; scalr_queue's own are 32 hex digits
JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,255}$")]


def _integer_literal(value: object) -> object:
    """Only digits pass as an integer path segment: "+0.0" or "1e3" is a 422, not invoice 0 or 1000."""
    if isinstance(value, str) and not INTEGER.fullmatch(value):
        raise ValueError("must be an integer written in digits, like 42 or -7")
    return value


INTEGER = re.compile(r"0|-?[1-9][0-9]*")
# what a JSON payload carries exactly (a 64-bit signed integer), written as plain digits
InvoiceId = Annotated[int, Path(ge=-(2**63), le=2**63 - 1), BeforeValidator(_integer_literal)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Everything built at start-up (FastAPI's routes, pydantic's validators, the dashboard: ~80,000
    # objects) lives as long as the process, yet each full garbage collection walks it again, ~40 ms
    # apiece. A route that awaits (an enqueue, a database call) keeps its request's objects alive
    # across the await, and under load those set collections off: without this, about a sixth of
    # the enqueue route's time went to full collections. Frozen, a collection walks only what was
    # made since (docs/performance.md, "An enqueue inside a web request").
    gc.collect()
    gc.freeze()
    # The queue's connection pool opens lazily on the first enqueue, so the app starts (and
    # answers 503) even while Redis is down; it is closed here on shutdown.
    yield
    await scalr_queue.close()
    gc.unfreeze()


app = FastAPI(title="template-app", lifespan=lifespan)
# The queue dashboard at /queue/: loopback only until SCALR_QUEUE_DASHBOARD_TOKEN (or USERNAME and
# PASSWORD) is set; not part of the OpenAPI contract.
app.include_router(scalr_queue.dashboard.router(), prefix="/queue")


def _unavailable(request: Request, exc: QueueUnavailableError, body: QueueUnavailable | HealthDown) -> JSONResponse:
    """The exception names the Redis host, port and what failed: that goes to the log for the
    operator, never into a public response body."""
    logger.warning("%s %s: 503: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=503, content=body.model_dump(), headers={"Retry-After": str(RETRY_AFTER_S)})


@app.exception_handler(QueueUnavailableError)
async def queue_unavailable(request: Request, exc: QueueUnavailableError) -> JSONResponse:
    """Redis is down or refusing writes: say so quickly; the next request retries by itself."""
    return _unavailable(request, exc, QueueUnavailable())


@app.post("/invoices/{invoice_id}/send", status_code=202, responses=unavailable_response())
async def send_invoice(invoice_id: InvoiceId) -> JobAccepted:
    """Queue the invoice email and answer at once; poll ``GET /jobs/{job_id}`` for the outcome."""
    job = await enqueue("send_invoice_email", invoice_id=invoice_id)
    return JobAccepted(job_id=job.job_id)


@app.get(
    "/jobs/{job_id}",
    response_model=JobState,
    responses={404: {"model": JobNotFound, "description": "no such job"}, **unavailable_response()},
)
async def job_status(job_id: JobId) -> JobState | JSONResponse:
    """Status, try count, progress, and the result or the last error of one job.

    The error is its type and message only; the traceback stays in the worker's log and
    ``scalr-queue failed show``.
    """
    try:
        info = await get_job(job_id).info()
    except JobNotFoundError:
        return JSONResponse(status_code=404, content=JobNotFound(job_id=job_id).model_dump())
    error = info.error
    return JobState(
        job_id=info.job_id,
        queue=info.queue,
        task=info.task,
        status=info.status,
        tries=info.tries,
        enqueue_time=info.enqueue_time,
        result=info.result,
        error=JobError(type=error.get("type", ""), message=error.get("message", "")) if error else None,
        progress=JobProgress.model_validate(info.progress) if info.progress else None,
        cancelled_at=info.cancelled_at,
        cancel_reason=info.cancel_reason,
        priority=info.priority,
    )


@app.get("/healthz", response_model=Health, responses=unavailable_response(HealthDown))
async def healthz(request: Request) -> Health | JSONResponse:
    """200 when Redis answers (with whether a live worker serves the queue), else 503."""
    try:
        stats = await scalr_queue.queue_stats()
    except QueueUnavailableError as exc:
        return _unavailable(request, exc, HealthDown())
    return Health(worker_seen=stats.workers > 0, workers=stats.workers, queue=QueueCounts(**stats.to_json()))


@app.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text: the jobs this process enqueued (``scalr_queue_jobs_enqueued_total``).

    Workers export the rest on their own ``SCALR_QUEUE_METRICS_PORT``.
    """
    return Response(generate_latest(scalr_queue.metrics_registry()), media_type=CONTENT_TYPE_LATEST)


@app.get("/noop")
async def noop() -> Ok:
    """Touches nothing: the benchmark's baseline for the same app without an enqueue."""
    return Ok(ok=True)


@app.post("/invoices/{invoice_id}/noop", status_code=202)
async def send_invoice_noop(invoice_id: InvoiceId) -> JobAccepted:
    """The enqueue route's exact shape (path parameter, 202, response model) minus the enqueue:
    the benchmark's baseline, so the ratio isolates what enqueueing costs inside a request."""
    return JobAccepted(job_id=f"noop-{invoice_id}")
