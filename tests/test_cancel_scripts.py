"""CANCEL, and FINISH's cancel paths, called directly on a real Redis with crafted keys.

The worker tests reach the common paths; the states a cancel can meet that are hard to time with
real processes (a dead worker's job, a cancel landing while the job fails, a payload that is gone)
are set up here by hand, and each test asserts the script's reply and the keys it leaves behind.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from scalr_queue.control._cancel import cancel_suffix
from scalr_queue.redis import _scripts
from scalr_queue.redis._connection import eval_script
from scalr_queue.redis._keys import (
    FINISHED_STATES,
    IN_PROGRESS_PREFIX,
    JOB_PREFIX,
    RESULT_PREFIX,
    RETRY_PREFIX,
    cancel_channel,
    cancels_key,
    failed_jobs_key,
    failed_key,
    finished_key,
    held_key,
    leases_key,
    queue_key,
    tries_key,
    wake_key,
)

Q = "cancel-scripts"
QUEUE, LEASES, CANCELS = queue_key(Q), leases_key(Q), cancels_key(Q)
ME = "host:1:me"
NOW = 1_800_000_000_000
PAYLOAD = b'{"t":null,"f":"task","a":[],"et":1,"k":{"x":1}}'


async def cancel(redis: Redis, job_id: str, px: int = 60_000, reason: str | None = "why") -> str:
    keys = [
        JOB_PREFIX + job_id,
        QUEUE,
        IN_PROGRESS_PREFIX + job_id,
        RESULT_PREFIX + job_id,
        RETRY_PREFIX + job_id,
        LEASES,
        CANCELS,
        failed_jobs_key(Q),
        held_key(Q),
        finished_key(Q, "cancelled"),
        tries_key(job_id),
    ]
    args = [job_id, px, cancel_suffix(job_id, Q, reason, NOW), cancel_channel(Q), 60_000, NOW, 100]
    return (await eval_script(redis, _scripts.CANCEL, keys, args)).decode()


async def finish(redis: Redis, *ops: tuple[str, str, Any, Any, int]) -> None:
    args: list[Any] = [NOW, 100, ME, 100, 60_000, 60_000]
    keys = [QUEUE, failed_key(Q), failed_jobs_key(Q), wake_key(Q), LEASES, CANCELS]
    keys += [finished_key(Q, state) for state in FINISHED_STATES]
    for op in ops:
        args.extend([*op, ""])
    await eval_script(redis, _scripts.FINISH, keys, args)


async def result(redis: Redis, job_id: str) -> dict[str, Any]:
    raw = await redis.get(RESULT_PREFIX + job_id)
    assert raw is not None
    record: dict[str, Any] = orjson.loads(raw)
    return record


async def running(redis: Redis, job_id: str, payload: bytes = PAYLOAD) -> None:
    await redis.set(JOB_PREFIX + job_id, payload)
    await redis.zadd(LEASES, {job_id: NOW + 10_000})
    await redis.set(IN_PROGRESS_PREFIX + job_id, ME, px=10_000)
    await redis.set(RETRY_PREFIX + job_id, 2)


async def test_cancel_of_a_dead_workers_job_removes_it_from_the_leases_so_no_claim_revives_it(redis: Redis) -> None:
    await redis.set(JOB_PREFIX + "orphan", PAYLOAD)
    await redis.zadd(LEASES, {"orphan": NOW - 1})  # lease marker expired: its worker died
    assert await cancel(redis, "orphan") == "cancelled"
    assert await redis.zcard(LEASES) == 0
    assert not await redis.exists(JOB_PREFIX + "orphan")
    record = await result(redis, "orphan")
    assert record["f"] == "task" and record["k"] == {"x": 1}
    assert record["cancelled"] == {"at_ms": NOW, "reason": "why"} and record["s"] is False


async def test_cancel_of_a_held_job_takes_it_out_of_the_held_set_and_keeps_it_cancelled(redis: Redis) -> None:
    await redis.set(JOB_PREFIX + "held", PAYLOAD)
    await redis.zadd(held_key(Q), {"held": NOW - 5})  # set aside by a hold: not in the queue
    assert await cancel(redis, "held") == "cancelled"
    assert await redis.zcard(held_key(Q)) == 0, "a later release must not bring it back"
    assert not await redis.exists(JOB_PREFIX + "held")
    record = await result(redis, "held")
    assert record["f"] == "task" and record["cancelled"] == {"at_ms": NOW, "reason": "why"}


async def test_cancel_of_a_queued_job_whose_payload_is_gone_still_records_valid_json(redis: Redis) -> None:
    await redis.zadd(QUEUE, {"expired": NOW})
    assert await cancel(redis, "expired") == "cancelled"
    record = await result(redis, "expired")
    assert record["a"] == [] and record["cancelled"]["reason"] == "why"
    assert await redis.zcard(QUEUE) == 0


async def test_cancel_with_keep_result_zero_removes_the_job_and_keeps_nothing(redis: Redis) -> None:
    await redis.set(JOB_PREFIX + "j", PAYLOAD)
    await redis.zadd(QUEUE, {"j": NOW})
    assert await cancel(redis, "j", px=0) == "cancelled"
    assert await redis.dbsize() == 0


async def test_cancel_of_a_running_job_marks_it_publishes_and_leaves_it_running(redis: Redis) -> None:
    await running(redis, "r")
    pubsub = redis.pubsub()
    await pubsub.subscribe(cancel_channel(Q))
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    assert await cancel(redis, "r") == "cancelling"
    message = await pubsub.get_message(timeout=1)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert message is not None and message["data"] == b"r"
    assert await redis.exists(IN_PROGRESS_PREFIX + "r", JOB_PREFIX + "r") == 2, "its worker finishes it"
    assert 0 < await redis.pttl(CANCELS) <= 60_000
    assert await cancel(redis, "r") == "cancelling", "asking again is harmless"


async def test_a_retry_of_a_marked_job_ends_it_cancelled_instead(redis: Redis) -> None:
    """The cancel landed while the task was failing: FINISH honours the mark, nothing is requeued."""
    await running(redis, "failing")
    assert await cancel(redis, "failing") == "cancelling"
    await finish(redis, ("R", "failing", "", "", NOW + 1000))
    assert await redis.zcard(QUEUE) == 0 and await redis.zcard(LEASES) == 0
    assert not await redis.exists(JOB_PREFIX + "failing", IN_PROGRESS_PREFIX + "failing", RETRY_PREFIX + "failing")
    assert not await redis.exists(CANCELS), "the mark is removed"
    record = await result(redis, "failing")
    assert record["cancelled"]["reason"] == "why" and record["tries"] == 2
    assert await redis.pttl(RESULT_PREFIX + "failing") > 0


async def test_a_cancelled_finish_without_a_mark_uses_the_workers_own_record(redis: Redis) -> None:
    """arq's abort leaves no mark: the worker sends the suffix and px itself."""
    await running(redis, "aborted")
    await finish(redis, ("C", "aborted", cancel_suffix("aborted", Q, "arq", NOW), "", 5_000))
    record = await result(redis, "aborted")
    assert record["cancelled"] == {"at_ms": NOW, "reason": "arq"}
    assert 0 < await redis.pttl(RESULT_PREFIX + "aborted") <= 5_000
    assert await redis.zcard(LEASES) == 0


async def test_a_cancelled_finish_of_a_job_another_worker_took_over_changes_nothing(redis: Redis) -> None:
    await running(redis, "taken")
    await redis.set(IN_PROGRESS_PREFIX + "taken", "host:2:other", px=10_000)
    await finish(redis, ("C", "taken", cancel_suffix("taken", Q, None, NOW), "", 5_000))
    assert not await redis.exists(RESULT_PREFIX + "taken")
    assert await redis.exists(JOB_PREFIX + "taken") == 1


async def test_a_done_job_with_a_mark_stays_complete_and_the_mark_goes(redis: Redis) -> None:
    """It finished before its worker heard the cancel: the truth is that it completed."""
    await running(redis, "quick")
    assert await cancel(redis, "quick") == "cancelling"
    await finish(redis, ("D", "quick", b'{"s":true,"r":1}', "", 5_000))
    assert (await result(redis, "quick"))["s"] is True
    assert not await redis.exists(CANCELS)
    assert await cancel(redis, "quick") == "finished"


async def test_cancel_of_a_job_in_the_failed_set_says_finished(redis: Redis) -> None:
    await redis.hset(failed_jobs_key(Q), "f", b"{}")
    assert await cancel(redis, "f") == "finished"
    assert await cancel(redis, "never") == "not_found"


async def test_renew_names_the_held_jobs_that_carry_a_cancel_mark(redis: Redis) -> None:
    await running(redis, "held")
    await running(redis, "marked")
    await running(redis, "elsewhere")
    await redis.set(IN_PROGRESS_PREFIX + "elsewhere", "host:2:other", px=10_000)
    args = [10_000, NOW + 20_000, ME, "held", "marked", "elsewhere"]
    lost, marked = await eval_script(redis, _scripts.RENEW, [LEASES, CANCELS], args)
    assert (lost, marked) == ([b"elsewhere"], [])
    await redis.hset(CANCELS, "marked", b"1\n,}")
    await redis.hset(CANCELS, "elsewhere", b"1\n,}")
    lost, marked = await eval_script(redis, _scripts.RENEW, [LEASES, CANCELS], args)
    assert (lost, marked) == ([b"elsewhere"], [b"marked"]), "only jobs this worker holds"
