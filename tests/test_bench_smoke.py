"""The benchmark runs end to end at a tiny size and writes a well-formed result (never a speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import run_bench


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_bench_tiny_run_writes_a_complete_result(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = run_bench("run", "--tiny", "--systems", "arq-0.01", "scalr", "--out", str(out), timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| scalr_queue |" in proc.stdout  # the markdown tables went to stdout
    assert "### Targets (scalr_queue, this run" in proc.stdout

    result = json.loads(out.read_text())
    assert result["errors"] == []
    meta = result["meta"]
    for key in ("python", "arq", "redis_py", "redis_server", "cores", "date"):
        assert meta[key], key
    assert set(result["systems"]) == {"arq-0.01", "scalr"}
    s = result["summary"]
    for system in ("arq-0.01", "scalr"):
        assert s["drain1"][system]["jobs_per_s"] > 0
        assert s["drain2"][system]["jobs_per_s"] > 0
        assert s["drain1"][system]["commands_per_job"] > 0
        # the last 80% of a tiny drain can take less than one 10 ms CPU tick: present, not necessarily > 0
        assert s["drain1"][system]["worker_cpu_us_per_job_steady"] >= 0
        assert s["drain1"][system]["bytes_per_queued_job"] > 0
        idle = s["idle_latency"][system]
        assert idle["latency_lost"] == 0
        assert 0 < idle["p50_ms"] <= idle["p99_ms"] <= idle["max_ms"]
        assert idle["idle_cpu_s_per_10s"] >= 0
        assert s["monitor"][system]["worker"]["commands_per_job"] > 0
        (scale,) = s["scale"][system].values()
        assert scale["us_per_job_median"] > 0 and scale["rss_mb_max"] > 0
    for producer in ("arq-producer", "scalr-producer"):
        enq = s["enqueue"][producer]
        assert enq["sequential"]["jobs_per_s"] > 0
        assert enq["sequential"]["commands_per_job"] > 0
    # every repeat is kept, not only the medians
    assert len(result["repeats"]["drain1"]["scalr"]) == result["plan"]["repeats"] == 1
    web = s["web"]
    assert "skipped" in web or web["template"]["noop_rps"] > 0
    # latency under open-loop load: every level sent its jobs and every job's delay came back
    for system in ("arq-0.01", "scalr"):
        levels = s["load_latency"][system]["levels"]
        assert set(levels) == {"25", "50", "75"}
        for level in levels.values():
            assert level["jobs"] > 0 and level["lost"] == 0
            assert 0 < level["p50_ms"] <= level["p99_ms"] <= level["p999_ms"] <= level["max_ms"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bench_processes_drains_every_job_with_one_and_two_processes() -> None:
    proc = run_bench("processes", "--jobs", "400", "--repeats", "1", timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]  # a drain that loses a job raises
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| noop |", "| burn |"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[1].replace(",", "")) > 0 and float(cells[2].replace(",", "")) > 0
        assert cells[3].endswith("×") and cells[4].endswith("×")


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_bench_plots_draws_the_charts_of_a_result(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="a dev dependency of the benchmark; the lowest-versions run has none")
    result = {
        "mode": "tiny",
        "meta": {"date": "2026-12-02 00:00 UTC", "cores": 2},
        "plan": {"drain_jobs": 200},
        "systems": {"scalr": {"label": "scalr_queue"}, "saq": {"label": "SAQ"}},
        "summary": {
            "drain1": {"scalr": {"jobs_per_s_steady": 2000.0}, "saq": {"jobs_per_s_steady": 800.0}},
            "drain2": {"scalr": {"jobs_per_s_steady": 3000.0}},
        },
        "repeats": {
            "idle_latency": {"scalr": [{"delays_ms": [1.5, 2.0, 2.5]}], "saq": [{"delays_ms": [3.0, 4.0]}]},
            "load_latency": {"scalr": [{"levels": {"50": {"delays_ms": [2.0, 9.0]}}}]},
        },
    }
    src = tmp_path / "r.json"
    src.write_text(json.dumps(result))
    proc = run_bench("plots", str(src), "--prefix", "t", timeout=50)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("pickup-cdf", "load-cdf", "drain"):
        png = tmp_path / f"t-{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bench_pickup_splits_a_pickup_and_measures_the_floor_and_the_idle_penalty() -> None:
    proc = run_bench("pickup", "--jobs", "5", "--no-monitor", timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split(" | ")[0].lstrip("| *") for line in proc.stdout.splitlines() if line.startswith("|")}
    assert any(row.startswith("send -> task start (without MONITOR)") for row in rows), proc.stdout
    assert any(row.startswith("floor: bare push -> BRPOP") for row in rows), proc.stdout
    assert any(row.startswith("idle penalty:") for row in rows), proc.stdout
    result = json.loads(proc.stderr[proc.stderr.index("{") :])
    assert len(result["passes"]) == 1 and result["passes"][0]["jobs"] == 5
    assert 0 < result["floor"]["p50_us"] <= result["floor"]["p99_us"]
    assert result["idle_penalty"]["idle_us"] > 0 and result["idle_penalty"]["warm_us"] > 0
