"""The dashboard's pages (GET): overview, queue, job, workers, search, and its two static files."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from .._errors import JobNotFoundError
from . import _reads
from ._context import Dashboard, valid_queue

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


async def overview(dash: Dashboard, request: Request) -> Response:
    names = await _reads.queue_names(dash)
    discovering = _reads.still_discovering(dash)  # read before any other await lets the scan end
    queues = await _reads.queue_rows(dash, names)
    workers = await _reads.workers(dash, names)
    return dash.page(request, "overview", queues=queues, workers=workers, discovering=discovering)


async def workers(dash: Dashboard, request: Request) -> Response:
    names = await _reads.queue_names(dash)
    return dash.page(request, "workers", workers=await _reads.workers(dash, names))


def _queue_name(request: Request) -> str:
    name: str = request.path_params["queue"]
    if not valid_queue(name):
        raise JobNotFoundError(f"no queue {name!r}: queue names are 1-64 letters, digits, '_', '.', '-'")
    return name


async def queue(dash: Dashboard, request: Request) -> Response:
    name = _queue_name(request)
    state = request.query_params.get("state") or "ready"
    if state not in _reads.STATES:
        state = "ready"
    task = (request.query_params.get("task") or "").strip()[:200] or None
    cursor = request.query_params.get("cursor") or None
    row = await _reads.queue_row(dash, name)
    jobs = await _reads.jobs_page(dash, name, state, task, cursor)
    holds = [] if request.query_params.get("partial") else await _reads.holds(dash, name)
    return dash.page(
        request, "queue", queue=row, jobs=jobs, state=state, task=task, cursor=cursor, states=_reads.STATES, holds=holds
    )


async def job(dash: Dashboard, request: Request) -> Response:
    name = _queue_name(request)
    view = await _reads.job_view(dash, name, request.path_params["job_id"])
    return dash.page(request, "job", job=view)


async def result(dash: Dashboard, request: Request) -> Response:
    """The whole result as JSON text: never rendered into a page, so a huge one cannot freeze it."""
    name = _queue_name(request)
    text = await _reads.whole_result(dash, name, request.path_params["job_id"])
    return PlainTextResponse(text, headers={"Content-Disposition": "inline"})


async def search(dash: Dashboard, request: Request) -> Response:
    job_id = (request.query_params.get("job_id") or "").strip()[:256]
    names = await _reads.queue_names(dash)
    found = await _reads.find_job(dash, job_id, names) if job_id else None
    if found is not None:
        return RedirectResponse(dash.links(request).job(found, job_id), status_code=303)
    return dash.page(request, "search", status=404, job_id=job_id, searched=len(names))


async def static(dash: Dashboard, request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_TYPES:
        return PlainTextResponse("not found\n", 404)
    response = Response((STATIC / name).read_bytes(), media_type=STATIC_TYPES[name])
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
