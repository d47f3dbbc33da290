"""What the try history and the finished index cost FINISH: the script before them against now.

Usage::

    python -m bench.finish                 # 20,000 jobs per variant, 5 rounds
    python -m bench.finish --jobs 2000     # quicker
    make bench-finish

One fresh redis-server on a free 127.0.0.1 port. Each round writes N leased jobs as CLAIM
leaves them (payload, lease marker, leases entry, try count), then settles them with FINISH in
batches of 10 ``D`` ops carrying a 200-byte result, as a draining worker does; the two variants
alternate inside every round, each on its own queue. Measured: Redis CPU time in the script per
job (``INFO commandstats``, ``cmdstat_evalsha`` usec), and the wall time of the calls. The
"before" script is the one committed at ``--ref`` (default: the parent of the commit that added
the history), read with ``git show``, so the ratio comes from one run on one Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
import types
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from scalr_queue.redis import _scripts
from scalr_queue.redis._connection import eval_script
from scalr_queue.redis._keys import (
    FINISHED_STATES,
    IN_PROGRESS_PREFIX,
    JOB_PREFIX,
    RETRY_PREFIX,
    cancels_key,
    failed_jobs_key,
    failed_key,
    finished_key,
    leases_key,
    queue_key,
    tries_key,
    wake_key,
)
from scalr_queue.redis._server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
WORKER = "bench:1:worker"
BATCH = 10
RESULT = (
    b'{"t":1,"f":"noop","a":[],"k":{"n":1},"et":1,"s":true,"st":1,"ft":2,"q":"b","id":"x","r":"' + b"x" * 100 + b'"}'
)
ATTEMPT = b'{"try":1,"start_ms":1800000000000,"end_ms":1800000000005,"outcome":"complete","worker":"host:123:abcdef"}'
PAYLOAD = b'{"t":null,"f":"noop","a":[],"et":1800000000000,"k":{"n":1}}'


def old_finish(ref: str) -> str:
    """FINISH as committed at ``ref``."""
    source = subprocess.run(
        ["git", "show", f"{ref}:scalr_queue/redis/_scripts.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType("old_scripts")
    exec(
        compile(source.replace("from ._keys import", "from scalr_queue.redis._keys import"), "old", "exec"),
        module.__dict__,
    )
    finish: str = module.FINISH
    return finish


async def lease(redis: Redis, queue: str, ids: list[str], now: int) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.set(JOB_PREFIX + job_id, PAYLOAD)
            pipe.set(IN_PROGRESS_PREFIX + job_id, WORKER, px=600_000)
            pipe.set(RETRY_PREFIX + job_id, 1)
        pipe.zadd(leases_key(queue), dict.fromkeys(ids, now + 600_000))
        await pipe.execute()


async def settle(redis: Redis, queue: str, ids: list[str], script: str, new: bool, attempt: bytes) -> float:
    """FINISH the jobs in batches; returns the wall seconds spent in the calls."""
    base = [queue_key(queue), failed_key(queue), failed_jobs_key(queue), wake_key(queue), leases_key(queue)]
    took = 0.0
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        now = int(time.time() * 1000)
        if new:
            keys = [*base, cancels_key(queue), *(finished_key(queue, s) for s in FINISHED_STATES)]
            args: list[Any] = [now, 10_000, WORKER, 10_000, 3_600_000, 90_000_000]
            for job_id in batch:
                args += ["D", job_id, RESULT, "", 3_600_000, attempt]
                if attempt:
                    keys.append(tries_key(job_id))
        else:
            keys = [*base, cancels_key(queue)]
            args = [now, 10_000, WORKER]
            for job_id in batch:
                args += ["D", job_id, RESULT, "", 3_600_000]
        t0 = time.perf_counter()
        await eval_script(redis, script, keys, args)
        took += time.perf_counter() - t0
    return took


async def script_usec(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("usec", 0)) + int(stats.get("cmdstat_eval", {}).get("usec", 0))


async def main(jobs: int, rounds: int, ref: str) -> None:
    variants = {
        "before": (old_finish(ref), False, b""),
        "after, first try (no try record)": (_scripts.FINISH, True, b""),
        "after, a later try (try record written)": (_scripts.FINISH, True, ATTEMPT),
    }
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    with RedisServer() as server:
        redis: Redis = Redis.from_url(server.url)
        for r in range(rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for v, name in enumerate(order):
                script, new, attempt = variants[name]
                queue = f"v{v}"
                ids = [f"{queue}-{r}-{i:07d}-{'x' * 16}" for i in range(jobs)]
                await lease(redis, queue, ids, int(time.time() * 1000))
                before = await script_usec(redis)
                took = await settle(redis, queue, ids, script, new, attempt)
                cpu[name].append((await script_usec(redis) - before) / jobs)
                wall[name].append(took / jobs * 1e6)
                await redis.flushall()
        await redis.aclose()
    print(f"FINISH, {jobs} jobs x {rounds} rounds, batches of {BATCH} D ops (median per job)\n")
    print("| variant | Redis CPU in script, us/job | wall per job, us |")
    print("|---|---|---|")
    for name in variants:
        print(f"| {name} | {statistics.median(cpu[name]):.2f} | {statistics.median(wall[name]):.2f} |")
    print()
    for name in list(variants)[1:]:
        ratio = statistics.median(cpu[name]) / statistics.median(cpu["before"])
        wall_ratio = statistics.median(wall[name]) / statistics.median(wall["before"])
        print(f"{name} / before: Redis CPU x{ratio:.2f}, wall x{wall_ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ref", default="a86c59b~1", help="git ref whose FINISH is the 'before'")
    opts = parser.parse_args()
    asyncio.run(main(opts.jobs, opts.rounds, opts.ref))
