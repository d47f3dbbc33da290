"""Under ``scalr_queue.WorkerSettings``, a task's final exception reaches arq's runner unchanged:
its own cause and context stay, and only a timeout is replaced (by a clean TimeoutError)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue._settings import get_settings
from scalr_queue._tasks import as_task_spec
from scalr_queue.arq_compat._worker_settings import retrying


async def charge_with_cause(ctx: dict[str, Any]) -> None:
    raise RuntimeError("gateway refused") from ConnectionError("socket closed by peer")


async def charge_with_context(ctx: dict[str, Any]) -> None:
    try:
        {}["card"]
    except KeyError:
        raise RuntimeError("no card on file")  # noqa: B904 - the implicit context is what this test keeps


async def run_last_try(redis: Redis, fn: Callable[..., Any], timeout: float = 5.0, **ctx: Any) -> BaseException:
    wrapped = retrying(as_task_spec(fn), get_settings(), "default", timeout, max_tries=1)
    with pytest.raises(BaseException) as caught:
        await wrapped.coroutine({"job_id": "job-1", "job_try": 1, "redis": redis, **ctx})
    return caught.value


async def test_final_exception_keeps_the_tasks_own_cause(redis: Redis) -> None:
    exc = await run_last_try(redis, charge_with_cause)
    assert isinstance(exc, RuntimeError) and str(exc) == "gateway refused"
    assert isinstance(exc.__cause__, ConnectionError) and str(exc.__cause__) == "socket closed by peer"
    assert await redis.zscore("scalr:failed:default", "job-1") is not None


async def test_final_exception_keeps_the_tasks_implicit_context(redis: Redis) -> None:
    exc = await run_last_try(redis, charge_with_context)
    assert exc.__cause__ is None and exc.__suppress_context__ is False
    assert isinstance(exc.__context__, KeyError)


async def test_timeout_is_a_clean_timeout_error_without_the_cancellation_chain(redis: Redis) -> None:
    async def slow(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(5)

    exc = await run_last_try(redis, slow, timeout=0.05)
    assert type(exc) is TimeoutError and str(exc) == "task exceeded its 0.05s timeout"
    assert exc.__cause__ is None and exc.__suppress_context__ is True


ARQ_MODULE = """
import scalr_queue

async def charge(ctx) -> None:
    raise RuntimeError("gateway refused") from ConnectionError("socket closed by peer")

class WorkerSettings(scalr_queue.WorkerSettings):
    functions = [charge]
    max_tries = 1
"""


async def test_arqs_own_runner_logs_the_tasks_real_cause(
    redis: Redis, redis_url: str, worker_module: Callable[..., Path]
) -> None:
    cwd = worker_module(ARQ_MODULE)
    await scalr_queue.enqueue("charge")
    cmd = [sys.executable, "-m", "arq", "jobs_mod.WorkerSettings", "--burst"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "ConnectionError: socket closed by peer" in log
    assert "The above exception was the direct cause of the following exception" in log
    assert "RuntimeError: gateway refused" in log
