"""One function per measurement; each starts its own fresh redis-server and returns plain data."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench._stats import Monitor, delta, measure_overhead, snapshot
from bench._systems import Counter, System, Worker, build_backlog, client
from scalr_queue.redis._server import RedisServer

# the job body sends one INCRBY per job (and one RPUSH for latency jobs): not the queue's cost
BODY = "incrby"


@dataclass
class Plan:
    drain_jobs: int = 10_000
    enqueue_jobs: int = 2_000
    batch_jobs: int = 10_000
    batch_sizes: tuple[int, ...] = (100, 1000)
    arq_gather: int = 100
    latency_jobs: int = 300
    latency_gap: tuple[float, float] = (0.02, 0.05)
    idle_seconds: float = 10.0
    scale_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    scale_window: int = 2_000
    scale_warmup: int = 500
    monitor_jobs: int = 500
    load_levels: tuple[float, ...] = (0.25, 0.5, 0.75)  # fractions of the system's own drain rate
    load_seconds: float = 10.0  # per level
    web_seconds: float = 5.0
    web_concurrency: int = 50
    repeats: int = 3
    log_dir: Path = Path("/tmp")
    code_root: Path = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def fresh_redis() -> Iterator[tuple[RedisServer, redis.Redis]]:
    with RedisServer() as server:
        r = redis.Redis(port=server.port)
        try:
            yield server, r
        finally:
            r.close()


def _stop(workers: list[Worker]) -> None:
    for w in workers:
        w.stop()


def _per(value: float, n: int) -> float:
    return value / n if n else 0.0


def drain(
    system: System, plan: Plan, procs: int, prepare: Callable[[redis.Redis], None] | None = None
) -> dict[str, Any]:
    """N queued jobs, `procs` worker processes at concurrency 10: start to last job done.

    ``prepare`` changes the filled queue before the workers start (bench.priority spreads it over priorities).
    """
    n = plan.drain_jobs
    batch = max(plan.batch_sizes) if system.producer == "scalr" else plan.arq_gather
    with fresh_redis() as (server, r):
        ov = measure_overhead(r)
        a = snapshot(r)
        client(system, server.url, "enqueue-batch", n - 1, batch)
        if prepare is not None:
            prepare(r)
        b = snapshot(r)
        queued = system.queued(r)
        if queued != n:
            raise RuntimeError(f"{system.key}: {queued} jobs queued, expected {n}")
        counter = Counter(r)
        t0 = time.monotonic()
        workers = [Worker(system, server.url, plan.log_dir, tag=f"drain{procs}-{i}") for i in range(procs)]
        try:
            first, t20 = counter.wait_for(n // 5, timeout=max(120.0, n / 20), workers=workers)
            cpu20, done20 = sum(w.cpu() for w in workers), counter.value()
            _, done = counter.wait_for(n, timeout=max(120.0, n / 20), workers=workers)
            cpu = sum(w.cpu() for w in workers)
            c = snapshot(r)
        finally:
            _stop(workers)
    fill = delta(a, b, ov)
    run = delta(b, c, ov, driver_requests=counter.requests, body_commands={BODY: n})
    return {
        "jobs": n,
        "procs": procs,
        "seconds": done - t0,
        "jobs_per_s": n / (done - t0),
        "seconds_after_first_job": done - (first or t0),
        "jobs_per_s_after_first_job": (n - 1) / max(done - (first or t0), 1e-9),
        # the last 80%: every worker process is up and warm by then
        "jobs_per_s_steady": (n - n // 5) / max(done - t20, 1e-9),
        "worker_cpu_us_per_job": cpu / n * 1e6,
        # the same span as the steady rate: the jobs done after the first 20%, without start-up
        "worker_cpu_us_per_job_steady": (cpu - cpu20) / max(n - done20, 1) * 1e6,
        "redis_cpu_us_per_job": run.redis_cpu / n * 1e6,
        "commands_per_job": _per(run.commands, n),
        "round_trips_per_job": _per(run.reads, n),
        "commands_by_name_per_job": {k: v / n for k, v in sorted(run.by_command.items())},
        "bytes_per_queued_job": fill.memory / n,
    }


def enqueue(system: System, plan: Plan) -> dict[str, Any]:
    """Sequential awaited enqueues, then batches; Redis cost as marginal per-job deltas."""
    n = plan.enqueue_jobs
    out: dict[str, Any] = {}
    with fresh_redis() as (server, r):
        ov = measure_overhead(r)

        def cost(*args: Any) -> tuple[dict[str, Any], Any]:
            a = snapshot(r)
            res = client(system, server.url, *args)
            return res, delta(a, snapshot(r), ov)

        _, base = cost("enqueue-seq", 1)  # connection setup and one enqueue: subtracted below
        seq, d = cost("enqueue-seq", n)
        extra = n - 1
        out["sequential"] = {
            **seq,
            "commands_per_job": (d.commands - base.commands) / extra,
            "round_trips_per_job": (d.reads - base.reads) / extra,
            "commands_by_name_per_job": {
                k: (v - base.by_command.get(k, 0)) / extra for k, v in sorted(d.by_command.items())
            },
        }
        sizes = plan.batch_sizes if system.producer == "scalr" else (plan.arq_gather,)
        for size in sizes:
            res, d = cost("enqueue-batch", plan.batch_jobs, size)
            out[f"batch_{size}"] = {
                **res,
                "commands_per_job": (d.commands - base.commands) / plan.batch_jobs,
                "round_trips_per_job": (d.reads - base.reads) / plan.batch_jobs,
            }
    return out


def _pcts(delays: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in delays)
    if not ms:
        return {}

    def q(p: float) -> float:
        return ms[min(len(ms) - 1, round(p * (len(ms) - 1)))]

    return {
        "p50_ms": q(0.5),
        "p90_ms": q(0.9),
        "p99_ms": q(0.99),
        "p999_ms": q(0.999),
        "max_ms": ms[-1],
        "mean_ms": statistics.fmean(ms),
    }


def idle_and_latency(system: System, plan: Plan) -> dict[str, Any]:
    """A warm idle worker: its CPU and Redis traffic over idle_seconds, then pickup delays."""
    with fresh_redis() as (server, r):
        w = Worker(system, server.url, plan.log_dir, tag="idle")
        try:
            client(system, server.url, "latency", 2, 0.0, 0.01)  # proves the worker is up and warm
            time.sleep(min(1.0, plan.idle_seconds))
            ov = measure_overhead(r)
            a = snapshot(r)
            cpu0 = w.cpu()
            time.sleep(plan.idle_seconds)
            cpu1 = w.cpu()
            b = snapshot(r)
            idle = delta(a, b, ov)
            lat = client(system, server.url, "latency", plan.latency_jobs, *plan.latency_gap)
            if not w.alive():
                raise RuntimeError(f"worker {system.key} died:\n{w.tail()}")
        finally:
            w.stop()
    return {
        "idle_seconds": idle.seconds,
        "idle_cpu_s_per_10s": (cpu1 - cpu0) * 10 / idle.seconds,
        "idle_commands_per_s": idle.commands / idle.seconds,
        "idle_round_trips_per_s": idle.reads / idle.seconds,
        "idle_commands_by_name": idle.by_command,
        "latency_jobs": lat["jobs"],
        "latency_lost": lat["lost"],
        **_pcts(lat["delays_s"]),
        "delays_ms": [round(x * 1000, 3) for x in lat["delays_s"]],
    }


def load_latency(system: System, plan: Plan, drain_rate: float) -> dict[str, Any]:
    """Pickup delay under an open-loop stream at fractions of the system's own drain rate.

    One warm worker; for each level a Poisson stream of single enqueues (exponential gaps, fixed
    seed) at ``level * drain_rate`` jobs/s for ``load_seconds``, sent whatever the worker does;
    delay = the task body's first line minus the time just before that job's enqueue.
    """
    levels: dict[str, Any] = {}
    with fresh_redis() as (server, _r):
        w = Worker(system, server.url, plan.log_dir, tag="load")
        try:
            client(system, server.url, "latency", 2, 0.0, 0.01)  # the worker is up and warm
            for level in plan.load_levels:
                rate = level * drain_rate
                res = client(system, server.url, "load", rate, plan.load_seconds, timeout=plan.load_seconds + 120)
                if not w.alive():
                    raise RuntimeError(f"worker {system.key} died:\n{w.tail()}")
                levels[f"{round(level * 100)}"] = {
                    "level": level,
                    "target_rate": rate,
                    "sent_rate": res["sent_rate"],
                    "jobs": res["jobs"],
                    "lost": res["lost"],
                    **_pcts(res["delays_s"]),
                    "delays_ms": [round(x * 1000, 3) for x in res["delays_s"]],
                }
        finally:
            w.stop()
    return {"drain_rate": drain_rate, "levels": levels}


def scale(system: System, plan: Plan, size: int) -> dict[str, Any]:
    """Per-job cost of draining windows of jobs from the head of a `size` backlog, and RSS."""
    with fresh_redis() as (server, r):
        built = build_backlog(system, server.url, r, size)
        counter = Counter(r)
        rss: list[int] = []
        last = [0.0]
        w = Worker(system, server.url, plan.log_dir, tag=f"scale{size}")

        def sample() -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1:
                last[0] = now
                rss.append(w.rss())

        try:
            _, t = counter.wait_for(plan.scale_warmup, timeout=120, workers=[w])  # RSS: only while draining
            windows = []
            for i in range(1, plan.repeats + 1):
                _, t2 = counter.wait_for(
                    plan.scale_warmup + i * plan.scale_window, timeout=300, workers=[w], on_tick=sample
                )
                windows.append((t2 - t) / plan.scale_window * 1e6)
                t = t2
        finally:
            w.stop()
    return {
        **built,
        "window_jobs": plan.scale_window,
        "us_per_job": windows,
        "us_per_job_median": statistics.median(windows),
        "rss_mb_min": min(rss) / 2**20 if rss else 0,
        "rss_mb_max": max(rss) / 2**20 if rss else 0,
        "rss_samples": len(rss),
    }


def monitor_breakdown(system: System, plan: Plan) -> dict[str, Any]:
    """Which commands a job costs, split into those clients send and those scripts run (MONITOR)."""
    n = plan.monitor_jobs
    with fresh_redis() as (server, r):
        me = {str(r.client_info()["addr"])}
        m = Monitor(server.port, me)
        client(system, server.url, "enqueue-seq", n)
        enq = m.stop()
        counter = Counter(r)
        m = Monitor(server.port, me)
        w = Worker(system, server.url, plan.log_dir, tag="monitor")
        try:
            counter.wait_for(n, timeout=120, workers=[w])
            run = m.stop()
        finally:
            w.stop()
    run["client"][BODY] = run["client"].get(BODY, 0) - n
    out: dict[str, Any] = {"jobs": n}
    for phase, counts in (("enqueue", enq), ("worker", run)):
        client_total = sum(counts["client"].values())
        lua_total = sum(counts["lua"].values())
        out[phase] = {
            "client_commands_per_job": client_total / n,
            "script_commands_per_job": lua_total / n,
            "commands_per_job": (client_total + lua_total) / n,
            "client": {k: v / n for k, v in counts["client"].items() if v},
            "lua": {k: v / n for k, v in counts["lua"].items() if v},
        }
    return out
