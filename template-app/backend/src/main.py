"""template-app's HTTP API: enqueue background jobs and report on them.

Run with ``uvicorn src.main:app`` from ``backend/`` (the image's default command).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import scalr_queue
from scalr_queue import JobNotFoundError, QueueUnavailableError, enqueue, get_job

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The queue's connection pool opens lazily on the first enqueue, so the app starts (and
    # answers 503) even while Redis is down; it is closed here on shutdown.
    yield
    await scalr_queue.close()


app = FastAPI(title="template-app", lifespan=lifespan)


@app.exception_handler(QueueUnavailableError)
async def queue_unavailable(request: Request, exc: QueueUnavailableError) -> JSONResponse:
    """Redis is down or refusing writes: say so quickly; the next request retries by itself.

    The exception names the Redis host, port and what failed: that goes to the log for the
    operator, never into a public response body.
    """
    logger.warning("%s %s: 503: %s", request.method, request.url.path, exc)
    return JSONResponse(
        status_code=503,
        content={"error": "queue_unavailable", "detail": "the job queue is unavailable; try again shortly"},
        headers={"Retry-After": "5"},
    )


@app.post("/invoices/{invoice_id}/send", status_code=202)
async def send_invoice(invoice_id: int) -> dict[str, str]:
    """Queue the invoice email and answer at once; poll ``GET /jobs/{job_id}`` for the outcome."""
    job = await enqueue("send_invoice_email", invoice_id=invoice_id)
    return {"job_id": job.job_id}


@app.get("/jobs/{job_id}", response_model=None)
async def job_status(job_id: str) -> dict[str, Any] | JSONResponse:
    """Status, try count, and the result or the last error of one job (404 if unknown)."""
    try:
        info = await get_job(job_id).info()
    except JobNotFoundError:
        return JSONResponse(status_code=404, content={"error": "job_not_found", "job_id": job_id})
    return {
        "job_id": info.job_id,
        "queue": info.queue,
        "task": info.task,
        "status": info.status.value,
        "tries": info.tries,
        "enqueue_time": info.enqueue_time.isoformat() if info.enqueue_time else None,
        "result": info.result,
        # type and message only: the traceback stays in the worker's log and `scalr-queue failed show`
        "error": {"type": info.error.get("type", ""), "message": info.error.get("message", "")} if info.error else None,
    }


@app.get("/healthz", response_model=None)
async def healthz() -> dict[str, Any] | JSONResponse:
    """200 when Redis answers (with whether a live worker serves the queue), else 503."""
    try:
        stats = await scalr_queue.queue_stats()
    except QueueUnavailableError as exc:
        logger.warning("GET /healthz: 503: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"redis": "down", "detail": "the job queue is unavailable"},
            headers={"Retry-After": "5"},
        )
    return {
        "redis": "ok",
        "worker_seen": stats.workers > 0,
        "workers": stats.workers,
        "queue": stats.to_json(),
    }


@app.get("/noop")
async def noop() -> dict[str, bool]:
    """Touches nothing: the benchmark's baseline for the same app without an enqueue."""
    return {"ok": True}


@app.post("/invoices/{invoice_id}/noop", status_code=202)
async def send_invoice_noop(invoice_id: int) -> dict[str, str]:
    """The enqueue route's exact shape (path parameter, 202, response model) minus the enqueue:
    the benchmark's baseline, so the ratio isolates what enqueueing costs inside a request."""
    return {"job_id": f"noop-{invoice_id}"}
