"""Reliability suite: quick sizes in ``make test``, ``--full`` sizes in ``make reliability``.

Each fault test records its figures (jobs, kills, restarts, lost, duplicates, reconnect time)
through the ``record`` fixture into ``results/<mode>/<test>.json`` (gitignored); at the end of
the session ``pytest_terminal_summary`` prints them as one table and writes it to
``results/<mode>/summary.md``, the table docs/reliability.md quotes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ("scenario", "jobs", "kills", "restarts", "lost", "duplicates", "reconnect", "notes")
_SESSION = {"started": time.time()}


def mode(config: pytest.Config) -> str:
    return "full" if config.getoption("--full") else "quick"


@pytest.fixture(autouse=True)
def _stop_leftover_workers() -> Iterator[None]:
    """Whatever a test does, no worker process it started outlives it (stopped by PID)."""
    from .rsupport import STARTED

    yield
    while STARTED:
        STARTED.pop().stop(timeout=10)


@pytest.fixture
def full(request: pytest.FixtureRequest) -> bool:
    """True under ``--full`` (``make reliability``): the long sizes."""
    return bool(request.config.getoption("--full"))


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``record(scenario=..., jobs=..., kills=..., ...)``: keep this test's figures for the summary."""

    def write(**figures: Any) -> None:
        out = RESULTS / mode(request.config)
        out.mkdir(parents=True, exist_ok=True)
        data = {"test": request.node.name, "session": _SESSION["started"], "at": time.time(), **figures}
        name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
        (out / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))

    return write


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def summary_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    out = RESULTS / mode(config)
    if not out.is_dir():
        return
    rows = []
    for path in sorted(out.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("session") == _SESSION["started"]:
            rows.append(data)
    if not rows:
        return
    rows.sort(key=lambda r: r.get("order", 99))
    table = summary_table(rows)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (out / "summary.md").write_text(f"Reliability suite ({mode(config)}), {stamp}\n\n{table}\n")
    terminalreporter.write_sep("=", f"reliability figures ({mode(config)})")
    terminalreporter.write_line(table)
    terminalreporter.write_line(f"(also in {out / 'summary.md'})")
