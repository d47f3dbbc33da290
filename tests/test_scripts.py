"""CLAIM, FINISH and RENEW called directly on a real Redis with crafted keys.

The worker tests reach these scripts' common paths; the branches that decide who owns a job
when leases run out, are lost or are still held by a live worker are set up here by hand, and
each test asserts both the script's reply and the keys it leaves behind.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from scalr_queue.redis import _scripts
from scalr_queue.redis._connection import eval_script
from scalr_queue.redis._keys import (
    FINISHED_STATES,
    IN_PROGRESS_PREFIX,
    JOB_PREFIX,
    RESULT_PREFIX,
    RETRY_PREFIX,
    cancels_key,
    failed_jobs_key,
    failed_key,
    finished_key,
    leases_key,
    paused_key,
    queue_key,
    wake_key,
)

Q = "scripts"
QUEUE, WAKE, LEASES = queue_key(Q), wake_key(Q), leases_key(Q)
FAILED, FAILED_JOBS = failed_key(Q), failed_jobs_key(Q)
ME, OTHER = "host:1:me", "host:2:other"
NOW = 1_800_000_000_000  # a fixed epoch-ms: scores are the scripts' only clock
LEASE = 10_000


def ip(job_id: str) -> str:
    return IN_PROGRESS_PREFIX + job_id


async def claim(redis: Redis, count: int = 10, now: int = NOW) -> tuple[list[str], list[Any], list[int], Any, int]:
    ids, payloads, tries, nxt, more, _dues, *_paused = await eval_script(
        redis, _scripts.CLAIM, [QUEUE, WAKE, LEASES, paused_key(Q)], [now, count, LEASE, ME, 200]
    )
    return [i.decode() for i in ids], payloads, [int(t) for t in tries], nxt, int(more)


async def finish(redis: Redis, *ops: tuple[str, str, str, str, int], failed_max: int = 100) -> int:
    args: list[Any] = [NOW, failed_max, ME, 100, 60_000, 60_000]
    keys = [QUEUE, FAILED, FAILED_JOBS, WAKE, LEASES, cancels_key(Q), *(finished_key(Q, s) for s in FINISHED_STATES)]
    for op in ops:
        args.extend([*op, ""])
    return int(await eval_script(redis, _scripts.FINISH, keys, args))


async def renew(redis: Redis, *ids: str, deadline: int = NOW + 2 * LEASE) -> list[str]:
    lost = await eval_script(redis, _scripts.RENEW, [LEASES], [LEASE, deadline, ME, *ids])
    return [i.decode() for i in lost]


async def queued(redis: Redis, job_id: str, score: int = NOW - 1, payload: bytes = b"{}") -> None:
    await redis.set(JOB_PREFIX + job_id, payload)
    await redis.zadd(QUEUE, {job_id: score})


async def leased(redis: Redis, job_id: str, owner: str | None, deadline: int, marker_px: int | None = LEASE) -> None:
    """A running job: payload, leases entry and (unless the owner is gone) its lease marker."""
    await redis.set(JOB_PREFIX + job_id, b"{}")
    await redis.zadd(LEASES, {job_id: deadline})
    if owner is not None:
        await redis.set(ip(job_id), owner, px=marker_px)


# -- CLAIM ---------------------------------------------------------------------------------


async def test_claim_takes_a_dead_workers_job_before_the_queue_and_counts_a_try(redis: Redis) -> None:
    await leased(redis, "dead", None, NOW - 5)  # its worker died: marker expired, lease overdue
    await redis.set(RETRY_PREFIX + "dead", 1)
    await queued(redis, "fresh")
    ids, payloads, tries, nxt, more = await claim(redis, count=1)
    assert (ids, payloads, tries, more) == (["dead"], [b"{}"], [2], 1)
    assert nxt is None, "a full claim does not look ahead"
    assert await redis.get(ip("dead")) == ME.encode()
    assert 0 < await redis.pttl(ip("dead")) <= LEASE
    assert await redis.zscore(LEASES, "dead") == NOW + LEASE
    assert await redis.zrange(QUEUE, 0, -1) == [b"fresh"], "the queue was not read"
    assert await redis.lrange(WAKE, 0, -1) == [b"1"], "more work: another worker is woken"


async def test_claim_never_takes_an_overdue_job_whose_live_owner_still_holds_the_marker(redis: Redis) -> None:
    await leased(redis, "held", OTHER, NOW - 5, marker_px=3_000)
    ids, _, _, nxt, more = await claim(redis)
    assert (ids, more) == ([], 0)
    assert await redis.get(ip("held")) == OTHER.encode()
    score = await redis.zscore(LEASES, "held")
    assert NOW + 2_000 < score <= NOW + 3_000, "the lease entry follows the marker's TTL"
    assert float(nxt) == score, "the next due time is that lease"


async def test_claim_gives_a_marker_without_ttl_one_full_lease(redis: Redis) -> None:
    await leased(redis, "stuck", OTHER, NOW - 5, marker_px=None)
    ids, *_ = await claim(redis)
    assert ids == []
    assert await redis.zscore(LEASES, "stuck") == NOW + LEASE
    assert await redis.get(ip("stuck")) == OTHER.encode()


async def test_claim_moves_a_queued_job_that_is_already_leased_to_the_leases(redis: Redis) -> None:
    await queued(redis, "twice")
    await redis.set(ip("twice"), OTHER, px=4_000)
    await queued(redis, "free")
    ids, _, tries, _, more = await claim(redis)
    assert (ids, tries, more) == (["free"], [1], 0)
    assert await redis.zcard(QUEUE) == 0
    assert NOW + 3_000 < await redis.zscore(LEASES, "twice") <= NOW + 4_000
    assert await redis.get(ip("twice")) == OTHER.encode(), "its owner keeps it"
    assert not await redis.exists(RETRY_PREFIX + "twice"), "not claimed, not counted"


async def test_claim_moves_an_already_leased_job_without_ttl_one_lease_ahead(redis: Redis) -> None:
    await queued(redis, "twice")
    await redis.set(ip("twice"), OTHER)
    ids, *_ = await claim(redis)
    assert ids == []
    assert await redis.zscore(LEASES, "twice") == NOW + LEASE


async def test_claim_of_a_full_batch_from_the_queue_says_more_and_wakes_once(redis: Redis) -> None:
    for n in range(3):
        await queued(redis, f"j{n}", score=NOW - 10 + n)
    await redis.lpush(WAKE, "1")
    ids, payloads, tries, nxt, more = await claim(redis, count=2)
    assert (ids, payloads, tries, nxt, more) == (["j0", "j1"], [b"{}", b"{}"], [1, 1], None, 1)
    assert await redis.zrange(QUEUE, 0, -1) == [b"j2"]
    assert await redis.llen(WAKE) == 1, "the wake list stays bounded to one item"


async def test_claim_of_exactly_the_ready_jobs_says_no_more_and_when_work_is_next_due(redis: Redis) -> None:
    """A full claim that saw nothing else due still reports the next due time (here a deferred job),
    so the worker can wait for it without claiming again when a slot frees."""
    await queued(redis, "only")
    await queued(redis, "deferred", score=NOW + 500)
    ids, _, _, nxt, more = await claim(redis, count=1)
    assert (ids, float(nxt), more) == (["only"], NOW + 500, 0)
    assert await redis.llen(WAKE) == 0


async def test_claim_that_empties_the_queue_drops_a_wake_left_behind(redis: Redis) -> None:
    """The wake an enqueue pushed is stale once a claim took its job: left, it would send the next
    waiting worker a claim that comes back empty."""
    await queued(redis, "only")
    await redis.lpush(WAKE, "1")
    ids, *_ = await claim(redis, count=5)
    assert ids == ["only"]
    assert await redis.llen(WAKE) == 0


async def test_claim_keeps_the_wake_while_a_deferred_job_is_queued(redis: Redis) -> None:
    await queued(redis, "now")
    await queued(redis, "later", score=NOW + 500)
    await redis.lpush(WAKE, "1")
    ids, *_ = await claim(redis, count=5)
    assert ids == ["now"]
    assert await redis.llen(WAKE) == 1, "a worker that takes it learns when the deferred job is due"


async def test_claim_returns_a_missing_payload_as_none(redis: Redis) -> None:
    await redis.zadd(QUEUE, {"ghost": NOW - 1})
    ids, payloads, tries, _, _ = await claim(redis)
    assert (ids, payloads, tries) == (["ghost"], [None], [1])


async def test_claim_returns_when_each_job_was_due_for_the_punctuality_metric(redis: Redis) -> None:
    await leased(redis, "orphan", None, NOW - 700)  # due again since its lease ran out
    await queued(redis, "early", score=NOW - 3_000)
    await queued(redis, "skipped", score=NOW - 2_000)
    await redis.set(ip("skipped"), OTHER, px=4_000)  # leased already: not claimed, no due time
    await queued(redis, "late", score=NOW - 1_000)
    ids, _, _, _, _, dues = await eval_script(
        redis, _scripts.CLAIM, [QUEUE, WAKE, LEASES, paused_key(Q)], [NOW, 10, LEASE, ME, 200]
    )
    assert dict(zip([i.decode() for i in ids], [int(float(d)) for d in dues], strict=True)) == {
        "orphan": NOW - 700,
        "early": NOW - 3_000,
        "late": NOW - 1_000,
    }


async def test_claim_with_nothing_due_returns_the_earliest_of_queue_and_leases(redis: Redis) -> None:
    await queued(redis, "later", score=NOW + 5_000)
    ids, _, _, nxt, more = await claim(redis)
    assert (ids, float(nxt), more) == ([], NOW + 5_000, 0)
    await leased(redis, "running", OTHER, NOW + 2_000)
    ids, _, _, nxt, _ = await claim(redis)
    assert ids == []
    assert float(nxt) == NOW + 2_000
    await redis.delete(QUEUE)
    assert float((await claim(redis))[3]) == NOW + 2_000, "a lease alone sets the next due time"


async def test_claim_on_an_empty_queue_returns_no_next_time(redis: Redis) -> None:
    assert await claim(redis) == ([], [], [], None, 0)
    assert await redis.dbsize() == 0, "nothing written"


# -- FINISH --------------------------------------------------------------------------------


async def test_finish_done_keeps_the_result_and_removes_every_trace_of_the_run(redis: Redis) -> None:
    await leased(redis, "ok", ME, NOW + LEASE)
    await redis.set(RETRY_PREFIX + "ok", 1)
    await leased(redis, "quiet", ME, NOW + LEASE)
    assert await finish(redis, ("D", "ok", "result", "", 60_000), ("D", "quiet", "", "", 60_000)) == 0
    assert await redis.get(RESULT_PREFIX + "ok") == b"result"
    assert 0 < await redis.pttl(RESULT_PREFIX + "ok") <= 60_000
    index = finished_key(Q, "complete")
    assert sorted(await redis.keys("*")) == [(RESULT_PREFIX + "ok").encode(), index.encode()], (
        "keep_result=0 leaves nothing; a kept result is listed in the finished index"
    )
    assert await redis.zrange(index, 0, -1) == [b"ok"]
    assert 0 < await redis.pttl(index) <= 60_000


async def test_finish_done_is_recorded_even_after_the_lease_was_lost(redis: Redis) -> None:
    """The task ran to the end: its result counts whoever holds the marker now."""
    await leased(redis, "late", OTHER, NOW + LEASE)
    await finish(redis, ("D", "late", "r", "", 1_000))
    assert await redis.get(RESULT_PREFIX + "late") == b"r"
    assert not await redis.exists(JOB_PREFIX + "late", ip("late"))
    assert await redis.zcard(LEASES) == 0


async def test_finish_failed_records_the_job_and_trims_the_oldest_beyond_the_cap(redis: Redis) -> None:
    await redis.zadd(FAILED, {"old1": 1, "old2": 2})
    await redis.hset(FAILED_JOBS, mapping={"old1": "r1", "old2": "r2"})
    await leased(redis, "bad", ME, NOW + LEASE)
    await leased(redis, "worse", ME, NOW + LEASE)
    dropped = await finish(
        redis, ("F", "bad", "record", "result", 5_000), ("F", "worse", "record2", "", 5_000), failed_max=3
    )
    assert dropped == 1
    assert await redis.zrange(FAILED, 0, -1) == [b"old2", b"bad", b"worse"]
    assert sorted(await redis.hkeys(FAILED_JOBS)) == [b"bad", b"old2", b"worse"]
    assert await redis.hget(FAILED_JOBS, "bad") == b"record"
    assert await redis.get(RESULT_PREFIX + "bad") == b"result"
    assert not await redis.exists(RESULT_PREFIX + "worse", JOB_PREFIX + "bad", ip("bad"))
    assert await redis.zcard(LEASES) == 0


async def test_finish_trims_a_failed_set_far_over_a_lowered_cap_in_one_call(redis: Redis) -> None:
    """Lowering SCALR_QUEUE_FAILED_MAX can leave thousands over it: more than Lua's unpack takes at once."""
    old = {f"old{i}": i for i in range(10_000)}
    await redis.zadd(FAILED, old)
    await redis.hset(FAILED_JOBS, mapping=dict.fromkeys(old, "r"))
    await leased(redis, "bad", ME, NOW + LEASE)
    assert await finish(redis, ("F", "bad", "record", "", 0), failed_max=5) == 9_996
    assert await redis.zrange(FAILED, 0, -1) == [b"old9996", b"old9997", b"old9998", b"old9999", b"bad"]
    assert sorted(await redis.hkeys(FAILED_JOBS)) == [b"bad", b"old9996", b"old9997", b"old9998", b"old9999"]


async def test_finish_failed_under_the_cap_drops_nothing(redis: Redis) -> None:
    await leased(redis, "bad", ME, NOW + LEASE)
    assert await finish(redis, ("F", "bad", "record", "", 0), failed_max=1) == 0
    assert await redis.zcard(FAILED) == 1


async def test_finish_retry_requeues_the_owned_job_counted_and_wakes_a_worker(redis: Redis) -> None:
    await leased(redis, "again", ME, NOW + LEASE)
    await redis.set(RETRY_PREFIX + "again", 1)
    assert await finish(redis, ("R", "again", "", "", NOW + 400)) == 0
    assert await redis.zscore(QUEUE, "again") == NOW + 400
    assert await redis.get(RETRY_PREFIX + "again") == b"1", "a retry counts as a try"
    assert await redis.exists(JOB_PREFIX + "again"), "the payload stays for the next try"
    assert not await redis.exists(ip("again"))
    assert await redis.zcard(LEASES) == 0
    assert await redis.lrange(WAKE, 0, -1) == [b"1"]


async def test_finish_retry_of_a_job_whose_lease_another_worker_took_changes_nothing(redis: Redis) -> None:
    await leased(redis, "stolen", OTHER, NOW + LEASE)
    await redis.set(RETRY_PREFIX + "stolen", 2)
    before = {k: await redis.dump(k) for k in await redis.keys("*")}
    await finish(redis, ("R", "stolen", "", "", NOW), ("Q", "stolen", "", "", NOW))
    assert {k: await redis.dump(k) for k in await redis.keys("*")} == before, "the new owner's run is untouched"
    assert await redis.get(ip("stolen")) == OTHER.encode()


async def test_finish_retry_after_the_marker_expired_still_requeues(redis: Redis) -> None:
    await leased(redis, "expired", None, NOW - 1)
    await finish(redis, ("R", "expired", "", "", NOW + 50))
    assert await redis.zscore(QUEUE, "expired") == NOW + 50
    assert await redis.zcard(LEASES) == 0


async def test_a_late_retry_never_revives_a_job_another_worker_took_over_and_finished(redis: Redis) -> None:
    """This worker's lease ran out (paused, cut off, Redis down longer than the lease); another
    worker claimed the job and finished it, deleting marker and payload. The late retry must not
    put the id back: it would reach the failed set as 'payload missing' for a job that succeeded."""
    await redis.set(RESULT_PREFIX + "done", b"by the other worker")
    await finish(redis, ("R", "done", "", "", NOW), ("Q", "done", "", "", NOW))
    assert await redis.keys("*") == [(RESULT_PREFIX + "done").encode()]
    assert await redis.llen(WAKE) == 0


async def test_a_late_retry_leaves_a_job_another_worker_took_over_and_requeued(redis: Redis) -> None:
    await redis.set(JOB_PREFIX + "again", b"{}")
    await redis.zadd(QUEUE, {"again": NOW + 900})  # the other worker's retry, with its backoff
    await redis.set(RETRY_PREFIX + "again", 2)
    await finish(redis, ("R", "again", "", "", NOW), ("Q", "again", "", "", NOW))
    assert await redis.zrange(QUEUE, 0, -1, withscores=True) == [(b"again", NOW + 900)]
    assert await redis.get(RETRY_PREFIX + "again") == b"2"


async def test_finish_requeue_gives_back_the_try_it_took(redis: Redis) -> None:
    await leased(redis, "first", ME, NOW + LEASE)
    await redis.set(RETRY_PREFIX + "first", 1)
    await leased(redis, "third", ME, NOW + LEASE)
    await redis.set(RETRY_PREFIX + "third", 3)
    await redis.lpush(WAKE, "1")
    await finish(redis, ("Q", "first", "", "", NOW), ("Q", "third", "", "", NOW + 1))
    assert not await redis.exists(RETRY_PREFIX + "first"), "back to zero tries: the key goes"
    assert await redis.get(RETRY_PREFIX + "third") == b"2"
    assert await redis.zrange(QUEUE, 0, -1, withscores=True) == [(b"first", NOW), (b"third", NOW + 1)]
    assert await redis.llen(WAKE) == 1, "an already pending wake-up is not doubled"


# -- RENEW ---------------------------------------------------------------------------------


async def test_renew_extends_only_the_leases_this_worker_holds_and_names_the_rest(redis: Redis) -> None:
    await leased(redis, "mine", ME, NOW + 100, marker_px=60_000)
    await leased(redis, "taken", OTHER, NOW + 100, marker_px=60_000)
    await leased(redis, "expired", None, NOW - 100)
    lost = await renew(redis, "mine", "taken", "expired", deadline=NOW + 5_000)
    assert lost == ["taken", "expired"]
    assert await redis.zscore(LEASES, "mine") == NOW + 5_000
    assert 0 < await redis.pttl(ip("mine")) <= LEASE, "the marker now lasts one lease"
    assert await redis.zscore(LEASES, "taken") == NOW + 100, "another worker's lease is left alone"
    assert await redis.pttl(ip("taken")) > LEASE
    assert await redis.get(ip("taken")) == OTHER.encode()
    assert not await redis.exists(ip("expired")), "a lost marker is not recreated"


async def test_renew_of_a_job_that_finished_meanwhile_does_not_recreate_its_lease(redis: Redis) -> None:
    await redis.set(ip("racing"), ME, px=1_000)  # marker still there, leases entry already removed
    assert await renew(redis, "racing") == []
    assert await redis.zcard(LEASES) == 0, "ZADD XX never adds"


async def test_renew_with_no_jobs_is_a_no_op(redis: Redis) -> None:
    assert await renew(redis) == []
    assert await redis.dbsize() == 0
