"""Helpers for the dashboard tests: the task module, a served dashboard, and Debian's chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from scalr_queue.testing import free_port
from tests.support import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT_DIR_ENV = "SCALR_QUEUE_SCREENSHOT_DIR"  # `make screenshots` points it at docs/img

TASKS = """
import asyncio
import os

from scalr_queue import Fail


async def echo(ctx, **kwargs):
    return kwargs


async def big(ctx, size: int):
    return {"rows": ["x" * 100] * size}


async def fails_until_marked(ctx, marker: str):
    if not os.path.exists(marker):
        raise Fail(f"{marker} does not exist yet")
    return "fixed"


async def flaky_once(ctx, marker: str, invoice_id: int):
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise ConnectionError("the mail server timed out")
    await ctx["progress"](3, total=3, message="sent")
    return {"invoice_id": invoice_id, "sent": True}


async def slow(ctx, seconds: float):
    await ctx["progress"](1, total=4, message="working")
    await asyncio.sleep(seconds)
    return "slept"


tasks = [echo, big, fails_until_marked, flaky_once, slow]
"""


def write_tasks(directory: Path) -> Path:
    (directory / "dash_tasks.py").write_text(TASKS)
    return directory


class Served:
    """``scalr-queue dashboard`` as a real process on a free loopback port."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop(): it outlives __init__)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scalr_queue.cli", "dashboard", "--port", str(self.port), *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                output = self.log.read()
                self.log.close()
                raise AssertionError(f"the dashboard exited {self.proc.returncode}: {output}")
            try:
                urllib.request.urlopen(self.base_url + "/static/dashboard.css", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # it answers (a refusal is an answer)
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("the dashboard did not answer within 20 s") from None
                time.sleep(0.05)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def chromium_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            return f"{path} is missing: run `make bootstrap` (scripts/install-browser.sh installs chromium)"
    return None
