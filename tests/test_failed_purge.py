"""Purging the failed set: one job by id, or all of a queue's only when asked for by name."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue.testing import free_port
from tests.support import run_cli
from tests.test_failed_retry_all import add_failed

IDS = [f"job-{i:02}" for i in range(25)]


async def failed_ids(redis: Redis) -> list[str]:
    return sorted(m.decode() for m in await redis.zrange("scalr:failed:default", 0, -1))


async def test_cli_purge_without_id_or_all_removes_nothing_and_exits_2(redis: Redis) -> None:
    await add_failed(redis, IDS, retriable=True, score=1_000)
    result = run_cli("failed", "purge")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "scalr-queue: error: failed purge needs a JOB_ID, or --all to remove every failed job of the queue\n"
    )
    assert await failed_ids(redis) == IDS


async def test_cli_purge_all_says_how_many_and_which_it_removed(redis: Redis) -> None:
    await add_failed(redis, IDS[:3], retriable=True, score=1_000)
    await add_failed(redis, IDS[3:], retriable=False, score=2_000)
    result = run_cli("failed", "purge", "--all")
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first == "purged 25 failed job(s):"
    assert len(rest) == 21 and rest[-1] == "  ... and 5 more"
    assert set(rest[:20]) <= {f"  {job_id}" for job_id in IDS[3:]}
    assert await redis.exists("scalr:failed:default", "scalr:failed-jobs:default") == 0


async def test_cli_purge_all_json_lists_the_ids(redis: Redis) -> None:
    await add_failed(redis, IDS[:3], retriable=True, score=1_000)
    result = run_cli("failed", "purge", "--all", "--json")
    assert json.loads(result.stdout) == {"purged": 3, "job_ids": sorted(IDS[:3], reverse=True)}


async def test_cli_purge_one_id_removes_only_that_job(redis: Redis) -> None:
    await add_failed(redis, IDS[:3], retriable=True, score=1_000)
    result = run_cli("failed", "purge", "job-01", "--json")
    assert json.loads(result.stdout) == {"purged": 1, "job_ids": ["job-01"]}
    assert await failed_ids(redis) == ["job-00", "job-02"]
    assert run_cli("failed", "purge", "job-02").stdout == "purged 1 failed job(s):\n  job-02\n"
    missing = run_cli("failed", "purge", "job-01")
    assert missing.returncode == 1
    assert missing.stderr == "scalr-queue: error: job 'job-01' is not in the failed set of queue 'default'\n"


@pytest.mark.parametrize("action", ["purge", "retry"])
async def test_cli_bulk_action_refuses_an_id_together_with_all(redis: Redis, action: str) -> None:
    await add_failed(redis, IDS[:3], retriable=True, score=1_000)
    result = run_cli("failed", action, "job-01", "--all")
    assert result.returncode == 2
    assert result.stderr == f"scalr-queue: error: failed {action} takes a JOB_ID or --all, not both\n"
    assert await failed_ids(redis) == IDS[:3]


async def test_python_purge_needs_a_job_id_and_purge_all_removes_everything(redis: Redis) -> None:
    await add_failed(redis, IDS[:3], retriable=True, score=1_000)
    failed = scalr_queue.get_client().failed
    with pytest.raises(TypeError):
        await failed.purge()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="purge_all"):
        await failed.purge(None)  # type: ignore[arg-type]
    assert await failed_ids(redis) == IDS[:3]
    assert await failed.purge("job-00") == 1
    report = await failed.purge_all()
    assert (report.count, report.job_ids) == (2, ["job-02", "job-01"])
    assert await failed.count() == 0


@pytest.mark.parametrize(("action", "what"), [("purge", "remove"), ("retry", "re-drive")])
def test_cli_bulk_action_without_id_or_all_is_refused_before_connecting(
    set_env: Callable[..., None], action: str, what: str
) -> None:
    set_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    result = run_cli("failed", action)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"scalr-queue: error: failed {action} needs a JOB_ID, or --all to {what} every failed job of the queue\n"
    )
