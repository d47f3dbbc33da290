"""template-app's public routes say what went wrong without showing internals: a job's error is
its type and message (no traceback), and a 503 names no host, port or Redis URL; operators find
the details in the backend's log and ``scalr-queue failed show``. Real processes, real HTTP."""

from __future__ import annotations

import re

import pytest
from template_support import Stack, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

INTERNALS = re.compile(r"Traceback|File \"|redis://|rediss://|127\.0\.0\.1|localhost")


def test_a_failed_jobs_error_is_its_type_and_message_without_the_traceback(stack: Stack) -> None:
    stack.env["SCALR_QUEUE_MAX_TRIES"] = "1"
    stack.start_backend()
    stack.start_worker()
    http = stack.client()
    job_id = http.post("/invoices/-7/send").json()["job_id"]

    def failed() -> dict | None:
        body = http.get(f"/jobs/{job_id}").json()
        return body if body["status"] == "failed" else None

    body = wait_until(failed, 30, f"job {job_id} to fail")
    assert body["error"] == {
        "type": "ConnectionRefusedError",
        "message": "mail server refused invoice -7 (example failure)",
    }
    assert not INTERNALS.search(http.get(f"/jobs/{job_id}").text)


def test_503_bodies_name_no_host_port_or_url_and_the_log_keeps_the_detail(stack: Stack) -> None:
    backend = stack.start_backend()
    http = stack.client()
    stack.redis.stop()  # this test's own redis-server, by its PID

    for response in (http.post("/invoices/1/send"), http.get("/jobs/some-job"), http.get("/healthz")):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert not INTERNALS.search(response.text), response.text
        assert str(stack.redis.port) not in response.text
    assert http.post("/invoices/1/send").json() == {
        "error": "queue_unavailable",
        "detail": "the job queue is unavailable; try again shortly",
    }
    assert http.get("/healthz").json() == {"redis": "down", "detail": "the job queue is unavailable"}
    wait_until(lambda: f"127.0.0.1:{stack.redis.port}" in backend.log(), 10, "the backend to log the detail")
    assert "cannot connect to Redis" in backend.log()
