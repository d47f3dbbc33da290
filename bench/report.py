"""Medians of repeats, and the markdown tables printed at the end of a run."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from bench.targets import render_targets

Getter = Callable[[dict[str, Any]], float | None]


def medians(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric field over the repeats (nested dicts of numbers too)."""
    if not repeats:
        return {}
    out: dict[str, Any] = {}
    for key, first in repeats[0].items():
        values = [r.get(key) for r in repeats]
        if isinstance(first, bool) or first is None:
            out[key] = first
        elif isinstance(first, int | float) and all(isinstance(v, int | float) for v in values):
            out[key] = statistics.median(values)  # type: ignore[type-var]
        elif isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            out[key] = medians(values)  # type: ignore[arg-type]
        elif isinstance(first, str):
            out[key] = first
    return out


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "n/a"
    x = a / b
    if x == 0:
        return "0×"
    return f"{x:.2f}×" if x >= 0.1 else f"{x:.3f}×" if x >= 0.001 else f"{x:.1e}×"


def _get(d: dict[str, Any] | None, *path: str) -> float | None:
    cur: Any = d
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return float(cur) if isinstance(cur, int | float) else None


def table(
    title: str,
    rows: dict[str, dict[str, Any]],
    labels: dict[str, str],
    columns: list[tuple[str, tuple[str, ...], int]] | list[tuple[str, tuple[str, ...], int, bool]],
    *,
    ratio_of: str = "scalr",
    note: str = "",
) -> str:
    """Rows per system, plus `scalr / <system>` ratio rows for every other system present."""
    head = "| system | " + " | ".join(c[0] for c in columns) + " |"
    lines = [f"### {title}", "", head, "|" + "---|" * (len(columns) + 1)]
    for key, row in rows.items():
        cells = [_fmt(_get(row, *c[1]), c[2]) for c in columns]
        lines.append(f"| {labels.get(key, key)} | " + " | ".join(cells) + " |")
    mine = rows.get(ratio_of)
    if mine:
        for key, row in rows.items():
            if key == ratio_of:
                continue
            cells = []
            for c in columns:
                a, b = _get(mine, *c[1]), _get(row, *c[1])
                cells.append(_ratio(a, b) if len(c) < 4 or c[3] else "")
            lines.append(f"| *{ratio_of} / {key}* | " + " | ".join(cells) + " |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def render(result: dict[str, Any]) -> str:
    """The whole markdown report for one result file."""
    s = result["summary"]
    labels = {k: v["label"] for k, v in result["systems"].items()}
    meta = result["meta"]
    out = [
        f"## scalr_queue vs vanilla arq — {meta['date']}",
        "",
        f"{meta['cores']} cores ({meta['cpu_model']}), Python {meta['python']}, arq {meta['arq']}, "
        f"redis-py {meta['redis_py']}, redis-server {meta['redis_server']}, scalr_queue {meta['scalr_commit']}. "
        f"Mode: {result['mode']}, medians of {result['plan']['repeats']} repeat(s). "
        "Ratios are scalr_queue's value divided by the other system's (higher is better for "
        "throughput, lower is better for latency, CPU, commands and bytes).",
        "",
        render_targets(s),
    ]
    if "drain1" in s or "drain2" in s:
        rows: dict[str, dict[str, Any]] = {}
        for key in labels:
            d1, d2 = s.get("drain1", {}).get(key), s.get("drain2", {}).get(key)
            if d1 or d2:
                rows[key] = {"d1": d1 or {}, "d2": d2 or {}}
                if d1 and d2:
                    rows[key]["gain"] = d2["jobs_per_s"] / d1["jobs_per_s"] - 1
                    rows[key]["gain_steady"] = d2["jobs_per_s_steady"] / d1["jobs_per_s_steady"] - 1
        out.append(
            table(
                f"Drain: {result['plan']['drain_jobs']:,} queued no-op jobs, concurrency 10 per process",
                rows,
                labels,
                [
                    ("jobs/s, 1 proc", ("d1", "jobs_per_s"), 0),
                    ("steady, 1 proc", ("d1", "jobs_per_s_steady"), 0),
                    ("jobs/s, 2 procs", ("d2", "jobs_per_s"), 0),
                    ("steady, 2 procs", ("d2", "jobs_per_s_steady"), 0),
                    ("2nd proc gain (steady)", ("gain_steady",), 2, False),
                    ("worker CPU µs/job", ("d1", "worker_cpu_us_per_job"), 0),
                    ("steady", ("d1", "worker_cpu_us_per_job_steady"), 0),
                    ("Redis CPU µs/job", ("d1", "redis_cpu_us_per_job"), 0),
                ],
                note="Timed from spawning the worker process(es) (Python start-up included) to the last "
                "job's counter increment; *steady* is the rate over the last 80% of the jobs, when every "
                "worker process is up and warm (two processes starting at once on 2 cores skew the "
                "first); worker CPU per job is the 1-process run's, start-up included, and over the same last "
                "80% (*steady*).",
            )
        )
    if "idle_latency" in s:
        out.append(
            table(
                "Idle pickup latency and idle cost (one warm idle worker)",
                s["idle_latency"],
                labels,
                [
                    ("p50 ms", ("p50_ms",), 2),
                    ("p90 ms", ("p90_ms",), 2),
                    ("p99 ms", ("p99_ms",), 2),
                    ("max ms", ("max_ms",), 2),
                    ("idle CPU s / 10 s", ("idle_cpu_s_per_10s",), 3),
                    ("idle Redis cmds/s", ("idle_commands_per_s",), 1),
                    ("idle round trips/s", ("idle_round_trips_per_s",), 1),
                ],
                note=f"{result['plan']['latency_jobs']} jobs per repeat, one every "
                f"{result['plan']['latency_gap'][0] * 1000:.0f}–{result['plan']['latency_gap'][1] * 1000:.0f} ms "
                "(random, open loop); delay = the task body's first line minus the time just before enqueue. "
                "Idle cost is measured over the idle period before, after a warm-up job.",
            )
        )
    if "load_latency" in s:
        out.append(render_load(s["load_latency"], labels, result["plan"]))
    if "enqueue" in s or "drain1" in s:
        rows = {}
        for key in labels:
            e = s.get("enqueue", {}).get(result["systems"][key]["producer"] + "-producer")
            d = s.get("drain1", {}).get(key)
            row: dict[str, Any] = {"e": e or {}, "d": d or {}}
            if e and d:
                row["life_cmds"] = e["sequential"]["commands_per_job"] + d["commands_per_job"]
                row["life_rt"] = e["sequential"]["round_trips_per_job"] + d["round_trips_per_job"]
            rows[key] = row
        out.append(
            table(
                "Redis cost per job",
                rows,
                labels,
                [
                    ("enqueue cmds", ("e", "sequential", "commands_per_job"), 1),
                    ("enqueue round trips", ("e", "sequential", "round_trips_per_job"), 1),
                    ("worker cmds", ("d", "commands_per_job"), 1),
                    ("worker round trips", ("d", "round_trips_per_job"), 1),
                    ("whole-life cmds", ("life_cmds",), 1),
                    ("whole-life round trips", ("life_rt",), 1),
                    ("bytes per queued job", ("d", "bytes_per_queued_job"), 0),
                ],
                note="Commands include those run inside Lua scripts (INFO commandstats deltas); round trips "
                "are INFO total_reads_processed deltas. The job body's own INCR and the benchmark's "
                "own polls are subtracted; the worker's column is measured over the 1-process drain, "
                "so it includes polling while draining.",
            )
        )
    if "enqueue" in s:
        e = s["enqueue"]
        rows = {}
        for key, v in e.items():
            batches = {k: v2 for k, v2 in v.items() if k.startswith("batch_")}
            best = max(batches.values(), key=lambda b: b["jobs_per_s"]) if batches else {}
            rows[key] = {"seq": v["sequential"], "b": best, **{k: v2 for k, v2 in batches.items()}}
        plabels = {
            "arq-producer": "arq enqueue_job",
            "scalr-producer": "scalr",
            "saq-producer": "SAQ queue.enqueue",
            "taskiq-producer": "taskiq task.kiq",
            "docket-producer": "pydocket docket.add",
        }
        out.append(
            table(
                "Enqueue throughput from one process",
                rows,
                plabels,
                [
                    ("sequential jobs/s", ("seq", "jobs_per_s"), 0),
                    ("batch 100 jobs/s", ("batch_100", "jobs_per_s"), 0),
                    ("batch 1000 jobs/s", ("batch_1000", "jobs_per_s"), 0),
                    ("batch cmds/job", ("b", "commands_per_job"), 1),
                    ("batch round trips/job", ("b", "round_trips_per_job"), 2),
                ],
                ratio_of="scalr-producer",
                note="Their batch column is asyncio.gather of 100 single enqueues for arq (no batch API; one "
                "connection per concurrent call), SAQ and taskiq (no batch API) and pydocket (its add_many "
                "is not used); scalr's is enqueue_many (one pipeline per batch).",
            )
        )
    if "scale" in s:
        rows = {}
        for key, per_size in s["scale"].items():
            rows[key] = {str(k): v for k, v in per_size.items()}
            sizes = sorted(per_size, key=int)
            if len(sizes) > 1:
                rows[key]["ratio"] = per_size[sizes[-1]]["us_per_job_median"] / per_size[sizes[0]]["us_per_job_median"]
            rows[key]["rss"] = per_size[sizes[-1]]
        sizes = sorted({int(k) for v in s["scale"].values() for k in v})
        cols = [(f"µs/job @ {n:,}", (str(n), "us_per_job_median"), 0) for n in sizes]
        cols += [
            (f"{sizes[-1]:,} / {sizes[0]:,}", ("ratio",), 2),
            (f"RSS MB min @ {sizes[-1]:,}", ("rss", "rss_mb_min"), 1),
            (f"RSS MB max @ {sizes[-1]:,}", ("rss", "rss_mb_max"), 1),
            (f"bytes/job @ {sizes[-1]:,}", ("rss", "bytes_per_job"), 0),
        ]
        out.append(
            table(
                "Scale: draining from the head of a large backlog",
                rows,
                labels,
                cols,
                note=f"Windows of {result['plan']['scale_window']:,} jobs after a "
                f"{result['plan']['scale_warmup']} job warm-up, one worker process at concurrency 10; "
                "the backlog is copies of one real payload written by a Lua loop.",
            )
        )
    if "web" in s:
        w = s["web"]
        if "skipped" in w:
            out.append(f"### Through the web stack\n\nskipped: {w['skipped']}\n")
        else:
            t = w.get("template", {})
            out.append(
                table(
                    "Through the web stack (template backend, one uvicorn process)",
                    w,
                    {"template": "template-app backend"},
                    [
                        ("GET /noop req/s", ("noop_rps",), 0),
                        ("POST /invoices/{id}/noop req/s", ("shaped_noop_rps",), 0),
                        ("POST /invoices/{id}/send req/s", ("enqueue_rps",), 0),
                        ("send / same-shape noop", ("ratio",), 2),
                        ("send / GET /noop", ("ratio_get_noop",), 2),
                        ("server CPU µs/request, same-shape noop", ("shaped_noop_cpu_us",), 0),
                        ("server CPU µs/request, send", ("enqueue_cpu_us",), 0),
                        ("CPU: same-shape noop / send", ("cpu_ratio",), 2),
                    ],
                    ratio_of="-",
                    note=f"Load: {t.get('tool')} with {t.get('connections')} keep-alive connections for "
                    f"{t.get('seconds')} s per route per repeat, to 127.0.0.1; only 2xx answers counted "
                    f"(non-2xx seen: {t.get('non_2xx')}).",
                )
            )
    if "monitor" in s:
        lines = [
            "### Where the commands go (MONITOR, one pass)",
            "",
            "| system | phase | client cmds/job | inside scripts/job | commands |",
            "|---|---|---|---|---|",
        ]
        for key, v in s["monitor"].items():
            for phase in ("enqueue", "worker"):
                p = v[phase]
                names = ", ".join(f"{k} {x:.2f}" for k, x in sorted(p["client"].items(), key=lambda i: -i[1]))
                lua = ", ".join(f"{k} {x:.2f}" for k, x in sorted(p["lua"].items(), key=lambda i: -i[1]))
                lines.append(
                    f"| {labels.get(key, key)} | {phase} | {p['client_commands_per_job']:.2f} | "
                    f"{p['script_commands_per_job']:.2f} | {names}{'; in scripts: ' + lua if lua else ''} |"
                )
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def render_load(load: dict[str, Any], labels: dict[str, str], plan: dict[str, Any]) -> str:
    """Pickup delay under open-loop load: one row per system and load level."""
    lines = [
        "### Pickup latency under load (open loop, fractions of each system's own drain rate)",
        "",
        "| system | load | jobs/s sent | jobs | p50 ms | p99 ms | p99.9 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, v in load.items():
        for name, lv in v.get("levels", {}).items():
            lines.append(
                f"| {labels.get(key, key)} | {name}% of {v['drain_rate']:,.0f} | {_fmt(lv.get('sent_rate'), 0)} | "
                f"{_fmt(lv.get('jobs'), 0)} | {_fmt(lv.get('p50_ms'), 2)} | {_fmt(lv.get('p99_ms'), 2)} | "
                f"{_fmt(lv.get('p999_ms'), 2)} | {_fmt(lv.get('max_ms'), 2)} |"
            )
    lines += [
        "",
        f"Each level: {plan.get('load_seconds')} s of single enqueues with Poisson arrivals (exponential gaps, "
        "fixed seed) at the fraction of the system's own steady 1-process drain rate from this run, sent "
        "whether or not earlier enqueues returned (open loop), by a new producer process that has sent one job "
        "and seen it run first; one warm worker process at concurrency 10; "
        "delay = the task body's first line minus the time just before that job's enqueue. With fewer "
        "than 1,000 jobs in a level, p99.9 is the maximum.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Re-render the tables of a saved result: ``python -m bench.report bench/results/<file>.json``."""
    import json
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.report RESULT.json", file=sys.stderr)
        return 2
    print(render(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
