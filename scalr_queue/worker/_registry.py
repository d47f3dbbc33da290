"""Live workers publish who they are and which tasks (with signatures) they run, per queue.

Producers read this to check ``enqueue`` calls when they cannot import the worker module, and
``--check``/``queue_stats`` read it to tell whether a worker was seen recently. Each entry
carries its own expiry; the hash itself expires when no worker renews it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from .._codec import dumps, loads
from .._tasks import TaskSignature
from ..redis import _scripts
from ..redis._connection import aw, eval_script
from ..redis._keys import health_check_key, workers_key


@dataclass(frozen=True)
class WorkerInfo:
    """One live worker as it last reported itself."""

    worker_id: str
    module: str
    queue: str
    host: str
    pid: int
    concurrency: int
    running: int
    complete: int
    failed: int
    retried: int
    started_ms: int
    seen_ms: int
    tasks: dict[str, TaskSignature]
    # task -> its declared limits (max_concurrent, concurrency_key, rate_limit), for limited tasks only
    limits: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, queue: str, data: dict[str, Any]) -> WorkerInfo:
        return cls(
            worker_id=data["id"],
            module=data.get("module", "?"),
            queue=queue,
            host=data.get("host", "?"),
            pid=int(data.get("pid", 0)),
            concurrency=int(data.get("concurrency", 0)),
            running=int(data.get("running", 0)),
            complete=int(data.get("complete", 0)),
            failed=int(data.get("failed", 0)),
            retried=int(data.get("retried", 0)),
            started_ms=int(data.get("started_ms", 0)),
            seen_ms=int(data.get("seen_ms", 0)),
            tasks={k: TaskSignature.from_json(v) for k, v in data.get("tasks", {}).items()},
            limits=dict(data.get("limits") or {}),
        )


async def publish(redis: Redis, queue: str, entry: dict[str, Any], ttl_s: float, health_line: str) -> None:
    """Write the worker's entry and arq's health key in one call."""
    now_ms = int(time.time() * 1000)
    entry = {**entry, "seen_ms": now_ms, "expires_ms": now_ms + int(ttl_s * 1000)}
    keys = [health_check_key(queue), workers_key(queue)]
    args = [int(ttl_s * 1000), entry["id"], health_line, dumps(entry)]
    await eval_script(redis, _scripts.HEARTBEAT, keys, args)


async def remove(redis: Redis, queue: str, worker_id: str) -> None:
    await aw(redis.hdel(workers_key(queue), worker_id))


async def live_workers(redis: Redis, queue: str) -> list[WorkerInfo]:
    """Entries that have not outlived their own expiry; stale ones are pruned on the way."""
    raw: dict[bytes, bytes] = await aw(redis.hgetall(workers_key(queue)))
    now_ms = time.time() * 1000
    out: list[WorkerInfo] = []
    stale: list[Any] = []  # field names as bytes: redis-py annotates hdel's keys as str, but sends either
    for field, value in raw.items():
        try:
            data = loads(value)
        except ValueError:
            stale.append(field)
            continue
        if data.get("expires_ms", 0) < now_ms:
            stale.append(field)
        else:
            out.append(WorkerInfo.from_json(queue, data))
    if stale:
        await aw(redis.hdel(workers_key(queue), *stale))
    return sorted(out, key=lambda w: w.started_ms)
