"""``make bench-cluster``: jobs/s and Redis CPU per job on one Redis, a 3-shard Redis Cluster and Sentinel.

Three queues, N empty jobs each, enqueued in batches (``enqueue_many``), then drained by three
burst workers (one per queue, ``--concurrency 50``). Redis CPU is each server process's own
utime + stime (``/proc``) over the phase, the workers' likewise; the drain is measured over its
steady part (90 % to 10 % of the jobs left), so worker start-up and the tail are left out. On a small shared
machine the workers are the limit, so the figure that says how far Redis scales is Redis CPU per
job per shard: a shard's core carries about 1 / (that) jobs per second. On Sentinel (one master,
two replicas, three sentinels) the master carries every write; the replicas' CPU (both together)
is reported beside it, since each of them applies the master's whole stream.

    python -m bench.cluster [--jobs 5000] [--out bench/results/cluster.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench._stats import proc_cpu_seconds
from scalr_queue import QueueClient
from scalr_queue._settings import load_settings
from scalr_queue.redis._server import RedisServer
from tests.cluster.cluster_group import ClusterGroup
from tests.reliability.sentinel_group import SentinelGroup

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 50
BATCH = 500


def spread_queues(group: ClusterGroup | None) -> list[str]:
    """Three queue names; on the cluster, three whose tags are on three different masters."""
    if group is None:
        return ["b0", "b1", "b2"]
    chosen: dict[int, str] = {}
    for i in range(500):
        chosen.setdefault(group.master_of("{" + f"b{i}" + "}").port, f"b{i}")
        if len(chosen) == 3:
            return sorted(chosen.values())
    raise RuntimeError("no three queues on three masters")


def cpu(pids: list[int]) -> list[float]:
    return [proc_cpu_seconds(p) for p in pids]


async def enqueue_all(url: str, queues: list[str], jobs: int) -> None:
    client = QueueClient(load_settings(redis_url=url))
    try:
        for q in queues:
            for start in range(0, jobs, BATCH):
                await client.enqueue_many([("empty", {"_queue_name": q}) for _ in range(min(BATCH, jobs - start))])
    finally:
        await client.close()


def drain(
    url: str, queues: list[str], probes: list[tuple[int, str]], masters: list[int], replicas: list[int]
) -> dict[str, float]:
    """One burst worker per queue; the steady part of the drain, from 90 % of the jobs left to 10 %.

    Start-up and the tail are left out: the window's jobs, seconds, and the Redis masters', the
    replicas' and the workers' CPU seconds over it (sampled from /proc at both ends).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALR_QUEUE_")}
    env.update(REDIS_URL=url, PYTHONPATH=str(ROOT), SCALR_QUEUE_LOG_LEVEL="WARNING")
    clients = [redis.Redis(host="127.0.0.1", port=port) for port, _ in probes]

    def left() -> int:
        return sum(int(c.zcard(key)) for c, (_, key) in zip(clients, probes, strict=True))

    total = left()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scalr_queue.worker",
                "bench.cluster_jobs",
                "--queue",
                q,
                "--burst",
                "--concurrency",
                str(CONCURRENCY),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for q in queues
    ]
    marks: list[tuple[int, float, float, float, float]] = []
    for threshold in (0.9 * total, 0.1 * total):
        while (n := left()) > threshold:
            time.sleep(0.01)
        workers = sum(proc_cpu_seconds(p.pid) for p in procs if p.poll() is None)
        marks.append((n, time.monotonic(), sum(cpu(masters)), workers, sum(cpu(replicas))))
    for p in procs:
        if p.wait(120) != 0:
            raise RuntimeError(f"a bench worker exited with {p.returncode}")
    for c in clients:
        c.close()
    (n0, t0, r0, w0, p0), (n1, t1, r1, w1, p1) = marks
    return {"jobs": n0 - n1, "seconds": t1 - t0, "redis_cpu": r1 - r0, "worker_cpu": w1 - w0, "replica_cpu": p1 - p0}


def measure(
    name: str,
    url: str,
    masters: list[int],
    queues: list[str],
    probes: list[tuple[int, str]],
    jobs: int,
    replicas: tuple[int, ...] = (),
) -> dict[str, Any]:
    """One row; with ``replicas`` (PIDs), also their CPU per job (all of them together)."""
    total = jobs * len(queues)
    before, replicas_before = cpu(masters), cpu(list(replicas))
    t0 = time.monotonic()
    asyncio.run(enqueue_all(url, queues, jobs))
    enqueue_s = time.monotonic() - t0
    enq_cpu = sum(cpu(masters)) - sum(before)
    enq_replica_cpu = sum(cpu(list(replicas))) - sum(replicas_before)
    run = drain(url, queues, probes, masters, list(replicas))
    row: dict[str, Any] = {
        "system": name,
        "masters": len(masters),
        "jobs": total,
        "enqueue_jobs_per_s": round(total / enqueue_s),
        "redis_cpu_us_per_job_enqueue": round(enq_cpu / total * 1e6, 1),
        "run_jobs_per_s": round(run["jobs"] / run["seconds"]),
        "redis_cpu_us_per_job_run": round(run["redis_cpu"] / run["jobs"] * 1e6, 1),
        "redis_cpu_per_shard_pct": round(run["redis_cpu"] / len(masters) / run["seconds"] * 100, 1),
        "worker_cpu_us_per_job": round(run["worker_cpu"] / run["jobs"] * 1e6, 1),
    }
    if replicas:
        row["replicas"] = len(replicas)
        row["replicas_cpu_us_per_job_enqueue"] = round(enq_replica_cpu / total * 1e6, 1)
        row["replicas_cpu_us_per_job_run"] = round(run["replica_cpu"] / run["jobs"] * 1e6, 1)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster")
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per queue (three queues)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster.json")
    args = parser.parse_args(argv)
    if not 100 <= args.jobs <= 100_000:
        parser.error("--jobs must be from 100 to 100000")
    rows = []
    with RedisServer() as server:
        assert server.process is not None
        queues = spread_queues(None)
        probes = [(server.port, f"arq:queue:{q}") for q in queues]
        rows.append(measure("one Redis", server.url, [server.process.pid], queues, probes, args.jobs))
    group = ClusterGroup()
    try:
        group.start()
        queues = spread_queues(group)
        masters = [group.master_of("{" + q + "}") for q in queues]
        pids = [m.process.pid for m in masters if m.process is not None]
        probes = [(m.port, "arq:queue:{" + q + "}") for m, q in zip(masters, queues, strict=True)]
        rows.append(measure("cluster, 3 masters", group.url, pids, queues, probes, args.jobs))
    finally:
        group.stop()
    with SentinelGroup() as sentinel:
        # no failover here: the master stays the one the group started, so its queues are probed there
        master = sentinel.master
        assert master.process is not None
        queues = spread_queues(None)
        probes = [(master.port, f"arq:queue:{q}") for q in queues]
        replicas = tuple(r.process.pid for r in sentinel.replicas if r.process is not None)
        rows.append(
            measure(
                "Sentinel, 1 master + 2 replicas",
                sentinel.url,
                [master.process.pid],
                queues,
                probes,
                args.jobs,
                replicas,
            )
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
