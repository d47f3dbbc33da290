"""Who may open the dashboard, and proof that an action was asked for from its own page.

Without credentials configured, only loopback clients get in, and not through a proxy: a
request carrying ``Forwarded`` or ``X-Forwarded-For`` came from somewhere else even when the
proxy itself sits on loopback; nor through a name that only points at loopback (its Host must
be ``localhost`` or a loopback address, which defeats DNS rebinding). With a token or a user
and password, every request must carry them (loopback included), compared in constant time.

Actions are POSTs carrying a CSRF token equal to the one in a ``SameSite=Strict`` cookie (the
double-submit pattern): another site can make a browser send the cookie, but cannot read it to
put it in the form.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets

from starlette.requests import Request

from ._settings import DashboardSettings

CSRF_COOKIE = "scalr_dashboard_csrf"
CSRF_FIELD = "csrf_token"
REALM = 'Basic realm="scalr-queue dashboard", charset="UTF-8"'


class Refused(Exception):
    """The request may not see the dashboard: ``status`` and a one-line reason for the client."""

    def __init__(self, status: int, reason: str, *, challenge: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.challenge = challenge


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _loopback_name(host_header: str) -> bool:
    """The Host the browser asked for names this machine: ``localhost`` or a loopback address.

    Without it, a page on any site could rebind its own domain name to 127.0.0.1 and read the
    dashboard as same-origin content (DNS rebinding); its requests carry that domain as Host.
    """
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host == "localhost" or host.endswith(".localhost") or is_loopback(host)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def check_access(request: Request, settings: DashboardSettings) -> None:
    """Raise :class:`Refused` unless the request may see the dashboard."""
    if not settings.requires_credentials:
        forwarded = "forwarded" in request.headers or "x-forwarded-for" in request.headers
        client = request.client.host if request.client else None
        if is_loopback(client) and not forwarded and _loopback_name(request.headers.get("host", "")):
            return
        raise Refused(
            403,
            "the dashboard answers loopback clients only until credentials are set: "
            "SCALR_QUEUE_DASHBOARD_TOKEN, or SCALR_QUEUE_DASHBOARD_USERNAME and SCALR_QUEUE_DASHBOARD_PASSWORD",
        )
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and settings.token is not None and _same(value.strip(), settings.token.get_secret_value()):
        return
    if scheme == "basic" and settings.password is not None and settings.username is not None:
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        # both compared, always, so the time taken says nothing about which one was wrong
        user_ok = _same(user, settings.username)
        if _same(password, settings.password.get_secret_value()) and user_ok:
            return
    raise Refused(
        401,
        "credentials required: a bearer token or HTTP basic user and password",
        challenge=REALM if settings.password is not None else None,
    )


def csrf_token(request: Request) -> str:
    """The browser's CSRF token: its cookie's, or a new one (set on the response by the page)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) == 43 and token.replace("-", "").replace("_", "").isalnum():
        return token
    return secrets.token_urlsafe(32)


def check_csrf(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not _same(submitted, cookie):
        raise Refused(403, "the form's CSRF token is missing or stale: reload the page and try again")
