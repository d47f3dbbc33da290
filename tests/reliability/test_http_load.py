"""The template backend under bounded loopback load while a worker drains: no 5xx, nothing lost.

100 concurrent HTTP clients POST ``/invoices/{id}/send`` to uvicorn (the image's CMD) for 5 s
(20 s with ``--full``), capped in count; the template worker runs the jobs at the same time.
Every 202 must name a job that then completes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from scalr_queue.redis._server import RedisServer
from tests.support import wait_until
from tests.template.template_support import Stack, base_env

CLIENTS = 100
MAX_REQUESTS = 200_000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


async def test_backend_under_load_answers_no_5xx_and_every_accepted_job_completes(
    tmp_path: Path, full: bool, record: Callable[..., None]
) -> None:
    seconds = 20.0 if full else 5.0
    server = RedisServer().start()
    stack = Stack(redis=server, log_dir=tmp_path, env=base_env(server.url, SCALR_QUEUE_CONCURRENCY="50"))
    redis = Redis.from_url(server.url)
    codes: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    accepted: list[str] = []
    try:
        stack.start_backend()
        stack.start_worker()
        # one AsyncClient per simulated user: a single client sharing a 100-connection pool
        # measures httpcore's pool (about 110 req/s here), not the backend (about 600 req/s)
        clients = [httpx.AsyncClient(base_url=stack.base_url, timeout=30) for _ in range(CLIENTS)]
        counter = iter(range(1, MAX_REQUESTS + 1))
        end = time.monotonic() + seconds

        async def user(http: httpx.AsyncClient) -> None:
            for invoice_id in counter:
                if time.monotonic() >= end:
                    return
                sent = time.monotonic()
                try:
                    response = await http.post(f"/invoices/{invoice_id}/send")
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                latencies.append(time.monotonic() - sent)
                codes[response.status_code] += 1
                if response.status_code == 202:
                    accepted.append(response.json()["job_id"])

        started = time.monotonic()
        try:
            await asyncio.gather(*(user(http) for http in clients))
        finally:
            await asyncio.gather(*(http.aclose() for http in clients))
        took = time.monotonic() - started
        load_end = time.monotonic()

        async def pending() -> list[str]:
            out = []
            for start in range(0, len(accepted), 2000):
                batch = accepted[start : start + 2000]
                for job_id, raw in zip(batch, await redis.mget([f"arq:result:{j}" for j in batch]), strict=True):
                    if raw is None or not orjson.loads(raw)["s"]:
                        out.append(job_id)
            return out

        async def all_done() -> bool:
            return not await pending()

        await wait_until(all_done, timeout=600 if full else 120, interval=0.5, what="every accepted job to complete")
        drain_after = time.monotonic() - load_end
        failed = await redis.zcard("scalr:failed:default")
        assert stack.procs[0].alive() and stack.procs[1].alive()
    finally:
        await redis.aclose()
        stack.close()

    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    server_errors = sum(n for code, n in codes.items() if code >= 500)
    record(
        order=5,
        scenario=f"HTTP load on the template backend ({CLIENTS} clients, {seconds:g}s) while a worker drains",
        jobs=len(accepted),
        kills=0,
        restarts=0,
        lost=0,
        duplicates=None,
        reconnect=None,
        notes=f"{sum(codes.values())} requests, {sum(codes.values()) / took:.0f} req/s, p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, 5xx {server_errors}, transport errors {sum(errors.values())}; "
        f"all accepted jobs complete {drain_after:.1f}s after the load ended",
        codes=dict(codes),
    )
    assert server_errors == 0, codes
    assert not errors, errors
    assert set(codes) == {202}, codes
    assert failed == 0
