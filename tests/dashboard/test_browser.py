"""The dashboard in a real browser: Debian's chromium, a served dashboard, a real worker and Redis.

Each test loads pages as an operator would, clicks the action, accepts the confirmation, and
then checks both Redis (through the Python API) and the page.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobStatus
from scalr_queue.redis._keys import failed_key, paused_key
from tests.support import LoggedWorker, wait_until

from .dash_support import Served

pytestmark = pytest.mark.slow
SCRIPT = "<script>window.__x=1</script>"


def _wait(driver: Any, what: str, check: Any, timeout: float = 10) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: check(d), message=what)


def _click_and_confirm(driver: Any, action: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]').click()
    alert = _wait(driver, "the confirmation", lambda d: _alert(d))
    alert.accept()


def _alert(driver: Any) -> Any:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


def _see(driver: Any, css: str, expected: str, *, exact: bool = True) -> None:
    """Wait until ``css`` reads ``expected`` (a live refresh may be replacing it right now)."""
    _wait(
        driver,
        f"{css} to read {expected!r} (it reads {_text(driver, css)!r})",
        lambda d: _text(d, css) == expected if exact else expected in _text(d, css),
    )


def _text(driver: Any, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


async def _status(job_id: str, queue: str | None = None) -> JobStatus:
    return await scalr_queue.get_job(job_id, queue).status()


async def _worker_seen() -> bool:
    return (await scalr_queue.queue_stats()).workers > 0


async def test_overview_shows_every_queue_and_refreshes_without_a_reload(
    redis_url: str, served: Served, worker: LoggedWorker, browser: Any, screenshots: Path
) -> None:
    await wait_until(_worker_seen, timeout=15, what="the worker's registration")
    for i in range(3):
        await scalr_queue.enqueue("echo", i=i, _defer_by=600)
    await scalr_queue.pause("reports")
    await scalr_queue.enqueue("echo", _queue_name="reports")
    await scalr_queue.enqueue("echo", _queue_name="reports", _defer_by=600)
    done = [await scalr_queue.enqueue("echo", n=i) for i in range(3)]
    failed = await scalr_queue.enqueue("fails_until_marked", marker="/nonexistent")
    for job in done:
        await job.result(timeout=10)
    with pytest.raises(scalr_queue.JobFailedError):
        await failed.result(timeout=10)
    browser.get(served.base_url + "/")
    _see(browser, 'tr[data-queue="default"] td[data-count="scheduled"]', "3")
    _see(browser, 'tr[data-queue="default"] td[data-count="failed"]', "1")
    _see(browser, 'tr[data-queue="reports"] td[data-count="ready"]', "1")
    _see(browser, 'tr[data-queue="reports"] td[data-count="scheduled"]', "1")
    _see(browser, 'tr[data-queue="reports"]', "paused", exact=False)
    _see(browser, 'tr[data-queue="default"] td[data-count="workers"]', "1")
    _see(browser, 'tr[data-queue="default"] td.chart .rate', "3 / 1 (25.0% failed)", exact=False)
    _see(browser, "table.workers tbody tr td:nth-child(2)", "default")
    assert browser.save_screenshot(str(screenshots / "dashboard-overview.png"))

    browser.execute_script("window.__same_page = true")
    await scalr_queue.enqueue("echo", i=9, _defer_by=600)
    _wait(
        browser,
        "the live refresh to show 4 scheduled jobs",
        lambda d: _text(d, 'tr[data-queue="default"] td[data-count="scheduled"]') == "4",
    )
    assert browser.execute_script("return window.__same_page") is True, "refreshed in place, not reloaded"


async def test_script_argument_is_shown_as_text_and_never_runs(
    redis_url: str, served: Served, worker: LoggedWorker, browser: Any
) -> None:
    job = await scalr_queue.enqueue("echo", note=SCRIPT, password="hunter2", nested={"token": "t0ps3cret"})
    await job.result(timeout=10)
    browser.get(f"{served.base_url}/queues/default/jobs/{job.job_id}")
    assert browser.execute_script("return typeof window.__x") == "undefined"
    _see(browser, "#status", "complete")
    _see(browser, "#kwargs", SCRIPT, exact=False)
    _see(browser, "#result", SCRIPT, exact=False)
    source = browser.page_source
    assert "hunter2" not in source and "t0ps3cret" not in source, "redacted by SCALR_QUEUE_DASHBOARD_REDACT's default"
    _see(browser, "#kwargs", "[redacted]", exact=False)
    _see(browser, "table.tries", "complete", exact=False)

    browser.get(f"{served.base_url}/queues/default?state=complete")
    _see(browser, "table.jobs", job.job_id, exact=False)
    assert browser.execute_script("return typeof window.__x") == "undefined"


async def test_retry_button_runs_a_failed_job_again(
    redis_url: str, redis: Redis, served: Served, worker: LoggedWorker, browser: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "fixed"
    job = await scalr_queue.enqueue("fails_until_marked", marker=str(marker))
    with pytest.raises(scalr_queue.JobFailedError):
        await job.result(timeout=10)
    browser.get(f"{served.base_url}/queues/default/jobs/{job.job_id}")
    _see(browser, "#status", "failed")
    _see(browser, "main", "does not exist yet", exact=False)
    marker.write_text("now it does")
    _click_and_confirm(browser, "retry")
    _wait(browser, "the retry's result line", lambda d: "retried" in _text(d, "#flash"))
    await wait_until(lambda: _status(job.job_id), timeout=10, what="the retried job to run")
    await wait_until(lambda: _is(job.job_id, JobStatus.COMPLETE), timeout=10, what="the retried job to complete")
    assert await redis.zscore(failed_key("default"), job.job_id) is None
    _wait(browser, "the page to show it complete", lambda d: _text(d, "#status") == "complete")
    _see(browser, "#result", '"fixed"')


async def test_job_page_lists_every_try_with_its_error_and_traceback(
    redis_url: str, served: Served, worker: LoggedWorker, browser: Any, tmp_path: Path, screenshots: Path
) -> None:
    job = await scalr_queue.enqueue("flaky_once", marker=str(tmp_path / "tried"), invoice_id=42)
    assert await job.result(timeout=10) == {"invoice_id": 42, "sent": True}
    browser.get(f"{served.base_url}/queues/default/jobs/{job.job_id}")
    _see(browser, "#status", "complete")
    _wait(browser, "both tries listed", lambda d: len(d.find_elements("css selector", "table.tries tbody tr")) == 2)
    _see(browser, "table.tries tbody tr:first-child", "retry", exact=False)
    _see(browser, "table.tries tbody tr:first-child", "ConnectionError: the mail server timed out", exact=False)
    assert "Traceback (most recent call last)" in browser.page_source, "the failed try's traceback is on the page"
    _see(browser, "table.tries tbody tr:last-child", "complete", exact=False)
    _see(browser, ".timeline", "enqueued", exact=False)
    browser.set_window_size(1360, 1300)
    assert browser.save_screenshot(str(screenshots / "dashboard-job.png"))
    browser.set_window_size(1360, 900)


async def _is(job_id: str, status: JobStatus) -> bool:
    return await _status(job_id) is status


async def test_cancel_button_stops_a_running_job(
    redis_url: str, served: Served, worker: LoggedWorker, browser: Any
) -> None:
    await wait_until(_worker_seen, timeout=15, what="the worker's registration")
    job = await scalr_queue.enqueue("slow", seconds=60)
    await wait_until(lambda: _is(job.job_id, JobStatus.IN_PROGRESS), timeout=10, what="the job to start")
    browser.get(f"{served.base_url}/queues/default/jobs/{job.job_id}")
    _see(browser, "#status", "in_progress")
    _click_and_confirm(browser, "cancel")
    _wait(browser, "the cancel's result line", lambda d: "cancelling" in _text(d, "#flash"))
    await wait_until(lambda: _is(job.job_id, JobStatus.CANCELLED), timeout=10, what="the job to be cancelled")
    _wait(browser, "the page to show it cancelled", lambda d: _text(d, "#status") == "cancelled")


async def test_pause_button_stops_claims_and_resume_restarts_them(
    redis_url: str, redis: Redis, served: Served, worker: LoggedWorker, browser: Any
) -> None:
    await wait_until(_worker_seen, timeout=15, what="the worker's registration")
    browser.get(f"{served.base_url}/queues/default")
    _click_and_confirm(browser, "pause")
    _wait(browser, "the pause's result line", lambda d: "paused" in _text(d, "#flash"))
    assert await redis.exists(paused_key("default"))
    _see(browser, "#paused", "paused")
    job = await scalr_queue.enqueue("echo", after="pause")
    await asyncio.sleep(0.5)  # a claim would take milliseconds; nothing may claim while paused
    assert await _status(job.job_id) is JobStatus.QUEUED
    _wait(browser, "the live count of the waiting job", lambda d: "ready 1" in _text(d, "#counts"))
    _click_and_confirm(browser, "resume")
    _wait(browser, "the resume's result line", lambda d: "resumed" in _text(d, "#flash"))
    assert not await redis.exists(paused_key("default"))
    assert await job.result(timeout=10) == {"after": "pause"}


async def test_a_request_without_credentials_is_refused_when_they_are_set(
    redis_url: str, served_env: dict[str, str]
) -> None:
    server = Served({**served_env, "SCALR_QUEUE_DASHBOARD_USERNAME": "ops", "SCALR_QUEUE_DASHBOARD_PASSWORD": "pw-1"})
    try:
        status, body = server.get("/")
        assert status == 401
        assert "credentials required" in body
        status, _ = server.get("/", {"Authorization": "Basic b3BzOndyb25n"})  # ops:wrong
        assert status == 401
        status, body = server.get("/", {"Authorization": "Basic b3BzOnB3LTE="})  # ops:pw-1
        assert status == 200 and "Queues" in body
    finally:
        server.stop()
