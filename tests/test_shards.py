"""A hot queue split over shards (``SCALR_QUEUE_SHARDS=bulk=4``): enqueue spreads, one worker serves all."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from scalr_queue import ConfigurationError, JobStatus, QueueClient
from scalr_queue._settings import load_settings
from scalr_queue._shards import logical_queue, shard_for, shard_names
from scalr_queue._tasks import build_task_map
from scalr_queue.worker._loader import WorkerConfig
from scalr_queue.worker._sharded import run_shards, shard_workers
from tests.support import wait_until


async def double(ctx: dict[str, object], x: int) -> int:
    return 2 * x


def test_a_job_id_always_goes_to_the_same_shard() -> None:
    names = shard_names("bulk", 4)
    assert names == ["bulk", "bulk~1", "bulk~2", "bulk~3"]
    picked = {shard_for("bulk", f"job-{i}", 4) for i in range(200)}
    assert picked == set(names), "ids spread over every shard"
    assert shard_for("bulk", "invoice-42", 4) == shard_for("bulk", "invoice-42", 4)
    assert shard_for("bulk", "anything", 1) == "bulk"
    assert logical_queue("bulk~3") == "bulk" and logical_queue("bulk") == "bulk"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("bulk", "is not <queue>=<shards>"), ("bulk=0", "from 1 to 256"), ("bulk~1=2", "is not <queue>=<shards>")],
)
def test_a_bad_shards_setting_is_refused_in_one_line(value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as info:
        load_settings(shards=value)
    assert "\n" not in str(info.value).strip()


def test_shards_setting_counts_per_queue() -> None:
    settings = load_settings(shards="bulk=4, mail=2")
    assert (settings.shard_count("bulk"), settings.shard_count("mail"), settings.shard_count("x")) == (4, 2, 1)


async def test_enqueue_spreads_over_shards_and_one_worker_drains_them_all(
    redis_url: str, redis: Redis, set_env: Callable[..., None]
) -> None:
    set_env(SCALR_QUEUE_SHARDS="bulk=3")
    settings = load_settings()
    client = QueueClient(settings)
    try:
        jobs = [await client.enqueue("double", x=i, _queue_name="bulk") for i in range(30)]
        assert {j.queue for j in jobs} == {"bulk", "bulk~1", "bulk~2"}
        sizes = [await redis.zcard(f"arq:queue:{q}") for q in shard_names("bulk", 3)]
        assert sum(sizes) == 30 and all(sizes), sizes
        again = await client.enqueue("double", x=0, _queue_name="bulk", _job_id=jobs[0].job_id)
        assert not again.created and again.queue == jobs[0].queue, "one _job_id, one shard: still unique"
        config = WorkerConfig(module="tests", tasks=build_task_map([double]))
        workers = shard_workers(config, settings, "bulk", 3, concurrency=6, burst=True)
        assert [w.queue for w in workers] == ["bulk", "bulk~1", "bulk~2"]
        assert [w.max_jobs for w in workers] == [2, 2, 2], "an equal share of the concurrency each"
        await run_shards(workers)
        await wait_until(lambda: all_complete(jobs), timeout=20, what="every shard's jobs to run")
        assert [await j.result(timeout=5) for j in jobs] == [2 * i for i in range(30)]
    finally:
        await client.close()


async def all_complete(jobs: list) -> bool:  # type: ignore[type-arg]
    return all([await j.status() == JobStatus.COMPLETE for j in jobs])
