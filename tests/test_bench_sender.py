"""The sender benchmark runs at a tiny size and reports every variant and row (never a speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.sender import ROWS, VARIANTS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sender_bench_tiny_run_reports_every_variant_and_row(tmp_path: Path) -> None:
    out = tmp_path / "sender.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCALR_QUEUE_", "REDIS_URL"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.sender", "--tiny", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(ROWS)  # the header, then one line per measure
    assert all(name in table[0] for name in VARIANTS)
    result = json.loads(out.read_text())
    for name in VARIANTS:
        (repeat,) = result["repeats"][name]
        assert set(repeat) == {key for _, key in ROWS}
        assert all(value > 0 for value in repeat.values()), repeat
