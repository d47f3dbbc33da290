"""Benchmark driver: scalr_queue and vanilla arq, measured side by side in one run.

Usage::

    python -m bench.run                 # full: 10,000-job drains, 1M backlog, 3 repeats
    python -m bench.run --quick         # a few minutes: 2,000-job drains, 1 repeat
    python -m bench.run --only drain1 idle_latency --out /tmp/r.json

Every scenario starts its own redis-server on a free loopback port (``save ""``, no AOF) and
its own worker processes. Systems are interleaved inside each repeat so slow drifts of a
noisy machine hit all of them alike; only ratios within one run mean anything.
The markdown table goes to stdout, the full data (every repeat) to bench/results/<UTC>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import scenarios, web
from bench._stats import __doc__ as STATS_METHOD
from bench._systems import ALL, PEER_SCENARIOS, ROOT, System, snapshot_scalr, source_hash
from bench.report import medians, render

SCENARIOS = ("enqueue", "drain1", "drain2", "idle_latency", "load_latency", "monitor", "scale", "web")
RESULTS = Path(__file__).resolve().parent / "results"


def plan_for(mode: str, log_dir: Path) -> scenarios.Plan:
    if mode == "full":
        return scenarios.Plan(log_dir=log_dir)
    if mode == "quick":
        return scenarios.Plan(
            drain_jobs=2_000,
            enqueue_jobs=1_000,
            batch_jobs=5_000,
            latency_jobs=100,
            idle_seconds=5.0,
            scale_sizes=(10_000, 100_000),
            scale_window=1_000,
            monitor_jobs=300,
            load_seconds=4.0,
            web_seconds=3.0,
            repeats=1,
            log_dir=log_dir,
        )
    # tiny: the smoke test's size; proves the plumbing, measures nothing
    return scenarios.Plan(
        drain_jobs=200,
        enqueue_jobs=50,
        batch_jobs=200,
        batch_sizes=(100,),
        arq_gather=50,
        latency_jobs=5,
        idle_seconds=1.0,
        scale_sizes=(2_000,),
        scale_window=100,
        scale_warmup=50,
        monitor_jobs=30,
        load_seconds=0.5,
        web_seconds=1.0,
        web_concurrency=5,
        repeats=1,
        log_dir=log_dir,
    )


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "n/a"


def peer_versions(system: System) -> dict[str, str]:
    """The peer's own package versions, read by its own interpreter."""
    code = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for d in ('saq', 'taskiq', 'taskiq-redis', 'pydocket', 'redis', 'hiredis'):\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    out = subprocess.run([system.python, "-c", code], capture_output=True, text=True, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def machine_facts(code_root: Path, ref: str | None) -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "scalr_queue"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "arq": _version("arq"),
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis"),
        "orjson": _version("orjson"),
        "redis_server": next((w.removeprefix("v=") for w in server.split() if w.startswith("v=")), server.strip()),
        "scalr_commit": ref or (commit + (" (+uncommitted scalr_queue changes)" if dirty else "")),
        "scalr_source_sha256": source_hash(code_root),
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def _run_one(name: str, fn: Any, errors: list[str], code_root: Path) -> dict[str, Any] | None:
    t = time.monotonic()
    try:
        res = fn()
    except Exception as exc:  # a broken system must not hide the others' numbers
        errors.append(f"{name}: {exc!r}\n{traceback.format_exc()[-3000:]}")
        print(f"  {name}: FAILED {exc!r}", file=sys.stderr, flush=True)
        return None
    print(f"  {name}: {time.monotonic() - t:.1f}s", file=sys.stderr, flush=True)
    if isinstance(res, dict):
        res["scalr_source_sha256"] = source_hash(code_root)  # which code this repeat ran
    return res  # type: ignore[no-any-return]


def run(
    mode: str, only: list[str], systems: tuple[System, ...], out: Path | None, ref: str | None = None
) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="scalr-bench-"))
    plan = plan_for(mode, log_dir)
    commit = None
    if ref:
        plan.code_root, commit = snapshot_scalr(ref)
        systems = tuple(dataclasses.replace(s, code_root=plan.code_root) for s in systems)
    print(f"scalr_queue from {plan.code_root} ({commit or 'working tree'})", file=sys.stderr, flush=True)
    chosen = [s for s in SCENARIOS if not only or any(s == o or s.startswith(o) for o in only)]
    raw: dict[str, Any] = {s: {} for s in chosen}
    errors: list[str] = []
    producers = {s.producer: s for s in systems}

    def runs(system: System, scenario: str) -> bool:
        return not system.is_peer or scenario in PEER_SCENARIOS

    started = time.monotonic()
    for rep in range(plan.repeats):
        print(f"repeat {rep + 1}/{plan.repeats}", file=sys.stderr, flush=True)
        for sc in chosen:
            if sc == "enqueue":
                for prod, system in producers.items():
                    res = _run_one(
                        f"enqueue {prod}", lambda s=system: scenarios.enqueue(s, plan), errors, plan.code_root
                    )
                    if res:
                        raw[sc].setdefault(f"{prod}-producer", []).append(res)
            elif sc == "load_latency":
                for system in systems:

                    def under_load(s: System = system) -> dict[str, Any]:
                        done = raw.get("drain1", {}).get(s.key)
                        if not done:  # drain1 not run (or it failed): measure the rate the levels are fractions of
                            done = [scenarios.drain(s, plan, 1)]
                        rate = statistics.median(d["jobs_per_s_steady"] for d in done)
                        return scenarios.load_latency(s, plan, rate)

                    res = _run_one(f"{sc} {system.key}", under_load, errors, plan.code_root)
                    if res:
                        raw[sc].setdefault(system.key, []).append(res)
            elif sc in ("drain1", "drain2", "idle_latency"):
                for system in systems:
                    if sc == "idle_latency":

                        def fn(s: System = system) -> dict[str, Any]:
                            return scenarios.idle_and_latency(s, plan)
                    else:

                        def fn(s: System = system, p: int = int(sc[-1])) -> dict[str, Any]:
                            return scenarios.drain(s, plan, p)

                    res = _run_one(f"{sc} {system.key}", fn, errors, plan.code_root)
                    if res:
                        raw[sc].setdefault(system.key, []).append(res)
    # one pass each: scale repeats its windows inside one worker run; MONITOR counts are exact
    if "monitor" in chosen:
        for system in (s for s in systems if runs(s, "monitor")):
            res = _run_one(
                f"monitor {system.key}", lambda s=system: scenarios.monitor_breakdown(s, plan), errors, plan.code_root
            )
            if res:
                raw["monitor"][system.key] = [res]
    if "scale" in chosen:
        for size in plan.scale_sizes:
            for system in (s for s in systems if runs(s, "scale")):
                res = _run_one(
                    f"scale {size} {system.key}",
                    lambda s=system, n=size: scenarios.scale(s, plan, n),
                    errors,
                    plan.code_root,
                )
                if res:
                    raw["scale"].setdefault(system.key, {})[str(size)] = res
    if "web" in chosen:
        res = _run_one("web", lambda: web.run(plan), errors, plan.code_root)
        raw["web"] = res or {"skipped": "failed: see errors"}

    summary: dict[str, Any] = {}
    for sc, per in raw.items():
        if sc == "scale":
            summary[sc] = per
        elif sc == "web":
            summary[sc] = per.get("summary", per) if isinstance(per, dict) else per
        else:
            summary[sc] = {k: medians(v) for k, v in per.items()}
    result = {
        "mode": mode,
        "meta": machine_facts(plan.code_root, commit),
        "plan": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(plan).items()},
        "systems": {
            s.key: {
                "label": s.label,
                "producer": s.producer,
                "queue_key": s.queue_key,
                "poll_delay": s.poll_delay,
                "versions": peer_versions(s) if s.is_peer else {},
            }
            for s in systems
        },
        "method": {
            "redis_counters": STATS_METHOD,
            "job_body": "bench.workers.noop: time.time(); RPUSH bench:lat delay (latency jobs only); "
            "INCRBY bench:done 1 — identical for every system, subtracted from Redis costs",
            "workers": "separate processes: vanilla arq via arq.worker.Worker (max_jobs=10, arq CLI logging); "
            "scalr_queue via python -m scalr_queue.worker bench.workers --concurrency 10",
            "done_detection": "the driver polls GET bench:done every 5 ms; those GETs are subtracted",
        },
        "wall_seconds": time.monotonic() - started,
        "errors": errors,
        "summary": summary,
        "repeats": raw,
    }
    RESULTS.mkdir(exist_ok=True)
    path = out or RESULTS / (dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{mode}.json")
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    result["path"] = str(path)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a few minutes: smaller N, one repeat")
    size.add_argument("--tiny", action="store_true", help="seconds: the smoke test's size, numbers meaningless")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help=f"scenarios: {' '.join(SCENARIOS)}")
    parser.add_argument(
        "--systems",
        nargs="+",
        default=None,
        choices=[s.key for s in ALL],
        help="default: all, the peers only where their venv was built (make bench-peers-venvs)",
    )
    parser.add_argument(
        "--scalr-ref",
        default=None,
        metavar="REF",
        help="measure scalr_queue as committed at this git ref (e.g. HEAD), not the working tree",
    )
    parser.add_argument("--out", type=Path, default=None, help="result JSON path (default bench/results/<UTC>.json)")
    args = parser.parse_args(argv)
    for o in args.only:
        if not any(s.startswith(o) for s in SCENARIOS):
            parser.error(f"unknown scenario {o!r}: choose from {', '.join(SCENARIOS)}")
    mode = "quick" if args.quick else "tiny" if args.tiny else "full"
    if args.systems is None:
        systems = tuple(s for s in ALL if s.available())
        for s in ALL:
            if not s.available():
                print(f"{s.key}: skipped, no {s.python} (make bench-peers-venvs builds it)", file=sys.stderr)
    else:
        missing = [s.key for s in ALL if s.key in args.systems and not s.available()]
        if missing:
            parser.error(f"no venv for {', '.join(missing)}: run make bench-peers-venvs first")
        systems = tuple(s for s in ALL if s.key in args.systems)
    result = run(mode, args.only, systems, args.out, args.scalr_ref)
    print(render(result))
    print(f"result: {result['path']}", file=sys.stderr)
    if result["errors"]:
        print(f"{len(result['errors'])} scenario(s) failed:", file=sys.stderr)
        for e in result["errors"]:
            print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
