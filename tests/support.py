"""Test helpers: deadlines instead of sleeps, workers in-process or as real subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from scalr_queue._settings import load_settings
from scalr_queue._tasks import build_task_map
from scalr_queue.worker._loader import WorkerConfig
from scalr_queue.worker._worker import ScalrWorker

ROOT = Path(__file__).resolve().parent.parent


T = TypeVar("T")


def run_in_new_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a loop of its own, closed after, in a synchronous test.

    Not ``asyncio.run``: that ends by setting the thread's current loop to None, which orphans the
    fresh loop pytest-asyncio leaves current after each async test (before 0.25), and that loop's
    unclosed sockets then fail a later test with a ResourceWarning.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll with a deadline instead of sleeping."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running_worker(
    tasks: list[Any], *, queue: str | None = None, concurrency: int | None = None, **config: Any
) -> AsyncIterator[ScalrWorker]:
    """A ScalrWorker in this event loop, stopped (drained) on exit."""
    settings = load_settings()
    cfg = WorkerConfig(module=config.pop("module", "tests"), tasks=build_task_map(tasks), **config)
    worker = ScalrWorker(cfg, settings, queue=queue, concurrency=concurrency, handle_signals=False)
    task = asyncio.get_running_loop().create_task(worker.run_async())
    try:
        await wait_until(lambda: task.done() or bool(worker.ctx.get("redis")), what="worker start")
        if task.done():
            task.result()
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)


def spawn_worker(
    module: str, cwd: Path, *args: str, env: dict[str, str] | None = None, stdout: Any = subprocess.PIPE
) -> subprocess.Popen[str]:
    """``python -m scalr_queue.worker`` as a real process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "scalr_queue.worker", module, *args],
        cwd=cwd,
        env=full_env,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
    )


class LoggedWorker:
    """A ``python -m scalr_queue.worker`` process with its output in a file under ``cwd``."""

    def __init__(self, module: str, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = cwd / f"worker-{os.urandom(3).hex()}.log"
        with open(self.log_path, "w") as log:
            self.proc = spawn_worker(module, cwd, *args, env=env, stdout=log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (a drain), then SIGKILL if it is still there after 30 s; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def run_bench(module: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m bench.<module> ARGS`` from the repository root, with no SCALR_QUEUE_* or REDIS_URL
    from the caller's shell (a bench starts its own redis-server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCALR_QUEUE_", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scalr_queue.cli", *args],
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
