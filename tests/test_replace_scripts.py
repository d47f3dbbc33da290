"""REPLACE, PAUSE, RESUME and the replacement branches of CLAIM and FINISH, called directly with crafted keys."""

from __future__ import annotations

from redis.asyncio import Redis

from scalr_queue.redis import _scripts
from scalr_queue.redis._connection import eval_script
from scalr_queue.redis._keys import (
    IN_PROGRESS_PREFIX,
    JOB_PREFIX,
    NEXT_PREFIX,
    RESULT_PREFIX,
    RETRY_PREFIX,
    parked_ids_key,
    parked_key,
    paused_key,
)
from tests.test_scripts import (
    FAILED,
    FAILED_JOBS,
    LEASES,
    ME,
    NOW,
    OTHER,
    QUEUE,
    WAKE,
    Q,
    claim,
    finish,
    ip,
    leased,
    queued,
)

PAUSED = paused_key(Q)


async def replace(redis: Redis, job_id: str, payload: bytes, score: int = NOW - 1, px: int = 0) -> int:
    keys = [
        JOB_PREFIX + job_id,
        QUEUE,
        WAKE,
        RESULT_PREFIX + job_id,
        IN_PROGRESS_PREFIX + job_id,
        NEXT_PREFIX + job_id,
        RETRY_PREFIX + job_id,
        LEASES,
        FAILED,
        FAILED_JOBS,
        parked_key(Q),
        parked_ids_key(Q),
    ]
    return int(await eval_script(redis, _scripts.REPLACE, keys, [job_id, score, payload, px]))


async def test_replace_writes_a_new_job_and_wakes_a_worker(redis: Redis) -> None:
    assert await replace(redis, "k", b"new", px=60_000) == 1
    assert await redis.get(JOB_PREFIX + "k") == b"new"
    assert 0 < await redis.pttl(JOB_PREFIX + "k") <= 60_000, "an _expires job's key keeps its TTL"
    assert await redis.zscore(QUEUE, "k") == NOW - 1
    assert await redis.lrange(WAKE, 0, -1) == [b"1"]


async def test_replace_of_a_dead_workers_job_drops_its_lease_and_old_tries(redis: Redis) -> None:
    await leased(redis, "k", None, NOW - 5)  # marker gone: nobody runs it now
    await redis.set(RETRY_PREFIX + "k", 2)
    await redis.set(RESULT_PREFIX + "k", b"old result")
    assert await replace(redis, "k", b"new", score=NOW + 500) == 2
    assert await redis.zscore(LEASES, "k") is None, "the new run is not the dead worker's to rerun now"
    assert await redis.zscore(QUEUE, "k") == NOW + 500
    assert not await redis.exists(RETRY_PREFIX + "k", RESULT_PREFIX + "k")


async def test_replace_while_running_waits_in_next_and_a_later_one_supersedes_it(redis: Redis) -> None:
    await leased(redis, "k", OTHER, NOW + 5_000)
    assert await replace(redis, "k", b"second") == 3
    assert await replace(redis, "k", b"third", score=NOW + 100) == 3
    assert await redis.get(JOB_PREFIX + "k") == b"{}", "the running job's payload is untouched"
    assert await redis.get(NEXT_PREFIX + "k") == b"third"
    assert await redis.zscore(QUEUE, "k") == NOW + 100
    assert not await redis.exists(WAKE), "nothing to wake a worker for while it runs"


async def test_replace_after_the_run_ended_but_before_its_replacement_was_promoted_takes_its_place(
    redis: Redis,
) -> None:
    await redis.set(NEXT_PREFIX + "k", b"waiting")
    await redis.zadd(QUEUE, {"k": NOW})
    assert await replace(redis, "k", b"newest") == 2
    assert await redis.get(JOB_PREFIX + "k") == b"newest"
    assert not await redis.exists(NEXT_PREFIX + "k")


async def test_claim_holds_a_waiting_replacement_back_while_its_job_runs_and_looks_again_soon(redis: Redis) -> None:
    await leased(redis, "k", OTHER, NOW + 5_000)
    await redis.set(NEXT_PREFIX + "k", b"next")
    await redis.zadd(QUEUE, {"k": NOW - 1})
    await queued(redis, "free")
    ids, _, _, nxt, _ = await claim(redis)
    assert ids == ["free"]
    assert await redis.zscore(QUEUE, "k") == NOW + 200, "stays queued, looked at again after recheck_ms"
    assert float(nxt) == NOW + 200
    assert await redis.get(ip("k")) == OTHER.encode()


async def test_claim_promotes_a_waiting_replacement_once_its_job_ended(redis: Redis) -> None:
    await redis.set(NEXT_PREFIX + "k", b"next", px=90_000)
    await redis.set(RESULT_PREFIX + "k", b"the ended run's result")
    await redis.zadd(QUEUE, {"k": NOW - 1})
    ids, payloads, tries, _, _ = await claim(redis)
    assert (ids, payloads, tries) == (["k"], [b"next"], [1])
    assert await redis.get(JOB_PREFIX + "k") == b"next"
    assert 0 < await redis.pttl(JOB_PREFIX + "k") <= 90_000
    assert not await redis.exists(NEXT_PREFIX + "k", RESULT_PREFIX + "k")


async def test_claim_of_a_job_without_payload_or_replacement_still_reports_it_missing(redis: Redis) -> None:
    await redis.zadd(QUEUE, {"gone": NOW - 1})
    ids, payloads, *_ = await claim(redis)
    assert (ids, payloads) == (["gone"], [None])


async def test_finish_requeue_hands_the_place_to_a_waiting_replacement_with_fresh_tries(redis: Redis) -> None:
    await leased(redis, "k", ME, NOW + 5_000)
    await redis.set(RETRY_PREFIX + "k", 1)
    await redis.set(NEXT_PREFIX + "k", b"next")
    await redis.zadd(QUEUE, {"k": NOW + 700})
    await finish(redis, ("Q", "k", "", "", NOW))
    assert await redis.get(JOB_PREFIX + "k") == b"next"
    assert await redis.zscore(QUEUE, "k") == NOW + 700, "at the replacement's own time"
    assert not await redis.exists(NEXT_PREFIX + "k", RETRY_PREFIX + "k", ip("k"))
    assert await redis.zscore(LEASES, "k") is None


async def test_finish_retry_promotes_a_replacement_that_expires_like_its_job(redis: Redis) -> None:
    await leased(redis, "k", ME, NOW + 5_000)
    await redis.set(NEXT_PREFIX + "k", b"next", px=90_000)
    await redis.zadd(QUEUE, {"k": NOW - 50})
    await finish(redis, ("R", "k", "", "", NOW + 10_000))
    assert await redis.zscore(QUEUE, "k") == NOW, "due now, not at the retry's backoff"
    assert 0 < await redis.pttl(JOB_PREFIX + "k") <= 90_000


async def test_a_paused_queue_hands_out_nothing_until_resumed_and_resume_wakes_a_worker(redis: Redis) -> None:
    await queued(redis, "a")
    assert await eval_script(redis, _scripts.PAUSE, [PAUSED], ['{"paused_ms": 1}']) == 1
    assert await eval_script(redis, _scripts.PAUSE, [PAUSED], ['{"paused_ms": 2}']) == 0
    assert await eval_script(redis, _scripts.CLAIM, [QUEUE, WAKE, LEASES, PAUSED], [NOW, 10, 10_000, ME, 200]) == [
        [],
        [],
        [],
        None,
        0,
        [],
        1,
    ]
    assert await redis.zscore(QUEUE, "a") == NOW - 1, "the job stays queued"
    assert await redis.get(PAUSED) == b'{"paused_ms": 1}', "the first pause's record is kept"
    assert await eval_script(redis, _scripts.RESUME, [PAUSED, WAKE], []) == 1
    assert await redis.lrange(WAKE, 0, -1) == [b"1"]
    assert await eval_script(redis, _scripts.RESUME, [PAUSED, WAKE], []) == 0
    ids, *_ = await claim(redis)
    assert ids == ["a"]


async def test_claim_of_a_dead_workers_run_keeps_its_waiting_replacement_queued_behind_it(redis: Redis) -> None:
    # the marker ran out a moment before the lease entry: the queue's entry (the replacement's) is due
    await leased(redis, "k", None, NOW + 50)
    await redis.set(NEXT_PREFIX + "k", b"next")
    await redis.zadd(QUEUE, {"k": NOW - 1})
    ids, payloads, *_ = await claim(redis)
    assert (ids, payloads) == (["k"], [b"{}"]), "the old run is taken over first"
    assert await redis.zscore(QUEUE, "k") == NOW + 200, "its replacement is still queued, behind it"
    assert await redis.get(NEXT_PREFIX + "k") == b"next"


async def test_claim_of_an_overdue_lease_leaves_the_replacements_own_time_alone(redis: Redis) -> None:
    await leased(redis, "k", None, NOW - 5)
    await redis.set(NEXT_PREFIX + "k", b"next")
    await redis.zadd(QUEUE, {"k": NOW + 9_000})
    ids, *_ = await claim(redis)
    assert ids == ["k"]
    assert await redis.zscore(QUEUE, "k") == NOW + 9_000


async def test_replace_of_a_job_in_the_failed_set_takes_it_out_like_a_retry(redis: Redis) -> None:
    await redis.zadd(FAILED, {"k": NOW})
    await redis.hset(FAILED_JOBS, "k", b"{}")
    assert await replace(redis, "k", b"new") == 1
    assert not await redis.exists(FAILED, FAILED_JOBS)


async def test_finish_of_a_failed_run_with_a_replacement_waiting_runs_the_replacement_instead(redis: Redis) -> None:
    await leased(redis, "k", ME, NOW + 5_000)
    await redis.set(NEXT_PREFIX + "k", b"next")
    await redis.zadd(QUEUE, {"k": NOW + 300})
    await finish(redis, ("F", "k", b'{"error": 1}', b"", 0))
    assert not await redis.exists(FAILED, FAILED_JOBS), "superseded, not recorded"
    assert await redis.get(JOB_PREFIX + "k") == b"next"
    assert await redis.zscore(QUEUE, "k") == NOW + 300
    assert await redis.lrange(WAKE, 0, -1) == [b"1"]
