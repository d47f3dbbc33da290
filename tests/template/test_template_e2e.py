"""template-app end to end: real redis-server, uvicorn and worker processes, real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import redis
from template_support import BACKEND, Stack, compose_worker_healthcheck, dockerfile_healthcheck, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def job_state(stack: Stack, job_id: str) -> dict:
    response = stack.client().get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def healthcheck(stack: Stack, argv: list[str]) -> int:
    return subprocess.run(argv, cwd=BACKEND, env=stack.env, capture_output=True, timeout=30).returncode


def test_invoice_email_job_runs_to_complete_through_the_worker(stack: Stack) -> None:
    stack.start_backend()
    stack.start_worker()
    http = stack.client()

    response = http.post("/invoices/42/send")
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    done = wait_until(
        lambda: (s := job_state(stack, job_id))["status"] == "complete" and s, 30, f"job {job_id} to complete"
    )
    assert done["result"] == {"invoice_id": 42, "sent_to": "customer-42@example.com"}, stack.logs()
    assert done["tries"] == 1
    assert done["task"] == "send_invoice_email"
    assert done["error"] is None

    # the worker logged the job id and the try, and /healthz saw it alive
    wait_until(lambda: f"job {job_id}, try 1" in stack.procs[1].log(), 10, "the task's log line")
    health = wait_until(lambda: (h := http.get("/healthz").json())["worker_seen"] and h, 15, "a live worker")
    assert health["redis"] == "ok" and health["workers"] == 1

    assert http.get("/jobs/not-a-job").status_code == 404

    # the healthchecks Docker would run: the image's (backend) and the compose worker's /healthz
    assert healthcheck(stack, dockerfile_healthcheck(stack.port)) == 0
    wait_until(
        lambda: healthcheck(stack, compose_worker_healthcheck(stack.worker_health_port)) == 0,
        15,
        "the compose worker's healthcheck to pass",
    )
    # and `--check` (asks Redis whether a worker of the module reported) still answers
    assert healthcheck(stack, [sys.executable, "-m", "scalr_queue.worker", "src.worker", "--check"]) == 0


def test_backend_serves_the_jobs_it_enqueued_on_metrics(stack: Stack) -> None:
    """The producer's own count: no worker runs here, and no Redis call counts it."""
    stack.start_backend()
    http = stack.client()
    sample = 'scalr_queue_jobs_enqueued_total{queue="default",task="send_invoice_email"}'
    assert sample not in http.get("/metrics").text
    for invoice in (1, 2, 3):
        assert http.post(f"/invoices/{invoice}/send").status_code == 202
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert f"{sample} 3.0" in response.text
    assert "/metrics" not in http.get("/openapi.json").json()["paths"], "not part of the API contract"


def test_failing_task_retries_then_lands_in_the_failed_set(stack: Stack) -> None:
    stack.start_backend()
    worker = stack.start_worker()
    http = stack.client()

    job_id = http.post("/invoices/-7/send").json()["job_id"]
    failed = wait_until(
        lambda: (s := job_state(stack, job_id))["status"] == "failed" and s, 30, f"job {job_id} to fail"
    )
    assert failed["tries"] == 3, stack.logs()  # SCALR_QUEUE_MAX_TRIES=3
    assert failed["error"]["type"] == "ConnectionRefusedError"
    assert "invoice -7" in failed["error"]["message"]
    for attempt in (1, 2, 3):
        assert f"job {job_id}, try {attempt})" in worker.log()

    cli = subprocess.run(
        [sys.executable, "-m", "scalr_queue.cli", "failed", "list", "--json"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    (entry,) = [j for j in json.loads(cli.stdout) if j["job_id"] == job_id]
    assert entry["task"] == "send_invoice_email"
    assert entry["kwargs"] == {"invoice_id": -7}
    assert entry["tries"] == 3
    assert entry["error_type"] == "ConnectionRefusedError"


def test_enqueue_answers_503_while_redis_is_down_and_recovers_by_itself(stack: Stack) -> None:
    stack.start_backend()
    http = stack.client()
    assert http.post("/invoices/1/send").status_code == 202

    stack.redis.stop()
    started = time.monotonic()
    down = http.post("/invoices/2/send")
    elapsed = time.monotonic() - started
    assert down.status_code == 503, down.text
    assert down.json()["error"] == "queue_unavailable"
    assert elapsed < 2.5, f"503 took {elapsed:.2f}s"
    assert http.get("/healthz").status_code == 503
    assert healthcheck(stack, dockerfile_healthcheck(stack.port)) == 1

    stack.redis.start()  # same port, same URL
    wait_until(lambda: http.post("/invoices/3/send").status_code == 202, 15, "enqueue to work again")
    assert http.get("/healthz").status_code == 200
    assert stack.procs[0].alive()


def test_enqueue_answers_503_when_redis_is_full_and_nothing_is_evicted(stack: Stack) -> None:
    """The shared Redis runs noeviction: at the cap, enqueue fails loudly instead of losing jobs."""
    stack.start_backend()
    http = stack.client()
    queued = http.post("/invoices/1/send").json()["job_id"]

    admin = redis.Redis.from_url(stack.redis.url)
    try:
        for i in range(8):
            admin.set(f"filler:{i}", b"x" * 262_144)
        # Put the cap below what is already used, as when a backlog outgrows the server.
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", str(used - 1_048_576))

        full = http.post("/invoices/2/send")
        assert full.status_code == 503, full.text
        assert full.json()["error"] == "queue_unavailable"
        assert job_state(stack, queued)["status"] == "queued"  # nothing was evicted
        assert admin.exists(*[f"filler:{i}" for i in range(8)]) == 8

        admin.config_set("maxmemory", "0")
        wait_until(lambda: http.post("/invoices/3/send").status_code == 202, 15, "enqueue once memory is back")
    finally:
        admin.close()
