"""Hot queue split: one logical queue over N shards (``SCALR_QUEUE_SHARDS=bulk=4``).

One queue's keys share one hash tag, so on a Redis Cluster a queue lives in one slot, on one
master: one master's core is that queue's ceiling. Splitting spreads it over N queues named
``bulk``, ``bulk~1`` ... ``bulk~3`` (N tags, N slots, on as many masters as the cluster spreads
them to). Enqueue picks the shard from a hash of the job id, so one ``_job_id`` always lands on
the same shard and its uniqueness still holds; a worker started for ``bulk`` serves every shard,
each with an equal share of its concurrency. Shard 0 keeps the plain name, so splitting a queue
that already has jobs leaves them where workers still find them.
"""

from __future__ import annotations

import zlib

SHARD_MARK = "~"


def shard_names(queue: str, count: int) -> list[str]:
    """The queues one logical queue is split into: ``[queue, queue~1, ...]``."""
    return [queue] + [f"{queue}{SHARD_MARK}{i}" for i in range(1, count)]


def shard_for(queue: str, job_id: str, count: int) -> str:
    """The shard a job goes to: CRC32 of its id, so the same id always goes to the same shard."""
    if count <= 1:
        return queue
    index = zlib.crc32(job_id.encode()) % count
    return queue if index == 0 else f"{queue}{SHARD_MARK}{index}"


def logical_queue(name: str) -> str:
    """``bulk~3`` -> ``bulk``."""
    return name.split(SHARD_MARK, 1)[0]
