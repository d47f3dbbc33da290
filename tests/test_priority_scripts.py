"""Priority bands in the scripts that read or move queue scores: CLAIM (with and without holds),
FINISH's replacement branch, RELEASE, REPLACE, CANCEL and the failed-set re-drive."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import JobStatus
from scalr_queue._priority import band, check_priority, due_ms, encode, priority_of
from scalr_queue.redis import _scripts
from scalr_queue.redis._connection import eval_script
from scalr_queue.redis._keys import (
    FINISHED_STATES,
    JOB_PREFIX,
    NEXT_PREFIX,
    cancels_key,
    failed_jobs_key,
    failed_key,
    finished_key,
    held_key,
    holds_key,
    leases_key,
    paused_key,
    queue_key,
    wake_key,
)
from tests.support import running_worker, wait_until

Q = "prio"
QUEUE, WAKE, LEASES = queue_key(Q), wake_key(Q), leases_key(Q)
ME = "host:1:me"
NOW = 1_800_000_000_000
LEASE = 10_000


async def claim(redis: Redis, count: int = 10, now: int = NOW, *, holds: bool = False) -> tuple[list[str], Any, list]:
    keys = [QUEUE, WAKE, LEASES, paused_key(Q)] + ([holds_key(Q), held_key(Q)] if holds else [])
    args: list[Any] = [now, count, LEASE, ME, 200] + ([1000] if holds else [])
    ids, _payloads, _tries, nxt, _more, dues, *_ = await eval_script(redis, _scripts.CLAIM, keys, args)
    return [i.decode() for i in ids], nxt, [float(d) for d in dues]


async def queued(redis: Redis, job_id: str, due: int, priority: int, payload: bytes = b'{"f":"t"}') -> None:
    await redis.set(JOB_PREFIX + job_id, payload)
    await redis.zadd(QUEUE, {job_id: encode(due, priority)})


def test_scores_encode_and_decode_every_priority_exactly() -> None:
    for priority in range(10):
        score = encode(NOW + 123, priority)
        assert (due_ms(score), priority_of(score)) == (NOW + 123, priority)
        assert abs(score) < 2**53
    assert encode(NOW, 5) == NOW and band(NOW) == 0 and due_ms(NOW) == NOW
    assert check_priority(0) == 0
    with pytest.raises(scalr_queue.JobOptionsError, match="not 10"):
        check_priority(10)


async def test_claim_takes_due_jobs_by_priority_then_due_time_and_leaves_scheduled_ones(redis: Redis) -> None:
    await queued(redis, "d5-late", NOW - 10, 5)
    await queued(redis, "d5-early", NOW - 20, 5)
    await queued(redis, "d0", NOW - 30, 0)
    await queued(redis, "d9", NOW - 5, 9)
    await queued(redis, "s9", NOW + 5_000, 9)  # the lowest score in the queue, but not due
    await queued(redis, "d7", NOW, 7)
    ids, nxt, dues = await claim(redis, count=3)
    assert ids == ["d9", "d7", "d5-early"]
    assert [due_ms(d) for d in dues] == [NOW - 5, NOW, NOW - 20]
    ids, nxt, _ = await claim(redis)
    assert ids == ["d5-late", "d0"]
    assert int(nxt) == NOW + 5_000, "the next due time is a time, not the smallest score"
    ids, _, dues = await claim(redis, now=NOW + 5_000)
    assert (ids, dues) == (["s9"], [float(encode(NOW + 5_000, 9))])


async def test_next_due_is_the_earliest_due_time_over_all_bands(redis: Redis) -> None:
    await queued(redis, "hi", NOW + 50_000, 9)
    await queued(redis, "mid", NOW + 20_000, 5)
    await queued(redis, "lo", NOW + 5_000, 1)
    assert (await claim(redis))[:2] == ([], NOW + 5_000)


async def test_a_held_banded_job_keeps_its_band_and_release_puts_it_back_in_it(redis: Redis) -> None:
    await eval_script(redis, _scripts.HOLD, [holds_key(Q)], ["t", '{"f":"t"}'])
    await queued(redis, "held9", NOW - 100, 9)
    await queued(redis, "other", NOW - 50, 9, payload=b'{"f":"u"}')
    await queued(redis, "plain", NOW - 200, 5, payload=b'{"f":"u"}')
    ids, _, _ = await claim(redis, holds=True)
    assert ids == ["other", "plain"]
    assert await redis.zscore(held_key(Q), "held9") == encode(NOW - 100, 9)
    keys = [holds_key(Q), held_key(Q), QUEUE, WAKE]
    later = NOW + 1_000
    removed, released, _dropped, still = await eval_script(redis, _scripts.RELEASE, keys, [later, 0, "t", ""])
    assert (removed, released, still) == (1, 1, 0)
    assert await redis.zscore(QUEUE, "held9") == encode(later, 9), "due now, in its own band"


async def test_a_replacement_taking_over_a_failed_run_keeps_its_band(redis: Redis) -> None:
    await redis.set(JOB_PREFIX + "k", b'{"f":"t"}')
    await redis.zadd(LEASES, {"k": NOW + LEASE})
    await redis.set("arq:in-progress:k", ME, px=LEASE)
    await redis.set(NEXT_PREFIX + "k", b'{"f":"t","p":8}')
    await redis.zadd(QUEUE, {"k": encode(NOW - 500, 8)})  # the replacement, queued behind the run
    keys = [QUEUE, failed_key(Q), failed_jobs_key(Q), WAKE, LEASES, cancels_key(Q)]
    keys += [finished_key(Q, state) for state in FINISHED_STATES]
    await eval_script(redis, _scripts.FINISH, keys, [NOW, 100, ME, 100, 60_000, 60_000, "F", "k", "{}", "", 0, ""])
    assert await redis.zscore(QUEUE, "k") == encode(NOW, 8)


async def test_replace_moves_a_job_to_the_new_priority_and_cancel_removes_a_banded_job(redis: Redis) -> None:
    job = await scalr_queue.enqueue("t", _job_id="k", _priority=1, _defer_by=30)
    await scalr_queue.enqueue("t", _job_id="k", _priority=9, _replace=True)
    score = await redis.zscore(queue_key("default"), "k")
    assert score is not None and priority_of(score) == 9
    assert (await job.info()).priority == 9 and await job.status() is JobStatus.QUEUED
    assert (await job.cancel()).value == "cancelled"
    assert await redis.zcard(queue_key("default")) == 0


async def test_a_failed_job_is_redriven_at_its_priority(redis: Redis) -> None:
    async def boom(ctx: dict[str, Any]) -> None:
        raise scalr_queue.Fail("no")

    job = await scalr_queue.enqueue("boom", _priority=9)
    async with running_worker([boom]):
        await wait_until(lambda: _status_is(job, JobStatus.FAILED), what="the failure")
    assert (await scalr_queue.get_client().failed.get(job.job_id)).priority == 9
    await scalr_queue.get_client().failed.retry(job.job_id)
    score = await redis.zscore(queue_key("default"), job.job_id)
    assert score is not None and priority_of(score) == 9 and score < 0
    assert (await job.info()).priority == 9


async def _status_is(job: scalr_queue.Job[Any], status: JobStatus) -> bool:
    return await job.status() is status
