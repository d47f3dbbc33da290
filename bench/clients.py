"""Producer side of the benchmark, run as a subprocess so each system starts from a clean process.

One JSON object is written to the file named by $BENCH_CLIENT_OUT (the driver sets it), else to stdout. Operations::

    python -m bench.clients SYSTEM URL enqueue-seq N          # N sequential awaited enqueues
    python -m bench.clients SYSTEM URL enqueue-batch N B      # N jobs in batches of B
    python -m bench.clients SYSTEM URL latency K LO HI        # K single jobs, LO..HI s apart
    python -m bench.clients SYSTEM URL load RATE SECONDS      # open loop: Poisson arrivals at RATE/s

SYSTEM is ``arq`` (vanilla arq's ``ArqRedis.enqueue_job``, pickle, queue ``arq:queue``),
``scalr`` (``scalr_queue.enqueue`` / ``enqueue_many``, queue ``default``), or a peer, ``saq`` or
``taskiq`` (``bench.peers``; run by that peer's own interpreter, see bench/README.md).

``latency`` sends one job every LO..HI seconds (open loop, independent of the worker) and
reads the delays the job bodies pushed; with no-op jobs that take well under LO, each job
finds the worker idle, and the send times fall at random points of a polling worker's cycle.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.workers import LAT_KEY

# where the answer goes when the driver sets it (``bench._systems.client``); else stdout
OUT_ENV = "BENCH_CLIENT_OUT"


class Producer:
    enqueue: Callable[..., Awaitable[Any]]
    enqueue_batch: Callable[[int], Awaitable[Any]]
    batch_api: str

    async def close(self) -> None: ...


class ArqProducer(Producer):
    batch_api = "asyncio.gather(enqueue_job x B) (arq has no batch API)"

    def __init__(self, url: str) -> None:
        self.url = url

    async def start(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.pool = await create_pool(RedisSettings.from_dsn(self.url))

    async def enqueue(self, **kw: Any) -> Any:
        job = await self.pool.enqueue_job("noop", **kw)
        assert job is not None
        return job

    async def enqueue_batch(self, size: int) -> Any:
        return await asyncio.gather(*(self.pool.enqueue_job("noop") for _ in range(size)))

    async def close(self) -> None:
        await self.pool.aclose()


class ScalrProducer(Producer):
    batch_api = "scalr_queue.enqueue_many (one pipeline per batch)"

    def __init__(self, url: str) -> None:
        os.environ["REDIS_URL"] = url

    async def start(self) -> None:
        import scalr_queue

        self.sq = scalr_queue

    async def enqueue(self, **kw: Any) -> Any:
        return await self.sq.enqueue("noop", **kw)

    async def enqueue_batch(self, size: int) -> Any:
        return await self.sq.enqueue_many([("noop", {}) for _ in range(size)])

    async def close(self) -> None:
        await self.sq.close()


async def _enqueue_seq(p: Producer, n: int) -> dict[str, Any]:
    await p.enqueue()  # connect (and, for scalr, read the task registry) outside the timing
    t = time.perf_counter()
    for _ in range(n - 1):
        await p.enqueue()
    secs = time.perf_counter() - t
    return {"jobs": n, "timed_jobs": n - 1, "seconds": secs, "jobs_per_s": (n - 1) / secs}


async def _enqueue_batch(p: Producer, n: int, size: int) -> dict[str, Any]:
    await p.enqueue()
    t = time.perf_counter()
    done = 0
    while done < n:
        b = min(size, n - done)
        await p.enqueue_batch(b)
        done += b
    secs = time.perf_counter() - t
    return {"jobs": n + 1, "timed_jobs": n, "batch": size, "seconds": secs, "jobs_per_s": n / secs, "api": p.batch_api}


async def _latency(p: Producer, url: str, k: int, lo: float, hi: float) -> dict[str, Any]:
    """Open loop: a job every LO..HI s whatever the worker does, so arrivals fall at random
    points of a polling worker's cycle; the delays are collected from the list at the end."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(url)
    rng = random.Random(5)
    try:
        await _warm_up(p, r)
        for _ in range(k):
            await asyncio.sleep(rng.uniform(lo, hi))
            t0 = time.time()
            await p.enqueue(t0=t0)
        delays = await _collect_delays(r, k, wait_s=10)
    finally:
        await r.aclose()
    return {"jobs": k, "lost": k - len(delays), "delays_s": delays}


async def _warm_up(p: Producer, r: Any) -> None:
    """One job through this process's producer, waited for and dropped: what is measured next is
    the queue, not the producer's first call (its connection, first reads, code run for the first
    time)."""
    await r.delete(LAT_KEY)  # nothing left over from an earlier call
    await p.enqueue(t0=time.time())
    if await r.blpop([LAT_KEY], timeout=10) is None:
        raise RuntimeError("the warm-up job never ran")
    await r.delete(LAT_KEY)


async def _collect_delays(r: Any, n: int, wait_s: float) -> list[float]:
    """The pickup delays the job bodies pushed, once n are in or after wait_s (the last jobs' delays)."""
    for _ in range(int(wait_s / 0.05)):
        if await r.llen(LAT_KEY) >= n:
            break
        await asyncio.sleep(0.05)
    raw = await r.lrange(LAT_KEY, 0, -1)
    await r.delete(LAT_KEY)
    return [float(x) for x in raw]


async def _load(p: Producer, url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop at ``rate`` jobs/s: each enqueue starts at its Poisson arrival time whether or not
    the earlier ones have returned, so a slow queue cannot slow the stream down (no coordinated
    omission). The delay is measured from just before that job's own enqueue call. The producer is
    warmed first, as for the idle pickup: each level is a new process."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(url)
    rng = random.Random(7)
    n = max(1, round(rate * seconds))
    in_flight: set[asyncio.Task[Any]] = set()
    errors: list[BaseException] = []

    def _done(task: asyncio.Task[Any]) -> None:
        in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            errors.append(task.exception())  # type: ignore[arg-type]

    try:
        await _warm_up(p, r)
        loop = asyncio.get_running_loop()
        start = loop.time()
        at = 0.0
        for _ in range(n):
            at += rng.expovariate(rate)
            wait = start + at - loop.time()
            await asyncio.sleep(wait if wait > 0 else 0)
            task = asyncio.create_task(p.enqueue(t0=time.time()))
            in_flight.add(task)
            task.add_done_callback(_done)
        await asyncio.gather(*in_flight, return_exceptions=True)
        sent_seconds = loop.time() - start
        if errors:
            raise RuntimeError(f"{len(errors)} enqueues failed, first: {errors[0]!r}")
        delays = await _collect_delays(r, n, wait_s=30)
    finally:
        await r.aclose()
    return {"jobs": n, "lost": n - len(delays), "sent_rate": n / sent_seconds, "delays_s": delays}


async def amain(argv: list[str]) -> dict[str, Any]:
    system, url, op, *rest = argv
    p: Producer
    if system == "saq":
        from bench.peers.saq_app import SaqProducer

        p = SaqProducer(url)  # type: ignore[assignment]
    elif system == "docket":
        from bench.peers.docket_app import DocketProducer

        p = DocketProducer(url)  # type: ignore[assignment]
    elif system == "taskiq":
        from bench.peers.taskiq_app import TaskiqProducer

        p = TaskiqProducer(url)  # type: ignore[assignment]
    else:
        p = ArqProducer(url) if system == "arq" else ScalrProducer(url)
    await p.start()  # type: ignore[attr-defined]
    try:
        if op == "enqueue-seq":
            return await _enqueue_seq(p, int(rest[0]))
        if op == "enqueue-batch":
            return await _enqueue_batch(p, int(rest[0]), int(rest[1]))
        if op == "latency":
            return await _latency(p, url, int(rest[0]), float(rest[1]), float(rest[2]))
        if op == "load":
            return await _load(p, url, float(rest[0]), float(rest[1]))
        raise SystemExit(f"unknown operation {op!r}")
    finally:
        await p.close()


def main() -> None:
    # every system's producer runs on uvloop when its interpreter has it (each peer's venv gets it
    # too), as a web app under uvicorn[standard] does: the load levels then measure the queue, not
    # asyncio's own per-task overhead in the process that generates the load
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        out = runner.run(amain(sys.argv[1:]))
    answer = json.dumps(out) + "\n"
    path = os.environ.get(OUT_ENV)
    if path:
        # a file, not the pipe: one driver run read a load level's answer (over 64 KiB of delays)
        # cut at exactly 64 KiB from stdout, with the client's exit status 0
        Path(path).write_text(answer)
    else:
        sys.stdout.write(answer)


if __name__ == "__main__":
    main()
