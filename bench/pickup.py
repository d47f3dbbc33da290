"""Where an idle scalr_queue worker's pickup time goes: enqueue -> wake -> claim -> task start.

Usage::

    python -m bench.pickup                 # 300 jobs, one every 20-50 ms, against one idle worker
    python -m bench.pickup --jobs 100 --no-monitor
    python -m bench.pickup --pipelined     # plus the variant with the CLAIM sent behind the BRPOP

A bench-only patched run: the worker is the real ``python -m scalr_queue.worker`` entry point,
started through this module's ``worker`` command, which wraps four of its functions with
timestamp probes before it starts (scalr_queue itself is unchanged):

* the reply of the wake BRPOP, as the worker's coroutine gets it (``aw`` in the worker module);
* ``_wait_for_work`` returning (the wait's futures cancelled and gathered);
* the CLAIM script sent and its reply back (``eval_script`` in the worker module);
* the job's task taking its first step (``_run``).

The job body (``bench.workers.noop``) gives the task start, the producer the send time, and
``MONITOR`` (optional, on by default) the moments Redis read the ENQUEUE and the CLAIM
EVALSHA. Every clock is ``time.time()`` on one machine (MONITOR prints the server's
gettimeofday), so the steps of one job subtract. Jobs are spaced far apart, so each job's
events are the first of each kind after its send time. The table is the median of each step
over the jobs; MONITOR itself costs Redis a little, so its total is shown beside a total
measured without it when both passes run.
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
VARIANT_ENV = "BENCH_PICKUP_VARIANT"  # "pipelined": the CLAIM sent behind the wake BRPOP (see below)


def _patch_worker(out: Path) -> None:
    """Wrap the worker's wait, claim and run steps with time.time() probes; dump them at exit."""
    from scalr_queue.redis import _scripts
    from scalr_queue.worker import _worker

    events = _TRACE
    atexit.register(lambda: out.write_text(json.dumps(events)))
    aw, eval_script = _worker.aw, _worker.eval_script
    wait_for_work, run = _worker.ScalrWorker._wait_for_work, _worker.ScalrWorker._run

    async def traced_aw(x: Any) -> Any:
        res = await aw(x)
        if isinstance(res, list | tuple) and res:  # a BRPOP that got a wake-up (not a timeout)
            events.append(("brpop_reply", time.time()))
        return res

    async def traced_eval(redis: Any, script: str, keys: Any, args: Any) -> Any:
        if script != _scripts.CLAIM:
            return await eval_script(redis, script, keys, args)
        sent = time.time()
        res = await eval_script(redis, script, keys, args)
        if res[0]:  # claimed at least one job
            events.append(("claim_sent", sent))
            events.append(("claim_reply", time.time()))
        return res

    async def traced_wait(self: Any, wait_s: float) -> None:
        await wait_for_work(self, wait_s)
        events.append(("wait_returned", time.time()))

    async def traced_run(self: Any, *a: Any, **kw: Any) -> None:
        events.append(("run_start", time.time()))
        await run(self, *a, **kw)

    _worker.aw = traced_aw  # type: ignore[assignment]
    _worker.eval_script = traced_eval  # type: ignore[assignment]
    _worker.ScalrWorker._wait_for_work = traced_wait  # type: ignore[method-assign]
    _worker.ScalrWorker._run = traced_run  # type: ignore[method-assign]


def _patch_pipelined_claim() -> None:
    """The fix under test (bench only): the CLAIM rides in one pipeline behind the wake BRPOP.

    Redis holds a blocked client's later commands until its BRPOP returns, then runs them at
    once: the CLAIM runs the moment the wake-up lands, with no second round trip from the
    worker. Its ``now`` must then be the server's (the job's score is later than the send), so
    this variant's CLAIM copy reads ``TIME`` when ARGV[1] is 0. The claim loop's next CLAIM gets
    the pipelined reply instead of a new round trip.
    """
    import hashlib

    from scalr_queue.redis import _scripts
    from scalr_queue.redis._keys import held_key, holds_key, leases_key, paused_key, wake_key
    from scalr_queue.worker import _worker

    old = "local now = tonumber(ARGV[1])\n"
    new = old + "if now == 0 then local t = redis.call('TIME') now = t[1] * 1000 + math.floor(t[2] / 1000) end\n"
    assert old in _scripts.CLAIM, "CLAIM changed: update this variant"
    claim = _scripts.CLAIM.replace(old, new, 1)
    sha = hashlib.sha1(claim.encode()).hexdigest()
    eval_script = _worker.eval_script
    stash: dict[int, Any] = {}

    async def stashed_eval(redis: Any, script: str, keys: Any, args: Any) -> Any:
        if script == _scripts.CLAIM and id(redis) in stash:
            return stash.pop(id(redis))
        return await eval_script(redis, script, keys, args)

    async def wait_and_claim(self: Any, wait_s: float) -> None:
        if wait_s < 0.005:
            await asyncio.sleep(wait_s)
            return
        q = self.queue
        keys = [self.queue_name, wake_key(q), leases_key(q), paused_key(q), holds_key(q), held_key(q)]
        free = min(self.max_jobs - len(self.tasks), _worker.CLAIM_MAX)
        args = [0, free, int(self.settings.lease * 1000), self.worker_id, _worker.REPLACEMENT_RECHECK_MS]
        args.append(_worker.HOLD_SCAN)
        if not getattr(self, "_claim_loaded", False):
            await self._blocking.script_load(claim)
            self._claim_loaded = True
        pipe = self._blocking.pipeline(transaction=False)
        pipe.brpop([wake_key(q)], timeout=wait_s)
        pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        waiter = asyncio.ensure_future(pipe.execute())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({waiter, stop}, timeout=wait_s + 2, return_when=asyncio.FIRST_COMPLETED)
            if waiter in done and waiter.exception() is None:
                stash[id(self.pool)] = waiter.result()[1]
                if _TRACE:
                    _TRACE.append(("brpop_reply", time.time()))
        finally:
            for fut in (waiter, stop):
                if not fut.done():
                    fut.cancel()
            await asyncio.gather(waiter, stop, return_exceptions=True)

    _worker.eval_script = stashed_eval  # type: ignore[assignment]
    _worker.ScalrWorker._wait_for_work = wait_and_claim  # type: ignore[method-assign]


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
    ("Redis runs ENQUEUE + LPUSH wake -> worker's BRPOP reply parsed", "srv_enqueue", "brpop_reply"),
    ("BRPOP reply -> wait returns (wait's futures cancelled, gathered)", "brpop_reply", "wait_returned"),
    ("wait returned -> CLAIM sent (claim loop)", "wait_returned", "claim_sent"),
    ("CLAIM sent -> Redis reads it", "claim_sent", "srv_claim"),
    ("Redis runs CLAIM -> reply parsed in the worker", "srv_claim", "claim_reply"),
    ("CLAIM reply -> job task's first step (create_task, loop turn)", "claim_reply", "run_start"),
    ("task's first step -> job body's first line (parse, checks, log line, deadline)", "run_start", "body"),
)


def _one_pass(jobs: int, gap: tuple[float, float], monitor: bool, variant: str = "as-is") -> dict[str, Any]:
    from scalr_queue.redis import _scripts
    from scalr_queue.redis._server import RedisServer

    trace = Path(tempfile.mkdtemp(prefix="scalr-pickup-")) / "worker.json"
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALR_QUEUE_")}
    with RedisServer() as server:
        env.update(REDIS_URL=server.url, PYTHONPATH=str(root), **{TRACE_ENV: str(trace), VARIANT_ENV: variant})
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
        for name in ("srv_enqueue", "brpop_reply", "wait_returned", "claim_sent", "srv_claim"):
            row[name] = _first_after(events, name, t0, body + 0.001)
        row["claim_reply"] = _first_after(events, "claim_reply", row["claim_sent"] or t0, body + 0.001)
        row["run_start"] = _first_after(events, "run_start", row["claim_reply"] or t0, body + 0.001)
        rows.append(row)
    out: dict[str, Any] = {"jobs": jobs, "monitor": monitor, "variant": variant, "steps": {}}

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
    out["wake_to_task_us"] = med("brpop_reply", "body")
    return out


def _table(passes: list[dict[str, Any]]) -> str:
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
        how = ("with MONITOR" if p["monitor"] else "without MONITOR") + (
            ", CLAIM pipelined behind the BRPOP" if p["variant"] == "pipelined" else ""
        )
        lines.append(f"| **send -> task start ({how}); p99 {f(p['p99_us'])}** | **{f(p['total_us'])}** | |")
        lines.append(f"| producer's enqueue round trip ({how}) | {f(p['enqueue_round_trip_us'])} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["worker"]:  # the patched worker: probes first, then the real entry point
        if os.environ.get(VARIANT_ENV) == "pipelined":
            _patch_pipelined_claim()
        _patch_worker(Path(os.environ[TRACE_ENV]))
        from scalr_queue.worker._main import main as worker_main

        return worker_main(args_in[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--no-monitor", action="store_true", help="no pass under MONITOR (no server-side steps)")
    parser.add_argument(
        "--pipelined", action="store_true", help="also a pass of the variant with the CLAIM pipelined behind the BRPOP"
    )
    args = parser.parse_args(args_in)
    gap = (0.02, 0.05)
    passes = [_one_pass(args.jobs, gap, monitor=False)]
    if args.pipelined:
        passes.append(_one_pass(args.jobs, gap, monitor=False, variant="pipelined"))
    if not args.no_monitor:
        passes.append(_one_pass(args.jobs, gap, monitor=True))
    print(_table(passes))
    print(json.dumps(passes, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
