"""HOLD, RELEASE and the hold branch of CLAIM, called directly with crafted keys."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from scalr_queue._codec import job_payload
from scalr_queue.control._holds import Where, hold_field, hold_rule, parse_where
from scalr_queue.redis import _scripts
from scalr_queue.redis._connection import eval_script
from scalr_queue.redis._keys import JOB_PREFIX, RETRY_PREFIX, held_key, holds_key, paused_key
from tests.test_scripts import LEASE, LEASES, ME, NOW, QUEUE, WAKE, Q, ip

HOLDS, HELD = holds_key(Q), held_key(Q)


def payload(task: str, **kwargs: Any) -> bytes:
    return job_payload(task, json.dumps(kwargs).encode(), NOW)


async def job(redis: Redis, job_id: str, task: str, score: int = NOW - 1, **kwargs: Any) -> None:
    await redis.set(JOB_PREFIX + job_id, payload(task, **kwargs))
    await redis.zadd(QUEUE, {job_id: score})


async def hold(redis: Redis, task: str, where: str | None = None) -> int:
    clause = parse_where(where) if where is not None else None
    return int(await eval_script(redis, _scripts.HOLD, [HOLDS], [hold_field(task, clause), hold_rule(task, clause)]))


async def claim(redis: Redis, count: int = 10, scan: int = 1000) -> tuple[list[str], list[int], int]:
    keys = [QUEUE, WAKE, LEASES, paused_key(Q), HOLDS, HELD]
    ids, _payloads, tries, _nxt, more, _dues, *_ = await eval_script(
        redis, _scripts.CLAIM, keys, [NOW, count, LEASE, ME, 200, scan]
    )
    return [i.decode() for i in ids], [int(t) for t in tries], int(more)


async def release(redis: Redis, task: str, where: str | None = None, drop: bool = False) -> list[Any]:
    field = hold_field(task, parse_where(where)) if where is not None else ""
    out = await eval_script(redis, _scripts.RELEASE, [HOLDS, HELD, QUEUE, WAKE], [NOW, int(drop), task, field])
    return [out[0], out[1], sorted(d.decode() for d in out[2]), out[3]]


async def test_claim_moves_matching_jobs_aside_with_their_due_time_and_claims_the_ones_behind(redis: Redis) -> None:
    await hold(redis, "bill", "customer_id == 42")
    for n in range(5):
        await job(redis, f"h{n}", "bill", score=NOW - 100 + n, customer_id=42)
    await job(redis, "other-customer", "bill", score=NOW - 3, customer_id=7)
    await job(redis, "other-task", "mail", score=NOW - 2, customer_id=42)
    await job(redis, "no-kwarg", "bill", score=NOW - 1)
    ids, tries, more = await claim(redis, count=2)
    assert ids == ["other-customer", "other-task"], "held jobs do not block the ones queued behind them"
    assert tries == [1, 1] and more == 1
    assert await redis.zrange(HELD, 0, -1, withscores=True) == [(f"h{n}".encode(), NOW - 100 + n) for n in range(5)]
    assert not any([await redis.exists(RETRY_PREFIX + f"h{n}", ip(f"h{n}")) for n in range(5)]), "no try burnt"
    assert await redis.zrange(QUEUE, 0, -1) == [b"no-kwarg"]


async def test_claim_moves_at_most_the_scan_limit_and_asks_for_another_claim(redis: Redis) -> None:
    await hold(redis, "bill")
    for n in range(5):
        await job(redis, f"h{n}", "bill", score=NOW - 100 + n)
    await job(redis, "free", "mail")
    assert await claim(redis, scan=3) == ([], [], 1)
    assert await redis.zcard(HELD) == 3
    assert await redis.lrange(WAKE, 0, -1) == [b"1"], "another worker picks up where this claim stopped"
    assert (await claim(redis, scan=3))[0] == ["free"]
    assert await redis.zcard(HELD) == 5


async def test_each_operator_compares_numbers_with_numbers_and_text_with_text(redis: Redis) -> None:
    cases = {
        "n == 5": ["5"],
        "n != 5": ["3", "8", "'5'", "'x'", "None", "[5]"],
        "n < 5": ["3"],
        "n <= 5": ["3", "5"],
        "n > 5": ["8"],
        "n >= 5": ["5", "8"],
        "n >= m": ["'x'"],
        "n == null": ["None"],
    }
    for where, held in cases.items():
        await redis.flushdb()
        await hold(redis, "t", where)
        for value in (3, 5, 8, "5", "x", None, [5]):
            await job(redis, repr(value), "t", n=value)
        await job(redis, "no-n", "t")
        await claim(redis, count=20)
        assert sorted(await redis.zrange(HELD, 0, -1)) == sorted(v.encode() for v in held), where


async def test_a_job_whose_payload_is_not_json_is_never_held(redis: Redis) -> None:
    await hold(redis, "t")
    await redis.set(JOB_PREFIX + "junk", b"\x80not json")
    await redis.zadd(QUEUE, {"junk": NOW - 1})
    assert (await claim(redis))[0] == ["junk"]


async def test_hold_is_idempotent_and_persistent(redis: Redis) -> None:
    assert await hold(redis, "t", "a == 1") == 1
    assert await hold(redis, "t", "a==1") == 0, "the same clause names the same hold"
    assert await redis.pttl(HOLDS) == -1
    assert json.loads(await redis.hget(HOLDS, "t where a == 1")) == {"f": "t", "k": "a", "op": "==", "v": 1}


async def test_release_requeues_at_the_due_time_or_now_and_wakes_a_worker(redis: Redis) -> None:
    await hold(redis, "t")
    await job(redis, "past", "t", score=NOW - 500)
    await job(redis, "future", "t", score=NOW + 500)
    await claim(redis)  # "future" is not due yet: it stays queued
    assert await redis.zrange(HELD, 0, -1) == [b"past"]
    await redis.zadd(HELD, {"future": NOW + 500})  # as if it had been due and held
    await redis.zrem(QUEUE, "future")
    assert await release(redis, "t") == [1, 2, [], 0]
    assert await redis.zrange(QUEUE, 0, -1, withscores=True) == [(b"past", NOW), (b"future", NOW + 500)]
    assert await redis.lrange(WAKE, 0, -1) == [b"1"]
    assert not await redis.exists(HOLDS, HELD)


async def test_release_of_one_clause_keeps_jobs_another_hold_still_matches(redis: Redis) -> None:
    await hold(redis, "t", "a == 1")
    await hold(redis, "t", "b == 2")
    await job(redis, "a", "t", a=1)
    await job(redis, "ab", "t", a=1, b=2)
    await claim(redis)
    assert await release(redis, "t", "a == 1") == [1, 1, [], 1]
    assert await redis.zrange(HELD, 0, -1) == [b"ab"]
    assert await redis.zrange(QUEUE, 0, -1) == [b"a"]


async def test_release_of_an_unknown_hold_changes_nothing(redis: Redis) -> None:
    await hold(redis, "t", "a == 1")
    await job(redis, "a", "t", a=1)
    await claim(redis)
    assert await release(redis, "t", "a == 2") == [0, 0, [], 1]
    assert await release(redis, "other") == [0, 0, [], 1]
    assert await redis.zrange(HELD, 0, -1) == [b"a"]
    assert await redis.hkeys(HOLDS) == [b"t where a == 1"]


async def test_release_with_drop_deletes_the_jobs_and_names_them(redis: Redis) -> None:
    await hold(redis, "t")
    await job(redis, "x", "t")
    await job(redis, "y", "t")
    await claim(redis)
    await redis.set(RETRY_PREFIX + "y", 2)  # held after a retry: its count goes with it
    await redis.zadd(HELD, {"gone": NOW})  # a held id whose payload expired
    assert await release(redis, "t", drop=True) == [1, 0, ["x", "y"], 0]
    assert await redis.dbsize() == 0, "nothing of the dropped jobs is left behind"


def test_where_parses_json_values_else_text() -> None:
    assert parse_where("customer_id == 42") == Where("customer_id", "==", 42)
    assert parse_where(" region!=eu-west ") == Where("region", "!=", "eu-west")
    assert parse_where('name >= "a b"') == Where("name", ">=", "a b")
    assert parse_where("ok == true") == Where("ok", "==", True)
    assert str(parse_where("x<1.5")) == "x < 1.5"
