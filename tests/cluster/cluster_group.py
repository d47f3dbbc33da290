"""A real Redis Cluster on loopback: three masters and three replicas, started here, ended by PID.

Each node is Debian's ``redis-server --cluster-enabled yes`` on a free port; ``redis-cli --cluster
create ... --cluster-replicas 1`` joins them. ``cluster-node-timeout`` is short, so a SIGKILLed
master's replica takes over within a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from scalr_queue.redis._server import RedisServer, free_port

NODE_TIMEOUT_MS = 1000


class ClusterGroup:
    """Six nodes; ``url`` is the ``redis+cluster://`` to use."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="scalr-cluster-"))
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self, timeout: float = 30.0) -> ClusterGroup:
        for i in range(6):
            path = self.directory / f"node{i}"
            path.mkdir()
            args = (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(path / "nodes.conf"),
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                "--cluster-port",
                str(free_port()),  # the bus on a free port too, not port + 10000
                # a replica may take over however long its link was down (the test kills at once)
                "--cluster-replica-validity-factor",
                "0",
            )
            self.nodes.append(RedisServer(data_dir=path, extra_args=args).start())
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        self.wait(self.healthy, timeout, "the cluster to be ok on every node")
        self.wait(self.replicas_in_sync, timeout, "every replica to sync with its master")
        return self

    def replicas_in_sync(self) -> bool:
        linked = 0
        for node in self.nodes:
            with self.client(node.port) as c:
                info = c.info("replication")
                if info.get("role") == "slave":
                    if info.get("master_link_status") != "up":
                        return False
                    linked += 1
        return linked == 3

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)

    def healthy(self) -> bool:
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            with self.client(node.port) as c:
                info = c.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text:
                    return False
        return True

    def master_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now, as a live node sees it."""
        live = next(n for n in self.nodes if n.process is not None and n.process.poll() is None)
        with self.client(live.port) as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(key)

    @staticmethod
    def wait(predicate: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():  # type: ignore[operator]
                    return
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gave up waiting for {what}")

    def stop(self) -> None:
        for node in self.nodes:
            node.close()
        shutil.rmtree(self.directory, ignore_errors=True)
