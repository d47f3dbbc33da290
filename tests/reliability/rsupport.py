"""Helpers shared by the reliability tests: worker subprocesses with log files, Redis probes.

Process handling reuses the template suite's ``Proc`` (output to a file, stop by PID only) and
``base_env``; polling reuses ``tests.support.wait_until``. Nothing here sleeps for correctness.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from redis.asyncio import Redis

from tests.template.template_support import Proc, base_env

# A task that records every run in Redis (HINCRBY), so the test can count lost and duplicate runs.
COUNTING_MODULE = """
import asyncio

async def work(ctx, i: int, ms: int = 0) -> int:
    if ms:
        await asyncio.sleep(ms / 1000)
    await ctx["redis"].hincrby("rel:runs", ctx["job_id"], 1)
    return i

tasks = [work]
"""

RUNS_KEY = "rel:runs"
# every worker process start_worker() started; conftest stops the ones still alive after each test
STARTED: list[Proc] = []
BACK_RE = re.compile(r"Redis is back after ([0-9.]+)s")


def write_module(directory: Path, source: str, name: str = "rel_jobs") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return directory


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The template suite's clean env (no inherited SCALR_QUEUE_*), without its SCALR_QUEUE_TASKS."""
    env = base_env(redis_url, **extra)
    if "SCALR_QUEUE_TASKS" not in extra:
        env.pop("SCALR_QUEUE_TASKS", None)
    return env


def start_worker(
    name: str, cwd: Path, env: dict[str, str], log_dir: Path, *args: str, module: str = "rel_jobs"
) -> Proc:
    """``python -m scalr_queue.worker MODULE`` as a real process; output appended to ``log_dir/name.log``."""
    proc = Proc(name, [sys.executable, "-m", "scalr_queue.worker", module, *args], cwd, env, log_dir)
    STARTED.append(proc)
    return proc


def reconnect_times(log: str) -> list[float]:
    """Every 'Redis is back after X s' a worker logged."""
    return [float(x) for x in BACK_RE.findall(log)]


async def leased_by_pid(redis: Redis, queue: str, pid: int) -> list[str]:
    """Ids of the jobs whose lease marker names a worker with this PID (read right after a SIGKILL).

    Running jobs sit in the queue's leases set (scored by lease deadline) while they run.
    """
    ids = [i.decode() for i in await redis.zrange(f"scalr:leases:{queue}", 0, -1)]
    if not ids:
        return []
    owners = await redis.mget([f"arq:in-progress:{i}" for i in ids])
    return [i for i, o in zip(ids, owners, strict=True) if o is not None and o.decode().split(":")[-2] == str(pid)]


async def count_keys(redis: Redis, pattern: str) -> int:
    n = 0
    async for _ in redis.scan_iter(match=pattern, count=5000):
        n += 1
    return n


async def run_counts(redis: Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in (await redis.hgetall(RUNS_KEY)).items()}


async def queue_idle(redis: Redis, queue: str) -> bool:
    """Nothing queued, scheduled or leased on ``queue``."""
    return int(await redis.zcard(f"arq:queue:{queue}")) == 0
