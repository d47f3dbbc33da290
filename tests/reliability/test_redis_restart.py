"""SIGKILL redis-server mid-run and restart it on the same port and data dir (appendonly yes).

Workers and the template backend must reconnect by themselves, enqueues during the outage must
fail fast with QueueUnavailableError (503 from the backend), and every job accepted before the
kill must still run. With ``appendfsync everysec`` (services/redis) Redis may lose up to about a
second of acknowledged writes when it dies; ``always`` must lose nothing. Both are measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import QueueUnavailableError
from scalr_queue.redis._server import RedisServer
from tests.support import wait_until
from tests.template.template_support import Proc, Stack, base_env
from tests.template.template_support import wait_until as wait_until_sync

from .rsupport import COUNTING_MODULE, reconnect_times, run_counts, start_worker, worker_env, write_module

QUEUE = "restart"
MAX_JOBS = 200_000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The quick run proves zero loss with appendfsync always; --full also measures everysec."""
    if "fsync" in metafunc.fixturenames:
        metafunc.parametrize("fsync", ["always", "everysec"] if metafunc.config.getoption("--full") else ["always"])


async def serving(redis: Redis, queue: str, n: int) -> bool:
    """``n`` workers have connected and registered on ``queue`` (their first heartbeat)."""
    return int(await redis.hlen(f"scalr:workers:{queue}")) >= n


@dataclass
class Produced:
    accepted: dict[str, float] = field(default_factory=dict)  # job id -> wall time acknowledged
    refused: list[tuple[float, str]] = field(default_factory=list)  # (seconds it took, message)


async def produce(client: scalr_queue.QueueClient, stop: asyncio.Event, out: Produced, deadline: float) -> None:
    """Enqueue one job at a time (~300/s) until told to stop; bounded in count and time."""
    i = 0
    while not stop.is_set() and i < MAX_JOBS and time.monotonic() < deadline:
        job_id = f"r{i:06d}"
        i += 1
        started = time.monotonic()
        try:
            await client.enqueue("work", i=i, ms=5, _job_id=job_id, _queue_name=QUEUE)
            out.accepted[job_id] = time.time()
        except QueueUnavailableError as exc:
            out.refused.append((time.monotonic() - started, str(exc)))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.003)


async def test_redis_sigkill_and_restart_loses_no_accepted_job(
    tmp_path: Path, set_env: Callable[..., None], full: bool, record: Callable[..., None], fsync: str
) -> None:
    phase = 5.0 if full else 2.0
    kills = 3 if full else 1
    (tmp_path / "data").mkdir()
    server = RedisServer(appendonly=True, data_dir=tmp_path / "data", extra_args=("--appendfsync", fsync)).start()
    set_env(REDIS_URL=server.url)
    # A claim whose reply is lost at the kill comes back after one lease: short (not the default
    # 30 s), yet longer than an outage, so a job in flight at the kill does not run twice merely
    # because its lease ran out while Redis was down.
    knobs = {"SCALR_QUEUE_HEALTH_INTERVAL": "1s", "SCALR_QUEUE_LEASE": f"{2 * phase:g}s"}
    stack = Stack(redis=server, log_dir=tmp_path, env=base_env(server.url, **knobs))
    cwd = write_module(tmp_path / "mod", COUNTING_MODULE)
    env = worker_env(server.url, SCALR_QUEUE_CONCURRENCY="10", **knobs)
    client = scalr_queue.QueueClient()
    redis = Redis.from_url(server.url)
    out, stop = Produced(), asyncio.Event()
    backend_503_s: list[float] = []
    backend_back_s: list[float] = []
    backend_jobs: list[str] = []
    kill_times: list[float] = []
    lags: list[float] = []  # per worker and kill: 'Redis is back after X s' minus the outage
    workers: list[Proc] = []
    try:
        stack.start_backend()
        stack.start_worker()
        workers += [start_worker(n, cwd, env, tmp_path, "--queue", QUEUE) for n in ("worker-a", "worker-b")]
        # a worker still starting when Redis dies only logs start-up retries, never 'Redis is back':
        # the kill must find every worker connected (under CPU load start-up can outlast a phase)
        await wait_until(lambda: serving(redis, QUEUE, 2), timeout=60, what="both workers to serve the queue")
        await wait_until(lambda: serving(redis, "default", 1), timeout=60, what="the template's worker to serve")
        http = stack.client()
        producer = asyncio.create_task(produce(client, stop, out, time.monotonic() + 60 + 4 * phase * kills))
        for _ in range(kills):
            await asyncio.sleep(phase)  # load before the kill
            response = await asyncio.to_thread(http.post, "/invoices/7/send")
            assert response.status_code == 202, response.text
            backend_jobs.append(response.json()["job_id"])
            before = [len(reconnect_times(w.log())) for w in workers]
            server.kill()
            kill_times.append(time.time())
            killed = time.monotonic()
            started = time.monotonic()
            down = await asyncio.to_thread(http.post, "/invoices/8/send")
            backend_503_s.append(time.monotonic() - started)
            assert down.status_code == 503 and down.json()["error"] == "queue_unavailable", down.text
            await asyncio.sleep(phase)  # the outage
            server.start()
            up = time.monotonic()
            outage = up - killed
            await asyncio.to_thread(
                wait_until_sync, lambda: http.post("/invoices/9/send").status_code == 202, 30, "backend back"
            )
            backend_back_s.append(time.monotonic() - up)
            await wait_until(
                lambda b=before: all(len(reconnect_times(w.log())) > n for w, n in zip(workers, b, strict=True)),
                timeout=30,
                what="workers to log 'Redis is back'",
            )
            lags += [max(0.0, reconnect_times(w.log())[-1] - outage) for w in workers]
        await asyncio.sleep(phase)  # load after the last restart
        stop.set()
        await producer
        accepted = set(out.accepted)

        async def all_ran() -> bool:
            return accepted <= set(await run_counts(redis))

        await wait_until(all_ran, timeout=120, interval=0.2, what="every accepted job to run")
        for job_id in backend_jobs:
            state = await asyncio.to_thread(
                wait_until_sync, lambda j=job_id: http.get(f"/jobs/{j}").json()["status"] == "complete", 30, "job"
            )
            assert state
        runs = await run_counts(redis)
        lost = sorted(accepted - set(runs))
        assert all(w.alive() for w in workers), "workers survive the outages"
        assert await redis.zcard(f"scalr:failed:{QUEUE}") == 0
    finally:
        stop.set()
        await client.close()
        await redis.aclose()
        for w in workers:  # before Redis goes away with the stack
            w.stop(timeout=30)
        stack.close()

    refused_s = [s for s, _ in out.refused]
    messages = {m.split(" [")[0] for _, m in out.refused}
    lost_window = [max(kill_times) - out.accepted[j] for j in lost]
    record(
        order=2 if fsync == "always" else 3,
        scenario=f"redis-server SIGKILL + restart (appendonly, appendfsync {fsync})",
        jobs=len(accepted),
        kills=kills,
        restarts=kills,
        lost=len(lost),
        duplicates=sum(n - 1 for n in runs.values()),
        reconnect=f"workers ≤{max(lags):.2f}s, backend ≤{max(backend_back_s):.2f}s after Redis is up",
        notes=f"{phase:g}s outages; {len(out.refused)} enqueues refused during outages, slowest {max(refused_s):.3f}s; "
        f"backend 503 in ≤{max(backend_503_s):.3f}s"
        + (f"; lost jobs acknowledged {min(lost_window):.2f}-{max(lost_window):.2f}s before a kill" if lost else ""),
        lost_ids=lost[:50],
        refused_messages=sorted(messages),
        worker_lags=lags,
    )
    assert out.refused, "the producer saw the outage"
    assert max(refused_s) < 2.5, "enqueue during an outage fails fast"
    assert all("cannot connect to Redis" in m or "did not answer" in m for m in messages), messages
    assert max(backend_503_s) < 2.5
    if fsync == "always":
        assert not lost, f"{len(lost)} acknowledged jobs lost with appendfsync always: {lost[:10]}"
    else:
        assert all(w < 2.5 for w in lost_window), "everysec loses at most the last ~1-2 s of writes"
