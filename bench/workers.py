"""The one job body every system runs, and a vanilla arq worker entry point.

``noop`` is the same coroutine for arq and scalr_queue: it reads the clock on its first line,
then makes one small write: it pushes its pickup delay when the job carries its send time
(``t0``), else it counts itself done with one increment. One write either way, so a job timed
for latency costs what a drained job does, and a load level at a fraction of the drain rate
asks the worker for that fraction of the work. Both systems hand the task a redis-py asyncio
client as ``ctx["redis"]``, so the body sends exactly the same commands under either.

Run a vanilla arq worker (what the benchmark spawns)::

    python -m bench.workers --redis-url redis://127.0.0.1:6400/0 --poll-delay 0.01 --max-jobs 10

scalr_queue's own CLI loads this module by name: ``python -m scalr_queue.worker bench.workers``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

# counter the job body increments once per job (redis-py sends INCRBY)
DONE_KEY = "bench:done"
# list of pickup delays in seconds, pushed by jobs that carry their send time ``t0``
LAT_KEY = "bench:lat"
# loop turns of pure-Python arithmetic in ``burn``: about half a millisecond of one core here
BURN_LOOPS = 10_000


async def noop(ctx: dict[str, Any], **kw: Any) -> None:
    started = time.time()
    redis = ctx["redis"]
    t0 = kw.get("t0")
    if t0 is not None:
        await redis.rpush(LAT_KEY, repr(started - float(t0)))
    else:
        await redis.incr(DONE_KEY)


async def burn(ctx: dict[str, Any], **kw: Any) -> None:
    """A CPU-bound job: fixed Python work, then the same increment (``bench.processes``).

    Its cost is work, not wall time, so under contention it still measures throughput."""
    x = 0
    for i in range(BURN_LOOPS):
        x += i * i
    await ctx["redis"].incr(DONE_KEY)


# scalr_queue's worker module contract
tasks = [noop, burn]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="vanilla arq worker for the benchmark")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--poll-delay", type=float, default=0.5)
    parser.add_argument("--max-jobs", type=int, default=10)
    parser.add_argument("--queue", default=None, help="arq queue key (default: arq's own, arq:queue)")
    parser.add_argument("--quiet", action="store_true", help="no per-job log lines")
    args = parser.parse_args(argv)

    import logging.config

    from arq.connections import RedisSettings
    from arq.logs import default_log_config
    from arq.worker import Worker

    # the same logging the `arq` CLI sets up (one INFO line per job start and finish)
    logging.config.dictConfig(default_log_config(verbose=False))
    if args.quiet:
        logging.getLogger("arq").setLevel(logging.WARNING)
    kwargs: dict[str, Any] = {}
    if args.queue:
        kwargs["queue_name"] = args.queue
    worker = Worker(
        functions=[noop],  # type: ignore[list-item]
        redis_settings=RedisSettings.from_dsn(args.redis_url),
        max_jobs=args.max_jobs,
        poll_delay=args.poll_delay,
        handle_signals=True,
        **kwargs,
    )
    worker.run()


if __name__ == "__main__":
    main()
