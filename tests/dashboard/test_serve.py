"""``scalr-queue dashboard``: refuses to expose itself without credentials, with one line, before serving."""

from __future__ import annotations

from tests.support import run_cli


def test_binding_beyond_loopback_without_credentials_is_refused() -> None:
    done = run_cli("dashboard", "--host", "0.0.0.0", "--port", "8199", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "scalr-queue: error: --host 0.0.0.0 would expose the dashboard beyond loopback without credentials: set "
        "SCALR_QUEUE_DASHBOARD_TOKEN, or SCALR_QUEUE_DASHBOARD_USERNAME and SCALR_QUEUE_DASHBOARD_PASSWORD"
    ]


def test_a_bad_port_or_setting_is_one_line() -> None:
    done = run_cli("dashboard", "--port", "70000")
    assert done.returncode == 2 and done.stderr.strip() == (
        "scalr-queue: error: --port 70000 is not valid: expected 1 to 65535"
    )
    done = run_cli("dashboard", env={"SCALR_QUEUE_DASHBOARD_TOKEN": " "})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "invalid setting SCALR_QUEUE_DASHBOARD_TOKEN: expected a non-empty value" in done.stderr
