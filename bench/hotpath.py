"""The worker's hot path against a git ref, side by side in one run.

    python -m bench.hotpath [--ref main] [--rounds 3] [--jobs 10000] [--latency-jobs 300]
    make bench-hotpath

Two scalr_queue systems: the code at ``--ref`` (exported with ``git archive`` into a temporary
directory, as ``bench.run --scalr-ref`` does) and this tree. Every round runs, for each of them
in an order that alternates between rounds, the same scenarios as ``bench.run``: ``drain1`` and
``drain2`` (N queued no-op jobs, 1 or 2 worker processes at concurrency 10, default settings,
per-job INFO log line on), then ``idle_latency`` (pickup delay of jobs sent one every 20-50 ms to
an idle worker). Medians over the rounds, and the tree's ratio to the ref: on a shared machine
only those ratios mean anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import scenarios
from bench._systems import SCALR, snapshot_scalr

ROWS = (
    ("drain1", "jobs_per_s_steady", "drain1 jobs/s (last 80%)"),
    ("drain1", "worker_cpu_us_per_job", "drain1 worker CPU µs/job"),
    ("drain1", "redis_cpu_us_per_job", "drain1 Redis CPU µs/job"),
    ("drain1", "commands_per_job", "drain1 Redis commands/job"),
    ("drain1", "round_trips_per_job", "drain1 round trips/job"),
    ("drain2", "jobs_per_s_steady", "drain2 jobs/s (last 80%)"),
    ("drain2", "worker_cpu_us_per_job", "drain2 worker CPU µs/job"),
    ("idle_latency", "p50_ms", "idle pickup p50 ms"),
    ("idle_latency", "p90_ms", "idle pickup p90 ms"),
    ("idle_latency", "p99_ms", "idle pickup p99 ms"),
    ("idle_latency", "idle_cpu_s_per_10s", "idle CPU s per 10 s"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="main", help="the git ref to compare against (default: main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per drain")
    parser.add_argument("--latency-jobs", type=int, default=300)
    parser.add_argument("--only", nargs="+", default=["drain1", "drain2", "idle_latency"])
    parser.add_argument("--out", type=Path, default=None, help="JSON of every round")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="scalr-hotpath-"))
    plan = scenarios.Plan(drain_jobs=args.jobs, latency_jobs=args.latency_jobs, idle_seconds=3.0, log_dir=log_dir)
    ref_root, commit = snapshot_scalr(args.ref)
    systems = {
        f"ref {commit}": dataclasses.replace(SCALR, key="scalr-ref", code_root=ref_root),
        "tree": SCALR,
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {k: {s: [] for s in args.only} for k in systems}
    scenario_fns = {
        "drain1": lambda s: scenarios.drain(s, plan, 1),
        "drain2": lambda s: scenarios.drain(s, plan, 2),
        "idle_latency": lambda s: scenarios.idle_and_latency(s, plan),
    }
    t_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for rnd in range(args.rounds):
        order = list(systems.items()) if rnd % 2 == 0 else list(reversed(systems.items()))
        for sc in args.only:
            for name, system in order:
                t = time.monotonic()
                res = scenario_fns[sc](system)
                res.pop("delays_ms", None)
                runs[name][sc].append(res)
                print(f"  round {rnd + 1} {sc} {name}: {time.monotonic() - t:.1f}s", file=sys.stderr, flush=True)
    names = list(systems)
    print(f"\n{args.rounds} rounds, {args.jobs} jobs per drain, {args.latency_jobs} latency jobs, started {t_start}\n")
    print(f"| measure (median) | {names[0]} | {names[1]} | tree / ref |")
    print("|---|---|---|---|")
    for sc, field, label in ROWS:
        if sc not in args.only:
            continue
        a, b = (statistics.median(r[field] for r in runs[n][sc]) for n in names)
        print(f"| {label} | {a:,.2f} | {b:,.2f} | {b / a if a else float('nan'):.2f}× |")
    if args.out:
        args.out.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
