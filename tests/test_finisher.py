"""The Finisher on a real Redis: what a worker's batch of ended jobs leaves behind."""

from __future__ import annotations

from redis.asyncio import Redis

import scalr_queue
from scalr_queue.redis._connection import create_redis
from scalr_queue.redis._keys import finished_key, in_progress_key, job_key, leases_key, result_key
from scalr_queue.worker._finisher import FINISH_MAX, Finisher

ME = "host:1:me"


async def test_a_batch_larger_than_one_finish_call_takes_is_recorded_whole(redis: Redis) -> None:
    """Jobs of a high-concurrency worker ending together: one FINISH for all of them failed
    (Lua's unpack takes ~8,000 values) after writing their results, and they ran again."""
    ids = [f"{i:032x}" for i in range(6 * FINISH_MAX + 7)]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.set(job_key(job_id), b"{}")
            pipe.set(in_progress_key(job_id), ME, px=60_000)
        pipe.zadd(leases_key("default"), dict.fromkeys(ids, 1))
        await pipe.execute()
    errors: list[BaseException] = []
    client = create_redis(scalr_queue.get_settings(), blocking=True)
    finisher = Finisher(
        client,
        "default",
        ME,
        failed_max=100,
        finished_max=10_000,
        keep_result=60,
        give_up_after=1,
        op_timeout=5,
        on_redis_error=errors.append,
    )
    try:
        for job_id in ids:
            finisher.add(("D", job_id, b'{"r":1}', b"", 60_000))
        await finisher.drain()
    finally:
        await client.aclose(close_connection_pool=True)
    assert errors == []
    assert await redis.zcard(leases_key("default")) == 0
    assert await redis.zcard(finished_key("default", "complete")) == len(ids)
    assert await redis.exists(*(result_key(i) for i in ids)) == len(ids)
    assert await redis.exists(*(job_key(i) for i in ids), *(in_progress_key(i) for i in ids)) == 0
