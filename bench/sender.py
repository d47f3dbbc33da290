"""The enqueue sender's RESP encoding: redis-py's ``pack_commands``, hiredis's ``pack_command``, by hand.

    python -m bench.sender                  # 7 repeats of 10,000 jobs per row: about a minute
    python -m bench.sender --repeats 3 --jobs 2000
    python -m bench.sender --tiny           # seconds: proves the plumbing, measures nothing

Everything else is the same code: ``scalr_queue.enqueue`` / ``enqueue_many`` through the
shipped ``ScriptSender`` (its batching, checkout, retry), with only ``ScriptSender.encode``
swapped while one variant runs. Each row is measured in chunks of 1,000 jobs that alternate
between the variants (the order rotating from chunk to chunk), in one process, against one
redis-server on a free loopback port, so a noisy neighbour hits all alike; only the ratio
columns mean anything. Producer CPU is this process's ``process_time``: Redis's own work is not
in it. The markdown table goes to stdout, every repeat to bench/results/<UTC>-sender.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
CONCURRENT = 500  # enqueues started at once: the sender sends the first alone, the rest as one pipeline
MANY = 1_000  # jobs per enqueue_many call


def hand_pack(args: Any) -> bytes:
    """One command in RESP (``*<n>`` then ``$<len>`` + bytes per argument): the packer this compares."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def encode_hand(self: Any, conn: Any, commands: list[Any]) -> list[bytes]:
    return [b"".join(hand_pack(c) for c in commands)]


def encode_redis_py(self: Any, conn: Any, commands: list[Any]) -> list[bytes]:
    packed: list[bytes] = conn.pack_commands(commands)
    return packed


def encode_hiredis(self: Any, conn: Any, commands: list[Any]) -> list[bytes]:
    import hiredis

    return [b"".join(hiredis.pack_command(c) for c in commands)]


# the first is the baseline the ratios divide by
VARIANTS: dict[str, Callable[..., list[bytes]]] = {
    "redis-py pack_commands": encode_redis_py,
    "hand-packed RESP": encode_hand,
    "hiredis pack_command": encode_hiredis,
}


@contextlib.contextmanager
def encoder(fn: Callable[..., list[bytes]]) -> Iterator[None]:
    from scalr_queue.producer._sender import ScriptSender

    shipped = ScriptSender.encode
    ScriptSender.encode = fn  # type: ignore[method-assign]
    try:
        yield
    finally:
        ScriptSender.encode = shipped  # type: ignore[method-assign]


async def _timed(redis: Any, body: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``body`` run on an empty database."""
    await redis.flushdb()
    wall, cpu = time.perf_counter(), time.process_time()
    await body()
    return time.perf_counter() - wall, time.process_time() - cpu


def _pack_cost(fn: Callable[..., list[bytes]], conn: Any, commands: list[Any], batch: int) -> float:
    """µs per command to encode ``commands``, ``batch`` per encode call, best of 5 passes."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for i in range(0, len(commands), batch):
            fn(None, conn, commands[i : i + batch])
        best = min(best, time.perf_counter() - t)
    return best / len(commands) * 1e6


def _shapes() -> dict[str, tuple[int, Callable[[], Awaitable[Any]]]]:
    """Each way of enqueueing: jobs per chunk, and one chunk of it."""
    import scalr_queue

    async def sequential() -> None:
        for _ in range(MANY):
            await scalr_queue.enqueue("noop")

    async def concurrent() -> None:
        for _ in range(MANY // CONCURRENT):
            await asyncio.gather(*(scalr_queue.enqueue("noop") for _ in range(CONCURRENT)))

    async def many() -> None:
        await scalr_queue.enqueue_many([("noop", {}) for _ in range(MANY)])

    return {"sequential": (MANY, sequential), "concurrent": (MANY, concurrent), "many": (MANY, many)}


def _order(names: list[str], turn: int) -> list[str]:
    """Turn ``turn``'s order: rotated each turn and reversed every other, so no variant always follows another."""
    k = turn % len(names)
    rotated = names[k:] + names[:k]
    return rotated if (turn // len(names)) % 2 == 0 else rotated[::-1]


async def _one_repeat(rep: int, jobs: int, redis: Any, conn: Any, commands: list[Any]) -> dict[str, dict[str, float]]:
    """One repeat: every shape, its chunks alternating between the variants."""
    names = list(VARIANTS)
    out: dict[str, dict[str, float]] = {name: {} for name in names}
    for name in _order(names, rep):
        out[name]["pack_us_lone"] = _pack_cost(VARIANTS[name], conn, commands, 1)
        out[name]["pack_us_batch"] = _pack_cost(VARIANTS[name], conn, commands, MANY)
    for shape, (per_chunk, body) in _shapes().items():
        wall = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        chunks = jobs // per_chunk
        for chunk in range(chunks):
            for name in _order(names, rep + chunk):
                with encoder(VARIANTS[name]):
                    w, c = await _timed(redis, body)
                wall[name] += w
                cpu[name] += c
        for name in names:
            out[name][f"{shape}_jobs_per_s"] = chunks * per_chunk / wall[name]
            out[name][f"{shape}_cpu_us_per_job"] = cpu[name] / (chunks * per_chunk) * 1e6
    return out


async def _commands(redis: Any, count: int) -> list[Any]:
    """``count`` EVALSHA ENQUEUE commands shaped exactly like a real enqueue of ``noop``."""
    import scalr_queue
    from scalr_queue.producer._sender import ScriptSender
    from scalr_queue.redis import _scripts
    from scalr_queue.redis._keys import JOB_PREFIX, RESULT_PREFIX, queue_key, wake_key

    job = await scalr_queue.enqueue("noop")
    payload = await redis.get(JOB_PREFIX + job.job_id)
    sender = ScriptSender(redis, _scripts.ENQUEUE)
    q = "default"
    now = int(time.time() * 1000)
    out = []
    for i in range(count):
        job_id = f"{i:032x}"
        keys = [JOB_PREFIX + job_id, queue_key(q), wake_key(q), RESULT_PREFIX + job_id]
        out.append(sender.command(keys, [job_id, now, payload, "0", 0]))
    return out


async def amain(repeats: int, jobs: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    import scalr_queue
    from scalr_queue.redis._server import RedisServer

    for key in [k for k in os.environ if k.startswith("SCALR_QUEUE_")]:
        del os.environ[key]  # default settings, whatever the caller's shell says
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    with RedisServer() as server:
        os.environ["REDIS_URL"] = server.url
        redis = aioredis.Redis.from_url(server.url)
        try:
            commands = await _commands(redis, MANY)
            conn = redis.connection_pool.make_connection()
            await _one_repeat(0, MANY, redis, conn, commands)  # warm-up, dropped
            for rep in range(repeats):
                for name, values in (await _one_repeat(rep, jobs, redis, conn, commands)).items():
                    raw[name].append(values)
                print(f"  repeat {rep + 1}/{repeats} done", file=sys.stderr, flush=True)
        finally:
            await scalr_queue.close()
            await redis.aclose()
    return raw


ROWS = (
    ("pack one command, µs", "pack_us_lone"),
    ("pack 1,000 commands, µs per command", "pack_us_batch"),
    ("sequential enqueue, jobs/s", "sequential_jobs_per_s"),
    ("sequential enqueue, CPU µs/job", "sequential_cpu_us_per_job"),
    (f"{CONCURRENT} concurrent enqueues (batched), jobs/s", "concurrent_jobs_per_s"),
    (f"{CONCURRENT} concurrent enqueues (batched), CPU µs/job", "concurrent_cpu_us_per_job"),
    (f"enqueue_many of {MANY:,}, jobs/s", "many_jobs_per_s"),
    (f"enqueue_many of {MANY:,}, CPU µs/job", "many_cpu_us_per_job"),
)


def render(result: dict[str, Any]) -> str:
    meta, raw = result["meta"], result["repeats"]
    base, *others = list(VARIANTS)
    med = {name: {k: statistics.median(r[k] for r in raw[name]) for k in raw[name][0]} for name in VARIANTS}
    head = " | ".join(VARIANTS) + " | " + " | ".join(f"{o.split()[0]} / {base.split()[0]}" for o in others)
    lines = [
        f"### Enqueue sender: RESP encoding — {meta['date']}",
        "",
        f"{meta['cores']} cores, Python {meta['python']}, redis-py {meta['redis_py']}, hiredis {meta['hiredis']}, "
        f"redis-server on 127.0.0.1; medians of {meta['repeats']} repeats of {meta['jobs']:,} jobs per row and "
        "variant; the same sender and batching, only the encoder differs. Ratios: lower is better for µs, "
        "higher for jobs/s.",
        "",
        f"| measure | {head} |",
        "|---" * (2 + 2 * len(others)) + "|",
    ]
    for label, key in ROWS:
        values = [med[name][key] for name in VARIANTS]
        cells = [f"{v:,.0f}" if v >= 100 else f"{v:.2f}" for v in values]
        ratios = [f"{v / values[0]:.2f}×" for v in values[1:]]
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per row, variant and repeat")
    parser.add_argument("--tiny", action="store_true", help="1 repeat of 1,000 jobs: the smoke test's size")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/<UTC>-sender.json)")
    args = parser.parse_args(argv)
    repeats, jobs = (1, MANY) if args.tiny else (args.repeats, args.jobs)
    if repeats < 1 or jobs < MANY:
        parser.error(f"--repeats must be >= 1 and --jobs >= {MANY}")
    started = time.monotonic()
    raw = asyncio.run(amain(repeats, jobs))
    result = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "redis_py": md.version("redis"),
            "hiredis": md.version("hiredis"),
            "cores": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(),
            "repeats": repeats,
            "jobs": jobs,
            "wall_seconds": time.monotonic() - started,
        },
        "repeats": raw,
    }
    RESULTS.mkdir(exist_ok=True)
    path = args.out or RESULTS / (dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-sender.json")
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))
    print(f"result: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
