"""bench/limits.py runs end to end at a tiny size: the plain path issues the commands main does."""

from __future__ import annotations

import re

import pytest

from tests.support import run_bench


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_limits_bench_compares_with_main_and_plain_jobs_cost_no_extra_command() -> None:
    proc = run_bench("limits", "--jobs", "300", "--rounds", "1", "--flood", "300", timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| (main|plain|mixed|limited) \|.*\| ([\d.]+) \|$", proc.stdout, re.M)
    }
    assert set(rows) == {"main", "plain", "mixed", "limited"}, proc.stdout
    # batching moves the count a little between runs; an extra command per job would add 1.0
    assert abs(float(rows["plain"]) - float(rows["main"])) < 0.3, proc.stdout
    assert "flood: 300 jobs" in proc.stdout and "300 parked" in proc.stdout
