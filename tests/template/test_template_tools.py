"""check-names on the template, `make new-app`, `make dev` and `make queue-depth`, run for real."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from template_support import BACKEND, REPO, Proc, base_env, clean_env, wait_until

from scalr_queue.testing import RedisServer, free_port

VENV = Path(sys.executable).parent.parent


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("env", clean_env())
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]


def test_every_name_the_template_backend_enqueues_is_in_its_worker_tasks() -> None:
    out = run([sys.executable, "-m", "scalr_queue.cli", "check-names", "src", "src.worker"], cwd=BACKEND)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok: all 1 enqueue call(s)" in out.stdout


def test_check_names_would_catch_a_misspelled_name(tmp_path: Path) -> None:
    app = tmp_path / "backend"
    (app / "src").mkdir(parents=True)
    for name in ("__init__.py", "worker.py", "mail.py"):
        (app / "src" / name).write_text((BACKEND / "src" / name).read_text())
    main = (BACKEND / "src" / "main.py").read_text().replace('"send_invoice_email"', '"send_invoce_email"')
    (app / "src" / "main.py").write_text(main)
    out = run([sys.executable, "-m", "scalr_queue.cli", "check-names", "src", "src.worker"], cwd=app)
    assert out.returncode == 1
    assert "send_invoce_email" in out.stdout and "send_invoice_email" in out.stdout  # did-you-mean


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_template_apps_own_tests_pass() -> None:
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=BACKEND)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "skipped" not in tests.stdout


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_make_new_app_creates_a_renamed_app_whose_tests_pass(tmp_path: Path) -> None:
    out = run(["make", "--no-print-directory", "new-app", "NAME=billing", f"DEST_DIR={tmp_path}"], cwd=REPO)
    assert out.returncode == 0, out.stderr
    app = tmp_path / "billing"
    compose = (app / "docker-compose.yml").read_text()
    assert "container_name: billing-backend" in compose
    assert "container_name: billing-worker" in compose
    assert "dockerfile: billing/Dockerfile" in compose
    assert "COPY billing/backend/src /app/src" in (app / "Dockerfile").read_text()
    assert "!billing/backend/src" in (app / "Dockerfile.dockerignore").read_text()
    leftovers = run(["grep", "-rIl", "template-app", str(app)])
    assert leftovers.stdout == ""

    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=app / "backend")
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "skipped" not in tests.stdout

    again = run(["make", "--no-print-directory", "new-app", "NAME=billing", f"DEST_DIR={tmp_path}"], cwd=REPO)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_make_new_app_refuses_a_bad_or_missing_name(tmp_path: Path) -> None:
    missing = run(["make", "--no-print-directory", "new-app", f"DEST_DIR={tmp_path}"], cwd=REPO)
    assert missing.returncode != 0 and "usage: make new-app NAME=" in missing.stderr
    bad = run(["make", "--no-print-directory", "new-app", "NAME=Bad_Name", f"DEST_DIR={tmp_path}"], cwd=REPO)
    assert bad.returncode != 0 and "lowercase" in bad.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_make_dev_runs_redis_backend_and_worker_and_ctrl_c_stops_them(tmp_path: Path) -> None:
    """scripts/dev.sh is `make dev` after its bootstrap step (the venv here is already built)."""
    redis_port, backend_port = free_port(), free_port()
    env = clean_env()
    env.update(
        VENV=str(VENV),
        REDIS_PORT=str(redis_port),
        BACKEND_PORT=str(backend_port),
        REDIS_DIR=str(tmp_path / "redis"),
    )
    dev = Proc("dev", [str(REPO / "scripts" / "dev.sh")], REPO, env, tmp_path)
    base = f"http://127.0.0.1:{backend_port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as http:

            def backend_up() -> bool:
                assert dev.alive(), dev.log()[-3000:]
                return http.get("/noop").status_code == 200

            wait_until(backend_up, 60, "make dev's backend")
            banner = dev.log()
            assert f"curl -s -X POST {base}/invoices/42/send" in banner
            job_id = http.post("/invoices/42/send").json()["job_id"]
            wait_until(lambda: http.get(f"/jobs/{job_id}").json()["status"] == "complete", 30, "the dev worker")
            log = dev.log()
            prefixes = {m.group(1) for m in re.finditer(r"^\S+ (\w+)\.1\s+\|", log, re.MULTILINE)}
            assert prefixes == {"redis", "backend", "worker"}, log[-3000:]
    finally:
        code = dev.stop(timeout=30, sig=signal.SIGINT)  # Ctrl-C
    assert code is not None
    # nothing it started is left listening
    assert not RedisServer(port=redis_port).ping()
    with pytest.raises(httpx.TransportError), httpx.Client(timeout=2) as http:
        http.get(f"{base}/noop")


def test_make_dev_reuses_a_redis_that_already_answers(tmp_path: Path) -> None:
    with RedisServer() as server:
        env = clean_env()
        env.update(
            VENV=str(VENV),
            REDIS_PORT=str(server.port),
            BACKEND_PORT=str(free_port()),
            REDIS_DIR=str(tmp_path / "unused"),
        )
        dev = Proc("dev", [str(REPO / "scripts" / "dev.sh")], REPO, env, tmp_path)
        try:
            wait_until(lambda: "reusing it" in dev.log(), 20, "the reuse message")
            # honcho's own lines, not the banner dev.sh prints before honcho runs: a Ctrl-C sent
            # while honcho is still starting can be lost (with coverage's .pth, it is swallowed)
            wait_until(
                lambda: "backend.1 started" in dev.log() and "worker.1 started" in dev.log(), 20, "backend and worker"
            )
        finally:
            dev.stop(timeout=30, sig=signal.SIGINT)
        assert server.ping()  # ours, still up: make dev did not stop what it did not start
        assert "redis.1" not in dev.log()
        assert not (tmp_path / "unused").exists()


def test_make_queue_depth_prints_ready_scheduled_in_progress_failed() -> None:
    with RedisServer() as server:
        env = base_env(server.url)
        enqueue = run(
            [sys.executable, "-m", "scalr_queue.cli", "enqueue", "send_invoice_email", "invoice_id=5"],
            cwd=BACKEND,
            env=env,
        )
        assert enqueue.returncode == 0, enqueue.stderr
        env.pop("REDIS_URL")
        out = run(
            # an APP whose <app>-backend container cannot exist, so a template-app stack running on
            # this machine (make up) is not asked instead of this test's Redis
            [
                "make",
                "--no-print-directory",
                "queue-depth",
                "APP=no-such-app-queue-depth-test",
                f"REDIS_PORT={server.port}",
                f"VENV={VENV}",
            ],
            cwd=REPO,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        assert "queue default: ready=1 scheduled=0 in_progress=0 failed=0 workers=0" in out.stdout
