"""Every core: one worker process against ``--processes 2`` (the supervisor and its children).

Usage::

    python -m bench.processes                     # 20,000 jobs per run, 3 repeats
    python -m bench.processes --jobs 40000 --repeats 5 --bodies noop
    python -m bench.processes --env SCALR_QUEUE_EVENT_LOOP=asyncio   # a setting for the workers

For each job body (``noop``: one INCR; ``burn``: ~0.5 ms of Python, then the INCR; both in
``bench.workers``) and each process count, a fresh ``redis-server`` gets N queued jobs, then
``python -m scalr_queue.worker bench.workers --concurrency 10 --processes K`` starts and drains
them. The rate is the steady one (the last 80% of the jobs, as in ``bench.run``'s drain), and CPU
per job is the worker tree's and Redis's over the same span.

Why two bodies: a second process can only help while cores are free. The workers and Redis
share the machine's cores, so two processes cannot drain faster than ``cores / (w + r)`` jobs/s,
nor faster than ``2 / w`` (one core each), with w and r the worker tree's and Redis's CPU per job
in the two-process run. The table prints that ceiling as a ratio to the one-process rate beside
the measured gain. A no-op job costs Redis about half of what it costs the worker, so on 2 cores
the ceiling is well under 2×; a job that does real work moves it toward 2×, and the gain follows.
The ceiling leaves out the kernel's share (loopback networking, scheduling), which no process's
CPU counts, so the gain stays somewhat below it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench._stats import proc_cpu_seconds, proc_tree_cpu_seconds
from bench._systems import Counter
from scalr_queue.redis._server import RedisServer
from scalr_queue.worker._cores import available_cores

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500


async def _fill(url: str, task: str, n: int) -> None:
    from scalr_queue import QueueClient, Settings

    client = QueueClient(Settings(redis_url=url))
    try:
        for start in range(0, n, BATCH):
            await client.enqueue_many([(task, {}) for _ in range(min(BATCH, n - start))])
    finally:
        await client.close()


def drain(task: str, procs: int, jobs: int, extra_env: dict[str, str] | None = None) -> dict[str, float]:
    """One drain of ``jobs`` queued ``task`` jobs by ``--processes procs``: steady rate and CPU per job."""
    with RedisServer() as server:
        assert server.process is not None
        r = redis.Redis.from_url(server.url)
        asyncio.run(_fill(server.url, task, jobs))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCALR_QUEUE_")}
        env.update(REDIS_URL=server.url, PYTHONPATH=str(ROOT), **(extra_env or {}))
        cmd = [sys.executable, "-m", "scalr_queue.worker", "bench.workers", "--concurrency", "10"]
        worker = subprocess.Popen(
            [*cmd, "--processes", str(procs)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )

        def alive() -> None:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}")

        try:
            counter = Counter(r)
            timeout = max(120.0, jobs / 50)
            _, t20 = counter.wait_for(jobs // 5, timeout=timeout, on_tick=alive)
            w20, r20, k20 = proc_tree_cpu_seconds(worker.pid), proc_cpu_seconds(server.process.pid), counter.value()
            _, done = counter.wait_for(jobs, timeout=timeout, on_tick=alive)
            w1, r1 = proc_tree_cpu_seconds(worker.pid), proc_cpu_seconds(server.process.pid)
            if (finished := counter.value()) != jobs:
                raise RuntimeError(f"{finished} jobs done, {jobs} queued")
        finally:
            worker.send_signal(signal.SIGTERM)  # the supervisor drains its children and exits
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()  # its children get SIGTERM from the kernel when it dies
                worker.wait(10)
            r.close()
    steady = jobs - k20
    return {
        "jobs_per_s": (jobs - jobs // 5) / max(done - t20, 1e-9),
        "worker_cpu_us": (w1 - w20) / steady * 1e6,
        "redis_cpu_us": (r1 - r20) / steady * 1e6,
    }


def run(bodies: list[str], jobs: int, repeats: int, extra_env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per body: medians over the repeats of 1 and 2 processes, alternating which goes first."""
    cores = available_cores()
    rows = []
    for body in bodies:
        runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for rep in range(repeats):
            for procs in (1, 2) if rep % 2 == 0 else (2, 1):
                runs[procs].append(drain(body, procs, jobs, extra_env))
        med = {p: {k: statistics.median(x[k] for x in runs[p]) for k in runs[p][0]} for p in runs}
        one, two = med[1], med[2]
        w, r = two["worker_cpu_us"] / 1e6, two["redis_cpu_us"] / 1e6
        ceiling = min(2 / w, cores / (w + r)) / one["jobs_per_s"]
        rows.append(
            {
                "body": body,
                "cores": cores,
                "one": one,
                "two": two,
                "gain": two["jobs_per_s"] / one["jobs_per_s"],
                "ceiling": ceiling,
            }
        )
    return rows


def table(rows: list[dict[str, Any]], jobs: int, repeats: int) -> str:
    lines = [
        f"{jobs:,} queued jobs per run, concurrency 10 per process, medians of {repeats}; "
        f"{rows[0]['cores'] if rows else '?'} cores; steady = the last 80% of the jobs",
        "",
        "| body | 1 process jobs/s | 2 processes jobs/s | gain | ceiling on these cores "
        "| worker CPU µs/job (1 / 2) | Redis CPU µs/job (1 / 2) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        one, two = row["one"], row["two"]
        lines.append(
            f"| {row['body']} | {one['jobs_per_s']:,.0f} | {two['jobs_per_s']:,.0f} | {row['gain']:.2f}× "
            f"| {row['ceiling']:.2f}× | {one['worker_cpu_us']:.0f} / {two['worker_cpu_us']:.0f} "
            f"| {one['redis_cpu_us']:.0f} / {two['redis_cpu_us']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bodies", nargs="+", default=["noop", "burn"], choices=["noop", "burn"])
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE", help="settings for the workers")
    args = parser.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in args.env)
    t = time.monotonic()
    rows = run(args.bodies, args.jobs, args.repeats, extra_env)
    print(table(rows, args.jobs, args.repeats))
    print(f"\n({time.monotonic() - t:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
