"""A real Sentinel deployment on loopback: one master, two replicas, three sentinels.

Every process is Debian's ``redis-server`` (a sentinel is ``redis-server <conf> --sentinel``,
which is all the ``redis-sentinel`` package runs), on free ports, started here and ended by PID.
Timings are short so a failover takes seconds: a master is "down" after 1 s without a reply.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from scalr_queue.redis._server import RedisServer, free_port

SERVICE = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _sentinel_client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)


class Sentinel:
    """One ``redis-server <conf> --sentinel`` process monitoring ``SERVICE``."""

    def __init__(self, master_port: int, directory: Path) -> None:
        self.port = free_port()
        self.conf = directory / f"sentinel-{self.port}.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 2\n"
        )
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = open(directory / f"sentinel-{self.port}.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen([binary, str(self.conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def master_port(self) -> int | None:
        with _sentinel_client(self.port) as client:
            address = client.sentinel_get_master_addr_by_name(SERVICE)
        return int(address[1]) if address else None

    def sees(self) -> tuple[int, int]:
        """(replicas, other sentinels) this sentinel knows of."""
        with _sentinel_client(self.port) as client:
            info = client.sentinel_master(SERVICE)
        return int(info.get("num-slaves", 0)), int(info.get("num-other-sentinels", 0))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class SentinelGroup:
    """Master, two replicas and three sentinels; ``url`` is the ``redis+sentinel://`` to use."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="scalr-sentinel-"))
        self.master = RedisServer(data_dir=self._dir("master"), extra_args=_FAST_SYNC)
        self.replicas: list[RedisServer] = []
        self.sentinels: list[Sentinel] = []

    def _dir(self, name: str) -> Path:
        path = self.directory / name
        path.mkdir()
        return path

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, *self.replicas]

    def start(self, timeout: float = 30.0) -> SentinelGroup:
        self.master.start()
        for n in (1, 2):
            replica = RedisServer(
                data_dir=self._dir(f"replica{n}"),
                extra_args=(*_FAST_SYNC, "--replicaof", "127.0.0.1", str(self.master.port)),
            )
            self.replicas.append(replica.start())
        self.sentinels = [Sentinel(self.master.port, self.directory) for _ in range(3)]
        self._wait(lambda: all(s.sees() == (2, 2) for s in self.sentinels), timeout, "sentinels to see 2+2")
        return self

    def master_port(self) -> int | None:
        """The master's port as a majority of the sentinels report it."""
        ports = [p for s in self.sentinels if s.process.poll() is None for p in [_quiet(s.master_port)]]
        best = max(set(ports), key=ports.count, default=None)
        return best if best is not None and ports.count(best) >= 2 else None

    def kill_master(self) -> int:
        """SIGKILL the master (no shutdown, exactly a crash); its port."""
        port = self.master.port
        self.master.kill()
        return port

    def cut_replicas(self) -> None:
        """Leave the replicas behind: SIGSTOP them, then the master drops their links.

        What was sent already still reaches them (it sits in their sockets); writes from now
        on reach no replica until they reconnect, which stopped processes cannot do.
        """
        self.freeze_replicas(True)
        with redis.Redis(port=self.master.port, socket_timeout=2) as master:
            master.client_kill_filter(_type="slave")  # redis-py spells "replica" the old way

    def switch_over(self) -> int:
        """``SENTINEL FAILOVER``: promote a replica while the old master stays up (it becomes a replica)."""
        port = self.master_port()
        assert port is not None
        with _sentinel_client(self.sentinels[0].port) as client:
            client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        return port

    def wait_demoted(self, port: int, timeout: float = 30.0) -> None:
        """Until the server on ``port`` says it is a replica (sentinels reconfigure it after the promotion)."""

        def demoted() -> bool:
            with redis.Redis(port=port, socket_timeout=1) as server:
                return bool(server.info("replication")["role"] == "slave")

        self._wait(demoted, timeout, f"the old master on {port} to become a replica")

    def freeze_replicas(self, frozen: bool) -> None:
        """SIGSTOP (or SIGCONT) both replicas."""
        for replica in self.replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        new: list[int] = []

        def moved() -> bool:
            port = self.master_port()
            if port is not None and port != old_port:
                new.append(port)
                return True
            return False

        self._wait(moved, timeout, "the sentinels to promote a replica")
        return new[-1]

    @staticmethod
    def _wait(check: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():  # type: ignore[operator]
                    return
            except (OSError, ValueError, redis.RedisError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def close(self) -> None:
        self.freeze_replicas(False)  # a stopped process would sit out SIGTERM
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# replicas sync over the socket at once (no RDB file on disk, no 5 s diskless delay)
_FAST_SYNC = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")


def _quiet(call: object) -> int | None:
    try:
        return call()  # type: ignore[operator, no-any-return]
    except (OSError, ValueError, redis.RedisError):
        return None
