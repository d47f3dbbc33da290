"""What limits cost the plain path: drain time and Redis commands per job, against main, in one run.

    python -m bench.limits [--jobs 2000] [--rounds 3] [--main REF]      (make bench-limits)

One redis-server on a free 127.0.0.1 port. Each drain runs in its own process: N jobs are queued,
then an in-process worker (concurrency 10, burst) drains them, and Redis's own command counters
(``INFO commandstats``, which count the commands inside Lua scripts too) give commands per job.
Modes:

* ``main``: the code of ``--main`` (default: the ``main`` branch, exported with ``git archive``
  into a temporary directory), a worker with no limited task;
* ``plain``: this tree, the same worker and jobs;
* ``mixed``: this tree, plain jobs on a worker that also has a limited task (it passes its rules);
* ``limited``: jobs of a task with ``max_concurrent`` and ``rate_limit`` far above what one run reaches.

Then a flood: ``--flood`` jobs of a ``max_concurrent=1`` task wait behind one that holds the slot, and
one plain job behind them all: how long until it starts (the claims park the flood on the way).

Rounds alternate the order of the modes. Besides wall time, the worker's CPU time and the Redis
server's main-thread CPU per job are given: on a shared machine they move far less than wall time.
Medians; only ratios inside one run mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODES = ("main", "plain", "mixed", "limited")


async def noop(ctx: dict[str, Any], n: int) -> None:
    return None


async def capped(ctx: dict[str, Any], n: int) -> None:
    return None


async def drain(mode: str, jobs: int) -> dict[str, float]:
    """In the child: queue ``jobs``, drain them with a burst worker; seconds and commands per job."""
    from redis.asyncio import Redis

    from scalr_queue._settings import load_settings
    from scalr_queue._tasks import as_task_spec, build_task_map
    from scalr_queue.producer._client import QueueClient
    from scalr_queue.worker._loader import WorkerConfig
    from scalr_queue.worker._worker import ScalrWorker

    settings = load_settings()
    tasks: list[Any] = [noop]
    target: Any = noop
    if mode in ("mixed", "limited"):
        tasks.append(as_task_spec(capped, max_concurrent=1_000_000, rate_limit="100000000/h"))
    if mode == "limited":
        target = tasks[1]
    client = QueueClient(settings, tasks=build_task_map(tasks))
    redis = Redis.from_url(os.environ["REDIS_URL"])
    await redis.flushdb()
    for i in range(jobs):
        await client.enqueue(target, n=i)
    await client.close()
    await redis.config_resetstat()
    cpu_before = await redis.info("cpu")
    worker = ScalrWorker(
        WorkerConfig(module="bench.limits", tasks=build_task_map(tasks)),
        settings,
        concurrency=10,
        burst=True,
        handle_signals=False,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    await worker.run_async()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    stats = await redis.info("commandstats")
    cpu_after = await redis.info("cpu")
    await redis.aclose()
    assert worker.jobs_complete == jobs, (worker.jobs_complete, jobs)
    calls = sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config|resetstat"))
    redis_cpu = sum(
        float(cpu_after[k]) - float(cpu_before[k]) for k in ("used_cpu_sys_main_thread", "used_cpu_user_main_thread")
    )
    return {
        "us_per_job": seconds / jobs * 1e6,
        "worker_cpu_us": cpu / jobs * 1e6,
        "redis_cpu_us": redis_cpu / jobs * 1e6,
        "commands_per_job": calls / jobs,
    }


async def blocker(ctx: dict[str, Any], n: int) -> None:
    if n == 0:
        await asyncio.sleep(3600)  # holds the only slot; cancelled when the measure ends


async def first(ctx: dict[str, Any]) -> None:
    ctx["started"].set()


async def flood(jobs: int) -> dict[str, float]:
    """In the child: one job holds a max_concurrent=1 slot, ``jobs`` more of that task queue behind
    it, then one plain job: how long until the plain job starts, and what parking the flood cost."""
    from redis.asyncio import Redis

    from scalr_queue._settings import load_settings
    from scalr_queue._tasks import as_task_spec, build_task_map
    from scalr_queue.producer._client import QueueClient
    from scalr_queue.redis._keys import parked_key
    from scalr_queue.worker._loader import WorkerConfig
    from scalr_queue.worker._worker import ScalrWorker

    settings = load_settings()
    tasks = build_task_map([as_task_spec(blocker, max_concurrent=1), first])
    client = QueueClient(settings, tasks=tasks)
    redis = Redis.from_url(os.environ["REDIS_URL"])
    await redis.flushdb()
    await client.enqueue("blocker", n=0)
    await asyncio.sleep(0.005)  # a later due time than the flood's: the holder is claimed first
    for i in range(1, jobs + 1):
        await client.enqueue("blocker", n=i)
    await client.enqueue("first")
    await redis.config_resetstat()
    cpu_before = await redis.info("cpu")
    worker = ScalrWorker(
        WorkerConfig(module="bench.limits", tasks=tasks), settings, concurrency=10, handle_signals=False
    )
    started = asyncio.Event()
    worker.ctx["started"] = started
    start = time.perf_counter()
    run = asyncio.get_running_loop().create_task(worker.run_async())
    await asyncio.wait_for(started.wait(), 600)
    took = time.perf_counter() - start
    parked = int(await redis.zcard(parked_key(settings.queue_name)))
    cpu_after = await redis.info("cpu")
    claims = int((await redis.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0))
    worker.request_stop()
    worker.request_stop()  # the blocker sleeps: cancel it now
    await asyncio.wait_for(run, 60)
    await client.close()
    await redis.aclose()
    redis_cpu = sum(
        float(cpu_after[k]) - float(cpu_before[k]) for k in ("used_cpu_sys_main_thread", "used_cpu_user_main_thread")
    )
    return {"flood": jobs, "plain_start_s": took, "parked": parked, "redis_cpu_s": redis_cpu, "script_calls": claims}


def export_main(ref: str, into: Path) -> Path:
    """The package as ``ref`` has it, in a directory of its own (nothing else is touched)."""
    archive = subprocess.run(["git", "archive", ref, "scalr_queue"], cwd=ROOT, capture_output=True, check=True)
    tar = into / "main.tar"
    tar.write_bytes(archive.stdout)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    return into


def one_run(mode: str, jobs: int, main_dir: Path, url: str) -> dict[str, float]:
    """One drain (or the flood) in a child process running ``mode``'s code."""
    code = main_dir if mode == "main" else ROOT
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(code), "SCALR_QUEUE_LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--drain",
            "plain" if mode == "main" else mode,
            "--jobs",
            str(jobs),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"drain {mode} failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per drain")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each drains once per mode")
    parser.add_argument("--main", default="main", help="git ref to compare with")
    parser.add_argument("--flood", type=int, default=20000, help="jobs parked ahead of a plain one (0: skip)")
    parser.add_argument("--drain", choices=(*MODES, "flood"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drain == "flood":
        print(json.dumps(asyncio.run(flood(args.jobs))))
        return 0
    if args.drain:
        print(json.dumps(asyncio.run(drain(args.drain, args.jobs))))
        return 0
    sys.path.insert(0, str(ROOT))
    from scalr_queue.redis._server import RedisServer

    results: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp, RedisServer() as server:
        main_dir = export_main(args.main, Path(tmp))
        for r in range(args.rounds):
            for mode in MODES if r % 2 == 0 else tuple(reversed(MODES)):
                results[mode].append(one_run(mode, args.jobs, main_dir, server.url))
        flooded = one_run("flood", args.flood, main_dir, server.url) if args.flood else None

    def med(mode: str, key: str) -> float:
        return statistics.median(x[key] for x in results[mode])

    print(f"limits on the plain path, {args.jobs} jobs x {args.rounds} rounds (medians; worker concurrency 10)\n")
    print("| mode | drain µs/job | worker CPU µs/job | Redis CPU µs/job | vs main (worker+Redis CPU) | commands/job |")
    print("|---|---:|---:|---:|---:|---:|")
    base = med("main", "worker_cpu_us") + med("main", "redis_cpu_us")
    for mode in MODES:
        cpu = med(mode, "worker_cpu_us") + med(mode, "redis_cpu_us")
        print(
            f"| {mode} | {med(mode, 'us_per_job'):.1f} | {med(mode, 'worker_cpu_us'):.1f} "
            f"| {med(mode, 'redis_cpu_us'):.1f} | {cpu / base:.2f} | {med(mode, 'commands_per_job'):.2f} |"
        )
    if flooded:
        print(
            f"\nflood: {flooded['flood']:.0f} jobs of a max_concurrent=1 task behind one that holds the slot, then a"
            f" plain job: it started after {flooded['plain_start_s']:.2f}s ({flooded['parked']:.0f} parked,"
            f" {flooded['script_calls']:.0f} script calls, {flooded['redis_cpu_s']:.2f}s of Redis CPU)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
