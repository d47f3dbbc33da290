"""``python -m scalr_queue.worker``: clear exit-2 errors, the banner, --check, --burst, WorkerSettings."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue._codec import loads
from tests.support import spawn_worker, wait_until


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (None, "no_such_module", "cannot import worker module 'no_such_module': No module named 'no_such_module'"),
        (
            "import not_installed_lib\n",
            "jobs_mod",
            "cannot import worker module 'jobs_mod': ModuleNotFoundError: No module named 'not_installed_lib'",
        ),
        ("x = 1/0\n", "jobs_mod", "ZeroDivisionError: division by zero (at "),
        ("def broken(:\n", "jobs_mod", "SyntaxError: invalid syntax (at "),
        ("x = 1\n", "jobs_mod", "worker module 'jobs_mod' has no 'tasks' list: add tasks = [your_task, ...]"),
        ("tasks = []\n", "jobs_mod", "jobs_mod.tasks is empty: add at least one async task function"),
        (
            "def send(ctx):\n    pass\ntasks = [send]\n",
            "jobs_mod",
            "task 'send' is a sync function, not an async function: define it with 'async def send(ctx, ...)'",
        ),
        (
            "async def a(ctx):\n    pass\nasync def b(ctx):\n    pass\nb.__name__ = 'a'\ntasks = [a, b]\n",
            "jobs_mod",
            "two tasks are named 'a': task names must be unique",
        ),
        ("async def a():\n    pass\ntasks = [a]\n", "jobs_mod", "task 'a' must take ctx as its first argument"),
        ("tasks = 'oops'\n", "jobs_mod", "jobs_mod.tasks must be a list of async functions, not str"),
        (
            "async def a(ctx):\n    pass\ntasks = [a]\n",
            "jobs_mod:nope",
            "worker module 'jobs_mod' has no attribute 'nope'",
        ),
    ],
)
def test_bad_worker_module_exits_2_with_one_line(
    worker_module: Callable[..., Path], tmp_path: Path, source: str | None, target: str, expected: str
) -> None:
    cwd = worker_module(source) if source is not None else tmp_path
    proc = spawn_worker(target, cwd, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    out, _ = proc.communicate(timeout=30)
    lines = out.strip().splitlines()
    assert proc.returncode == 2, out
    assert len(lines) == 1, out
    assert lines[0].startswith("python -m scalr_queue.worker: error: ")
    assert expected in lines[0]


def test_console_script_runs_the_same_entrypoint(worker_module: Callable[..., Path]) -> None:
    cwd = worker_module("tasks = []\n")
    proc = subprocess.run(
        [sys.executable, "-m", "scalr_queue.cli", "worker", "jobs_mod"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "scalr-queue worker: error: jobs_mod.tasks is empty: add at least one async task function"
    )


OK_MODULE = """
import asyncio

async def send_invoice_email(ctx, invoice_id: int) -> int:
    await ctx["redis"].rpush("ran", f"{invoice_id}:{ctx['job_try']}")
    return invoice_id

tasks = [send_invoice_email]
"""


async def test_banner_shows_redis_version_and_masks_the_password(
    redis: Redis, redis_server: object, worker_module: Callable[..., Path]
) -> None:
    port = redis_server.port  # type: ignore[attr-defined]
    await redis.execute_command("ACL", "SETUSER", "app", "on", ">s3cretpw", "~*", "&*", "+@all")
    cwd = worker_module(OK_MODULE)
    proc = spawn_worker("jobs_mod", cwd, "--burst", env={"REDIS_URL": f"redis://app:s3cretpw@127.0.0.1:{port}/0"})
    out, _ = proc.communicate(timeout=30)
    await redis.execute_command("ACL", "DELUSER", "app")
    assert proc.returncode == 0, out
    assert "Starting worker for 1 functions: send_invoice_email" in out
    assert "redis_version=7." in out
    assert "redis_url=redis://app:***@127.0.0.1" in out and "concurrency=10" in out
    assert "s3cretpw" not in out


async def test_burst_runs_queued_jobs_then_exits(
    redis: Redis, worker_module: Callable[..., Path], redis_url: str
) -> None:
    for i in range(5):
        await scalr_queue.enqueue("send_invoice_email", invoice_id=i)
    proc = spawn_worker("jobs_mod", worker_module(OK_MODULE), "--burst", "--concurrency", "2")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert sorted(await redis.lrange("ran", 0, -1)) == [f"{i}:1".encode() for i in range(5)]
    assert await redis.zcard("arq:queue:default") == 0


@pytest.mark.parametrize(("choice", "loop"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")])
async def test_worker_runs_jobs_on_the_event_loop_the_setting_chooses(
    redis: Redis, worker_module: Callable[..., Path], choice: str, loop: str
) -> None:
    for i in range(3):
        await scalr_queue.enqueue("send_invoice_email", invoice_id=i)
    env = {"SCALR_QUEUE_EVENT_LOOP": choice}
    proc = spawn_worker("jobs_mod", worker_module(OK_MODULE), "--burst", env=env)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"from jobs_mod on {loop};" in out
    assert sorted(await redis.lrange("ran", 0, -1)) == [f"{i}:1".encode() for i in range(3)]


def test_uvloop_asked_for_but_missing_exits_2_with_one_line(worker_module: Callable[..., Path]) -> None:
    cwd = worker_module(OK_MODULE)
    (cwd / "uvloop.py").write_text("raise ImportError('no uvloop here')\n")  # shadows the installed one
    env = {"SCALR_QUEUE_EVENT_LOOP": "uvloop", "REDIS_URL": "redis://127.0.0.1:1/0"}
    proc = spawn_worker("jobs_mod", cwd, env=env)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert out.strip() == (
        "python -m scalr_queue.worker: error: SCALR_QUEUE_EVENT_LOOP=uvloop but uvloop is not installed: "
        "pip install uvloop, or set SCALR_QUEUE_EVENT_LOOP=auto (or asyncio)"
    )


async def test_auto_falls_back_to_asyncio_without_uvloop(redis: Redis, worker_module: Callable[..., Path]) -> None:
    await scalr_queue.enqueue("send_invoice_email", invoice_id=7)
    cwd = worker_module(OK_MODULE)
    (cwd / "uvloop.py").write_text("raise ImportError('no uvloop here')\n")
    proc = spawn_worker("jobs_mod", cwd, "--burst", env={"SCALR_QUEUE_EVENT_LOOP": "auto"})
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "from jobs_mod on asyncio;" in out
    assert await redis.lrange("ran", 0, -1) == [b"7:1"]


async def test_check_reports_a_live_worker_of_that_module_and_queue(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    cwd = worker_module(OK_MODULE)

    def check(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scalr_queue.worker", "jobs_mod", "--check", *extra],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert check().returncode == 1
    proc = spawn_worker("jobs_mod", cwd, "--queue", "bulk")
    try:
        await wait_until(lambda: redis.exists("scalr:workers:bulk"), what="worker registration")
        healthy = check("--queue", "bulk")
        assert healthy.returncode == 0 and "healthy: 1 worker(s) of jobs_mod on queue 'bulk'" in healthy.stdout
        assert check().returncode == 1, "a worker on another queue does not make 'default' healthy"
        # arq's own health key is there too, for `python -m arq --check`
        assert await redis.exists("arq:queue:bulk:health-check")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert check("--queue", "bulk").returncode == 1, "a stopped worker deregisters"


SETTINGS_MODULE = """
import scalr_queue

async def flaky(ctx, n: int) -> str:
    await ctx["redis"].rpush("tries", ctx["job_try"])
    if ctx["job_try"] < 3:
        raise ConnectionError("upstream down")
    return f"ok {n}"

async def doomed(ctx) -> None:
    raise ValueError("never works")

class WorkerSettings(scalr_queue.WorkerSettings):
    functions = [flaky, doomed]
    max_tries = 3
"""


@pytest.mark.parametrize("runner", ["scalr", "arq"])
async def test_worker_settings_class_gets_retries_and_json_under_both_runners(
    redis: Redis, redis_url: str, worker_module: Callable[..., Path], set_env: Callable[..., None], runner: str
) -> None:
    cwd = worker_module(SETTINGS_MODULE)
    job = await scalr_queue.enqueue("flaky", n=4)
    doomed = await scalr_queue.enqueue("doomed")
    if runner == "scalr":
        cmd = [sys.executable, "-m", "scalr_queue.worker", "jobs_mod:WorkerSettings", "--burst"]
    else:
        cmd = [sys.executable, "-m", "arq", "jobs_mod.WorkerSettings", "--burst"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert await redis.lrange("tries", 0, -1) == [b"1", b"2", b"3"]
    result = loads(await redis.get(f"arq:result:{job.job_id}"))
    assert result["s"] is True and result["r"] == "ok 4"
    assert await job.result(timeout=1) == "ok 4"
    failed = await scalr_queue.get_client().failed.get(doomed.job_id)
    assert (failed.tries, failed.error_type, failed.error_message) == (3, "ValueError", "never works")
    with pytest.raises(scalr_queue.JobFailedError, match="never works"):
        await doomed.result(timeout=1)


DRAIN_SETTINGS_MODULE = """
import asyncio
import scalr_queue

async def slow(ctx) -> str:
    await ctx["redis"].rpush("started", ctx["job_id"])
    await asyncio.sleep(1.0)
    await ctx["redis"].rpush("finished", ctx["job_id"])
    return "done"

class WorkerSettings(scalr_queue.WorkerSettings):
    functions = [slow]
"""


async def test_arqs_own_runner_drains_running_jobs_on_sigterm(
    redis: Redis, redis_url: str, worker_module: Callable[..., Path], set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_SHUTDOWN_GRACE="10s")
    cwd = worker_module(DRAIN_SETTINGS_MODULE)
    job = await scalr_queue.enqueue("slow")
    proc = subprocess.Popen(
        [sys.executable, "-m", "arq", "jobs_mod.WorkerSettings"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        await wait_until(lambda: redis.llen("started"), timeout=15, what="job start under arq's runner")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert await redis.lrange("finished", 0, -1) == [job.job_id.encode()], out
    assert await job.result(timeout=1) == "done"
