"""SIGKILL the master of a real Sentinel deployment under load; measure what the failover costs.

One master, two replicas, three sentinels on loopback (``sentinel_group``); the template's
backend (real uvicorn) takes a steady stream of ``POST /invoices/{id}/send`` while two worker
processes drain; every run of a task is recorded in Redis keyed by its invoice id, and read back
from the new master. Redis replication is asynchronous: without ``SCALR_QUEUE_MIN_REPLICAS`` an
acknowledged enqueue can be lost if the master dies before a replica copied it; with it set to 1,
enqueue returns only once a replica has the job, and the replica promoted has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from redis.asyncio import Redis

from scalr_queue import NotReplicatedError, QueueClient, QueueUnavailableError
from scalr_queue._settings import load_settings
from scalr_queue.redis import _scripts
from tests.support import run_cli, wait_until
from tests.template.template_support import Proc, Stack, base_env

from .rsupport import start_worker, worker_env, write_module
from .sentinel_group import SentinelGroup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

RUNS_KEY = "sentinel:runs"
# The template's task, same name and signature, recording each run: "<invoice id> <unix time>".
RECORDING_MODULE = f"""
import time

async def send_invoice_email(ctx, invoice_id: int) -> int:
    await ctx["redis"].rpush("{RUNS_KEY}", f"{{invoice_id}} {{time.time():.3f}}")
    return invoice_id

tasks = [send_invoice_email]
"""
SENDERS = 4  # concurrent HTTP clients
MAX_REQUESTS = 20_000
BEFORE_S = 2.0  # steady load before the kill
AFTER_S = 2.0  # load after enqueues succeed again
# with SCALR_QUEUE_MIN_REPLICAS=1 a failover may lose a job acknowledged this close to the kill, and only a
# few: those one replica confirmed and the other, promoted, had not received (milliseconds on loopback)
LAST_SECOND_S = 1.0


@dataclass
class Traffic:
    accepted: dict[int, tuple[float, float]] = field(default_factory=dict)  # invoice id -> (sent, 202 came back)
    refused: list[tuple[float, int]] = field(default_factory=list)  # (wall time sent, status)
    next_id: int = 0

    def take(self) -> int:
        self.next_id += 1
        return self.next_id


async def send(http: httpx.AsyncClient, traffic: Traffic, stop: asyncio.Event, deadline: float) -> None:
    while not stop.is_set() and traffic.next_id < MAX_REQUESTS and time.monotonic() < deadline:
        invoice = traffic.take()
        sent = time.time()
        try:
            response = await http.post(f"/invoices/{invoice}/send")
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        if status == 202:
            traffic.accepted[invoice] = (sent, time.time())
        else:
            traffic.refused.append((sent, status))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.005)


def parse_runs(raw: list[bytes]) -> dict[int, list[float]]:
    runs: dict[int, list[float]] = {}
    for item in raw:
        invoice, at = item.decode().split()
        runs.setdefault(int(invoice), []).append(float(at))
    return runs


# MIN_REPLICAS=1 of 2 replicas: a job only the replica that was not promoted had is lost; the sentinels
# rank replicas by the replication offset they last read (up to a second old), so only a job acknowledged
# in the last second before the kill can be (seen once in CI: 1 of 1,851, acknowledged at the kill)
@pytest.mark.parametrize("min_replicas", [1, 0])
async def test_master_sigkill_fails_over_and_min_replicas_loses_no_job_acknowledged_before_its_last_second(
    tmp_path: Path, record: Callable[..., None], min_replicas: int
) -> None:
    group = SentinelGroup().start()
    knobs = {
        "SCALR_QUEUE_MIN_REPLICAS": str(min_replicas),
        "SCALR_QUEUE_HEALTH_INTERVAL": "1s",
        "SCALR_QUEUE_LEASE": "3s",  # a claim lost with the master comes back after this long
        "SCALR_QUEUE_REDIS_TIMEOUT": "1s",
        "SCALR_QUEUE_RETRY_DELAY": "50ms",
        "SCALR_QUEUE_RETRY_MAX_DELAY": "400ms",
    }
    stack = Stack(redis=group.master, log_dir=tmp_path, env=base_env(group.url, **knobs))
    cwd = write_module(tmp_path / "mod", RECORDING_MODULE, name="sentinel_jobs")
    env = worker_env(group.url, SCALR_QUEUE_CONCURRENCY="10", **knobs)
    workers: list[Proc] = []
    traffic, stop = Traffic(), asyncio.Event()
    redis: Redis | None = None
    try:
        stack.start_backend()
        workers += [start_worker(n, cwd, env, tmp_path, module="sentinel_jobs") for n in ("worker-a", "worker-b")]
        async with Redis(port=group.master.port) as first:
            await wait_until(lambda: _serving(first, 2), timeout=60, what="both workers to serve the queue")
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
            senders = [asyncio.create_task(send(http, traffic, stop, time.monotonic() + 90)) for _ in range(SENDERS)]
            await asyncio.sleep(BEFORE_S)
            scripts_on_replicas = [await _has_scripts(r.port) for r in group.replicas]
            old_port = group.kill_master()
            killed = time.time()
            new_port = await asyncio.to_thread(group.wait_failover, old_port)
            promoted = time.time()
            await wait_until(
                lambda: any(sent > killed for sent, _ in traffic.accepted.values()), timeout=30, what="enqueues again"
            )
            await asyncio.sleep(AFTER_S)
            stop.set()
            await asyncio.gather(*senders)
        redis = Redis(port=new_port)  # the new master: what survived the failover
        accepted = set(traffic.accepted)

        async def all_ran() -> bool:
            return accepted <= set(parse_runs(await redis.lrange(RUNS_KEY, 0, -1)))

        # not a hard wait: the figures are recorded first, the assertions follow
        await wait_until_or_not(all_ran, timeout=30)
        runs = parse_runs(await redis.lrange(RUNS_KEY, 0, -1))
        assert all(w.alive() for w in workers), "workers survive the failover"
        # Redis 7 does not replicate the script cache: the new master started without our scripts,
        # so the enqueues and claims that succeeded went through NOSCRIPT -> SCRIPT LOAD -> EVALSHA
        assert scripts_on_replicas == [False, False]
        # the CLI follows the sentinels to the new master too
        stats = await asyncio.to_thread(run_cli, "stats", env=env)
        assert stats.returncode == 0 and "default" in stats.stdout, stats.stdout + stats.stderr
    finally:
        stop.set()
        if redis is not None:
            await redis.aclose()
        for w in workers:
            w.stop(timeout=30)
        stack.close()
        group.close()

    # nothing sent after the kill can succeed before a replica is promoted: the first that does marks the end
    enqueue_back = min(acked for sent, acked in traffic.accepted.values() if sent > killed) - killed
    claims_after = [t for ts in runs.values() for t in ts if t > killed]
    claim_back = min(claims_after) - killed if claims_after else float("inf")
    lost = sorted(accepted - set(runs))
    twice = sorted(i for i, ts in runs.items() if len(ts) > 1)
    unacknowledged_ran = len(set(runs) - accepted)
    window = [killed - traffic.accepted[i][1] for i in lost]
    record(
        order=5 + bool(min_replicas),
        scenario=f"Sentinel: master SIGKILL, failover (SCALR_QUEUE_MIN_REPLICAS={min_replicas})",
        jobs=len(accepted),
        kills=1,
        restarts=0,
        lost=len(lost),
        duplicates=len(twice),
        reconnect=f"enqueue {enqueue_back:.2f}s, workers claim {claim_back:.2f}s after the kill",
        notes=f"sentinels promoted a replica {promoted - killed:.2f}s after the kill; "
        f"{len(traffic.refused)} enqueues refused (503) meanwhile, {unacknowledged_ran} of them ran anyway"
        + (f"; lost jobs acknowledged {min(window):.3f}-{max(window):.3f}s before the kill" if lost else ""),
        lost_ids=lost[:50],
        twice_ids=twice[:50],
    )
    assert traffic.refused, "the producer saw the failover"
    assert {s for _, s in traffic.refused} <= {503}, "the backend answers 503 while there is no master"
    assert enqueue_back < 20 and claim_back < 20, (enqueue_back, claim_back)
    if min_replicas:
        early = [i for i, w in zip(lost, window, strict=True) if w > LAST_SECOND_S]
        assert not early, f"{len(early)} enqueues acknowledged over {LAST_SECOND_S}s before the kill lost: {early[:10]}"
        assert len(lost) <= 5, f"{len(lost)} acknowledged enqueues lost with SCALR_QUEUE_MIN_REPLICAS=1: {lost[:10]}"
    # a job runs twice only if it was in flight at the kill: at most both workers' slots
    assert len(twice) <= 20, twice


@pytest.mark.parametrize("min_replicas", [1, 0])
async def test_enqueues_a_lagging_replica_lacks_are_lost_at_failover_unless_min_replicas_refuses_them(
    record: Callable[..., None], min_replicas: int
) -> None:
    """The loss window made deterministic: replicas stopped, enqueue, kill the master, promote one."""
    group = SentinelGroup().start()
    settings = load_settings(REDIS_URL=group.url, min_replicas=min_replicas, min_replicas_timeout=0.3)
    client = QueueClient(settings)
    redis: Redis | None = None
    try:
        before = [await client.enqueue("send_invoice_email", invoice_id=i) for i in range(5)]
        await wait_until(lambda: _replicas_caught_up(group), timeout=10, what="replicas to copy the first five")
        group.cut_replicas()
        frozen = time.monotonic()
        outcomes = await asyncio.gather(
            *(client.enqueue("send_invoice_email", invoice_id=100 + i) for i in range(20)), return_exceptions=True
        )
        behind_s = time.monotonic() - frozen
        old_port = group.kill_master()
        group.freeze_replicas(False)
        new_port = await asyncio.to_thread(group.wait_failover, old_port)
        await client.close()
        redis = Redis(port=new_port)
        survived = {m.decode() for m in await redis.zrange("arq:queue:default", 0, -1)}
    finally:
        await client.close()
        if redis is not None:
            await redis.aclose()
        group.close()
    acknowledged = [o.job_id for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    lost = [j for j in acknowledged if j not in survived]
    record(
        order=7 + min_replicas,
        scenario=f"Sentinel: replicas 'behind', then master SIGKILL (SCALR_QUEUE_MIN_REPLICAS={min_replicas})",
        jobs=len(acknowledged),
        kills=1,
        restarts=0,
        lost=len(lost),
        duplicates=0,
        notes=f"replicas cut off for {behind_s:.2f}s while 20 enqueues were made: {len(acknowledged)} acknowledged, "
        f"{len(refused)} refused with NotReplicatedError",
    )
    assert all(j.job_id in survived for j in before), "jobs the replicas had survive the failover"
    if min_replicas:
        assert not acknowledged and all(isinstance(e, NotReplicatedError) for e in refused), refused[:1]
        assert "1 of the" not in str(refused[0]) and "0 of the 1 replicas" in str(refused[0])
    else:
        assert not refused and len(lost) == 20, "without MIN_REPLICAS every enqueue the replicas lacked is lost"


async def test_switchover_moves_idle_workers_and_producers_off_the_demoted_master(
    tmp_path: Path, record: Callable[..., None]
) -> None:
    """The old master stays up as a replica: connections to it must notice and move, by themselves.

    The worker idles in BRPOP on the master with a 30 s safety poll, so only the demotion itself
    (Redis unblocks it, then answers READONLY) can get it to the new master in time.
    """
    group = SentinelGroup().start()
    env = worker_env(group.url, SCALR_QUEUE_POLL_INTERVAL="30s", SCALR_QUEUE_HEALTH_INTERVAL="1s")
    cwd = write_module(tmp_path / "mod", RECORDING_MODULE, name="sentinel_jobs")
    client = QueueClient(load_settings(REDIS_URL=group.url))
    worker: Proc | None = None
    try:
        worker = start_worker("worker", cwd, env, tmp_path, module="sentinel_jobs")
        async with Redis(port=group.master.port) as first:
            await wait_until(lambda: _serving(first, 1), timeout=60, what="the worker to serve the queue")
            await client.enqueue("send_invoice_email", invoice_id=1)
            await wait_until(lambda: _ran(first, 1), timeout=10, what="the first job to run")
        old_port = await asyncio.to_thread(group.switch_over)
        new_port = await asyncio.to_thread(group.wait_failover, old_port)
        # until the sentinels demote it, the old master still takes writes (Sentinel's split-brain
        # window, docs/sentinel.md): only once it is a replica must every client leave it
        await asyncio.to_thread(group.wait_demoted, old_port)
        switched = time.monotonic()
        while True:  # the client's pooled connection still points at the old master
            try:
                await client.enqueue("send_invoice_email", invoice_id=2)
                break
            except QueueUnavailableError:
                assert time.monotonic() - switched < 20, "enqueue never reached the new master"
                await asyncio.sleep(0.1)
        enqueue_back = time.monotonic() - switched
        async with Redis(port=new_port) as new:
            try:
                await wait_until(lambda: _ran(new, 2), timeout=15, what="the worker to run a job on the new master")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{worker.log()[-3000:]}") from None
        claim_back = time.monotonic() - switched
        assert worker.alive()
    finally:
        await client.close()
        if worker is not None:
            worker.stop(timeout=30)
        group.close()
    record(
        order=9,
        scenario="Sentinel: switchover (SENTINEL FAILOVER), the old master kept as a replica",
        jobs=2,
        kills=0,
        restarts=0,
        lost=0,
        duplicates=0,
        reconnect=f"enqueue {enqueue_back:.2f}s, worker claims {claim_back:.2f}s after the demotion",
        notes="the worker idled in BRPOP on the old master with a 30 s safety poll",
    )
    assert enqueue_back < 10 and claim_back < 15, (enqueue_back, claim_back)


async def _ran(redis: Redis, n: int) -> bool:
    return int(await redis.llen(RUNS_KEY)) >= n


def _replicas_caught_up(group: SentinelGroup) -> bool:
    with redis_sync.Redis(port=group.master.port) as master:
        info = master.info("replication")
    offset = info["master_repl_offset"]
    return all(info.get(f"slave{n}", {}).get("offset") == offset for n in (0, 1))


async def _has_scripts(port: int) -> bool:
    async with Redis(port=port) as replica:
        return any(await replica.script_exists(_scripts.sha(_scripts.CLAIM), _scripts.sha(_scripts.ENQUEUE)))


async def _serving(redis: Redis, n: int) -> bool:
    return int(await redis.hlen("scalr:workers:default")) >= n


async def wait_until_or_not(predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Poll like wait_until, but a timeout is an answer (some jobs were lost), not a failure."""
    with contextlib.suppress(AssertionError):
        await wait_until(predicate, timeout=timeout, interval=0.2)
