"""Fixtures for the dashboard: one worker, one served dashboard and one headless chromium per module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scalr_queue.redis._server import RedisServer
from tests.conftest import TEST_ENV
from tests.support import ROOT, LoggedWorker

from .dash_support import CHROMEDRIVER, CHROMIUM, SCREENSHOT_DIR_ENV, Served, chromium_missing, write_tasks


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tasks(tmp_path_factory.mktemp("dash"))


@pytest.fixture(scope="module")
def served_env(redis_server: RedisServer) -> dict[str, str]:
    return {
        "REDIS_URL": redis_server.url,
        **TEST_ENV,
        "SCALR_QUEUE_DASHBOARD_REFRESH": "0.3",
        "SCALR_QUEUE_DASHBOARD_RESCAN": "0.5",
    }


@pytest.fixture(scope="module")
def served(served_env: dict[str, str]) -> Iterator[Served]:
    server = Served(served_env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker(tasks_dir: Path, served_env: dict[str, str]) -> Iterator[LoggedWorker]:
    env = {**served_env, "PYTHONPATH": os.pathsep.join([str(tasks_dir), str(ROOT)]), "SCALR_QUEUE_CONCURRENCY": "4"}
    proc = LoggedWorker("dash_tasks", tasks_dir, env=env)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,900", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save their screenshots: a temporary folder, or docs/img for `make screenshots`."""
    chosen = os.environ.get(SCREENSHOT_DIR_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
