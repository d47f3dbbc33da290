"""Worker metrics: Prometheus text on a loopback-only port, counting what really happened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue.redis._server import free_port
from tests.support import running_worker


async def good(ctx: dict[str, Any]) -> None:
    pass


async def bad(ctx: dict[str, Any]) -> None:
    raise scalr_queue.Fail("no")


def listening_addresses(port: int) -> set[str]:
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            found.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


async def test_metrics_count_jobs_and_bind_loopback_only(redis: Redis, set_env: Callable[..., None]) -> None:
    port = free_port()
    set_env(SCALR_QUEUE_METRICS_PORT=str(port))
    async with running_worker([good, bad]):
        await (await scalr_queue.enqueue("good")).result(timeout=5)
        with pytest.raises(scalr_queue.JobFailedError):
            await (await scalr_queue.enqueue("bad")).result(timeout=5)
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        assert listening_addresses(port) == {"127.0.0.1"}
    assert 'scalr_queue_jobs_succeeded_total{queue="default",task="good"} 1.0' in text
    assert 'scalr_queue_jobs_failed_total{queue="default",task="bad"} 1.0' in text
    assert 'scalr_queue_jobs_started_total{queue="default",task="bad"} 1.0' in text


async def test_metrics_endpoint_closes_with_the_worker(redis: Redis, set_env: Callable[..., None]) -> None:
    port = free_port()
    set_env(SCALR_QUEUE_METRICS_PORT=str(port))
    async with running_worker([good]):
        assert listening_addresses(port) == {"127.0.0.1"}
    assert listening_addresses(port) == set()
