"""What a trickle of single enqueues costs per job, against the same jobs drained as a backlog.

Usage::

    python -m bench.trickle                      # 2,800 jobs/s for 4 s
    python -m bench.trickle --rate 5500 --seconds 4

One real worker (``python -m scalr_queue.worker bench.workers``, concurrency 10) on a fresh
``redis-server``; the load is ``bench.clients``' open-loop Poisson stream (the ``load_latency``
scenario's producer, in its own process). CPU seconds of the worker, Redis and the producer come
from ``/proc`` and ``getrusage`` over the stream, divided by the jobs sent; pickup p50/p99 as in
``load_latency``. It shows why a level of ``load_latency`` can saturate 2 shared cores below the
system's own drain rate: a woken worker claims the few jobs that arrived since its last wake, so
each job carries a larger share of a claim, a finish and their system calls than in a drain.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from scalr_queue.redis._server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(rate: float, seconds: float) -> dict[str, float]:
    with RedisServer() as server:
        assert server.process is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCALR_QUEUE_")}
        env.update(REDIS_URL=server.url, SCALR_QUEUE_CONCURRENCY="10", PYTHONPATH=str(ROOT))
        worker = subprocess.Popen(
            [sys.executable, "-m", "scalr_queue.worker", "bench.workers"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            warm = [sys.executable, "-m", "bench.clients", "scalr", server.url, "latency", "2", "0.0", "0.01"]
            subprocess.run(warm, cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
            w0, r0 = _cpu_s(worker.pid), _cpu_s(server.process.pid)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            load = [sys.executable, "-m", "bench.clients", "scalr", server.url, "load", str(rate), str(seconds)]
            out = subprocess.run(load, cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=300)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            w1, r1 = _cpu_s(worker.pid), _cpu_s(server.process.pid)
        finally:
            worker.terminate()
            worker.wait(15)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    delays = sorted(res["delays_s"])
    jobs = res["jobs"]
    producer = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "rate": rate,
        "sent_rate": res["sent_rate"],
        "jobs": jobs,
        "p50_ms": statistics.median(delays) * 1000,
        "p99_ms": delays[int(0.99 * (len(delays) - 1))] * 1000,
        "worker_cpu_us_per_job": (w1 - w0) / jobs * 1e6,
        "redis_cpu_us_per_job": (r1 - r0) / jobs * 1e6,
        "producer_cpu_us_per_job": producer / jobs * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, nargs="+", default=[2800.0])
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    print(
        "| jobs/s asked | sent | jobs | p50 ms | p99 ms | worker CPU µs/job | Redis CPU µs/job | producer CPU µs/job |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rate in args.rate:
        r = run(rate, args.seconds)
        cpu = (r["worker_cpu_us_per_job"], r["redis_cpu_us_per_job"], r["producer_cpu_us_per_job"])
        print(
            f"| {r['rate']:,.0f} | {r['sent_rate']:,.0f} | {r['jobs']:,} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            + "".join(f"| {c:.0f} " for c in cpu)
            + "|"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
