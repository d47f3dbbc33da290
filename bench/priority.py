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
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import redis

from bench import scenarios
from bench._systems import ROOT, SCALR, System, snapshot_scalr
from bench.report import medians
from scalr_queue._priority import BAND_MS

RESULTS = Path(__file__).resolve().parent / "results"

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--drain-jobs", type=int, default=5000)
    parser.add_argument("--enqueue-jobs", type=int, default=2000)
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
    for rep in range(args.repeats):
        order = ["before", "after"] if rep % 2 == 0 else ["after", "before"]
        for key in order:
            system: System = systems[key]
            print(f"repeat {rep + 1}/{args.repeats}: {key}", flush=True)
            raw[key].append({"enqueue": scenarios.enqueue(system, plan), "drain": scenarios.drain(system, plan, 1)})
        print(f"repeat {rep + 1}/{args.repeats}: after, mixed priorities", flush=True)
        raw["mixed"].append({"drain": scenarios.drain(systems["after"], plan, 1, prepare=spread)})
    summary = {key: medians(runs) for key, runs in raw.items()}
    text = table(summary, before, after)
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
