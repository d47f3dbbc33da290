"""The cluster code paths on a one-node Redis Cluster (every slot on one master), in ``make test``.

A real ``redis-server --cluster-enabled yes`` that owns all 16,384 slots starts in well under a
second, so the cluster client, the tagged scripts, the cluster enqueue pipeline, pub/sub on a
node and the cluster scan run in the main suite; several masters, replicas and failover are
``make test-cluster``'s (tests/cluster).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from redis.asyncio import Redis

from scalr_queue import CancelOutcome, ConfigurationError, JobStatus, QueueClient
from scalr_queue._settings import get_settings, load_settings
from scalr_queue.redis._connection import ScalrRedisCluster, create_redis
from scalr_queue.redis._keys import tagged_keys, use_tagged_keys
from scalr_queue.redis._server import RedisServer, free_port
from tests.conftest import TEST_ENV
from tests.support import running_worker, wait_until


async def snooze(ctx: dict[str, object], secs: float) -> str:
    await asyncio.sleep(secs)
    return "woke"


async def boom(ctx: dict[str, object]) -> None:
    from scalr_queue import Fail

    raise Fail("no")


@pytest.fixture(scope="module")
def one_node() -> Iterator[RedisServer]:
    args = ("--cluster-enabled", "yes", "--cluster-port", str(free_port()), "--cluster-node-timeout", "1000")
    server = RedisServer(extra_args=args).start()
    try:
        import redis

        with redis.Redis(port=server.port) as r:
            r.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            deadline = time.monotonic() + 10
            while b"cluster_state:ok" not in r.execute_command("CLUSTER", "INFO"):
                assert time.monotonic() < deadline, "one-node cluster never became ok"
                time.sleep(0.05)
        yield server
    finally:
        server.close()


@pytest.fixture
async def cluster_url(one_node: RedisServer, set_env: Callable[..., None]) -> AsyncIterator[str]:
    url = f"redis+cluster://127.0.0.1:{one_node.port}"
    set_env(REDIS_URL=url, **TEST_ENV)
    client: Redis = Redis(port=one_node.port)
    await client.flushall()
    await client.script_flush()
    await client.aclose()
    yield url
    get_settings.cache_clear()
    use_tagged_keys(False)


async def test_a_cluster_url_runs_jobs_under_tagged_keys(cluster_url: str, one_node: RedisServer) -> None:
    client = QueueClient(load_settings())
    try:
        assert tagged_keys()
        assert isinstance(await client.redis(), ScalrRedisCluster)
        single = await client.enqueue("snooze", secs=0, _queue_name="mail")
        many = await client.enqueue_many([("snooze", {"secs": 0, "_queue_name": q}) for q in ("mail", "bulk")])
        raw = Redis(port=one_node.port)
        assert await raw.zcard("arq:queue:{mail}") == 2 and await raw.zcard("arq:queue:{bulk}") == 1
        assert await raw.exists(f"arq:job:{{mail}}{single.job_id}")
        await raw.aclose()
        async with running_worker([snooze, boom], queue="mail") as worker:
            assert await single.result(timeout=10) == "woke"
            arq_job = await worker.ctx["redis"].enqueue_job("snooze", secs=0, _queue_name="arq:queue:{mail}")
            assert arq_job is not None and await client.job(arq_job.job_id, "mail").result(timeout=10) == "woke"
            assert await many[0].result(timeout=10) == "woke"
            failing = await client.enqueue("boom", _queue_name="mail")
            await wait_until(lambda: _is(failing, JobStatus.FAILED), timeout=10, what="boom to fail")
            running = await client.enqueue("snooze", secs=60, _queue_name="mail")
            await wait_until(lambda: _is(running, JobStatus.IN_PROGRESS), timeout=10, what="snooze to start")
            assert await running.cancel() is CancelOutcome.CANCELLING
            await wait_until(lambda: _is(running, JobStatus.CANCELLED), timeout=10, what="cancel over pub/sub")
        counts = {o.queue: o for o in await client.list_queues()}
        assert (counts["mail"].failed, counts["mail"].cancelled_last_hour, counts["bulk"].ready) == (1, 1, 1)
        timeline = await client.job_timeline(single.job_id, "mail")
        assert timeline.info.status is JobStatus.COMPLETE
        report = await client.failed.purge_all("mail")
        assert report.count == 1 and report.job_ids == [failing.job_id]
    finally:
        await client.close()


async def test_a_lost_script_cache_is_reloaded_on_the_keys_master(cluster_url: str, one_node: RedisServer) -> None:
    client = QueueClient(load_settings())
    try:
        await client.enqueue("snooze", secs=0, _queue_name="mail")
        raw = Redis(port=one_node.port)
        await raw.script_flush()
        job = await client.enqueue("snooze", secs=0, _queue_name="mail")
        await raw.script_flush()
        (other,) = await client.enqueue_many([("snooze", {"secs": 0, "_queue_name": "mail"})])
        assert await raw.zcard("arq:queue:{mail}") == 3 and job.created and other.created
        await raw.aclose()
    finally:
        await client.close()


async def test_min_replicas_is_refused_on_a_cluster(cluster_url: str, set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MIN_REPLICAS="1")
    client = QueueClient(load_settings())
    try:
        with pytest.raises(ConfigurationError, match="SCALR_QUEUE_MIN_REPLICAS works with redis://"):
            await client.enqueue("snooze", secs=0)
    finally:
        await client.close()


@pytest.mark.parametrize("blocking", [True, False], ids=["worker", "producer"])
def test_a_node_connection_whose_transport_closed_under_it_reconnects_on_uvloop(
    cluster_url: str, blocking: bool
) -> None:
    """As on a plain client: uvloop closes the transport of a write to a killed master while redis-py
    still calls the connection connected, and the next command on it raised RuntimeError."""
    import uvloop

    async def main() -> tuple[int, bool]:
        client = create_redis(load_settings(), blocking=blocking)
        try:
            first = await client.client_id()
            (node,) = client.get_nodes()  # type: ignore[attr-defined]
            node._free[-1]._writer.transport.close()  # what uvloop does after a write to a dead peer fails
            await asyncio.sleep(0)
            return await client.incr("{uv}n"), await client.client_id() != first
        finally:
            await client.aclose()

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == (1, True)
    finally:
        loop.close()


async def _is(job: object, status: JobStatus) -> bool:
    return await job.status() is status  # type: ignore[attr-defined,no-any-return]
