"""What every dashboard view shares: settings, the client, rendering, links, cookies, headers."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .._settings import QUEUE_NAME_RE
from ..producer._client import QueueClient
from ..producer._default import get_client
from ._access import CSRF_COOKIE, CSRF_FIELD, csrf_token
from ._render import environment
from ._settings import DashboardSettings

FLASH_COOKIE = "scalr_dashboard_flash"
# the page's own script and style only: an argument that slipped past escaping still could not run
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Dashboard:
    """One mounted dashboard: its settings, whether it acts, and how it renders."""

    def __init__(self, settings: DashboardSettings, client: QueueClient | None, read_only: bool | None) -> None:
        self.settings = settings
        self.read_only = settings.read_only if read_only is None else read_only
        self._client = client
        self.env = environment()
        for name in self.env.list_templates():  # compiled now, not on some user's first page view
            self.env.get_template(name)
        self.queue_cache: tuple[float, list[str]] | None = None  # discovered queue names and when
        self.discovery: asyncio.Task[None] | None = None  # the scan for queue names, while it runs
        self.discovery_error: Exception | None = None  # how the last scan failed, for the page that waited

    @property
    def client(self) -> QueueClient:
        return self._client or get_client()

    # -- links ----------------------------------------------------------------------------

    @staticmethod
    def base(request: Request) -> str:
        """The dashboard's root path wherever it is mounted, ending in ``/``."""
        path = request.url_for("scalr_dashboard_overview").path
        return path if path.endswith("/") else path + "/"

    def links(self, request: Request) -> Links:
        return Links(self.base(request))

    # -- responses ------------------------------------------------------------------------

    @staticmethod
    def secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def page(self, request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
        """Render ``template.html``, or only its live part (``_template_live.html``) for a refresh."""
        partial = request.query_params.get("partial") == "live"
        links = self.links(request)
        token = csrf_token(request)
        flash = None if partial else read_flash(request)
        html = self.env.get_template(f"_{template}_live.html" if partial else f"{template}.html").render(
            request=request,
            link=links,
            csrf_field=CSRF_FIELD,
            csrf=token,
            read_only=self.read_only,
            refresh=self.settings.refresh,
            flash=flash,
            page=template,
            **context,
        )
        response = HTMLResponse(html, status)
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, path=links.root, httponly=True, samesite="strict")
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path=links.root)
        return response

    def error_page(self, request: Request, status: int, title: str, message: str) -> Response:
        html = self.env.get_template("error.html").render(
            request=request,
            link=self.links(request),
            read_only=True,
            refresh=0,
            flash=None,
            page="error",
            title=title,
            message=message,
        )
        return self.secure(HTMLResponse(html, status))


class Links:
    """Paths inside the dashboard, each segment quoted, so any job id makes a working link."""

    def __init__(self, root: str) -> None:
        self.root = root

    def overview(self) -> str:
        return self.root

    def workers(self) -> str:
        return self.root + "workers"

    def search(self) -> str:
        return self.root + "search"

    def static(self, name: str) -> str:
        return self.root + "static/" + quote(name, safe="")

    def queue(self, queue: str, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        return self.root + "queues/" + quote(queue, safe="") + ("?" + urlencode(query) if query else "")

    def job(self, queue: str, job_id: str) -> str:
        return self.root + "queues/" + quote(queue, safe="") + "/jobs/" + quote(job_id, safe="")

    def result(self, queue: str, job_id: str) -> str:
        return self.root + "queues/" + quote(queue, safe="") + "/result/" + quote(job_id, safe="")

    def action(self, queue: str, action: str) -> str:
        return self.root + "queues/" + quote(queue, safe="") + "/actions/" + action


def valid_queue(name: str) -> bool:
    return bool(QUEUE_NAME_RE.match(name))


def set_flash(response: Response, root: str, ok: bool, text: str) -> None:
    """What an action did, shown once on the next page (a short-lived cookie, not the URL)."""
    value = base64.urlsafe_b64encode(json.dumps({"ok": ok, "text": text[:500]}).encode()).decode().rstrip("=")
    response.set_cookie(FLASH_COOKIE, value, path=root, max_age=60, httponly=True, samesite="strict")


def read_flash(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return None
    return {"ok": bool(data.get("ok")), "text": data["text"]}
