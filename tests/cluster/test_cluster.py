"""scalr_queue on a real Redis Cluster: three masters, three replicas, on loopback.

Three queues whose hash tags land on three different masters; one worker process per queue.
Every flow (run, retry, failed set, cancel, counts) works on each, and a SIGKILLed master's
replica takes over while the other queues never stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from scalr_queue import CancelOutcome, JobStatus, QueueClient
from scalr_queue._settings import load_settings
from scalr_queue.redis._keys import job_key, queue_key, use_tagged_keys
from tests.support import wait_until
from tests.template.template_support import Proc, base_env

from .cluster_group import ClusterGroup

TASKS = """
import asyncio
from arq import cron
from scalr_queue import Fail

async def tick(ctx) -> None:
    await ctx["redis"].rpush("cron-ran:{" + ctx["queue"] + "}", ctx["job_id"])

async def ok(ctx, i: int) -> int:
    await ctx["redis"].hincrby("runs:{" + ctx["queue"] + "}", ctx["job_id"], 1)
    return i

async def flaky(ctx, i: int) -> int:
    if ctx["job_try"] < 2:
        raise RuntimeError("first try fails")
    return i

async def bad(ctx) -> None:
    raise Fail("no good")

async def slow(ctx) -> None:
    await asyncio.sleep(60)

tasks = [ok, flaky, bad, slow]
cron_jobs = [cron(tick, run_at_startup=True)]
"""

FAST = {
    "SCALR_QUEUE_RETRY_DELAY": "50ms",
    "SCALR_QUEUE_RETRY_MAX_DELAY": "200ms",
    "SCALR_QUEUE_HEALTH_INTERVAL": "1s",
    "SCALR_QUEUE_SHUTDOWN_GRACE": "2s",
    "SCALR_QUEUE_LEASE": "3s",
    "SCALR_QUEUE_REDIS_TIMEOUT": "2s",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterGroup]:
    group = ClusterGroup()
    try:
        yield group.start()
    finally:
        group.stop()
        use_tagged_keys(False)


def spread_queues(cluster: ClusterGroup) -> list[str]:
    """Three queue names whose tags are served by three different masters."""
    chosen: dict[int, str] = {}
    for i in range(200):
        name = f"q{i}"
        chosen.setdefault(cluster.master_of("{" + name + "}").port, name)
        if len(chosen) == 3:
            return sorted(chosen.values())
    raise AssertionError("no three queues on three masters")


@pytest.fixture(scope="module")
def workers(cluster: ClusterGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proc]]:
    cwd = tmp_path_factory.mktemp("cluster-app")
    (cwd / "cl_jobs.py").write_text(TASKS)
    env = base_env(cluster.url, **FAST)
    env.pop("SCALR_QUEUE_TASKS", None)
    procs = {
        q: Proc(f"worker-{q}", [sys_executable(), "-m", "scalr_queue.worker", "cl_jobs", "--queue", q], cwd, env, cwd)
        for q in spread_queues(cluster)
    }
    try:
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


def sys_executable() -> str:
    import sys

    return sys.executable


@pytest.fixture
async def client(cluster: ClusterGroup) -> AsyncIterator[QueueClient]:
    c = QueueClient(load_settings(redis_url=cluster.url, **{"redis_timeout": 2.0}))
    yield c
    await c.close()


async def test_keys_of_a_queue_carry_its_tag_and_queues_spread_over_masters(
    cluster: ClusterGroup, client: QueueClient, workers: dict[str, Proc]
) -> None:
    queues = list(workers)
    masters = {cluster.master_of("{" + q + "}").port for q in queues}
    assert len(masters) == 3, "three queues, three masters"
    job = await client.enqueue("ok", i=1, _queue_name=queues[0])  # the first client call picks the layout
    assert queue_key(queues[0]) == f"arq:queue:{{{queues[0]}}}"
    assert job_key(job.job_id, queues[0]) == f"arq:job:{{{queues[0]}}}{job.job_id}"
    assert await job.result(timeout=20) == 1


async def test_run_retry_fail_and_cancel_on_three_shards(client: QueueClient, workers: dict[str, Proc]) -> None:
    for q in workers:
        oks = [await client.enqueue("ok", i=i, _queue_name=q) for i in range(5)]
        flaky = await client.enqueue("flaky", i=7, _queue_name=q)
        bad = await client.enqueue("bad", _queue_name=q)
        slow = await client.enqueue("slow", _queue_name=q)
        assert [await j.result(timeout=20) for j in oks] == list(range(5))
        assert await flaky.result(timeout=20) == 7
        assert (await flaky.info()).tries == 2, "ran twice: the first try failed and was retried"
        await wait_until(lambda b=bad: _is(b, JobStatus.FAILED), timeout=20, what="bad to fail")
        await wait_until(lambda s=slow: _is(s, JobStatus.IN_PROGRESS), timeout=20, what="slow to start")
        assert await slow.cancel() == CancelOutcome.CANCELLING, "a running job is told over pub/sub"
        await wait_until(lambda s=slow: _is(s, JobStatus.CANCELLED), timeout=20, what="slow to be cancelled")
    redis = await client.redis()
    for q in workers:
        # the startup cron is enqueued at the worker's first cron tick (within 0.5 s of its start),
        # which a fast run can reach only after the jobs above are done
        await wait_until(lambda q=q: redis.llen("cron-ran:{" + q + "}"), timeout=10, what=f"the cron job on {q}")
        ran = await redis.lrange("cron-ran:{" + q + "}", 0, -1)
        assert ran[0].startswith(b"cron:tick:"), f"the cron job ran on {q}"
    overview = {o.queue: o for o in await client.list_queues()}
    for q in workers:
        assert overview[q].failed == 1
        assert overview[q].complete_last_hour >= 6, "5 ok and flaky"
        assert overview[q].cancelled_last_hour == 1
        assert overview[q].workers == 1


async def _is(job: object, status: JobStatus) -> bool:
    return await job.status() == status  # type: ignore[attr-defined,no-any-return]


async def test_a_split_queue_spreads_over_masters_and_one_worker_serves_every_shard(
    cluster: ClusterGroup, tmp_path: Path
) -> None:
    (tmp_path / "cl_jobs.py").write_text(TASKS)
    env = base_env(cluster.url, SCALR_QUEUE_SHARDS="hot=3", **FAST)
    env.pop("SCALR_QUEUE_TASKS", None)
    worker = Proc(
        "worker-hot",
        [sys_executable(), "-m", "scalr_queue.worker", "cl_jobs", "--queue", "hot"],
        tmp_path,
        env,
        tmp_path,
    )
    client = QueueClient(load_settings(redis_url=cluster.url, shards="hot=3"))
    try:
        jobs = [await client.enqueue("ok", i=i, _queue_name="hot") for i in range(30)]
        assert {j.queue for j in jobs} == {"hot", "hot~1", "hot~2"}
        masters = {cluster.master_of("{" + q + "}").port for q in ("hot", "hot~1", "hot~2")}
        assert [await j.result(timeout=20) for j in jobs] == list(range(30))
        print(f"3 shards of 'hot' on {len(masters)} masters")
    finally:
        worker.stop()
        await client.close()


async def test_master_sigkill_fails_over_and_other_queues_never_stop(
    cluster: ClusterGroup, client: QueueClient, workers: dict[str, Proc]
) -> None:
    victim_queue, *others = list(workers)
    victim = cluster.master_of("{" + victim_queue + "}")
    acked: dict[str, list[str]] = {q: [] for q in workers}
    other_gaps: list[float] = []
    stop = asyncio.Event()

    async def produce(q: str) -> None:
        last = time.monotonic()
        i = 0
        while not stop.is_set():
            try:
                job = await client.enqueue("ok", i=i, _queue_name=q)
                acked[q].append(job.job_id)
                now = time.monotonic()
                if q != victim_queue:
                    other_gaps.append(now - last)
                last = now
            except Exception:
                await asyncio.sleep(0.05)
            i += 1
            await asyncio.sleep(0.01)

    producers = [asyncio.create_task(produce(q)) for q in workers]
    await asyncio.sleep(1.0)
    killed_at = time.monotonic()
    victim.kill()
    await wait_until(
        lambda: cluster.master_of("{" + victim_queue + "}").port != victim.port, timeout=30, what="replica promoted"
    )
    promoted_after = time.monotonic() - killed_at
    count_at_promotion = len(acked[victim_queue])
    await wait_until(lambda: len(acked[victim_queue]) > count_at_promotion + 5, timeout=30, what="victim enqueues")
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*producers)
    assert max(other_gaps) < 3.0, f"the other queues paused {max(other_gaps):.1f}s"

    async def all_ran() -> bool:
        for q in others:
            for job_id in acked[q][-3:]:
                if await client.job(job_id, q).status() != JobStatus.COMPLETE:
                    return False
        return True

    await wait_until(all_ran, timeout=30, what="the other queues' jobs to run")
    # the victim's queue: every job acked after the promotion runs; before it, async replication may lose a few
    late = acked[victim_queue][count_at_promotion:]
    await wait_until(
        lambda: _all_complete(client, victim_queue, late[-5:]), timeout=40, what="victim queue to run again"
    )
    statuses = [await client.job(j, victim_queue).status() for j in acked[victim_queue][:count_at_promotion]]
    lost = sum(1 for s in statuses if s == JobStatus.NOT_FOUND)
    print(f"promoted after {promoted_after:.1f}s; lost before promotion {lost} of {len(statuses)}")
    assert lost <= 20, "only the async-replication window may be lost"


async def _all_complete(client: QueueClient, queue: str, ids: list[str]) -> bool:
    return all([await client.job(j, queue).status() == JobStatus.COMPLETE for j in ids])


CLUSTER_TESTS = Path(__file__).parent
