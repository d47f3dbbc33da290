"""Where an idle scalr_queue worker's pickup time goes: enqueue -> wake and claim -> task start.

Usage::

    python -m bench.pickup                 # 300 jobs, one every 20-50 ms, against one idle worker
    python -m bench.pickup --jobs 100 --no-monitor

A bench-only probed run: the worker is the real ``python -m scalr_queue.worker`` entry point,
started through this module's ``worker`` command, which wraps two of its functions with
timestamp probes before it starts (scalr_queue itself is unchanged):

* ``_start_claimed``: the reply of the wait (the wake BRPOP and the CLAIM pipelined behind it)
  parsed and back in the claim loop;
* ``_run``: the job's task taking its first step.

The job body (``bench.workers.noop``) gives the task start, the producer the send time, and
``MONITOR`` (optional, on by default) the moments Redis read the ENQUEUE and ran the CLAIM
(which Redis held behind the worker's BRPOP until the wake landed). Every clock is
``time.time()`` on one machine (MONITOR prints the server's gettimeofday), so the steps of one
job subtract. Jobs are spaced far apart, so each job's events are the first of each kind after
its send time. The table is the median of each step over the jobs; MONITOR itself costs Redis
a little, so its total is shown beside a total measured without it.

Two more rows say what part of that is the machine:

* the floor: the same hops (a producer's push, Redis, a waiter blocked in BRPOP) between two
  idle processes on the same event loop, each sending pre-built bytes on a bare socket and
  doing nothing else, with the same gaps. Whatever pickup takes above it is code;
* the idle penalty: one fixed piece of scalr_queue's own code (encode a job's payload, then
  parse it back) timed right after sleeping one gap against back to back. A VM that has sat
  idle runs the first code after a wake several times slower than warm, so each microsecond of
  Python on the idle pickup path costs several there.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TRACE_ENV = "BENCH_PICKUP_TRACE"
_PUSH = b"*3\r\n$5\r\nLPUSH\r\n$10\r\nfloor:wake\r\n$1\r\n1\r\n"
_WAIT = b"*3\r\n$5\r\nBRPOP\r\n$10\r\nfloor:wake\r\n$2\r\n30\r\n"


def _patch_worker(out: Path) -> None:
    """Wrap the worker's claim-reply and run steps with time.time() probes; dump them at exit."""
    from scalr_queue.worker import _worker

    events = _TRACE
    atexit.register(lambda: out.write_text(json.dumps(events)))
    start_claimed, run = _worker.ScalrWorker._start_claimed, _worker.ScalrWorker._run

    def traced_start(self: Any, reply: Any, count: int) -> Any:
        if reply and reply[0]:  # claimed at least one job
            events.append(("claim_reply", time.time()))
        return start_claimed(self, reply, count)

    async def traced_run(self: Any, *a: Any, **kw: Any) -> None:
        events.append(("run_start", time.time()))
        await run(self, *a, **kw)

    _worker.ScalrWorker._start_claimed = traced_start  # type: ignore[method-assign]
    _worker.ScalrWorker._run = traced_run  # type: ignore[method-assign]


_TRACE: list[tuple[str, float]] = []


class _Stamps:
    """MONITOR on its own socket: the server time of every EVALSHA of the given SHAs."""

    def __init__(self, port: int, shas: dict[str, str]) -> None:
        self.shas = shas
        self.seen: list[tuple[str, float]] = []
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.sendall(b"MONITOR\r\n")
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        self._sock.settimeout(0.2)
        while not self._stop:
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\r\n")
            for line in lines:
                parts = line.lstrip(b"+").split(b" ", 4)
                if len(parts) < 5 or parts[3].lower() != b'"evalsha"':
                    continue
                name = self.shas.get(parts[4].split(b" ", 1)[0].strip(b'"').decode())
                if name:
                    self.seen.append((name, float(parts[0])))

    def close(self) -> list[tuple[str, float]]:
        time.sleep(0.3)
        self._stop = True
        self._thread.join(2)
        self._sock.close()
        return self.seen


async def _produce(url: str, jobs: int, gap: tuple[float, float]) -> list[tuple[float, float, float]]:
    """(send time, enqueue returned, task start) per job, one job every gap[0]..gap[1] s."""
    import redis.asyncio as aioredis

    import scalr_queue
    from bench.workers import LAT_KEY

    os.environ["REDIS_URL"] = url
    r = aioredis.Redis.from_url(url)
    rng = random.Random(5)
    sent: list[tuple[float, float]] = []
    try:
        await scalr_queue.enqueue("noop", t0=time.time())  # warm both sides up; dropped
        if await r.blpop([LAT_KEY], timeout=30) is None:
            raise RuntimeError("the warm-up job never ran")
        await r.delete(LAT_KEY)
        for _ in range(jobs):
            await asyncio.sleep(rng.uniform(*gap))
            t0 = time.time()
            await scalr_queue.enqueue("noop", t0=t0)
            sent.append((t0, time.time()))
        for _ in range(200):
            if await r.llen(LAT_KEY) >= jobs:
                break
            await asyncio.sleep(0.05)
        delays = [float(x) for x in await r.lrange(LAT_KEY, 0, -1)]
    finally:
        await r.aclose()
        await scalr_queue.close()
    if len(delays) != jobs:
        raise RuntimeError(f"{jobs - len(delays)} of {jobs} jobs never ran")
    return [(t0, back, t0 + d) for (t0, back), d in zip(sent, delays, strict=True)]


def _first_after(events: list[tuple[str, float]], name: str, after: float, before: float) -> float | None:
    return next((t for n, t in events if n == name and after <= t <= before), None)


STEPS = (
    # (label, from event, to event)
    ("producer: enqueue call -> Redis reads ENQUEUE", "send", "srv_enqueue"),
    ("Redis: ENQUEUE's wake ends the BRPOP, the CLAIM held behind it runs", "srv_enqueue", "srv_claim"),
    ("Redis runs CLAIM -> the wait's reply parsed in the worker", "srv_claim", "claim_reply"),
    ("claim reply -> job task's first step (create_task, loop turn)", "claim_reply", "run_start"),
    ("task's first step -> job body's first line (parse, checks, log line, deadline)", "run_start", "body"),
)


def _one_pass(jobs: int, gap: tuple[float, float], monitor: bool) -> dict[str, Any]:
    from scalr_queue.redis import _scripts
    from scalr_queue.redis._server import RedisServer

    trace = Path(tempfile.mkdtemp(prefix="scalr-pickup-")) / "worker.json"
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALR_QUEUE_")}
    with RedisServer() as server:
        env.update(REDIS_URL=server.url, PYTHONPATH=str(root), **{TRACE_ENV: str(trace)})
        log = open(trace.with_suffix(".log"), "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.pickup", "worker", "bench.workers", "--concurrency", "10"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stamps = None
        try:
            if monitor:
                shas = {_scripts.sha(_scripts.ENQUEUE): "srv_enqueue", _scripts.sha(_scripts.CLAIM): "srv_claim"}
                stamps = _Stamps(server.port, shas)
            per_job = asyncio.run(_produce(server.url, jobs, gap))
        finally:
            seen = stamps.close() if stamps else []
            worker.terminate()
            worker.wait(15)
            log.close()
    events = sorted(json.loads(trace.read_text()) + seen, key=lambda e: e[1])
    rows: list[dict[str, float | None]] = []
    for t0, back, body in per_job:
        row: dict[str, float | None] = {"send": t0, "enqueue_returned": back, "body": body}
        for name in ("srv_enqueue", "srv_claim"):
            row[name] = _first_after(events, name, t0, body + 0.001)
        row["claim_reply"] = _first_after(events, "claim_reply", row["srv_claim"] or t0, body + 0.001)
        row["run_start"] = _first_after(events, "run_start", row["claim_reply"] or t0, body + 0.001)
        rows.append(row)
    out: dict[str, Any] = {"jobs": jobs, "monitor": monitor, "steps": {}}

    def diffs(a: str, b: str) -> list[float]:
        return [(r[b] - r[a]) * 1e6 for r in rows if r[a] is not None and r[b] is not None]  # type: ignore[operator]

    def med(a: str, b: str) -> float | None:
        d = diffs(a, b)
        return statistics.median(d) if d else None

    for label, a, b in STEPS:
        d = diffs(a, b)
        out["steps"][label] = {"median": med(a, b), "mean": statistics.fmean(d) if d else None, "n": len(d)}
    out["total_us"] = med("send", "body")
    out["p99_us"] = sorted((r["body"] - r["send"]) * 1e6 for r in rows)[int(0.99 * (len(rows) - 1))]  # type: ignore[operator]
    out["enqueue_round_trip_us"] = med("send", "enqueue_returned")
    out["claim_to_task_us"] = med("srv_claim", "body")
    return out


def _event_loop_run(coro: Any) -> Any:
    """Run ``coro`` on uvloop when installed (as the worker and a uvicorn app do), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _floor_wait(port: int, jobs: int) -> list[float]:
    """The floor's waiter: BRPOP on a bare socket, the time each pop lands, nothing else."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    landed: list[float] = []
    writer.write(_WAIT)
    for _ in range(jobs):
        await reader.read(1024)  # one small reply per pop (each push is answered before the next)
        landed.append(time.time())
        writer.write(_WAIT)
    writer.close()
    return landed


async def _floor_push(port: int, jobs: int, gap: tuple[float, float]) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng = random.Random(5)
    sent: list[float] = []
    await asyncio.sleep(0.5)  # the waiter is blocked by now
    for _ in range(jobs):
        await asyncio.sleep(rng.uniform(*gap))
        sent.append(time.time())
        writer.write(_PUSH)
        await reader.read(100)
    writer.close()
    return sent


def _floor(jobs: int, gap: tuple[float, float]) -> dict[str, float]:
    """p50/p99 µs of a bare push -> BRPOP between two idle processes: what no code can beat here."""
    from scalr_queue.redis._server import RedisServer

    out = Path(tempfile.mkdtemp(prefix="scalr-pickup-")) / "floor.json"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    with RedisServer() as server:
        cmd = [sys.executable, "-m", "bench.pickup", "floor-wait", str(server.port), str(jobs), str(out)]
        waiter = subprocess.Popen(cmd, cwd=root, env=env)
        try:
            sent = _event_loop_run(_floor_push(server.port, jobs, gap))
            waiter.wait(30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
    d = sorted((landed - t0) * 1e6 for t0, landed in zip(sent, json.loads(out.read_text()), strict=True))
    return {"p50_us": statistics.median(d), "p99_us": d[int(0.99 * (len(d) - 1))]}


def _our_code() -> None:
    """A fixed piece of scalr_queue's own code: a job's payload encoded, then parsed as a worker does."""
    from scalr_queue._codec import encode_kwargs, job_payload, parse_job

    parse_job(job_payload("noop", encode_kwargs("noop", {"invoice_id": 42, "t0": 1.5}), 1_700_000_000_000))


def _idle_penalty(jobs: int, gap: tuple[float, float]) -> dict[str, float]:
    """Median µs of ``_our_code`` right after an idle gap and back to back, and their ratio."""
    rng = random.Random(5)
    _our_code()  # imports done
    idle, warm = [], []
    for _ in range(jobs):
        time.sleep(rng.uniform(*gap))
        t = time.perf_counter()
        _our_code()
        idle.append(time.perf_counter() - t)
        t = time.perf_counter()
        _our_code()
        warm.append(time.perf_counter() - t)
    a, b = statistics.median(idle) * 1e6, statistics.median(warm) * 1e6
    return {"idle_us": a, "warm_us": b, "ratio": a / b}


def _table(passes: list[dict[str, Any]], floor: dict[str, float], penalty: dict[str, float]) -> str:
    mon = next((p for p in passes if p["monitor"]), passes[0])  # the steps: the as-is worker's

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:,.0f}"

    lines = ["| step | median µs | mean µs |", "|---|---|---|"]
    for label, v in mon["steps"].items():
        lines.append(f"| {label} | {f(v['median'])} | {f(v['mean'])} |")
    lines.append(
        f"| sum of the steps | {f(sum(v['median'] or 0 for v in mon['steps'].values()))} | "
        f"{f(sum(v['mean'] or 0 for v in mon['steps'].values()))} |"
    )
    for p in passes:
        how = "with MONITOR" if p["monitor"] else "without MONITOR"
        lines.append(f"| **send -> task start ({how}); p99 {f(p['p99_us'])}** | **{f(p['total_us'])}** | |")
        lines.append(f"| producer's enqueue round trip ({how}) | {f(p['enqueue_round_trip_us'])} | |")
    floor_label = f"floor: bare push -> BRPOP between two idle processes; p99 {f(floor['p99_us'])}"
    lines.append(f"| {floor_label} | {f(floor['p50_us'])} | |")
    lines.append(
        f"| idle penalty: the same code after an idle gap / back to back ({f(penalty['idle_us'])} / "
        f"{penalty['warm_us']:.1f} µs) | {penalty['ratio']:.1f}× | |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["floor-wait"]:
        port, jobs, out = args_in[1:4]
        Path(out).write_text(json.dumps(_event_loop_run(_floor_wait(int(port), int(jobs)))))
        return 0
    if args_in[:1] == ["worker"]:  # the probed worker: probes first, then the real entry point
        _patch_worker(Path(os.environ[TRACE_ENV]))
        from scalr_queue.worker._main import main as worker_main

        return worker_main(args_in[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--no-monitor", action="store_true", help="no pass under MONITOR (no server-side steps)")
    args = parser.parse_args(args_in)
    gap = (0.02, 0.05)
    passes = [_one_pass(args.jobs, gap, monitor=False)]
    if not args.no_monitor:
        passes.append(_one_pass(args.jobs, gap, monitor=True))
    floor, penalty = _floor(args.jobs, gap), _idle_penalty(args.jobs, gap)
    print(_table(passes, floor, penalty))
    print(json.dumps({"passes": passes, "floor": floor, "idle_penalty": penalty}, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
