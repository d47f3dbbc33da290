"""ops/: the alert rules pass promtool (syntax and unit tests), the dashboard's queries parse, and
every metric either names is one a real worker (or producer) exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis.asyncio import Redis

import scalr_queue
from scalr_queue.redis._server import free_port
from tests.metrics_support import MetricsWorker, names, value
from tests.support import ROOT, wait_until

pytestmark = pytest.mark.timeout(90)

OPS = ROOT / "ops"
ALERTS = OPS / "prometheus" / "alerts.yml"
ALERTS_TEST = OPS / "prometheus" / "alerts_test.yml"
DASHBOARD = OPS / "grafana" / "scalr_queue.json"
METRIC = re.compile(r"\bscalr_queue_[a-z_]+\b")


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: `make bootstrap` installs it (Debian's prometheus package)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    return exprs + [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]


def test_alert_rules_pass_promtool_check() -> None:
    out = promtool("check", "rules", str(ALERTS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in out.stdout


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    out = promtool("test", "rules", ALERTS_TEST.name, cwd=ALERTS_TEST.parent)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() -> None:
    cases = [case for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"] for case in test["alert_rule_test"]]
    for rule in alert_rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} never fires in {ALERTS_TEST.name}"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} is never shown quiet"
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert "{{ $labels.queue }}" in rule["annotations"]["summary"]


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, Grafana's variables given plain values."""
    exprs = [e.replace("$__rate_interval", "5m").replace("$queue", ".*") for e in dashboard_queries()]
    exprs = [e for e in exprs if not e.startswith("label_values(")]  # Grafana's own function
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"q{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    out = promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_shows_what_an_operator_asks_first() -> None:
    board = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in board["panels"]}
    assert {"Throughput", "Failures", "Depth by state", "Oldest ready job age", "Punctuality p95"} <= titles
    assert "Workers alive" in titles
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in board["panels"]), (
        "the Prometheus data source is chosen on import, not hard-coded"
    )


WORKER = """
import scalr_queue


async def good(ctx) -> None:
    pass


async def bad(ctx) -> None:
    raise scalr_queue.Fail("no")


async def fan_out(ctx) -> None:
    await ctx["redis"].enqueue_job("good")

tasks = [good, bad, fan_out]
"""


async def test_dashboard_and_alerts_name_only_metrics_a_real_worker_exports(
    redis: Redis, worker_module: Callable[..., Path]
) -> None:
    used = {m for text in [*dashboard_queries(), *(r["expr"] for r in alert_rules())] for m in METRIC.findall(text)}
    used |= set(METRIC.findall(ALERTS_TEST.read_text()))  # the unit tests' input series too
    worker = MetricsWorker(worker_module(WORKER), "jobs_mod", free_port())
    try:
        await scalr_queue.enqueue("bad")
        await (await scalr_queue.enqueue("fan_out")).result(timeout=15)

        def complete() -> bool:
            s = worker.scrape()
            return value(s, "scalr_queue_jobs_succeeded_total", queue="default", task="good") == 1 and (
                value(s, "scalr_queue_queue_depth", queue="default", state="failed") == 1
            )

        await wait_until(complete, timeout=20, interval=0.1, what="the worker to export every metric")
        exported = names(worker.scrape())
    finally:
        worker.stop()
    assert used, "the files name no metric at all"
    assert used <= exported, f"named but never exported: {sorted(used - exported)}"
