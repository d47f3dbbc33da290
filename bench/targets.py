"""The benchmark's targets, checked against one run's medians (ratios to vanilla arq from the same run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = tuple[str, Callable[[dict[str, Any]], float | None], str, float, str]


def _g(d: Any, *path: str) -> float | None:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return float(d) if isinstance(d, int | float) and not isinstance(d, bool) else None


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _sys(s: dict[str, Any], scenario: str, key: str, *path: str) -> float | None:
    return _g(s.get(scenario, {}).get(key), *path)


def _life(s: dict[str, Any], key: str, producer: str, what: str) -> float | None:
    e = _sys(s, "enqueue", f"{producer}-producer", "sequential", what)
    d = _sys(s, "drain1", key, what)
    return e + d if e is not None and d is not None else None


def _scale(s: dict[str, Any], key: str, what: str) -> float | None:
    per = s.get("scale", {}).get(key, {})
    if len(per) < 2:
        return None
    sizes = sorted(per, key=int)
    if what == "ratio":
        return _div(_g(per[sizes[-1]], "us_per_job_median"), _g(per[sizes[0]], "us_per_job_median"))
    # RSS growth: the largest backlog's peak against the smallest backlog's peak
    return _div(_g(per[sizes[-1]], "rss_mb_max"), _g(per[sizes[0]], "rss_mb_max"))


def _enqueue_many(s: dict[str, Any]) -> float | None:
    e = s.get("enqueue", {}).get("scalr-producer", {})
    rates = [_g(v, "jobs_per_s") for k, v in e.items() if k.startswith("batch_")]
    rates = [r for r in rates if r is not None]
    return max(rates) if rates else None


PEERS = ("saq", "taskiq", "docket")


def _best_peer(s: dict[str, Any], scenario: str, path: tuple[str, ...], best: Callable[..., float]) -> float | None:
    """The best peer's figure in this run (min for latency, max for throughput); None without peers."""
    values = [v for v in (_sys(s, scenario, p, *path) for p in PEERS) if v is not None]
    return best(values) if values else None


def _load_p99(s: dict[str, Any], level: str) -> float | None:
    return _g(s.get("load_latency", {}).get("scalr", {}).get("levels", {}).get(level), "p99_ms")


def _over(num: tuple[str, str], den: tuple[str, str], *path: str) -> Callable[[dict[str, Any]], float | None]:
    """The ratio of one (scenario, system) figure to another's, from the same run."""
    return lambda s: _div(_sys(s, num[0], num[1], *path), _sys(s, den[0], den[1], *path))


SCALR_PICKUP, ARQ_PICKUP = ("idle_latency", "scalr"), ("idle_latency", "arq-0.01")
CHECKS: list[Check] = [
    ("idle pickup p50", lambda s: _sys(s, *SCALR_PICKUP, "p50_ms"), "<=", 1.0, "ms"),
    ("idle pickup p99", lambda s: _sys(s, *SCALR_PICKUP, "p99_ms"), "<=", 3.0, "ms"),
    (
        "worker CPU per no-op job (1 process, steady)",
        lambda s: _sys(s, "drain1", "scalr", "worker_cpu_us_per_job_steady"),
        "<=",
        100.0,
        "µs",
    ),
    ("pickup p50: arq poll 0.01 / scalr", _over(ARQ_PICKUP, SCALR_PICKUP, "p50_ms"), ">=", 4.0, "×"),
    ("pickup p99: arq poll 0.01 / scalr", _over(ARQ_PICKUP, SCALR_PICKUP, "p99_ms"), ">=", 4.0, "×"),
    ("idle worker CPU per 10 s", lambda s: _sys(s, *SCALR_PICKUP, "idle_cpu_s_per_10s"), "<=", 0.05, "s"),
    (
        "drain vs arq poll 0.01 (from spawn)",
        _over(("drain1", "scalr"), ("drain1", "arq-0.01"), "jobs_per_s"),
        ">=",
        2.0,
        "×",
    ),
    (
        "drain vs arq default poll (from spawn)",
        _over(("drain1", "scalr"), ("drain1", "arq-0.5"), "jobs_per_s"),
        ">=",
        4.0,
        "×",
    ),
    (
        "2nd worker process gain (from spawn)",
        _over(("drain2", "scalr"), ("drain1", "scalr"), "jobs_per_s"),
        ">=",
        1.6,
        "×",
    ),
    (
        "2nd worker process gain (steady)",
        _over(("drain2", "scalr"), ("drain1", "scalr"), "jobs_per_s_steady"),
        ">=",
        1.6,
        "×",
    ),
    ("round trips per job, whole life", lambda s: _life(s, "scalr", "scalr", "round_trips_per_job"), "<=", 3.0, ""),
    (
        "enqueue round trips",
        lambda s: _sys(s, "enqueue", "scalr-producer", "sequential", "round_trips_per_job"),
        "<=",
        1.05,
        "",
    ),
    (
        "commands per job vs arq (whole life)",
        lambda s: _div(_life(s, "scalr", "scalr", "commands_per_job"), _life(s, "arq-0.01", "arq", "commands_per_job")),
        "<=",
        0.5,
        "×",
    ),
    ("enqueue_many", _enqueue_many, ">=", 10_000, "jobs/s"),
    (
        "bytes per queued job vs arq",
        _over(("drain1", "scalr"), ("drain1", "arq-0.01"), "bytes_per_queued_job"),
        "<=",
        1.0,
        "×",
    ),
    (
        "web: enqueue route / same-shape no-op route",
        lambda s: _g(s.get("web", {}).get("template"), "ratio"),
        ">=",
        0.85,
        "×",
    ),
    ("scale: per-job cost, largest / smallest backlog", lambda s: _scale(s, "scalr", "ratio"), "<=", 1.5, "×"),
    ("scale: worker RSS peak, largest / smallest backlog", lambda s: _scale(s, "scalr", "rss"), "<=", 1.1, "×"),
    # against the fastest asyncio peers in the same run (SAQ, taskiq, pydocket; not measured without their venvs)
    (
        "pickup p50: best peer / scalr",
        lambda s: _div(_best_peer(s, "idle_latency", ("p50_ms",), min), _sys(s, *SCALR_PICKUP, "p50_ms")),
        ">=",
        1.0,
        "×",
    ),
    (
        "pickup p99: best peer / scalr",
        lambda s: _div(_best_peer(s, "idle_latency", ("p99_ms",), min), _sys(s, *SCALR_PICKUP, "p99_ms")),
        ">=",
        1.0,
        "×",
    ),
    (
        "drain vs best peer (steady, 1 proc)",
        lambda s: _div(
            _sys(s, "drain1", "scalr", "jobs_per_s_steady"), _best_peer(s, "drain1", ("jobs_per_s_steady",), max)
        ),
        ">=",
        1.0,
        "×",
    ),
    ("pickup p99 at 50% of the drain rate", lambda s: _load_p99(s, "50"), "<=", 10.0, "ms"),
]


def render_targets(summary: dict[str, Any]) -> str:
    lines = [
        "### Targets (scalr_queue, this run; bench/targets.py)",
        "",
        "| target | measured | goal | met |",
        "|---|---|---|---|",
    ]
    for name, get, op, goal, unit in CHECKS:
        try:
            value = get(summary)
        except (KeyError, TypeError, ZeroDivisionError):
            value = None
        if value is None:
            lines.append(f"| {name} | not measured | {op} {goal:,g} {unit} | – |")
            continue
        met = value <= goal if op == "<=" else value >= goal
        shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
        sep = "" if unit in ("", "×") else " "
        want = f"{'≤' if op == '<=' else '≥'} {goal:,g}{sep}{unit}"
        lines.append(f"| {name} | {shown}{sep}{unit} | {want} | {'yes' if met else '**no**'} |")
    return "\n".join(lines) + "\n"
