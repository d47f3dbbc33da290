"""The limit blocks of CLAIM, FINISH, RENEW and CANCEL, called directly with crafted keys."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from scalr_queue._codec import job_payload
from scalr_queue._limits import Limits, rules_json
from scalr_queue._priority import due_ms, encode, priority_of
from scalr_queue.control._cancel import cancel_job
from scalr_queue.producer._client import QueueClient
from scalr_queue.producer._job import PARKED_SHIFT as SHIFT
from scalr_queue.redis import _scripts
from scalr_queue.redis._connection import eval_script
from scalr_queue.redis._keys import (
    FINISHED_STATES,
    JOB_PREFIX,
    RETRY_PREFIX,
    cancels_key,
    failed_jobs_key,
    failed_key,
    finished_key,
    held_key,
    holds_key,
    limit_keys,
    parked_ids_key,
    parked_key,
    paused_key,
    slot_counts_key,
    slots_key,
    starts_key,
)
from tests.test_scripts import LEASE, LEASES, ME, NOW, QUEUE, WAKE, Q

PARKED, SLOTS, COUNTS = parked_key(Q), slots_key(Q), slot_counts_key(Q)
RULES = rules_json(
    {
        "two": Limits(max_concurrent=2),
        "per": Limits(max_concurrent=1, concurrency_key="customer_id"),
        "rate": Limits(rate=(2, 1000)),
    }
)


async def job(redis: Redis, job_id: str, task: str, score: int = NOW - 1, **kwargs: Any) -> None:
    await redis.set(JOB_PREFIX + job_id, job_payload(task, json.dumps(kwargs).encode(), NOW))
    await redis.zadd(QUEUE, {job_id: score})


async def claim(redis: Redis, count: int = 10, now: int = NOW, sweep: int = 0) -> tuple[list[str], Any, int]:
    keys = [QUEUE, WAKE, LEASES, paused_key(Q), holds_key(Q), held_key(Q), *limit_keys(Q)]
    args = [now, count, LEASE, ME, 200, 1000, RULES, sweep, 100]
    ids, _payloads, _tries, nxt, more, _dues, *_ = await eval_script(redis, _scripts.CLAIM, keys, args)
    return [i.decode() for i in ids], nxt, int(more)


async def finish(redis: Redis, *ids: str, now: int = NOW) -> None:
    args: list[Any] = [now, 100, ME, 100, 60_000, 60_000]
    for job_id in ids:
        args.extend(("D", job_id, "", "", 0, ""))
    keys = [QUEUE, failed_key(Q), failed_jobs_key(Q), WAKE, LEASES, cancels_key(Q)]
    keys += [*(finished_key(Q, state) for state in FINISHED_STATES), *limit_keys(Q)]  # no tries keys: no attempts
    await eval_script(redis, _scripts.FINISH, keys, args)


async def queued(redis: Redis) -> list[str]:
    return [i.decode() for i in await redis.zrange(QUEUE, 0, -1)]


async def test_a_full_limit_parks_the_job_without_a_try_and_claims_the_jobs_behind_it(redis: Redis) -> None:
    for n in range(4):
        await job(redis, f"t{n}", "two", NOW - 10 + n)
    await job(redis, "plain", "other", NOW - 1)
    ids, _nxt, _more = await claim(redis)
    assert ids == ["t0", "t1", "plain"]
    assert await redis.zcard(PARKED) == 2
    assert await queued(redis) == []
    assert not await redis.exists(RETRY_PREFIX + "t2", RETRY_PREFIX + "t3"), "a parked job burnt no try"
    assert await redis.hget(COUNTS, 'c["two"]') == b"2"


async def test_finish_frees_the_slot_and_requeues_the_oldest_parked_job_at_its_due_time(redis: Redis) -> None:
    for n in range(4):
        await job(redis, f"t{n}", "two", NOW - 10 + n)
    await claim(redis)
    await redis.delete(WAKE)
    await finish(redis, "t0")
    assert await redis.zrange(QUEUE, 0, -1, withscores=True) == [(b"t2", NOW - 8)]
    assert await redis.llen(WAKE) == 1, "an idle worker is woken"
    assert await redis.hget(COUNTS, 'c["two"]') == b"1"
    ids, _nxt, _more = await claim(redis)
    assert ids == ["t2"]
    await finish(redis, "t1", "t2", "t3")
    ids, _nxt, _more = await claim(redis)
    assert ids == ["t3"]
    await finish(redis, "t3")
    assert not await redis.exists(PARKED, SLOTS, COUNTS, parked_ids_key(Q)), "nothing left behind"


async def test_a_concurrency_key_limits_each_value_on_its_own(redis: Redis) -> None:
    await job(redis, "a1", "per", NOW - 3, customer_id=1)
    await job(redis, "a2", "per", NOW - 2, customer_id=1)
    await job(redis, "b1", "per", NOW - 1, customer_id=2)
    ids, _nxt, _more = await claim(redis)
    assert ids == ["a1", "b1"]
    assert [m.decode() for m in await redis.zrange(PARKED, 0, -1)] == [f'c["per",1]|{NOW - 2 + SHIFT:015d}|a2']


async def test_a_full_rate_window_defers_the_job_to_when_the_window_opens(redis: Redis) -> None:
    for n in range(3):
        await job(redis, f"r{n}", "rate", NOW - 10 + n)
    ids, nxt, _more = await claim(redis)
    assert ids == ["r0", "r1"]
    assert await redis.zrange(QUEUE, 0, -1, withscores=True) == [(b"r2", NOW + 1000)]
    assert float(nxt) == NOW + 1000, "the worker's next-due wait covers it"
    assert not await redis.exists(RETRY_PREFIX + "r2")
    ids, _nxt, _more = await claim(redis, now=NOW + 1000)
    assert ids == ["r2"]
    assert await redis.pttl(starts_key(Q)) > 0, "the starts set expires"


async def test_a_dead_workers_slot_frees_after_its_lease_and_renewal_keeps_a_live_one(redis: Redis) -> None:
    for n in range(3):
        await job(redis, f"t{n}", "two", NOW - 10 + n)
    await claim(redis)
    later = NOW + 2 * LEASE
    lost = await eval_script(redis, _scripts.RENEW, [LEASES, cancels_key(Q), SLOTS], [LEASE, later, ME, "t0"])
    assert lost == [[], []]
    assert await redis.zscore(SLOTS, "t0") == later
    await redis.delete("arq:in-progress:t1")  # t1's worker died: its lease and slot run out
    ids, _nxt, _more = await claim(redis, now=NOW + LEASE + 1)
    assert sorted(ids) == ["t1"], "t1 runs again on the slot it had; t2 stays parked"
    assert await redis.hget(COUNTS, 'c["two"]') == b"2"
    assert await redis.zcard(PARKED) == 1


async def test_the_sweep_requeues_parked_jobs_of_a_limit_with_free_slots(redis: Redis) -> None:
    for n in range(3):
        await job(redis, f"t{n}", "two", NOW - 10 + n)
    await claim(redis)
    await finish(redis, "t0")  # t2 goes back to the queue...
    await redis.zrem(QUEUE, "t2")  # ...and is lost on its way (say, cancelled): a free slot, nothing queued
    await job(redis, "t3", "two", NOW - 1)
    await redis.zrem(QUEUE, "t3")
    await redis.zadd(PARKED, {f'c["two"]|{NOW - 1 + SHIFT:015d}|t3': 0})
    ids, _nxt, _more = await claim(redis)
    assert ids == [], "without the sweep, nothing frees t3"
    ids, _nxt, _more = await claim(redis, sweep=1)
    assert ids == ["t3"]


async def test_cancel_finds_a_parked_job(redis: Redis, redis_url: str) -> None:
    for n in range(3):
        await job(redis, f"t{n}", "two", NOW - 10 + n)
    await claim(redis)
    client = QueueClient()
    try:
        assert (await cancel_job(client, "t2", Q)).value == "cancelled"
    finally:
        await client.close()
    assert not await redis.exists(PARKED, parked_ids_key(Q), JOB_PREFIX + "t2")


async def test_a_replace_of_a_parked_job_queues_it_at_the_new_time(redis: Redis) -> None:
    for n in range(3):
        await job(redis, f"t{n}", "two", NOW - 10 + n)
    await claim(redis)
    keys = [
        JOB_PREFIX + "t2",
        QUEUE,
        WAKE,
        "arq:result:t2",
        "arq:in-progress:t2",
        "scalr:next:t2",
        RETRY_PREFIX + "t2",
        LEASES,
        failed_key(Q),
        failed_jobs_key(Q),
        PARKED,
        parked_ids_key(Q),
    ]
    new = job_payload("two", b'{"n":1}', NOW)
    assert await eval_script(redis, _scripts.REPLACE, keys, ["t2", NOW + 5, new, 0]) == 2
    assert await redis.zrange(QUEUE, 0, -1, withscores=True) == [(b"t2", NOW + 5)]
    assert not await redis.exists(PARKED, parked_ids_key(Q)), "queued once, not parked as well"


async def test_parked_and_deferred_jobs_keep_their_priority_band(redis: Redis) -> None:
    high, low = encode(NOW - 10, 9), encode(NOW - 5, 2)  # below zero and three bands up
    await job(redis, "t0", "two", high)
    await job(redis, "t1", "two", encode(NOW - 9, 9))
    await job(redis, "hi", "two", encode(NOW - 8, 9))
    await job(redis, "lo", "two", low)
    ids, _nxt, _more = await claim(redis)
    assert ids == ["t0", "t1"]
    parked = [m.decode().split("|")[2] for m in await redis.zrange(PARKED, 0, -1)]
    assert parked == ["hi", "lo"], "the parked set keeps priority order, the high band first"
    await finish(redis, "t0", "t1")
    assert await redis.zrange(QUEUE, 0, -1, withscores=True) == [
        (b"hi", encode(NOW - 8, 9)),
        (b"lo", low),
    ], "unparked at their own banded scores"
    for n in range(3):
        await job(redis, f"r{n}", "rate", encode(NOW - 10 + n, 8))
    ids, _nxt, _more = await claim(redis)
    assert {"r0", "r1"} <= set(ids)
    deferred = await redis.zscore(QUEUE, "r2")
    assert deferred is not None and priority_of(deferred) == 8, "a rate-deferred job stays in its band"
    assert due_ms(deferred) == NOW + 1000 - 0, "due when the window opens"
