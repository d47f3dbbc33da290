"""``scalr-queue dashboard``: the dashboard served alone by uvicorn, loopback unless told otherwise."""

from __future__ import annotations

from .._errors import ConfigurationError
from ._access import is_loopback

DEFAULT_PORT = 8100


def serve(port: int = DEFAULT_PORT, host: str = "127.0.0.1", read_only: bool = False) -> int:
    """Check the settings, then serve until Ctrl-C or SIGTERM; returns the exit code.

    Binding a non-loopback address without credentials would only serve 403s, so it is refused
    up front with the settings to set.
    """
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"--port {port} is not valid: expected 1 to 65535")
    from .._settings import get_settings
    from ._app import create_app
    from ._settings import load_dashboard_settings

    settings = load_dashboard_settings()
    get_settings()  # a bad REDIS_URL stops here, with its one line
    if not settings.requires_credentials and host != "localhost" and not is_loopback(host):
        raise ConfigurationError(
            f"--host {host} would expose the dashboard beyond loopback without credentials: set "
            "SCALR_QUEUE_DASHBOARD_TOKEN, or SCALR_QUEUE_DASHBOARD_USERNAME and SCALR_QUEUE_DASHBOARD_PASSWORD"
        )
    import uvicorn

    app = create_app(read_only=read_only or None, settings=settings)
    print(f"scalr-queue dashboard on http://{host if ':' not in host else f'[{host}]'}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0
