"""The HTTP API against a real Redis; one test runs a real worker (in burst mode) on the job."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue.testing import free_port

BACKEND_DIR = Path(__file__).resolve().parents[1]


async def test_send_invoice_answers_202_with_a_job_id_and_queues_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/invoices/42/send")
    assert response.status_code == 202
    job_id = response.json()["job_id"]

    job = await client.get(f"/jobs/{job_id}")
    assert job.status_code == 200
    body = job.json()
    assert body["status"] == "queued"
    assert body["task"] == "send_invoice_email"
    assert body["tries"] == 0
    assert (await scalr_queue.queue_stats()).ready == 1


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs/no-such-job")
    assert response.status_code == 404
    assert response.json() == {"error": "job_not_found", "job_id": "no-such-job"}


async def test_healthz_is_200_with_redis_and_reports_no_worker_yet(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["redis"] == "ok"
    assert response.json()["worker_seen"] is False


async def test_noop_routes_touch_nothing(client: httpx.AsyncClient, redis_url: str) -> None:
    response = await client.get("/noop")
    assert response.json() == {"ok": True}
    shaped = await client.post("/invoices/7/noop")
    assert (shaped.status_code, shaped.json()) == (202, {"job_id": "noop-7"})
    redis = Redis.from_url(redis_url)
    assert await redis.dbsize() == 0
    await redis.aclose()


@pytest.mark.timeout(60)
async def test_a_worker_runs_the_job_to_complete(client: httpx.AsyncClient, redis_url: str) -> None:
    job_id = (await client.post("/invoices/7/send")).json()["job_id"]
    env = {**os.environ, "REDIS_URL": redis_url}
    worker = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "scalr_queue.worker", "src.worker", "--burst"],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]
    body = (await client.get(f"/jobs/{job_id}")).json()
    assert body["status"] == "complete", body
    assert body["result"] == {"invoice_id": 7, "sent_to": "customer-7@example.com"}
    assert body["tries"] == 1


async def test_enqueue_answers_503_quickly_when_redis_is_down(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    from src.main import app

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    await scalr_queue.close()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
        started = time.monotonic()
        response = await http.post("/invoices/1/send")
        assert response.status_code == 503
        assert response.json()["error"] == "queue_unavailable"
        assert time.monotonic() - started < 3
        assert (await http.get("/healthz")).status_code == 503


async def test_job_status_shows_a_cancelled_job_with_its_reason(client: httpx.AsyncClient) -> None:
    job_id = (await client.post("/invoices/9/send")).json()["job_id"]
    await scalr_queue.cancel(job_id, reason="invoice voided")
    body = (await client.get(f"/jobs/{job_id}")).json()
    assert body["status"] == "cancelled", body
    assert body["cancel_reason"] == "invoice voided"
    assert body["cancelled_at"] is not None
    assert body["error"]["type"] == "JobCancelled"
    assert body["progress"] is None


async def test_job_status_shows_the_tasks_progress(client: httpx.AsyncClient, redis_url: str) -> None:
    from scalr_queue.redis._keys import progress_key

    job_id = (await client.post("/invoices/10/send")).json()["job_id"]
    redis = Redis.from_url(redis_url)
    await redis.set(progress_key("default", job_id), b'{"current":3,"total":10,"message":"page 3","at_ms":0}')
    await redis.aclose()
    body = (await client.get(f"/jobs/{job_id}")).json()
    assert body["progress"] == {"current": 3, "total": 10, "message": "page 3", "at": "1970-01-01T00:00:00Z"}


async def test_queue_dashboard_is_mounted_and_outside_the_api_contract(client: httpx.AsyncClient) -> None:
    from src.main import app

    transport = httpx.ASGITransport(app=app)  # a loopback client asking for localhost: let in without credentials
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as local:
        page = await local.get("/queue/")
    assert page.status_code == 200
    assert "Queues" in page.text
    assert not any(path.startswith("/queue") for path in (await client.get("/openapi.json")).json()["paths"])


async def test_queue_dashboard_refuses_other_hosts_without_credentials(redis_url: str) -> None:
    from src.main import app

    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.get("/queue/")).status_code == 403
