"""The HTTP API, on a real Redis and on ``memory://`` (see conftest.py); the worker tests run the
job with a real worker process on Redis and with the in-process worker on ``memory://``."""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

import scalr_queue
from scalr_queue.testing import free_port


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
    assert body["priority"] == 5
    assert (await scalr_queue.queue_stats()).ready == 1


async def test_a_job_shows_its_priority(client: httpx.AsyncClient) -> None:
    job = await scalr_queue.enqueue("send_invoice_email", invoice_id=7, _priority=8)
    body = (await client.get(f"/jobs/{job.job_id}")).json()
    assert (body["status"], body["priority"]) == ("queued", 8)


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs/no-such-job")
    assert response.status_code == 404
    assert response.json() == {"error": "job_not_found", "job_id": "no-such-job"}


async def test_healthz_is_200_with_redis_and_reports_no_worker_yet(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["redis"] == "ok"
    assert response.json()["worker_seen"] is False


async def test_noop_routes_touch_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/noop")
    assert response.json() == {"ok": True}
    shaped = await client.post("/invoices/7/noop")
    assert (shaped.status_code, shaped.json()) == (202, {"job_id": "noop-7"})
    redis = await scalr_queue.get_client().redis()
    assert await redis.dbsize() == 0


@pytest.mark.timeout(60)
async def test_a_worker_runs_the_job_to_complete(
    client: httpx.AsyncClient, run_worker: Callable[[], Awaitable[None]]
) -> None:
    job_id = (await client.post("/invoices/7/send")).json()["job_id"]
    await run_worker()
    body = (await client.get(f"/jobs/{job_id}")).json()
    assert body["status"] == "complete", body
    assert body["result"] == {"invoice_id": 7, "sent_to": "customer-7@example.com"}
    assert body["tries"] == 1


@pytest.mark.timeout(60)
async def test_a_refused_invoice_is_retried_then_shows_as_failed(
    client: httpx.AsyncClient, run_worker: Callable[[], Awaitable[None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALR_QUEUE_MAX_TRIES", "3")
    await scalr_queue.close()  # settings are re-read
    job_id = (await client.post("/invoices/-1/send")).json()["job_id"]
    await run_worker()
    body = (await client.get(f"/jobs/{job_id}")).json()
    assert (body["status"], body["tries"]) == ("failed", 3), body
    assert body["error"] == {
        "type": "ConnectionRefusedError",
        "message": "mail server refused invoice -1 (example failure)",
    }
    assert (await scalr_queue.queue_stats()).failed == 1


async def test_enqueue_answers_503_quickly_when_redis_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    from src.main import app

    monkeypatch.setenv("SCALR_QUEUE_TASKS", "src.worker")
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


async def test_job_status_shows_the_tasks_progress(client: httpx.AsyncClient) -> None:
    from scalr_queue.redis._keys import progress_key

    job_id = (await client.post("/invoices/10/send")).json()["job_id"]
    redis = await scalr_queue.get_client().redis()
    await redis.set(progress_key("default", job_id), b'{"current":3,"total":10,"message":"page 3","at_ms":0}')
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


async def test_queue_dashboard_refuses_other_hosts_without_credentials(queue_url: str) -> None:
    from src.main import app

    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.get("/queue/")).status_code == 403


async def test_startup_freezes_what_import_built_out_of_the_garbage_collectors_way() -> None:
    from src.main import app, lifespan

    async with lifespan(app):
        assert gc.get_freeze_count() > 10_000  # FastAPI, pydantic, the dashboard: never garbage
    assert gc.get_freeze_count() == 0  # shutdown hands them back (tests start the app many times)
