"""What the benchmark reads from the outside: /proc for worker CPU and RSS, INFO for Redis.

Method (also written into every result file):

* **commands** = delta of the sum of ``INFO commandstats`` calls. Redis counts a command run
  inside a Lua script there too, so this is "commands counting the ones inside scripts".
* **round trips** = delta of ``INFO stats total_reads_processed``: one socket read event per
  request a client sends (a pipeline or a script is one read; a blocking BRPOP is one read).
  Requests over 16 KB may take more than one read, so it is an upper bound for big pipelines.
* The driver's own INFO calls are measured (two snapshots back to back) and subtracted, and
  the driver's done-counter polls are counted and subtracted too.
* **client commands** (in the breakdown pass only) come from ``MONITOR``, which prints commands
  a script runs with the source ``lua``: the rest are the commands clients sent.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        raw = fh.read()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def proc_tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its live descendants (their children lists in /proc)."""
    total = proc_cpu_seconds(pid)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        return total
    for child in children:
        with contextlib.suppress(OSError):  # it ended between the two reads
            total += proc_tree_cpu_seconds(child)
    return total


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Snapshot:
    t: float
    commands: int
    reads: int
    used_memory: int
    redis_cpu: float
    by_command: dict[str, int]


def snapshot(r: redis.Redis) -> Snapshot:
    stats = r.info("all")
    by_cmd = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_")}
    return Snapshot(
        t=time.monotonic(),
        commands=sum(by_cmd.values()),
        reads=int(stats["total_reads_processed"]),
        used_memory=int(stats["used_memory"]),
        redis_cpu=float(stats["used_cpu_user"]) + float(stats["used_cpu_sys"]),
        by_command=by_cmd,
    )


@dataclass
class Delta:
    commands: int
    reads: int
    memory: int
    redis_cpu: float
    seconds: float
    by_command: dict[str, int] = field(default_factory=dict)


def measure_overhead(r: redis.Redis) -> tuple[int, int]:
    """Commands and reads one snapshot itself adds to the next delta."""
    a = snapshot(r)
    b = snapshot(r)
    return b.commands - a.commands, b.reads - a.reads


def delta(
    a: Snapshot,
    b: Snapshot,
    overhead: tuple[int, int],
    *,
    driver_requests: int = 0,
    body_commands: dict[str, int] | None = None,
) -> Delta:
    """b - a, minus the snapshot's own INFO, the driver's polls and the job body's own commands."""
    by_cmd = {k: v - a.by_command.get(k, 0) for k, v in b.by_command.items()}
    by_cmd["info"] = by_cmd.get("info", 0) - overhead[0]
    if driver_requests:
        by_cmd["get"] = by_cmd.get("get", 0) - driver_requests
    for name, calls in (body_commands or {}).items():
        by_cmd[name] = by_cmd.get(name, 0) - calls
    by_cmd = {k: v for k, v in by_cmd.items() if v}
    body = sum((body_commands or {}).values())
    return Delta(
        commands=b.commands - a.commands - overhead[0] - driver_requests - body,
        reads=b.reads - a.reads - overhead[1] - driver_requests - body,
        memory=b.used_memory - a.used_memory,
        redis_cpu=b.redis_cpu - a.redis_cpu,
        seconds=b.t - a.t,
        by_command=by_cmd,
    )


_MONITOR_LINE = re.compile(rb'^\+?[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"')


class Monitor:
    """Counts commands by (source, name) with MONITOR, on its own socket and thread.

    Source is ``lua`` for commands a script ran, ``client`` otherwise. Commands from the
    addresses in ``exclude`` (the driver's own connection) are ignored.
    """

    def __init__(self, port: int, exclude: set[str]) -> None:
        self.port = port
        self.exclude = exclude
        self.counts: Counter[tuple[str, str]] = Counter()
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.sendall(b"MONITOR\r\n")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        buf = b""
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\r\n")
            for line in lines:
                if line == b"+OK":
                    self._ready.set()
                    continue
                m = _MONITOR_LINE.match(line)
                if not m:
                    continue
                src = m.group(1).decode()
                if src in self.exclude:
                    continue
                self.counts["lua" if src == "lua" else "client", m.group(2).decode().lower()] += 1

    def stop(self) -> dict[str, Any]:
        time.sleep(0.3)  # let the last lines arrive
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        client = {k[1]: v for k, v in self.counts.items() if k[0] == "client"}
        lua = {k[1]: v for k, v in self.counts.items() if k[0] == "lua"}
        return {"client": dict(sorted(client.items())), "lua": dict(sorted(lua.items()))}
