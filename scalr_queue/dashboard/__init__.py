"""The web dashboard: every queue, job and worker, and the actions on them, server-rendered.

Mount it in a FastAPI app in one line, or serve it alone with ``scalr-queue dashboard``::

    import scalr_queue.dashboard

    app.include_router(scalr_queue.dashboard.router(), prefix="/queue")

It needs the ``web`` extra (FastAPI, Jinja2). Without credentials configured it answers loopback
clients only; see :class:`DashboardSettings` for the token, HTTP basic and redaction settings.
"""

from ._app import create_app, router
from ._settings import DashboardSettings, load_dashboard_settings

__all__ = ["DashboardSettings", "create_app", "load_dashboard_settings", "router"]
