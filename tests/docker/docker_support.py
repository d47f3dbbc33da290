"""Helpers for the Docker tests: the README's make targets and docker commands, run in a copy
of this repository, and polls with deadlines.

Everything runs in a temporary copy of the repository so that the test can do what the README
tells a user (uncomment the worker block, `make new-app NAME=billing`) without touching the
checkout. The names below are fixed by the compose files; a run refuses to start when any of
them already exists, so that everything present at the end was created by the run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "template"))
# One definition of "uncomment the worker block", shared with the static checks.
from template_support import clean_env, uncomment_worker_block, wait_until  # noqa: E402

CONTAINERS = ("scalr-redis", "template-app-backend", "template-app-worker", "billing-backend", "billing-worker")
NETWORK = "scalr-net"
VOLUME = "scalr-redis-data"
APP_IMAGES = ("scalr/template-app:latest", "scalr/billing:latest")
REDIS_COMPOSE = "services/redis/docker-compose.yml"
T = TypeVar("T")
# Measurements printed in pytest's summary (section "docker").
REPORT: dict[str, str] = {}

# A task the copy's worker lists next to the template's own: a job that runs for `seconds`.
PAUSE_TASK = """

# --- added by tests/docker: a job that takes a while, to stop a worker in the middle of one.
import asyncio  # noqa: E402


async def pause(ctx: dict[str, Any], seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


tasks = [*tasks, pause]
"""


def run(argv: list[str], cwd: Path = REPO, timeout: float = 300, check: bool = True, **env: str) -> str:
    """Run a command; return stdout and stderr together, or fail showing them."""
    out = subprocess.run(
        argv, cwd=cwd, env={**clean_env(), **env}, capture_output=True, text=True, timeout=timeout, check=False
    )
    text = out.stdout + out.stderr
    if check and out.returncode != 0:
        raise AssertionError(f"`{' '.join(argv)}` exited {out.returncode}:\n{text[-4000:]}")
    return text


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    return run(["docker", *args], check=check, timeout=timeout).strip()


def exists(kind: str, name: str) -> bool:
    """Whether a container, network, volume or image of that name exists."""
    return subprocess.run(["docker", kind, "inspect", name], capture_output=True, check=False).returncode == 0


def inspect(container: str, template: str) -> str:
    return docker("inspect", "-f", template, container)


def health(container: str) -> str:
    """starting, healthy, unhealthy; or the container's state when it has no health status."""
    return inspect(container, "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}")


def wait_health(containers: tuple[str, ...], status: str, timeout: float) -> None:
    for name in containers:

        def reached(name: str = name) -> bool:
            return health(name) == status

        wait_until(reached, timeout, f"{name} to be {status}", interval=0.25)


def copy_repo(dest: Path) -> Path:
    """The working tree (uncommitted changes included) without the venv, git data or caches."""
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.pyc", ".*_cache", ".run", "results")
    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def activate_worker(app_dir: Path) -> None:
    """What the README tells a user: uncomment the worker block of the app's compose file.

    A no-op when it is active already (an app made with `make new-app` from the copy's
    template-app, whose block the session uncommented, starts with it active).
    """
    compose = app_dir / "docker-compose.yml"
    text = compose.read_text()
    if "\n  worker:\n" not in text:
        compose.write_text(uncomment_worker_block(text))
    assert "\n  worker:\n" in compose.read_text()


@dataclass
class Stack:
    """The repository copy the make targets run in, and the app's published loopback port."""

    repo: Path
    port: int
    ports: dict[str, int] = field(default_factory=dict)
    images_from_first_up: set[str] = field(default_factory=set)

    def make(self, *args: str, app: str = "template-app", timeout: float = 600) -> str:
        port = self.ports.get(app, self.port)
        return run(["make", "--no-print-directory", *args, f"APP={app}", f"BACKEND_PORT={port}"], self.repo, timeout)

    def compose(self, *args: str, app: str = "template-app", files: tuple[str, ...] = (), timeout: float = 300) -> str:
        """`docker compose` on the app's compose file (plus override files) in the copy."""
        flags = [f for path in (f"{app}/docker-compose.yml", *files) for f in ("-f", path)]
        port = str(self.ports.get(app, self.port))
        return run(["docker", "compose", *flags, *args], self.repo, timeout, BACKEND_PORT=port)

    def url(self, path: str, app: str = "template-app") -> str:
        return f"http://127.0.0.1:{self.ports.get(app, self.port)}{path}"

    def job(self, job_id: str, app: str = "template-app") -> dict[str, Any]:
        response = httpx.get(self.url(f"/jobs/{job_id}", app), timeout=10)
        response.raise_for_status()
        data = response.json()
        assert isinstance(data, dict)
        return data

    def wait_job(self, job_id: str, status: str, timeout: float, app: str = "template-app") -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            info = self.job(job_id, app)
            assert info["status"] not in ("failed", "not_found"), info
            return info if info["status"] == status else None

        return wait_until(reached, timeout, f"job {job_id} to be {status}", interval=0.25)

    def enqueue_in_backend(self, task: str, job_id: str, **kwargs: object) -> str:
        """`scalr-queue enqueue` inside the backend container (Redis is not published to the host)."""
        pairs = [f"{k}={json.dumps(v)}" for k, v in kwargs.items()]
        out = docker("exec", "template-app-backend", "scalr-queue", "enqueue", task, *pairs, "--job-id", job_id)
        assert out.splitlines()[-1] == job_id, out
        return job_id

    def wait_backend(self, app: str = "template-app", timeout: float = 60) -> None:
        """Until the backend answers /healthz with 200 (after a start or a re-create)."""

        def ok() -> bool:
            return httpx.get(self.url("/healthz", app), timeout=10).status_code == 200

        wait_until(ok, timeout, f"{app}'s backend to answer /healthz with 200", interval=0.25)

    def workers_seen(self, app: str = "template-app") -> int:
        """Live workers on the default queue, as the backend's /healthz reports them."""
        response = httpx.get(self.url("/healthz", app), timeout=10)
        return int(response.json()["workers"]) if response.status_code == 200 else 0


def write_override(path: Path, services: dict[str, dict[str, Any]]) -> str:
    """A compose override file (JSON is YAML) next to the app's compose file; returns its path in the copy."""
    path.write_text(json.dumps({"services": services}, indent=2))
    return str(path)


def size_mb(image: str) -> float:
    return int(docker("image", "inspect", "-f", "{{.Size}}", image)) / 1e6


def image_ids() -> set[str]:
    return set(docker("images", "-q", "--no-trunc").split())


def running_names() -> set[str]:
    return set(docker("ps", "--format", "{{.Names}}").split())


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
