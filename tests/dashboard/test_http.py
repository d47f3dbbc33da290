"""The dashboard in-process (httpx over ASGI, real Redis): who gets in, CSRF, read-only, errors, mounting."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import ConfigurationError, JobStatus
from scalr_queue.dashboard import create_app, load_dashboard_settings, router
from scalr_queue.dashboard._access import CSRF_COOKIE
from scalr_queue.redis._keys import paused_key

LOOPBACK = ("127.0.0.1", 50000)
ELSEWHERE = ("203.0.113.7", 50000)


def _client(app: Any, client: tuple[str, int] = LOOPBACK) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://dash")


@pytest.fixture
def make_app(redis_url: str) -> Callable[..., FastAPI]:
    def build(**settings: Any) -> FastAPI:
        read_only = settings.pop("read_only", None)
        return create_app(read_only=read_only, settings=load_dashboard_settings(**settings))

    return build


@pytest.fixture
async def http(make_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(make_app()) as client:
        yield client


async def _csrf(http: httpx.AsyncClient, path: str = "/") -> str:
    response = await http.get(path)
    assert response.status_code == 200
    return str(http.cookies[CSRF_COOKIE])


async def test_loopback_gets_in_without_configuration(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert "<h1>Queues</h1>" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


async def test_other_addresses_are_refused_without_configuration(make_app: Callable[..., FastAPI]) -> None:
    async with _client(make_app(), ELSEWHERE) as http:
        response = await http.get("/")
    assert response.status_code == 403
    assert "SCALR_QUEUE_DASHBOARD_TOKEN" in response.text
    assert "Traceback" not in response.text


async def test_a_proxied_request_is_not_taken_for_loopback(http: httpx.AsyncClient) -> None:
    response = await http.get("/", headers={"X-Forwarded-For": "198.51.100.4"})
    assert response.status_code == 403


async def test_token_is_required_from_everyone_once_set(make_app: Callable[..., FastAPI]) -> None:
    async with _client(make_app(token="s3cret-token"), ELSEWHERE) as http:
        assert (await http.get("/")).status_code == 401
        assert (await http.get("/", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await http.get("/", headers={"Authorization": "Bearer s3cret-token"})).status_code == 200
    async with _client(make_app(token="s3cret-token")) as http:
        assert (await http.get("/")).status_code == 401, "loopback too, once credentials exist"


async def test_basic_auth_challenges_and_accepts_the_pair(make_app: Callable[..., FastAPI]) -> None:
    async with _client(make_app(username="ops", password="pw"), ELSEWHERE) as http:
        refused = await http.get("/workers")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic ")
        bad = base64.b64encode(b"ops:nope").decode()
        assert (await http.get("/workers", headers={"Authorization": f"Basic {bad}"})).status_code == 401
        assert (await http.get("/workers", headers={"Authorization": "Basic %%%"})).status_code == 401
        good = base64.b64encode(b"ops:pw").decode()
        assert (await http.get("/workers", headers={"Authorization": f"Basic {good}"})).status_code == 200


def test_bad_settings_stop_the_router_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALR_QUEUE_DASHBOARD_USERNAME", "ops")
    with pytest.raises(ConfigurationError, match="set both SCALR_QUEUE_DASHBOARD_USERNAME"):
        router()
    monkeypatch.delenv("SCALR_QUEUE_DASHBOARD_USERNAME")
    monkeypatch.setenv("SCALR_QUEUE_DASHBOARD_REFRESH", "soon")
    with pytest.raises(ConfigurationError, match="SCALR_QUEUE_DASHBOARD_REFRESH"):
        router()


async def test_an_action_without_the_csrf_token_changes_nothing(http: httpx.AsyncClient, redis: Redis) -> None:
    token = await _csrf(http)
    refused = await http.post("/queues/default/actions/pause", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    http.cookies.clear()
    refused = await http.post("/queues/default/actions/pause", data={"csrf_token": token})
    assert refused.status_code == 403, "the token must match the browser's own cookie"
    assert not await redis.exists(paused_key("default"))


async def test_pause_with_the_token_pauses_and_says_so(http: httpx.AsyncClient, redis: Redis) -> None:
    token = await _csrf(http)
    done = await http.post("/queues/default/actions/pause", data={"csrf_token": token})
    assert done.status_code == 303
    assert done.headers["location"] == "/queues/default"
    assert await redis.exists(paused_key("default"))
    page = await http.get("/queues/default")
    assert "queue default paused" in page.text
    again = await http.get("/queues/default")
    assert "queue default paused</p>" not in again.text, "a result is shown once"


async def test_read_only_hides_every_action_and_refuses_posts(
    make_app: Callable[..., FastAPI], redis: Redis
) -> None:
    job = await scalr_queue.enqueue("anything", _defer_by=600)
    async with _client(make_app(read_only=True)) as http:
        for path in ("/", "/queues/default", f"/queues/default/jobs/{job.job_id}"):
            page = await http.get(path)
            assert page.status_code == 200
            assert "<button type=\"submit\" class" not in page.text and 'method="post"' not in page.text
        token = str(http.cookies[CSRF_COOKIE])
        refused = await http.post("/queues/default/actions/pause", data={"csrf_token": token})
        assert refused.status_code in (404, 405)
    assert not await redis.exists(paused_key("default"))


async def test_unknown_job_and_bad_queue_are_pages_not_tracebacks(http: httpx.AsyncClient) -> None:
    missing = await http.get("/queues/default/jobs/nope")
    assert missing.status_code == 404
    assert "no job" in missing.text and "Traceback" not in missing.text
    bad = await http.get("/queues/no%20such/jobs/x")
    assert bad.status_code == 404
    cursor = await http.get("/queues/default?state=ready&cursor=garbage")
    assert cursor.status_code == 400
    assert "cursor" in cursor.text


async def test_redis_down_is_a_503_page(make_app: Callable[..., FastAPI], set_env: Callable[..., None]) -> None:
    set_env(REDIS_URL="redis://127.0.0.1:1/0", SCALR_QUEUE_REDIS_TIMEOUT="200ms")
    await scalr_queue.close()
    async with _client(make_app(queues="default")) as http:
        response = await http.get("/")
    assert response.status_code == 503
    assert "Redis is not answering" in response.text and "Traceback" not in response.text


async def test_search_finds_the_queue_of_a_job(http: httpx.AsyncClient) -> None:
    job = await scalr_queue.enqueue("anything", _queue_name="mail", _defer_by=600)
    await _csrf(http)
    found = await http.get("/search", params={"job_id": job.job_id})
    assert found.status_code == 303
    assert found.headers["location"] == f"/queues/mail/jobs/{job.job_id}"
    missing = await http.get("/search", params={"job_id": "nope"})
    assert missing.status_code == 404 and "No job" in missing.text


async def test_queue_pages_walk_a_long_queue_with_a_cursor(
    make_app: Callable[..., FastAPI], redis: Redis
) -> None:
    ids = [(await scalr_queue.enqueue("anything", i=i, _defer_by=600 + i)).job_id for i in range(7)]
    async with _client(make_app(page_size=3)) as http:
        seen: list[str] = []
        url: str | None = "/queues/default?state=scheduled"
        while url:
            page = await http.get(url)
            assert page.status_code == 200
            seen += [i for i in ids if i in page.text and i not in seen]
            url = None
            if 'rel="next"' in page.text:
                url = page.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert seen == ids


async def test_hold_and_release_from_the_queue_page(http: httpx.AsyncClient) -> None:
    token = await _csrf(http)
    held = await http.post(
        "/queues/default/actions/hold", data={"csrf_token": token, "task": "anything", "where": "n == 1"}
    )
    assert held.status_code == 303
    assert await scalr_queue.get_client().holds() == ["anything where n == 1"]
    page = await http.get("/queues/default")
    assert "anything where n == 1" in page.text
    bad = await http.post("/queues/default/actions/hold", data={"csrf_token": token, "task": "anything", "where": "n ~ 1"})
    assert bad.status_code == 303
    assert "expected KEYWORD OP VALUE" in (await http.get("/queues/default")).text
    await http.post("/queues/default/actions/release", data={"csrf_token": token, "task": "anything"})
    assert await scalr_queue.get_client().holds() == []


async def test_cancel_of_a_queued_job_from_its_page(http: httpx.AsyncClient) -> None:
    job = await scalr_queue.enqueue("anything", _defer_by=600)
    token = await _csrf(http, f"/queues/default/jobs/{job.job_id}")
    done = await http.post("/queues/default/actions/cancel", data={"csrf_token": token, "job_id": job.job_id})
    assert done.headers["location"] == f"/queues/default/jobs/{job.job_id}"
    assert await job.status() is JobStatus.CANCELLED
    assert "will not run" in (await http.get(done.headers["location"])).text


async def test_mounted_under_a_prefix_links_stay_inside_it(redis_url: str) -> None:
    app = FastAPI()
    app.include_router(router(), prefix="/queue")
    async with _client(app) as http:
        page = await http.get("/queue/")
        assert page.status_code == 200
        assert 'href="/queue/static/dashboard.css"' in page.text
        assert 'href="/queue/workers"' in page.text
        assert (await http.get("/queue/static/dashboard.js")).status_code == 200
        assert (await http.get("/queue/static/secrets.txt")).status_code == 404
    assert "/queue/" not in app.openapi()["paths"], "a UI, not part of the app's API contract"


async def test_a_large_result_is_cut_on_the_page_and_served_whole_apart(
    http: httpx.AsyncClient, redis: Redis
) -> None:
    from scalr_queue._codec import result_payload
    from scalr_queue.redis._keys import RESULT_PREFIX

    value = {"rows": ["row-%05d" % i for i in range(5000)], "token": "do-not-show"}
    job = {"f": "big", "a": [], "k": {}, "et": 1}
    payload, _ = result_payload(
        job_id="big1", job=job, queue="default", job_try=1, success=True, result=value, start_ms=2, finish_ms=3
    )
    await redis.set(RESULT_PREFIX + "big1", payload)
    page = await http.get("/queues/default/jobs/big1")
    assert page.status_code == 200
    assert "row-00000" in page.text and "row-04999" not in page.text
    assert "see it whole" in page.text
    whole = await http.get("/queues/default/result/big1")
    assert whole.headers["content-type"].startswith("text/plain")
    assert "row-04999" in whole.text
    assert "do-not-show" not in whole.text and "[redacted]" in whole.text
