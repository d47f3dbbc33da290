"""A throwaway ``redis-server`` on a free loopback port, for tests and benchmarks.

Real Redis, never a fake: queue behaviour (Lua scripts, BRPOP wake-ups, key expiry, ACLs,
OOM refusals) is exactly what we need to prove, and fakes get those wrong.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """Start, stop, kill and restart one ``redis-server`` process on 127.0.0.1.

    Example::

        with RedisServer() as server:
            os.environ["REDIS_URL"] = server.url
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        appendonly: bool = False,
        extra_args: tuple[str, ...] = (),
        binary: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="scalr-redis-"))
        self.appendonly = appendonly
        self.extra_args = extra_args
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            *self.extra_args,
        ]

    def start(self, timeout: float = 10.0) -> RedisServer:
        if not Path(self.binary).exists():
            raise RuntimeError(f"redis-server not found at {self.binary}: install it (apt-get install -y redis-server)")
        log = open(self.data_dir / "redis.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}: "
                    + (self.data_dir / "redis.log").read_text(errors="replace")[-500:]
                )
            if self.ping():
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
                # +PONG, or -NOAUTH when a password is set: either way the server is up
                return reply.startswith((b"+PONG", b"-NOAUTH", b"-LOADING")) and not reply.startswith(b"-LOADING")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown save, exactly like a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
