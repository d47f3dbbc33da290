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
from scalr_queue.redis._keys import failed_key, paused_key

LOOPBACK = ("127.0.0.1", 50000)
ELSEWHERE = ("203.0.113.7", 50000)


def _client(app: Any, client: tuple[str, int] = LOOPBACK) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://localhost")


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


async def test_read_only_hides_every_action_and_refuses_posts(make_app: Callable[..., FastAPI], redis: Redis) -> None:
    job = await scalr_queue.enqueue("anything", _defer_by=600)
    async with _client(make_app(read_only=True)) as http:
        for path in ("/", "/queues/default", f"/queues/default/jobs/{job.job_id}"):
            page = await http.get(path)
            assert page.status_code == 200
            assert '<button type="submit" class' not in page.text and 'method="post"' not in page.text
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


async def test_queue_pages_walk_a_long_queue_with_a_cursor(make_app: Callable[..., FastAPI], redis: Redis) -> None:
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
    bad = await http.post(
        "/queues/default/actions/hold", data={"csrf_token": token, "task": "anything", "where": "n ~ 1"}
    )
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


async def test_a_large_result_is_cut_on_the_page_and_served_whole_apart(http: httpx.AsyncClient, redis: Redis) -> None:
    from scalr_queue._codec import result_payload
    from scalr_queue.redis._keys import RESULT_PREFIX

    value = {"rows": [f"row-{i:05d}" for i in range(5000)], "token": "do-not-show"}
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


async def _failed_jobs(redis: Redis, count: int) -> list[str]:
    """Failed-set entries as the worker writes them, for jobs that never need a worker here."""
    from scalr_queue.control._failed import failure_record
    from scalr_queue.redis._keys import failed_jobs_key

    ids = [f"failed-{i}" for i in range(count)]
    for i, job_id in enumerate(ids):
        job = {"f": "anything", "a": [], "k": {"i": i}, "et": 1}
        error = {"type": "ValueError", "message": "boom", "traceback": "Traceback ...\nValueError: boom"}
        record = failure_record(job_id=job_id, queue="default", job=job, tries=3, reason="error", error=error)
        await redis.zadd(failed_key("default"), {job_id: 1000 + i})
        await redis.hset(failed_jobs_key("default"), job_id, record)
    return ids


async def test_retry_all_and_purge_all_say_how_many(http: httpx.AsyncClient, redis: Redis) -> None:
    ids = await _failed_jobs(redis, 3)
    page = await http.get("/queues/default?state=failed")
    assert all(i in page.text for i in ids) and "ValueError: boom" in page.text
    token = str(http.cookies[CSRF_COOKIE])
    await http.post("/queues/default/actions/retry-all", data={"csrf_token": token, "state": "failed"})
    assert "retried 3 failed job(s)" in (await http.get("/queues/default")).text
    assert await redis.zcard(failed_key("default")) == 0
    assert await redis.zcard("arq:queue:default") == 3
    await _failed_jobs(redis, 2)
    done = await http.post("/queues/default/actions/purge-all", data={"csrf_token": token, "state": "bogus"})
    assert done.headers["location"] == "/queues/default"
    assert "purged 2 failed job(s)" in (await http.get("/queues/default")).text
    assert await redis.zcard(failed_key("default")) == 0


async def test_retry_all_names_what_it_left_behind(http: httpx.AsyncClient, redis: Redis) -> None:
    ids = await _failed_jobs(redis, 1)
    await scalr_queue.enqueue("anything", _job_id=ids[0], _defer_by=600)  # queued again already
    token = await _csrf(http)
    await http.post("/queues/default/actions/retry-all", data={"csrf_token": token})
    assert "1 left in the failed set" in (await http.get("/queues/default")).text


async def test_failed_job_page_retries_and_purges_one(http: httpx.AsyncClient, redis: Redis) -> None:
    first, second = await _failed_jobs(redis, 2)
    page = await http.get(f"/queues/default/jobs/{first}")
    assert page.status_code == 200 and 'data-action="retry"' in page.text and "ValueError: boom" in page.text
    token = str(http.cookies[CSRF_COOKIE])
    await http.post("/queues/default/actions/retry", data={"csrf_token": token, "job_id": first})
    assert await scalr_queue.get_job(first).status() is JobStatus.QUEUED
    await http.post("/queues/default/actions/purge", data={"csrf_token": token, "job_id": second})
    assert await redis.zcard(failed_key("default")) == 0
    again = await http.post("/queues/default/actions/purge", data={"csrf_token": token, "job_id": second})
    assert "is not in the failed set" in (await http.get(again.headers["location"])).text
    missing = await http.post("/queues/default/actions/retry", data={"csrf_token": token})
    assert "retry needs a job id" in (await http.get(missing.headers["location"])).text


async def test_release_with_drop_deletes_the_held_jobs(http: httpx.AsyncClient) -> None:
    token = await _csrf(http)
    await http.post("/queues/default/actions/hold", data={"csrf_token": token, "task": "anything"})
    again = await http.post("/queues/default/actions/hold", data={"csrf_token": token, "task": "anything"})
    assert "was held already" in (await http.get(again.headers["location"])).text
    await http.post("/queues/default/actions/release", data={"csrf_token": token, "task": "anything", "drop": "1"})
    assert await scalr_queue.get_client().holds() == []
    none = await http.post("/queues/default/actions/release", data={"csrf_token": token, "task": "anything"})
    assert "no hold on anything" in (await http.get(none.headers["location"])).text


async def test_unknown_action_and_oversized_form_are_refused(http: httpx.AsyncClient, redis: Redis) -> None:
    token = await _csrf(http)
    assert (await http.post("/queues/default/actions/explode", data={"csrf_token": token})).status_code == 404
    huge = await http.post("/queues/default/actions/pause", data={"csrf_token": token, "x": "y" * 20_000})
    assert huge.status_code == 400 and "over the 16384" in huge.text
    assert not await redis.exists(paused_key("default"))


async def test_resume_and_pause_twice_say_nothing_changed(http: httpx.AsyncClient) -> None:
    token = await _csrf(http)
    done = await http.post("/queues/default/actions/resume", data={"csrf_token": token})
    assert "was resumed already" in (await http.get(done.headers["location"])).text


async def test_queue_names_can_be_fixed_by_setting(make_app: Callable[..., FastAPI]) -> None:
    await scalr_queue.enqueue("anything", _queue_name="hidden", _defer_by=600)
    async with _client(make_app(queues="default, mail")) as http:
        page = await http.get("/")
    assert 'data-queue="mail"' in page.text and 'data-queue="hidden"' not in page.text


async def test_new_queues_appear_after_the_rescan(make_app: Callable[..., FastAPI]) -> None:
    import asyncio

    async with _client(make_app(rescan=0.1)) as http:
        assert 'data-queue="late"' not in (await http.get("/")).text
        await scalr_queue.enqueue("anything", _queue_name="late", _defer_by=600)
        await asyncio.sleep(0.15)
        await http.get("/")  # stale names answer at once; the rescan runs behind it
        for _ in range(50):
            if 'data-queue="late"' in (await http.get("/")).text:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the new queue never appeared")


async def test_task_filter_lists_only_that_task(make_app: Callable[..., FastAPI]) -> None:
    a = await scalr_queue.enqueue("alpha", _defer_by=600)
    b = await scalr_queue.enqueue("beta", _defer_by=601)
    async with _client(make_app()) as http:
        page = await http.get("/queues/default", params={"state": "scheduled", "task": "beta"})
    assert b.job_id in page.text and a.job_id not in page.text


async def test_a_slow_first_scan_shows_the_default_queue_and_fills_in_later(
    make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from scalr_queue.dashboard import _reads

    monkeypatch.setattr(_reads, "FIRST_SCAN_WAIT", 0.0)  # as if the keyspace were huge
    await scalr_queue.enqueue("anything", _queue_name="mail", _defer_by=600)
    async with _client(make_app()) as http:
        first = await http.get("/?partial=live")
        assert 'data-queue="default"' in first.text and 'data-queue="mail"' not in first.text
        assert "Looking for more queues" in first.text
        for _ in range(100):
            later = await http.get("/?partial=live")
            if 'data-queue="mail"' in later.text:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the scan's queues never appeared")
        assert "Looking for more queues" not in later.text


def test_loopback_means_loopback_addresses_only() -> None:
    from scalr_queue.dashboard._access import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1")
    assert not is_loopback("10.0.0.1") and not is_loopback("localhost.evil.example")
    assert not is_loopback(None) and not is_loopback("")


async def test_a_forged_flash_cookie_is_ignored(http: httpx.AsyncClient) -> None:
    for value in ("%%%not-base64", "bm90IGpzb24", "WzEsMl0"):  # garbage, "not json", "[1,2]"
        http.cookies.set("scalr_dashboard_flash", value)
        page = await http.get("/")
        assert page.status_code == 200 and 'id="flash"' not in page.text


async def test_a_rebound_domain_name_is_not_taken_for_loopback(make_app: Callable[..., FastAPI]) -> None:
    transport = httpx.ASGITransport(app=make_app(), client=LOOPBACK)
    async with httpx.AsyncClient(transport=transport, base_url="http://attacker.example:8100") as http:
        assert (await http.get("/")).status_code == 403, "a page on attacker.example resolved to 127.0.0.1"
    for base in ("http://localhost:8100", "http://127.0.0.1:8100", "http://[::1]:8100", "http://app.localhost"):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_app(), client=LOOPBACK), base_url=base
        ) as http:
            assert (await http.get("/")).status_code == 200, base


async def test_job_page_shows_the_trace_id_its_worker_recorded(http: httpx.AsyncClient, redis: Redis) -> None:
    from scalr_queue._codec import result_payload
    from scalr_queue.redis._keys import RESULT_PREFIX

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    job = {"f": "traced", "a": [], "k": {}, "et": 1}
    payload, _ = result_payload(
        job_id="t1", job=job, queue="default", job_try=1, success=True, result=1, start_ms=2, finish_ms=3,
        worker="host:1:abc", trace_id=trace_id,
    )  # fmt: skip
    await redis.set(RESULT_PREFIX + "t1", payload)
    page = await http.get("/queues/default/jobs/t1")
    assert f'<td class="mono" id="trace-id">{trace_id}</td>' in page.text
    assert "host:1:abc" in page.text
