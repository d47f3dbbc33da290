"""The pictures of one benchmark run: pickup latency CDFs and drain rates, as small PNG files.

Usage::

    python -m bench.plots bench/results/<UTC>-quick.json          # PNGs beside it, <stem>-*.png
    python -m bench.plots RESULT.json --out-dir bench/results --prefix latest

Three charts, every system of the run on each (only ratios within one run mean anything):

* ``<prefix>-pickup-cdf.png``: idle pickup delay, one CDF line per system, log x axis;
* ``<prefix>-load-cdf.png``: pickup delay at 50% of each system's own drain rate (open loop);
* ``<prefix>-drain.png``: jobs/s draining a queued backlog, 1 and 2 worker processes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

# one colour per system across every chart
COLOURS = {
    "arq-0.5": "#9e9e9e",
    "arq-0.01": "#5f5f5f",
    "scalr": "#d62728",
    "saq": "#1f77b4",
    "taskiq": "#2ca02c",
    "docket": "#9467bd",
}
# short tick labels for the bar chart (the legends use each system's full label)
SHORT = {
    "arq-0.5": "arq 0.28\npoll 0.5 s",
    "arq-0.01": "arq 0.28\npoll 0.01 s",
    "scalr": "scalr_queue",
    "saq": "SAQ",
    "taskiq": "taskiq\n(stream broker)",
    "docket": "pydocket",
}


def _delays(result: dict[str, Any], scenario: str, key: str, level: str | None = None) -> list[float]:
    """Every delay of every repeat, in ms (a CDF wants all samples, not medians)."""
    out: list[float] = []
    for rep in result.get("repeats", {}).get(scenario, {}).get(key, []):
        src = rep["levels"].get(level, {}) if level else rep
        out += [float(x) for x in src.get("delays_ms", []) if float(x) > 0]
    return sorted(out)


def _cdf(ax: Any, result: dict[str, Any], scenario: str, level: str | None, title: str) -> bool:
    labels = {k: v["label"] for k, v in result["systems"].items()}
    drawn = False
    for key in result["systems"]:
        ms = _delays(result, scenario, key, level)
        if not ms:
            continue
        n = len(ms)
        p50 = ms[min(n - 1, round(0.5 * (n - 1)))]  # the same rule as the tables
        ax.step(
            ms,
            [(i + 1) / n for i in range(n)],
            where="post",
            color=COLOURS.get(key),
            linewidth=1.6,
            label=f"{labels.get(key, key)} (p50 {p50:.2f} ms, n={n})",
        )
        drawn = True
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("pickup delay, ms (enqueue call to the task body's first line; log scale)")
    ax.set_ylabel("fraction of jobs picked up")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=10)
    if drawn:
        ax.legend(fontsize=7, loc="best")
    return drawn


def _drain(ax: Any, result: dict[str, Any]) -> bool:
    s = result["summary"]
    keys = [k for k in result["systems"] if k in s.get("drain1", {})]
    if not keys:
        return False
    labels = {k: v["label"] for k, v in result["systems"].items()}
    width = 0.38
    for i, (scenario, hatch) in enumerate((("drain1", ""), ("drain2", "//"))):
        vals = [s.get(scenario, {}).get(k, {}).get("jobs_per_s_steady", 0) for k in keys]
        xs = [j + (i - 0.5) * width for j in range(len(keys))]
        bars = ax.bar(xs, vals, width, color=[COLOURS.get(k, "#777") for k in keys], hatch=hatch, edgecolor="white")
        for b, v in zip(bars, vals, strict=True):
            if v:
                ax.annotate(f"{v:,.0f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(keys)), [SHORT.get(k, labels[k]) for k in keys], fontsize=8)
    ax.set_ylabel("jobs/s (steady: last 80% of the backlog)")
    m = result["meta"]
    ax.set_title(
        f"Drain {result['plan']['drain_jobs']:,} queued no-op jobs, concurrency 10 per process\n"
        f"{m['date']}, {result['mode']} mode, {m['cores']} shared cores",
        fontsize=10,
    )
    ax.legend(
        handles=[
            Patch(facecolor="#bbbbbb", edgecolor="white", label="1 worker process"),
            Patch(facecolor="#bbbbbb", edgecolor="white", hatch="//", label="2 worker processes"),
        ],
        fontsize=8,
    )
    ax.grid(True, axis="y", alpha=0.3)
    return True


def draw(result: dict[str, Any], out_dir: Path, prefix: str) -> list[Path]:
    """Write the charts a result has data for; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    when = f"{result['meta']['date']}, {result['mode']} mode, {result['meta']['cores']} shared cores"
    written: list[Path] = []
    charts = (
        ("pickup-cdf", lambda ax: _cdf(ax, result, "idle_latency", None, f"Idle pickup latency\n{when}")),
        (
            "load-cdf",
            lambda ax: _cdf(
                ax,
                result,
                "load_latency",
                "50",
                f"Pickup latency, open-loop load at 50% of each system's own drain rate\n{when}",
            ),
        ),
        ("drain", lambda ax: _drain(ax, result)),
    )
    for name, fn in charts:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=90)
        if fn(ax):
            path = out_dir / f"{prefix}-{name}.png"
            fig.tight_layout()
            fig.savefig(path)
            written.append(path)
        plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--out-dir", type=Path, default=None, help="default: the result file's folder")
    parser.add_argument("--prefix", default=None, help="default: the result file's name without .json")
    args = parser.parse_args(argv)
    result = json.loads(args.result.read_text())
    for path in draw(result, args.out_dir or args.result.parent, args.prefix or args.result.stem):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
