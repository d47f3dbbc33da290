"""The README's Docker path, command by command, on a real engine.

`make up` (done by the session fixture, with the worker block uncommented as the README says)
-> both containers healthy -> `curl -X POST .../invoices/42/send` -> the job completes in the
worker container -> `make worker-logs` shows the start-up banner -> `make queue-depth` asks
inside the backend container -> `make ps` lists the three containers. `make down` is proven in
test_docker_promises (jobs survive it) and by the session's teardown.
"""

from __future__ import annotations

import json
import subprocess

from docker_support import Stack, docker, inspect, strip_ansi, wait_health


def test_make_up_brings_backend_and_worker_to_healthy(stack: Stack) -> None:
    # The shipped intervals: the backend and the worker each check every 15 s.
    wait_health(("scalr-redis", "template-app-backend", "template-app-worker"), "healthy", timeout=120)
    assert inspect("template-app-worker", "{{json .Config.Cmd}}") == '["python","-m","scalr_queue.worker","src.worker"]'


def test_an_invoice_goes_through_the_worker_container(stack: Stack) -> None:
    wait_health(("template-app-backend", "template-app-worker"), "healthy", timeout=120)
    # The README's own command, against the port published on loopback.
    posted = subprocess.run(
        ["curl", "-sS", "--fail", "-X", "POST", f"127.0.0.1:{stack.port}/invoices/42/send"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    job_id = json.loads(posted.stdout)["job_id"]

    info = stack.wait_job(job_id, "complete", timeout=30)
    assert info["result"] == {"invoice_id": 42, "sent_to": "customer-42@example.com"}
    assert info["tries"] == 1

    logs = strip_ansi(stack.make("worker-logs", "FOLLOW=0", timeout=30))
    assert "Starting worker for" in logs and "redis_version=7." in logs
    assert f"sending invoice 42 (job {job_id}, try 1)" in logs


def test_make_queue_depth_answers_from_inside_the_backend(stack: Stack) -> None:
    out = stack.make("queue-depth", timeout=60)
    assert "asking inside template-app-backend" in out
    assert "queue default: ready=" in out and "workers=1" in out


def test_make_ps_lists_redis_backend_and_worker(stack: Stack) -> None:
    out = stack.make("ps", timeout=60)
    for name in ("scalr-redis", "template-app-backend", "template-app-worker"):
        assert f"\n{name} " in out, out
    assert f"127.0.0.1:{stack.port}->8000/tcp" in out
    # Only the backend is published, on loopback; Redis and the worker are reached over scalr-net.
    assert docker("port", "template-app-backend") == f"8000/tcp -> 127.0.0.1:{stack.port}"
    assert docker("port", "scalr-redis") == docker("port", "template-app-worker") == ""
