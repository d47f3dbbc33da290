"""The dashboard with a million jobs queued: how fast the overview and the queue page answer.

Usage::

    python -m bench.dashboard                 # 1,000,000 jobs
    python -m bench.dashboard --jobs 100000   # quicker
    make bench-dashboard

A fresh redis-server on a free 127.0.0.1 port; the jobs are written straight into it with
pipelined ``SET`` + ``ZADD`` (real payloads from the codec, 10,000 per round trip), so the run is
bounded by the job count and takes no worker. Then ``scalr-queue dashboard`` is started as a real
process and each page is fetched over HTTP, one request at a time: the overview, a queue's first
page of ready jobs, a page a hundred pages deep (by cursor), and one job. The first overview is
reported apart: it starts the ``SCAN`` that discovers the queues and answers without waiting for
it; the time that scan takes is reported too (later overviews reuse the names, rescanned in the
background). The markdown table goes to stdout, the samples to
``bench/results/<UTC>-dashboard.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from scalr_queue._codec import job_payload
from scalr_queue.redis._keys import JOB_PREFIX, queue_key
from scalr_queue.redis._server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 10_000
TARGET_MS = 100.0


def fill(url: str, jobs: int) -> float:
    """Write ``jobs`` ready jobs (and 1% as many scheduled) on queue ``default``; seconds taken."""
    client = redis.Redis.from_url(url)
    start = time.perf_counter()
    now = int(time.time() * 1000)
    total = jobs + jobs // 100
    for first in range(0, total, BATCH):
        pipe = client.pipeline(transaction=False)
        members: dict[str, int] = {}
        for i in range(first, min(first + BATCH, total)):
            job_id = f"{i:032x}"
            due = now - jobs + i if i < jobs else now + 3_600_000 + i
            pipe.set(JOB_PREFIX + job_id, job_payload("send_invoice_email", b'{"invoice_id":%d}' % i, due))
            members[job_id] = due
        pipe.zadd(queue_key("default"), members)
        pipe.execute()
    client.close()
    return time.perf_counter() - start


def _stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in samples)

    def q(p: float) -> float:
        return ms[min(len(ms) - 1, round(p * (len(ms) - 1)))]

    return {"n": len(ms), "p50_ms": q(0.5), "p95_ms": q(0.95), "max_ms": ms[-1], "mean_ms": statistics.fmean(ms)}


def timed(http: httpx.Client, path: str, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = http.get(path)
        out.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"bench.dashboard: GET {path} answered {response.status_code}: {response.text[:200]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard")
    parser.add_argument("--jobs", type=int, default=1_000_000, help="ready jobs to queue (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=50, help="requests per page (default 50)")
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= 5_000_000 or not 1 <= args.rounds <= 1000:
        raise SystemExit("bench.dashboard: --jobs 1..5000000 and --rounds 1..1000")
    with RedisServer() as server:
        print(f"filling {args.jobs:,} ready + {args.jobs // 100:,} scheduled jobs ...", flush=True)
        fill_s = fill(server.url, args.jobs)
        keys = redis.Redis.from_url(server.url).dbsize()
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "SCALR_QUEUE_DASHBOARD_REFRESH": "0"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "scalr_queue.cli", "dashboard", "--port", str(port)], cwd=ROOT, env=env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as http:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        http.get("/static/dashboard.css")
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise SystemExit("bench.dashboard: the dashboard did not start") from None
                        time.sleep(0.05)
                first = timed(http, "/", 1)
                scan_deadline = time.monotonic() + 120
                while "Looking for more queues" in http.get("/?partial=live").text:  # the scan ends
                    if time.monotonic() > scan_deadline:
                        raise SystemExit("bench.dashboard: the queue scan did not end within 120 s")
                    time.sleep(0.1)
                scan_s = time.monotonic() - scan_deadline + 120
                cursor = ""
                for _ in range(100):  # walk a hundred pages deep, as a user clicking "next" would
                    page = http.get(f"/queues/default?state=ready{cursor}")
                    href = page.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
                    cursor = "&cursor=" + httpx.QueryParams(href.split("?", 1)[1].replace("&amp;", "&"))["cursor"]
                results = {
                    "overview, first (answers before the queue SCAN ends)": _stats(first),
                    "overview": _stats(timed(http, "/", args.rounds)),
                    "overview, live part": _stats(timed(http, "/?partial=live", args.rounds)),
                    "queue page, ready, first page": _stats(timed(http, "/queues/default?state=ready", args.rounds)),
                    "queue page, 100 pages deep": _stats(
                        timed(http, f"/queues/default?state=ready{cursor}", args.rounds)
                    ),
                    "queue page, scheduled": _stats(timed(http, "/queues/default?state=scheduled", args.rounds)),
                    "job page": _stats(timed(http, f"/queues/default/jobs/{args.jobs // 2:032x}", args.rounds)),
                }
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    print(f"\n{args.jobs:,} ready jobs, {keys:,} keys; filled in {fill_s:.1f} s; queue SCAN took {scan_s:.1f} s\n")
    print("| page | n | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|")
    for name, s in results.items():
        print(f"| {name} | {s['n']:.0f} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['max_ms']:.1f} |")
    overview = results["overview"]["p95_ms"]
    verdict = "under" if overview < TARGET_MS else "OVER"
    print(f"\noverview p95 {overview:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = {"jobs": args.jobs, "keys": keys, "fill_s": fill_s, "scan_s": scan_s, "pages": results}
    (RESULTS / f"{stamp}-dashboard.json").write_text(json.dumps(out, indent=2))
    return 0 if overview < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
