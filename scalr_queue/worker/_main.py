"""``python -m scalr_queue.worker MODULE[:ATTR] [--queue Q] [--concurrency N] [--processes N|auto] [--burst] ...``.

Exit codes: 0 clean stop (or ``--check`` healthy), 1 ``--check`` unhealthy, 2 a user mistake
(bad module, bad setting) reported in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import ConfigurationError, ScalrQueueError, exit_code

if TYPE_CHECKING:
    from .._settings import Settings

logger = logging.getLogger("scalr_queue.worker")

PROG = "python -m scalr_queue.worker"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run a scalr_queue worker for a module's tasks.")
    add_worker_arguments(parser)
    return parser


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "module",
        help="worker module (reads its `tasks`), or module:ATTR (a list or a WorkerSettings class), e.g. src.worker",
    )
    parser.add_argument("--queue", help="queue to serve (default: SCALR_QUEUE_QUEUE_NAME or 'default')")
    parser.add_argument("--concurrency", type=int, help="jobs run at once (default: SCALR_QUEUE_CONCURRENCY=10)")
    parser.add_argument(
        "--processes",
        metavar="N|auto",
        help="run N worker processes under one parent that restarts them and drains them all on SIGTERM; "
        "auto: the cores the container may use (default: SCALR_QUEUE_PROCESSES=1)",
    )
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument(
        "--health-port",
        type=int,
        metavar="PORT",
        help="serve GET /healthz on this port: 200 while healthy, 503 with the reason "
        "(default: SCALR_QUEUE_HEALTH_PORT; unset: off)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if a worker of this module/queue reported healthy recently, else 1",
    )


async def check_health(module: str, queue: str) -> int:
    from ..producer._client import QueueClient

    client = QueueClient()
    try:
        workers = await client.workers(queue)
    finally:
        await client.close()
    mine = [w for w in workers if w.module == module or w.module.split(":")[0] == module.split(":")[0]]
    if mine:
        newest = max(mine, key=lambda w: w.seen_ms)
        print(
            f"healthy: {len(mine)} worker(s) of {module} on queue {queue!r}; latest {newest.worker_id} "
            f"running={newest.running} complete={newest.complete} failed={newest.failed}"
        )
        return 0
    others = f" (other modules seen: {', '.join(sorted({w.module for w in workers}))})" if workers else ""
    print(f"unhealthy: no worker of {module} on queue {queue!r} reported recently{others}")
    return 1


def run(args: argparse.Namespace, prog: str = PROG) -> int:
    from .._settings import QUEUE_NAME_HELP, QUEUE_NAME_RE, load_settings, parse_processes
    from ..observe._logging import configure_logging
    from ..redis._memory import is_memory_url

    try:
        settings = load_settings()
        if args.queue is not None and not QUEUE_NAME_RE.match(args.queue):
            raise ConfigurationError(f"--queue {args.queue!r} is not valid: expected {QUEUE_NAME_HELP}")
        if args.concurrency is not None and not 1 <= args.concurrency <= 10_000:
            raise ConfigurationError(f"--concurrency {args.concurrency} is out of range: expected 1 to 10000")
        health_port = getattr(args, "health_port", None)
        if health_port is not None:
            if not 1 <= health_port <= 65535:
                raise ConfigurationError(f"--health-port {health_port} is out of range: expected 1 to 65535")
            settings = settings.model_copy(update={"health_port": health_port})
        processes = getattr(args, "processes", None)
        if processes is not None:
            try:
                settings = settings.model_copy(update={"processes": parse_processes(processes)})
            except ValueError as exc:
                raise ConfigurationError(f"--processes {processes!r} is not valid: {exc}") from None
        if is_memory_url(settings.redis_url):
            raise ConfigurationError(
                "REDIS_URL=memory:// keeps jobs inside one process, so a worker process would see none: "
                "set SCALR_QUEUE_MEMORY_WORKER in the app instead, or point REDIS_URL at Redis (docs/in-process.md)"
            )
        configure_logging(settings)
        from . import _event_loop

        loop = _event_loop.loop_factory(settings.event_loop)  # uvloop asked for and missing: one line now
        if args.check:
            return asyncio.run(check_health(args.module, args.queue or settings.queue_name))
        from ._loader import load_worker_config
        from ._worker import ScalrWorker

        config = load_worker_config(args.module)  # in the parent too: a bad module is one line, not N
    except ScalrQueueError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exit_code(exc)

    if settings.processes != 1:
        return supervise(args, settings)

    async def main() -> None:
        shards = settings.shard_count(args.queue or config.queue_name or settings.queue_name)
        if shards > 1:
            from ._sharded import run_shards, shard_workers

            queue = args.queue or config.queue_name or settings.queue_name
            await run_shards(
                shard_workers(config, settings, queue, shards, concurrency=args.concurrency, burst=args.burst)
            )
            return
        worker = ScalrWorker(config, settings, queue=args.queue, concurrency=args.concurrency, burst=args.burst)
        await worker.run_async()

    from redis.exceptions import RedisError

    from ..redis._connection import is_permission_error, unavailable

    try:
        _event_loop.run(main(), loop)
    except KeyboardInterrupt:  # pragma: no cover - signal handlers normally catch this first
        return 130
    except ScalrQueueError as exc:  # found once running, e.g. a health port already taken
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except RedisError as exc:
        if not is_permission_error(exc):
            raise
        # a Redis ACL too narrow for the worker: one line and exit 2, not a traceback and a crash loop
        print(f"{prog}: error: {unavailable(exc, settings, 'worker')}", file=sys.stderr)
        return 2
    return 0


def supervise(args: argparse.Namespace, settings: Settings) -> int:
    """``--processes N``: this process becomes the parent of N workers (see ``_supervisor``)."""
    from ._cores import available_cores
    from ._supervisor import Supervisor, port_env, worker_command

    count = available_cores() if settings.processes == "auto" else settings.processes
    logger.info(
        "starting %d worker processes%s",
        count,
        " (auto: the cores this process may use)" * (settings.processes == "auto"),
    )
    supervisor = Supervisor(
        count=count,
        command=worker_command(args.module, args.queue, args.concurrency, args.burst),
        env_for=port_env(settings.health_port, settings.metrics_port),
        burst=args.burst,
    )
    return supervisor.run()


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
