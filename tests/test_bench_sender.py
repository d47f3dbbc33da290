"""The sender benchmark runs at a tiny size and reports every variant and row (never a speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.sender import ROWS, VARIANTS
from tests.support import run_bench


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sender_bench_tiny_run_reports_every_variant_and_row(tmp_path: Path) -> None:
    out = tmp_path / "sender.json"
    proc = run_bench("sender", "--tiny", "--out", str(out), timeout=50)
    assert proc.returncode == 0, proc.stderr[-3000:]

    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(ROWS)  # the header, then one line per measure
    assert all(name in table[0] for name in VARIANTS)
    result = json.loads(out.read_text())
    for name in VARIANTS:
        (repeat,) = result["repeats"][name]
        assert set(repeat) == {key for _, key in ROWS}
        assert all(value > 0 for value in repeat.values()), repeat
