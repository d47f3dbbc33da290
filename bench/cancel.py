"""Cancel latency of a running job: from ``job.cancel()`` to the task's ``except CancelledError``.

Usage::

    python -m bench.cancel              # 200 cancels
    python -m bench.cancel --jobs 50    # quicker
    make bench-cancel

A fresh redis-server on a free 127.0.0.1 port and two real worker processes
(``python -m scalr_queue.worker bench.cancel``, concurrency 10 each, so the cancel has to reach
whichever of them holds the job). One job at a time: it starts, the driver waits for its start
signal, reads the clock and awaits ``job.cancel()``; the task's ``except CancelledError`` reads the
clock on its first line and pushes it. Reported: that delay (the push latency, what a user's
cleanup waits), and the delay until ``Job.status()`` reads ``cancelled`` (FINISH recorded it; the
driver polls every millisecond, so this one includes the driver's own polls). Same machine, same
clock. The markdown table goes to stdout, the samples to ``bench/results/<UTC>-cancel.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STARTED_KEY = "bench:cancel:started"  # the job's id, pushed on its first line
CANCELLED_KEY = "bench:cancel:at"  # the clock on the first line of the task's except CancelledError
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


async def hold(ctx: dict[str, Any]) -> None:
    """Waits to be cancelled (an hour at most)."""
    redis = ctx["redis"]
    await redis.rpush(STARTED_KEY, ctx["job_id"])
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        at = time.time()
        await redis.rpush(CANCELLED_KEY, repr(at))
        raise


tasks = [hold]  # scalr_queue's worker module contract


def _pcts(samples: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in samples)

    def q(p: float) -> float:
        return ms[min(len(ms) - 1, round(p * (len(ms) - 1)))]

    return {"p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": ms[-1], "mean_ms": statistics.fmean(ms)}


async def measure(url: str, jobs: int) -> dict[str, list[float]]:
    import redis.asyncio as aioredis

    import scalr_queue
    from scalr_queue import JobStatus

    raw = aioredis.Redis.from_url(url)
    to_task: list[float] = []
    to_status: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while len(await scalr_queue.get_client().workers()) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the two workers did not register within 60 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # both subscribed to the cancel channel by now
        for _ in range(jobs):
            job = await scalr_queue.enqueue("hold")
            started = await raw.blpop([STARTED_KEY], timeout=30)
            if started is None:
                raise RuntimeError("a job did not start within 30 s")
            sent = time.time()
            await job.cancel()
            got = await raw.blpop([CANCELLED_KEY], timeout=30)
            if got is None:
                raise RuntimeError(f"job {job.job_id} was not cancelled within 30 s")
            to_task.append(float(got[1]) - sent)
            while await job.status() is not JobStatus.CANCELLED:
                if time.time() - sent > 30:
                    raise RuntimeError(f"job {job.job_id} never read cancelled")
                await asyncio.sleep(0.001)
            to_status.append(time.time() - sent)
    finally:
        await raw.aclose()
        await scalr_queue.close()
    return {"to_task_s": to_task, "to_status_s": to_status}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from scalr_queue.redis._server import RedisServer

    with RedisServer() as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SCALR_QUEUE_")},
            "REDIS_URL": server.url,
        }
        os.environ.clear()
        os.environ.update(env)
        cmd = [sys.executable, "-m", "scalr_queue.worker", "bench.cancel", "--concurrency", "10"]
        workers = [
            subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(2)
        ]
        try:
            samples = asyncio.run(measure(server.url, args.jobs))
        finally:
            for proc in workers:
                proc.terminate()
            for proc in workers:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
    rows = {name: _pcts(values) for name, values in samples.items()}
    print(f"### Cancel latency of a running job ({args.jobs} cancels, 2 worker processes, loopback)\n")
    print("| from `job.cancel()` to | p50 ms | p90 ms | p99 ms | max ms | mean ms |")
    print("|---|---|---|---|---|---|")
    labels = {"to_task_s": "the task's `except CancelledError`", "to_status_s": "`Job.status()` reads `cancelled`"}
    for name, row in rows.items():
        print(
            f"| {labels[name]} | {row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['max_ms']:.2f} | {row['mean_ms']:.2f} |"
        )
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or RESULTS / f"{stamp}-cancel.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"jobs": args.jobs, "summary": rows, "samples": samples}, indent=1))
    print(f"\nresult: {out}")


if __name__ == "__main__":
    main()
