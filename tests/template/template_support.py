"""Helpers for the template tests: read the Docker files, run real processes, poll with deadlines."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dockerfile
import httpx
import yaml

from scalr_queue.testing import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template-app"
BACKEND = TEMPLATE / "backend"
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_commands(path: Path = TEMPLATE / "Dockerfile") -> list[dockerfile.Command]:
    """The Dockerfile as BuildKit's own parser reads it (a syntax error raises here)."""
    return list(dockerfile.parse_file(str(path)))


def instructions(keyword: str, path: Path = TEMPLATE / "Dockerfile") -> list[dockerfile.Command]:
    return [c for c in dockerfile_commands(path) if c.cmd == keyword]


def dockerfile_cmd() -> list[str]:
    cmd = instructions("CMD")[-1]
    assert cmd.json, "CMD must use the exec (JSON) form so signals reach uvicorn"
    return list(cmd.value)


# --- compose --------------------------------------------------------------------------------


def uncomment_worker_block(text: str) -> str:
    """The compose file as a user gets it after uncommenting the ``# worker:`` block."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^  # worker:\s*$", line))
    end = start
    while end < len(lines) and lines[end].startswith("  #"):
        end += 1
    block = []
    for line in lines[start:end]:
        if line.startswith("  # "):
            block.append("  " + line[4:])
        # a bare "  #" separator line becomes nothing
    return "\n".join([*lines[:start], *block, *lines[end:]]) + "\n"


def load_compose(path: Path, *, uncomment_worker: bool = False) -> dict[str, Any]:
    text = path.read_text()
    if uncomment_worker:
        text = uncomment_worker_block(text)
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def dockerfile_healthcheck(port: int) -> list[str]:
    """The image's HEALTHCHECK command, pointed at a test port instead of 8000."""
    (check,) = instructions("HEALTHCHECK")
    assert check.json and check.value[:2] == ("CMD", "python")
    argv = list(check.value[1:])
    return [sys.executable, *[a.replace("127.0.0.1:8000/", f"127.0.0.1:{port}/") for a in argv[1:]]]


def compose_worker_health_port() -> int:
    compose = load_compose(TEMPLATE / "docker-compose.yml", uncomment_worker=True)
    return int(compose["services"]["worker"]["environment"]["SCALR_QUEUE_HEALTH_PORT"])


def compose_worker_healthcheck(port: int) -> list[str]:
    """The compose worker's HEALTHCHECK command, pointed at a test port instead of its own."""
    compose = load_compose(TEMPLATE / "docker-compose.yml", uncomment_worker=True)
    test = compose["services"]["worker"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    shipped = f"127.0.0.1:{compose_worker_health_port()}/"
    return [sys.executable, *[a.replace(shipped, f"127.0.0.1:{port}/") for a in test[2:]]]


def compose_worker_command() -> list[str]:
    compose = load_compose(TEMPLATE / "docker-compose.yml", uncomment_worker=True)
    command = compose["services"]["worker"]["command"]
    assert isinstance(command, list)
    return command


def duration_seconds(value: str | int | float) -> float:
    """Compose durations: 330s, 5m30s, 1h, 1m30s, 500ms (or plain seconds)."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a compose duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


# --- processes ------------------------------------------------------------------------------


class Proc:
    """A subprocess with its output in a file; stop() is safe to call twice."""

    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return self.popen.returncode


MAKE_VARS = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def clean_env() -> dict[str, str]:
    """os.environ without queue settings or an outer make's variables (these tests run under `make test`)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCALR_QUEUE_") and k != "REDIS_URL" and k not in MAKE_VARS
    }


def base_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update(
        REDIS_URL=redis_url,
        SCALR_QUEUE_TASKS="src.worker",
        PYTHONUNBUFFERED="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def backend_argv(port: int) -> list[str]:
    """The Dockerfile's CMD, run with this interpreter and on a loopback test port."""
    cmd = dockerfile_cmd()
    assert cmd[0] == "uvicorn"
    argv = [sys.executable, "-m", *cmd]
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return argv


def worker_argv() -> list[str]:
    """The compose file's worker command, run with this interpreter."""
    cmd = compose_worker_command()
    assert cmd[0] == "python"
    return [sys.executable, *cmd[1:]]


@dataclass
class Stack:
    redis: RedisServer
    log_dir: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)
    base_url: str = ""
    port: int = 0
    worker_health_port: int = 0
    http: httpx.Client | None = None

    def start_backend(self) -> Proc:
        port = free_port()
        proc = Proc("backend", backend_argv(port), BACKEND, self.env, self.log_dir)
        self.procs.append(proc)
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.base_url, timeout=10)
        http = self.http

        def up() -> bool:
            assert proc.alive(), f"backend exited:\n{proc.log()[-3000:]}"
            return http.get("/noop").status_code == 200

        wait_until(up, 30, "the backend to answer /noop")
        return proc

    def start_worker(self) -> Proc:
        """The compose worker, its health endpoint on a free loopback port (``worker_health_port``)."""
        self.worker_health_port = free_port()
        env = {**self.env, "SCALR_QUEUE_HEALTH_PORT": str(self.worker_health_port)}
        proc = Proc("worker", worker_argv(), BACKEND, env, self.log_dir)
        self.procs.append(proc)
        return proc

    def client(self) -> httpx.Client:
        assert self.http is not None, "start_backend() first"
        return self.http

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()[-4000:]}" for p in self.procs)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        for proc in reversed(self.procs):
            proc.stop()
        self.redis.close()
