"""``--processes N``: one parent keeps N real worker processes running, restarts the dead, drains all."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue.redis._server import free_port
from scalr_queue.worker._cores import available_cores, cgroup_cpu_limit
from tests.support import LoggedWorker, spawn_worker, wait_until

PID_TASKS = """
import asyncio, os

async def record_pid(ctx, n: int, sleep: float = 0.0):
    await asyncio.sleep(sleep)
    await ctx["redis"].sadd("pids", os.getpid())
    await ctx["redis"].incr("ran")
    return os.getpid()

tasks = [record_pid]
"""


def child_pids(parent: int) -> set[int]:
    """The live children of ``parent``, read from /proc (the workers the supervisor started)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                pids.add(int(entry))
    return pids


async def test_two_processes_share_the_queue_and_a_dead_one_is_replaced(
    redis_url: str, redis: Redis, worker_module: Callable[..., Path]
) -> None:
    cwd = worker_module(PID_TASKS)
    parent = LoggedWorker("jobs_mod", cwd, "--processes", "2", "--concurrency", "2")
    try:
        await wait_until(lambda: len(child_pids(parent.proc.pid)) == 2, timeout=20, what="two worker processes")
        workers = child_pids(parent.proc.pid)
        await wait_until(lambda: registered(workers), timeout=20, what="both workers registered")
        for n in range(200):
            await scalr_queue.enqueue("record_pid", n=n, sleep=0.005)
        await wait_until(lambda: _int(redis.get("ran"), 200), timeout=30, what="200 jobs run")
        ran_in = {int(p) for p in await redis.smembers("pids")}
        assert ran_in == workers, f"jobs ran in {ran_in}, workers are {workers}"

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        await wait_until(
            lambda: len(child_pids(parent.proc.pid) - {victim}) == 2, timeout=20, what="a replacement worker"
        )
        replacement = child_pids(parent.proc.pid) - workers
        assert len(replacement) == 1
        await wait_until(lambda: registered(replacement), timeout=20, what="the replacement registered")
        await redis.delete("pids")
        for n in range(100):
            await scalr_queue.enqueue("record_pid", n=n, sleep=0.005)
        await wait_until(lambda: _int(redis.get("ran"), 300), timeout=30, what="100 more jobs run")
        assert replacement <= {int(p) for p in await redis.smembers("pids")}, "the replacement takes jobs too"
        assert "exited with SIGKILL; starting another" in parent.log()
    finally:
        assert parent.stop() == 0, parent.log()
    assert "Traceback" not in parent.log()


async def registered(pids: set[int]) -> bool:
    """Every one of ``pids`` is in the live-worker registry (it is ready to claim)."""
    return pids <= {w.pid for w in await scalr_queue.get_client().workers()}


async def _int(value: object, want: int) -> bool:
    raw = await value  # type: ignore[misc]
    return raw is not None and int(raw) >= want


async def test_sigterm_drains_every_worker_process_then_the_parent_exits_0(
    redis_url: str, redis: Redis, worker_module: Callable[..., Path]
) -> None:
    cwd = worker_module(PID_TASKS)
    parent = LoggedWorker("jobs_mod", cwd, "--processes", "2", "--concurrency", "1")
    await wait_until(lambda: len(child_pids(parent.proc.pid)) == 2, timeout=20, what="two worker processes")
    workers = child_pids(parent.proc.pid)
    jobs = [await scalr_queue.enqueue("record_pid", n=n, sleep=1.5) for n in range(2)]
    await wait_until(
        lambda: _all_running(redis, [j.job_id for j in jobs]), timeout=20, what="both jobs running, one per worker"
    )
    parent.proc.send_signal(signal.SIGTERM)
    assert parent.proc.wait(30) == 0, parent.log()
    assert {await job.status() for job in jobs} == {scalr_queue.JobStatus.COMPLETE}, "running jobs finish"
    assert {await job.result() for job in jobs} == workers, "one job in each worker, both drained"
    assert not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in workers), "no worker left behind"
    assert "SIGTERM: draining 2 worker processes" in parent.log()


async def _all_running(redis: Redis, ids: list[str]) -> bool:
    return all([await redis.exists(f"arq:in-progress:{i}") for i in ids])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def two_free_ports() -> int:
    """A port whose next port is free too (worker 1 serves on port + 1)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports on loopback")


async def test_each_worker_process_serves_health_on_its_own_port(
    redis_url: str, worker_module: Callable[..., Path]
) -> None:
    cwd = worker_module(PID_TASKS)
    port = two_free_ports()
    parent = LoggedWorker("jobs_mod", cwd, "--processes", "2", "--health-port", str(port))
    try:

        async def both_healthy() -> bool:
            async with httpx.AsyncClient() as client:
                try:
                    answers = [await client.get(f"http://127.0.0.1:{p}/healthz") for p in (port, port + 1)]
                except httpx.HTTPError:
                    return False
            return all(a.status_code == 200 for a in answers)

        await wait_until(both_healthy, timeout=20, interval=0.1, what="health on port and port + 1")
    finally:
        assert parent.stop() == 0, parent.log()


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("0", "--processes '0' is not valid: expected a number of processes from 1 to 256, or auto"),
        ("many", "--processes 'many' is not valid: expected a number of processes from 1 to 256, or auto"),
    ],
)
def test_bad_processes_flag_is_one_line_exit_2(worker_module: Callable[..., Path], flag: str, expected: str) -> None:
    cwd = worker_module(PID_TASKS)
    proc = spawn_worker("jobs_mod", cwd, "--processes", flag, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out.strip() == f"python -m scalr_queue.worker: error: {expected}"


def test_bad_module_with_processes_is_reported_once_and_starts_no_worker(tmp_path: Path) -> None:
    proc = spawn_worker("no_such_module", tmp_path, "--processes", "3", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("python -m scalr_queue.worker: error: cannot import worker module 'no_such_module'")


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({}, None),
    ],
)
def test_cgroup_cpu_quota_is_read_from_v2_and_v1_files(tmp_path: Path, files: dict[str, str], limit: float) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == limit


def test_auto_is_the_affinity_mask_capped_by_the_quota_rounded_up(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert available_cores(tmp_path) == affinity  # no cgroup files: no quota
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cores(tmp_path) == 1  # half a core still needs one process
    (tmp_path / "cpu.max").write_text(f"{(affinity + 8) * 100000} 100000\n")
    assert available_cores(tmp_path) == affinity  # a quota above the mask does not add cores
