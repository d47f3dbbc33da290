"""pydocket (``docket``) for the benchmark: the task collection its CLI loads, and a producer.

Worker, as the benchmark starts it (docket's own CLI; docket name ``bench``)::

    bench/.venvs/pydocket/bin/python -m docket worker --tasks bench.peers.docket_app:tasks \\
        --docket bench --url $REDIS_URL --concurrency 10 --no-schedule-automatic-tasks

Settings, chosen to match the others: ``--concurrency 10`` (its default); docket's defaults
otherwise (a stream consumer group read from ``0-0``, 100 ms minimum check interval, 250 ms
scheduling resolution, INFO logging: per-task lines). ``--no-schedule-automatic-tasks``: the
bench has no perpetual tasks. Docket hands a task no client, so the body's ``ctx["redis"]`` is
one redis-py client this module opens on the first job (a worker's pool does the same for arq).
Immediate jobs wait in the stream ``bench:stream``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from docket import Docket
from redis.asyncio import Redis

from bench.workers import noop as _body

DOCKET = "bench"
STREAM_KEY = f"{DOCKET}:stream"
_ctx: dict[str, Any] = {}


async def noop(t0: float | None = None) -> None:
    if "redis" not in _ctx:
        _ctx["redis"] = Redis.from_url(os.environ["REDIS_URL"])
    await _body(_ctx, t0=t0)


tasks = [noop]


class DocketProducer:
    batch_api = "asyncio.gather(docket.add(noop)() x B)"

    def __init__(self, url: str) -> None:
        self.docket = Docket(name=DOCKET, url=url)

    async def start(self) -> None:
        await self.docket.__aenter__()
        self.docket.register(noop)

    async def enqueue(self, **kw: Any) -> Any:
        return await self.docket.add(noop)(**kw)

    async def enqueue_batch(self, size: int) -> Any:
        return await asyncio.gather(*(self.docket.add(noop)() for _ in range(size)))

    async def close(self) -> None:
        await self.docket.__aexit__(None, None, None)
