"""What the compose files and the Dockerfile promise, proven on real containers.

The tests share the session's stack and run in file order; each one leaves the template app
up again. Timing overrides (a short shutdown grace, fast health probes) go into compose
override files in the repository copy: they change how often or how long, never what runs.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
from docker_support import (
    REDIS_COMPOSE,
    REPO,
    REPORT,
    Stack,
    activate_worker,
    docker,
    exists,
    health,
    inspect,
    run,
    running_names,
    size_mb,
    wait_health,
    wait_until,
    write_override,
)

from scalr_queue.testing import free_port

APP = ("template-app-backend", "template-app-worker")
IMAGE = "scalr/template-app:latest"
DEV_TOOLS = {"pytest", "ruff", "mypy", "honcho", "httpx", "check-jsonschema", "dockerfile", "coverage"}
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted({d.metadata['Name'].lower().replace('_', '-') for d in m.distributions()})))"
)


def pinned_names(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {line.split("==")[0].lower() for line in lines if "==" in line and not line.startswith("#")}


def processes(container: str) -> list[tuple[str, str]]:
    """(uid, command line) of every process in the container."""
    rows = docker("top", container, "-o", "pid,uid,args").splitlines()[1:]
    return [(row.split(None, 2)[1], row.split(None, 2)[2]) for row in rows]


def new_job_id(what: str) -> str:
    return f"docker-test-{what}-{uuid.uuid4().hex[:8]}"


def wait_worker_serving(since: float, timeout: float = 60) -> str:
    """The worker container's start-up line, logged after ``since`` (a time.time())."""

    def banner() -> str | None:
        logs = docker("logs", "--since", f"{since:.3f}", "template-app-worker")
        return logs if "serving queue" in logs else None

    return wait_until(banner, timeout, "the worker to log that it serves its queue", interval=0.25)


# --- the image ------------------------------------------------------------------------------


def test_backend_and_worker_run_one_image(stack: Stack) -> None:
    image_id = docker("image", "inspect", "-f", "{{.Id}}", IMAGE)
    assert inspect("template-app-backend", "{{.Image}}") == image_id
    assert inspect("template-app-worker", "{{.Image}}") == image_id
    # Built once by `make up`: the only image it created is the one both containers run. (With a
    # `build:` in both services, compose built it twice and left an untagged copy behind.)
    assert stack.images_from_first_up <= {image_id}


def test_app_processes_run_as_a_non_root_user(stack: Stack) -> None:
    for container in APP:
        assert inspect(container, "{{.Config.User}}") == "app"
        assert docker("exec", container, "id", "-u") == "10001"
        # every process in it (docker-init and the app), as the host's kernel sees them
        rows = processes(container)
        assert len(rows) >= 2 and all(uid == "10001" for uid, _ in rows), rows
    # and the code it runs is not writable by it
    out = docker("exec", "template-app-backend", "sh", "-c", "touch /app/src/x 2>&1; echo rc=$?", check=False)
    assert "rc=1" in out and "Permission denied" in out


def test_image_has_no_reload_and_no_dev_dependencies(stack: Stack) -> None:
    commands = [args for _, args in processes("template-app-backend")]
    assert any("uvicorn src.main:app" in args for args in commands), commands
    assert not any("--reload" in args or "watchfiles" in args for args in commands), commands
    assert "--reload" not in inspect("template-app-backend", "{{json .Config.Cmd}}")

    in_image = set(json.loads(docker("exec", "template-app-backend", "python", "-c", LIST_DISTRIBUTIONS)))
    in_base = set(json.loads(docker("run", "--rm", "python:3.11-slim", "python", "-c", LIST_DISTRIBUTIONS)))
    added = in_image - in_base
    dev_only = pinned_names(REPO / "requirements-dev.txt") - pinned_names(REPO / "requirements.txt")
    assert dev_only >= DEV_TOOLS  # the check below looks for the right names
    assert not added & dev_only, f"dev dependencies in the image: {sorted(added & dev_only)}"
    assert {"scalr-queue", "arq", "fastapi", "uvicorn"} <= added


def test_image_size_is_reported_and_stays_within_budget(stack: Stack) -> None:
    image, base = size_mb(IMAGE), size_mb("python:3.11-slim")
    labels = docker("image", "inspect", "-f", "{{json .Config.Labels}}", "python:3.11-slim")
    base_kind = "stand-in" if "org.scalr.stand-in" in labels else "official"
    REPORT["image size"] = (
        f"{IMAGE} {image:.0f} MB = {base_kind} python:3.11-slim {base:.0f} MB + {image - base:.0f} MB"
    )
    print(REPORT["image size"])
    # What the Dockerfile adds on top of its base: the pinned runtime dependencies and the code.
    assert image - base < 120, REPORT["image size"]


# --- stopping the worker --------------------------------------------------------------------


def test_compose_stop_lets_a_running_ten_second_job_finish(stack: Stack) -> None:
    job_id = stack.enqueue_in_backend("pause", new_job_id("drain"), seconds=10)
    stack.wait_job(job_id, "in_progress", timeout=30)
    started = time.monotonic()
    try:
        stack.compose("stop", "worker")  # SIGTERM, then compose waits up to stop_grace_period
        took = time.monotonic() - started
        info = stack.job(job_id)
        assert info["status"] == "complete" and info["result"] == 10 and info["tries"] == 1, info
        assert inspect("template-app-worker", "{{.State.ExitCode}}") == "0"
        assert 3 < took < 60, f"stop took {took:.1f}s"  # it waited for the job, well inside the grace
    finally:
        stack.compose("start", "worker")
    REPORT["compose stop during a 10 s job"] = f"job finished, worker exited 0 after {took:.1f} s"


def test_compose_stop_past_the_shutdown_grace_puts_the_job_back(stack: Stack, override_dir: Path) -> None:
    short = write_override(
        override_dir / "short-grace.yml",
        {"worker": {"environment": {"SCALR_QUEUE_SHUTDOWN_GRACE": "2"}, "stop_grace_period": "30s"}},
    )
    since = time.time()
    stack.compose("up", "-d", "worker", files=(short,))
    assert "shutdown_grace=2.0" in wait_worker_serving(since)
    job_id = stack.enqueue_in_backend("pause", new_job_id("requeue"), seconds=10)
    stack.wait_job(job_id, "in_progress", timeout=30)
    started = time.monotonic()
    try:
        stack.compose("stop", "worker", files=(short,))
        took = time.monotonic() - started
        info = stack.job(job_id)
        assert info["status"] in ("queued", "deferred"), info  # back in the queue, not lost, not failed
        assert took < 9, f"stop took {took:.1f}s: the 2 s grace was not applied"
        logs = docker("logs", "--since", f"{since:.3f}", "template-app-worker")
        assert "shutdown grace (2s) over: cancelling 1 jobs; they go back to the queue" in logs, logs
        assert "1 requeued at shutdown" in logs, logs
    finally:
        since = time.time()
        stack.compose("up", "-d", "worker")  # the shipped configuration again
    wait_worker_serving(since)
    info = stack.wait_job(job_id, "complete", timeout=60)
    assert info["result"] == 10 and info["tries"] == 1, info  # a shutdown requeue uses up no try


# --- health checks --------------------------------------------------------------------------


def test_healthchecks_turn_unhealthy_when_redis_stops_and_recover(stack: Stack, override_dir: Path) -> None:
    # Shipped: every 15 s, 3 retries; fast here, same probes.
    fast_check = {"interval": "1s", "timeout": "10s", "retries": 2, "start_period": "0s"}
    fast = write_override(
        override_dir / "fast-health.yml",
        {"backend": {"healthcheck": fast_check}, "worker": {"healthcheck": fast_check}},
    )
    shipped = {c: inspect(c, "{{json .Config.Healthcheck.Test}}") for c in APP}
    stack.compose("up", "-d", files=(fast,))
    try:
        assert {c: inspect(c, "{{json .Config.Healthcheck.Test}}") for c in APP} == shipped
        wait_health(APP, "healthy", timeout=60)
        run(["docker", "compose", "-f", REDIS_COMPOSE, "stop"], stack.repo)
        wait_health(APP, "unhealthy", timeout=60)
        assert httpx.get(stack.url("/healthz"), timeout=10).status_code == 503
        run(["docker", "compose", "-f", REDIS_COMPOSE, "start"], stack.repo)
        wait_health(("scalr-redis", *APP), "healthy", timeout=90)
        assert httpx.get(stack.url("/healthz"), timeout=10).status_code == 200
    finally:
        if health("scalr-redis") != "healthy":
            run(["docker", "compose", "-f", REDIS_COMPOSE, "start"], stack.repo, check=False)
        stack.compose("up", "-d")  # the shipped configuration again
    stack.wait_backend()


# --- make down / make up --------------------------------------------------------------------


def test_jobs_queued_before_make_down_run_after_make_up(stack: Stack) -> None:
    stack.wait_backend()
    stack.compose("stop", "worker")
    response = httpx.post(stack.url("/invoices/7/send"), timeout=10)
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert stack.job(job_id)["status"] == "queued"

    down = stack.make("down")
    assert "docker compose -f services/redis/docker-compose.yml down" in down
    assert not running_names() & {"scalr-redis", *APP}
    assert exists("volume", "scalr-redis-data")  # kept: the AOF lives there

    stack.make("up")
    info = stack.wait_job(job_id, "complete", timeout=60)
    assert info["result"] == {"invoice_id": 7, "sent_to": "customer-7@example.com"}


# --- a second app ---------------------------------------------------------------------------


def test_a_second_app_shares_the_one_redis(stack: Stack) -> None:
    stack.make("new-app", "NAME=billing")
    activate_worker(stack.repo / "billing")
    stack.ports["billing"] = port = free_port()
    stack.make("up", app="billing")

    wait_until(
        lambda: stack.workers_seen("billing") == 2, 90, "billing's backend to see both apps' workers", interval=0.25
    )
    members = json.loads(docker("network", "inspect", "-f", "{{json .Containers}}", "scalr-net"))
    names = {c["Name"] for c in members.values()}
    assert names == {"scalr-redis", *APP, "billing-backend", "billing-worker"}
    assert [n for n in running_names() if "redis" in n] == ["scalr-redis"]
    assert inspect("billing-backend", "{{json .NetworkSettings.Ports}}").count(f'"HostPort":"{port}"') == 1

    job_id = httpx.post(stack.url("/invoices/5/send", "billing"), timeout=10).json()["job_id"]
    assert stack.wait_job(job_id, "complete", timeout=30, app="billing")["result"]["invoice_id"] == 5

    # Taking billing down keeps the Redis the template app still uses.
    down = stack.make("down", app="billing")
    assert "keeping the shared Redis" in down
    assert "scalr-redis" in running_names()
    stack.wait_backend()
    job_id = httpx.post(stack.url("/invoices/8/send"), timeout=10).json()["job_id"]
    assert stack.wait_job(job_id, "complete", timeout=30)["result"]["invoice_id"] == 8
