"""The worker's health endpoint: ``GET /healthz``, served from a thread of its own.

A probe answered by the worker's event loop would just hang while that loop is blocked (a task
calling ``time.sleep``, a CPU-bound loop), and the orchestrator would learn only "timed out".
This server runs beside the loop, in a thread, and judges three facts the worker keeps current:

* the loop's last tick, stamped by :meth:`WorkerHealth.tick` every fraction of a second: older
  than ``SCALR_QUEUE_HEALTH_MAX_LAG`` means the loop is blocked;
* Redis: the last call failed and nothing has succeeded since, or no heartbeat has gone through
  for two heartbeat intervals (``SCALR_QUEUE_HEALTH_INTERVAL``; a hung connection), or it has
  not answered yet at start-up;
* shutting down: after SIGTERM the worker only drains, so nothing should count on it any more.

All fine: ``200 {"status": "ok", ...}``; else ``503 {"status": "unhealthy", "reasons": [...]}``.
The reasons are short and fixed in form: the Redis error itself (host, port) goes to the log.
The port is off unless ``SCALR_QUEUE_HEALTH_PORT`` (or ``--health-port``) is set, and binds
``SCALR_QUEUE_HEALTH_HOST`` (loopback unless a container opens it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .._errors import ConfigurationError

logger = logging.getLogger("scalr_queue.worker")
HEALTH_PATH = "/healthz"


class WorkerHealth:
    """What the endpoint reports; the worker's loop writes it, the server's thread reads it.

    Each field is one float or bool assigned whole, so the reading thread never sees half an
    update (the GIL makes each assignment atomic).
    """

    def __init__(
        self,
        *,
        queue: str,
        worker_id: str,
        running: Callable[[], int],
        max_lag: float,
        heartbeat: float,
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.running = running
        self.max_lag = max_lag
        self.heartbeat = heartbeat
        # how often the loop stamps its tick: often enough to measure lag well inside the bound
        self.tick_every = min(0.5, max_lag / 4)
        self.ticked_at = time.monotonic()
        self.redis_answered_at: float | None = None
        self.redis_down_since: float | None = None
        self.stopping = False
        self._server: ThreadingHTTPServer | None = None

    # -- written by the worker's loop ----------------------------------------------------------

    async def tick(self) -> None:
        """Stamp the loop's clock until cancelled; a stale stamp is a blocked loop."""
        while True:
            self.ticked_at = time.monotonic()
            await asyncio.sleep(self.tick_every)

    def redis_answered(self) -> None:
        self.redis_answered_at = time.monotonic()
        self.redis_down_since = None

    def redis_failed(self) -> None:
        if self.redis_down_since is None:
            self.redis_down_since = time.monotonic()

    # -- read by the server's thread -----------------------------------------------------------

    def report(self, now: float | None = None) -> tuple[int, dict[str, Any]]:
        """The status code and JSON body of ``GET /healthz`` at ``now`` (monotonic seconds)."""
        now = time.monotonic() if now is None else now
        reasons: list[str] = []
        stalled = now - self.ticked_at
        if stalled > self.max_lag:
            reasons.append(f"event loop blocked for {stalled:.1f}s (bound {self.max_lag:g}s)")
        answered, down = self.redis_answered_at, self.redis_down_since
        if down is not None:
            reasons.append(f"Redis unreachable for {now - down:.1f}s")
        elif answered is None:
            reasons.append("Redis has not answered yet")
        elif now - answered > 2 * self.heartbeat:
            reasons.append(f"Redis has not answered for {now - answered:.1f}s")
        if self.stopping:
            reasons.append(f"shutting down ({self.running()} running jobs finishing)")
        body: dict[str, Any] = {
            "status": "unhealthy" if reasons else "ok",
            "queue": self.queue,
            "worker_id": self.worker_id,
            "running": self.running(),
            "loop_lag_s": round(max(0.0, stalled - self.tick_every), 3),
            "redis_answered_s_ago": None if answered is None else round(now - answered, 3),
        }
        if reasons:
            body["reasons"] = reasons
        return (503 if reasons else 200), body

    # -- the server ------------------------------------------------------------------------------

    def serve(self, host: str, port: int) -> None:
        """Listen on ``host:port`` in a daemon thread; a port that cannot be bound is a set-up error."""
        try:
            server = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as exc:
            raise ConfigurationError(
                f"the health endpoint cannot listen on {host}:{port} ({exc.strerror or exc}): "
                "set SCALR_QUEUE_HEALTH_PORT (or --health-port) to a free port, or leave it unset"
            ) from None
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="scalr-queue-health", daemon=True).start()
        logger.info("health on http://%s:%d%s", host, port, HEALTH_PATH)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def _handler(health: WorkerHealth) -> type[BaseHTTPRequestHandler]:
    class HealthHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != HEALTH_PATH:
                self._send(404, {"status": "not found", "try": HEALTH_PATH})
                return
            self._send(*health.report())

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds would flood the worker's log; stay quiet."""

    return HealthHandler
