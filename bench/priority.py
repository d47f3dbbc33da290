"""What priorities cost the plain path: the same scenarios before and after them, in one run.

    python -m bench.priority [--repeats 3] [--drain-jobs 5000] [--enqueue-jobs 2000] [--base REV]
    make bench-priority

"before" is scalr_queue as it was just before priorities were added (the parent of the commit
that added ``scalr_queue/_priority.py``, or ``--base``), "after" is HEAD; both are exported with
``git archive`` so edits in the tree do not leak in. Each repeat runs, interleaved, on a fresh
redis-server on a free 127.0.0.1 port each time (``bench.scenarios``):

* ``enqueue``: N sequential awaited ``enqueue`` calls of default-priority jobs, one process;
* ``drain1``: N default-priority jobs queued, one worker process at concurrency 10;
* ``drain1 mixed`` (after only): the same jobs re-scored over the ten priorities (job i gets
  priority i % 10), what a queue that uses them costs.

Redis commands and round trips per job come from ``INFO`` deltas (see bench/README.md); they are
exact. Times are medians of the repeats and only their ratios inside one run mean anything on a
shared machine. The markdown table goes to stdout, everything to ``bench/results/<UTC>-priority.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench import scenarios
from bench._systems import BACKLOG, ROOT, SCALR, System, snapshot_scalr
from bench.report import medians
from scalr_queue._priority import BAND_MS

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD = b'{"t":null,"f":"noop","a":[],"et":1800000000000,"k":{}}'

# Spreads the queue over the ten priorities: the i-th job (by score) gets priority i % 10.
SPREAD = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #ids, 2 do
  local p = ((i - 1) / 2) % 10
  redis.call('ZADD', KEYS[1], tonumber(ids[i + 1]) + (5 - p) * tonumber(ARGV[1]), ids[i])
end
return #ids / 2
"""

# (name, getter path, digits): what the table shows
ROWS = [
    ("enqueue: jobs/s (sequential)", ("enqueue", "sequential", "jobs_per_s"), 0),
    ("enqueue: Redis commands per job", ("enqueue", "sequential", "commands_per_job"), 2),
    ("enqueue: round trips per job", ("enqueue", "sequential", "round_trips_per_job"), 2),
    ("drain: jobs/s (steady)", ("drain", "jobs_per_s_steady"), 0),
    ("drain: worker CPU µs per job", ("drain", "worker_cpu_us_per_job"), 0),
    ("drain: Redis CPU µs per job", ("drain", "redis_cpu_us_per_job"), 1),
    ("drain: Redis commands per job", ("drain", "commands_per_job"), 2),
    ("drain: round trips per job", ("drain", "round_trips_per_job"), 2),
]


def script_source(code_root: Path, name: str) -> str:
    """A Lua script as the scalr_queue under ``code_root`` defines it."""
    code = f"import sys; from scalr_queue.redis._scripts import {name}; sys.stdout.write({name})"
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=code_root, env=env, capture_output=True, text=True, check=True
    ).stdout


def claim_costs(scripts: dict[str, str], jobs: int, rounds: int) -> dict[str, dict[str, float]]:
    """Redis's own time in CLAIM (``INFO commandstats``), per job drained and per idle claim.

    One redis-server, no worker: each round fills the queue with ``jobs`` ready jobs and claims
    them 10 at a time, as a worker with free slots does, then claims 500 times from the empty
    queue (an idle worker's claim), once per variant, in turn. Redis measures its own time in
    the script, so neither the client nor the other processes' noise is in it (CPU steal is).
    """
    queue, keys = SCALR.queue_key, [SCALR.queue_key, "scalr:wake:b", "scalr:leases:b", "scalr:paused:b"]
    keys += ["scalr:holds:b", "scalr:held:b"]
    samples: dict[str, dict[str, list[float]]] = {}
    with scenarios.fresh_redis() as (_server, r):
        shas = {key: r.script_load(src) for key, src in scripts.items()}
        for _ in range(rounds):
            for variant in ("before", "after", "mixed"):
                sha = shas["after" if variant == "mixed" else variant]
                r.flushdb()
                r.eval(BACKLOG, 1, queue, "arq:job:", PAYLOAD, 0, 0, jobs - 1, int(time.time() * 1000) - jobs - 1000)
                if variant == "mixed":
                    spread(r)
                r.config_resetstat()
                drained = 0
                while True:
                    args = [int(time.time() * 1000), 10, 30_000, "bench", 200, 1000]
                    ids = r.evalsha(sha, len(keys), *keys, *args)[0]
                    drained += len(ids)
                    if not ids:
                        break
                busy = r.info("commandstats")["cmdstat_evalsha"]
                r.config_resetstat()
                for _ in range(500):
                    r.evalsha(sha, len(keys), *keys, int(time.time() * 1000), 10, 30_000, "bench", 200, 1000)
                idle = r.info("commandstats")["cmdstat_evalsha"]
                assert drained == jobs, (variant, drained)
                out = samples.setdefault(variant, {"us_per_job": [], "us_per_idle_claim": []})
                out["us_per_job"].append(busy["usec"] / jobs)
                out["us_per_idle_claim"].append(idle["usec"] / idle["calls"])
    return {v: {k: statistics.median(x) for k, x in m.items()} for v, m in samples.items()}


def base_ref() -> str:
    """The parent of the commit that added scalr_queue/_priority.py."""
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "scalr_queue/_priority.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        raise SystemExit("no commit adds scalr_queue/_priority.py here: give --base REV")
    return added[-1] + "^"


def spread(r: redis.Redis) -> None:
    r.eval(SPREAD, 1, SCALR.queue_key, BAND_MS)


def _get(d: dict[str, Any], path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d if isinstance(d, int | float) else None


def table(summary: dict[str, dict[str, Any]], before: str, after: str) -> str:
    lines = [
        f"| measure | before ({before}) | after ({after}) | after / before | after, mixed priorities |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, path, digits in ROWS:
        b, a = _get(summary["before"], path), _get(summary["after"], path)
        m = _get(summary.get("mixed", {}), path) if path[0] == "drain" else None
        ratio = f"{a / b:.3f}" if a is not None and b else "n/a"
        cells = [f"{v:,.{digits}f}" if v is not None else "n/a" for v in (b, a, m)]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {ratio} | {cells[2] if m is not None else '-'} |")
    return "\n".join(lines)


def claim_table(claim: dict[str, dict[str, float]], jobs: int, rounds: int) -> str:
    b, a, m = claim["before"], claim["after"], claim["mixed"]
    lines = [
        f"\nCLAIM alone, Redis's own time (INFO commandstats), {jobs} jobs x {rounds} rounds, medians:\n",
        "| CLAIM | before | after | after / before | after, mixed priorities |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, key in (("µs per job drained (10 per claim)", "us_per_job"), ("µs per idle claim", "us_per_idle_claim")):
        lines.append(f"| {name} | {b[key]:.2f} | {a[key]:.2f} | {a[key] / b[key]:.3f} | {m[key]:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--drain-jobs", type=int, default=5000)
    parser.add_argument("--enqueue-jobs", type=int, default=2000)
    parser.add_argument("--claim-only", action="store_true", help="only the CLAIM script's own time (a minute)")
    parser.add_argument("--claim-jobs", type=int, default=2000)
    parser.add_argument("--claim-rounds", type=int, default=15)
    parser.add_argument("--base", help="git revision measured as 'before' (default: just before priorities)")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="scalr-bench-priority-"))
    plan = scenarios.Plan(
        drain_jobs=args.drain_jobs,
        enqueue_jobs=args.enqueue_jobs,
        batch_sizes=(1000,),
        batch_jobs=1000,
        log_dir=log_dir,
    )
    before_root, before = snapshot_scalr(args.base or base_ref())
    after_root, after = snapshot_scalr("HEAD")
    systems = {
        "before": dataclasses.replace(SCALR, key="before", code_root=before_root),
        "after": dataclasses.replace(SCALR, key="after", code_root=after_root),
    }
    raw: dict[str, list[dict[str, Any]]] = {"before": [], "after": [], "mixed": []}
    for rep in range(0 if args.claim_only else args.repeats):
        order = ["before", "after"] if rep % 2 == 0 else ["after", "before"]
        for key in order:
            system: System = systems[key]
            print(f"repeat {rep + 1}/{args.repeats}: {key}", flush=True)
            raw[key].append({"enqueue": scenarios.enqueue(system, plan), "drain": scenarios.drain(system, plan, 1)})
        print(f"repeat {rep + 1}/{args.repeats}: after, mixed priorities", flush=True)
        raw["mixed"].append({"drain": scenarios.drain(systems["after"], plan, 1, prepare=spread)})
    summary = {key: medians(runs) for key, runs in raw.items()}
    scripts = {"before": script_source(before_root, "CLAIM"), "after": script_source(after_root, "CLAIM")}
    claim = claim_costs(scripts, args.claim_jobs, args.claim_rounds)
    summary["claim"] = claim
    text = "" if args.claim_only else table(summary, before, after) + "\n"
    text += claim_table(claim, args.claim_jobs, args.claim_rounds)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-priority.json")
    path.write_text(
        json.dumps({"before": before, "after": after, "plan": vars(args), "summary": summary, "raw": raw}, indent=1)
        + "\n"
    )
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
