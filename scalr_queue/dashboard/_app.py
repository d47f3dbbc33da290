"""The dashboard as a router to mount in an app, or an app of its own.

Example::

    app.include_router(scalr_queue.dashboard.router(), prefix="/queue")

Every route is excluded from the app's OpenAPI schema (it is a UI, not an API) and goes through
one guard: access check first, then the view; a Redis outage or an unknown job becomes a page
with one line, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from .._errors import ConfigurationError, JobNotFoundError, QueueUnavailableError
from ._access import Refused, check_access
from ._settings import DashboardSettings, load_dashboard_settings

if TYPE_CHECKING:
    from ..producer._client import QueueClient
    from ._context import Dashboard

logger = logging.getLogger("scalr_queue.dashboard")

View = Callable[["Dashboard", Request], Awaitable[Response]]


def _guarded(dash: Dashboard, view: View) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            check_access(request, dash.settings)
        except Refused as exc:
            headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else None
            return dash.secure(PlainTextResponse(exc.reason + "\n", exc.status, headers=headers))
        try:
            return dash.secure(await view(dash, request))
        except QueueUnavailableError as exc:
            logger.warning("dashboard %s %s: %s", request.method, request.url.path, exc)
            return dash.error_page(request, 503, "Redis is not answering", str(exc))
        except JobNotFoundError as exc:
            return dash.error_page(request, 404, "Not found", str(exc))
        except ConfigurationError as exc:
            return dash.error_page(request, 400, "Bad request", str(exc))

    endpoint.__name__ = view.__name__
    return endpoint


def router(
    *,
    read_only: bool | None = None,
    settings: DashboardSettings | None = None,
    client: QueueClient | None = None,
) -> APIRouter:
    """The dashboard's routes, for ``app.include_router(router(), prefix="/queue")``.

    Args:
        read_only: hide every action (retry, purge, cancel, pause, hold); default from
            ``SCALR_QUEUE_DASHBOARD_READ_ONLY``.
        settings: the dashboard's settings; default read from the environment, now, so a bad
            value stops the app at start-up with one line.
        client: the queue client to read with; default the process's (``get_client()``), looked
            up per request so it follows ``scalr_queue.close()``.
    """
    from . import _actions, _pages
    from ._context import Dashboard

    dash = Dashboard(settings or load_dashboard_settings(), client, read_only)
    api = APIRouter(include_in_schema=False)

    def get(path: str, name: str, view: View) -> None:
        api.add_api_route(path, _guarded(dash, view), methods=["GET"], name=f"scalr_dashboard_{name}")

    get("/", "overview", _pages.overview)
    get("/workers", "workers", _pages.workers)
    get("/search", "search", _pages.search)
    get("/static/{name}", "static", _pages.static)
    get("/queues/{queue}", "queue", _pages.queue)
    get("/queues/{queue}/jobs/{job_id:path}", "job", _pages.job)
    get("/queues/{queue}/result/{job_id:path}", "result", _pages.result)
    if not dash.read_only:
        api.add_api_route(
            "/queues/{queue}/actions/{action}",
            _guarded(dash, _actions.act),
            methods=["POST"],
            name="scalr_dashboard_action",
        )
    return api


def create_app(
    *,
    read_only: bool | None = None,
    settings: DashboardSettings | None = None,
    client: QueueClient | None = None,
) -> FastAPI:
    """The dashboard as an ASGI app of its own (``scalr-queue dashboard`` serves this).

    It closes the client it reads with on shutdown: its own, or the process's.
    """
    import scalr_queue

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if client is not None:
            await client.close()
        await scalr_queue.close()

    app = FastAPI(title="scalr-queue dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router(read_only=read_only, settings=settings, client=client))
    return app
