"""The systems under test and the worker processes the benchmark starts for them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench._stats import proc_rss_bytes, proc_tree_cpu_seconds
from bench.clients import OUT_ENV
from bench.workers import DONE_KEY

ROOT = Path(__file__).resolve().parent.parent


VENVS = ROOT / "bench" / ".venvs"  # one virtualenv per peer (scripts/bench-peers.sh), git-ignored


@dataclass(frozen=True)
class System:
    key: str
    label: str
    producer: str  # "arq" | "scalr" | "saq" | "taskiq": which bench.clients producer enqueues for it
    queue_key: str  # the key its ready jobs wait in
    poll_delay: float | None = None  # vanilla arq only
    extra_env: tuple[tuple[str, str], ...] = ()  # variants, e.g. (("SCALR_QUEUE_LOG_LEVEL", "WARNING"),)
    code_root: Path = ROOT  # the directory scalr_queue is imported from (a git snapshot, or the tree)
    queue_type: str = "zset"  # "zset" (arq's layout) | "list" (SAQ) | "stream" (taskiq-redis)
    venv: str | None = None  # a peer: its own interpreter, bench/.venvs/<venv>/bin/python

    @property
    def python(self) -> str:
        return str(VENVS / self.venv / "bin" / "python") if self.venv else sys.executable

    @property
    def is_peer(self) -> bool:
        return self.venv is not None

    def available(self) -> bool:
        """A peer runs only where its venv was built (``make bench-peers-venvs``); the others always."""
        return not self.venv or Path(self.python).exists()

    def queued(self, r: redis.Redis) -> int:
        """How many jobs wait in the queue right now."""
        if self.queue_type == "list":
            return int(r.llen(self.queue_key))
        if self.queue_type == "stream":
            return int(r.xlen(self.queue_key))
        return int(r.zcard(self.queue_key))

    def worker_cmd(self, url: str, concurrency: int) -> list[str]:
        if self.producer == "saq":
            assert concurrency == 10, "SAQ's concurrency is set in bench.peers.saq_app.settings"
            return [self.python, "-m", "saq", "bench.peers.saq_app.settings"]
        if self.producer == "taskiq":
            return [
                self.python,
                "-m",
                "taskiq",
                "worker",
                "bench.peers.taskiq_app:broker",
                "--workers",
                "1",
                "--max-async-tasks",
                str(concurrency),
                "--max-prefetch",
                "0",
            ]
        if self.producer == "docket":
            return [
                self.python,
                "-m",
                "docket",
                "worker",
                "--tasks",
                "bench.peers.docket_app:tasks",
                "--docket",
                "bench",
                "--url",
                url,
                "--concurrency",
                str(concurrency),
                "--no-schedule-automatic-tasks",
            ]
        if self.producer == "arq":
            return [
                sys.executable,
                "-m",
                "bench.workers",
                "--redis-url",
                url,
                "--poll-delay",
                str(self.poll_delay),
                "--max-jobs",
                str(concurrency),
            ]
        return [sys.executable, "-m", "scalr_queue.worker", "bench.workers", "--concurrency", str(concurrency)]

    def env(self, url: str) -> dict[str, str]:
        # scalr_queue's defaults are what is measured: no SCALR_QUEUE_* from the caller's shell
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCALR_QUEUE_")}
        env["REDIS_URL"] = url
        env.update(self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(self.code_root), str(ROOT), env.get("PYTHONPATH", "")]))
        if self.venv:  # the peer's venv only: never the project's .venv on its path
            env.pop("VIRTUAL_ENV", None)
            env["PYTHONPATH"] = str(ROOT)
        return env


ARQ_DEFAULT = System("arq-0.5", "arq 0.28, poll 0.5 s (default)", "arq", "arq:queue", 0.5)
ARQ_FAST = System("arq-0.01", "arq 0.28, poll_delay 0.01", "arq", "arq:queue", 0.01)
SCALR = System("scalr", "scalr_queue", "scalr", "arq:queue:default")
SAQ = System("saq", "SAQ (Redis), BLMOVE wait", "saq", "saq:default:queued", queue_type="list", venv="saq")
TASKIQ = System("taskiq", "taskiq + taskiq-redis stream broker", "taskiq", "taskiq", queue_type="stream", venv="taskiq")
DOCKET = System("docket", "pydocket (stream)", "docket", "bench:stream", queue_type="stream", venv="pydocket")
ALL = (ARQ_DEFAULT, ARQ_FAST, SCALR, SAQ, TASKIQ, DOCKET)
# the peers' scenarios: the backlog copies in `scale` need arq's key layout, `web` is the template's
PEER_SCENARIOS = ("enqueue", "drain1", "drain2", "idle_latency", "load_latency", "monitor")


class Worker:
    """One worker process, its output going to a log file; stopped by its own PID only."""

    def __init__(self, system: System, url: str, log_dir: Path, concurrency: int = 10, tag: str = "") -> None:
        self.system = system
        self.log_path = log_dir / f"worker-{system.key}-{tag or 'x'}-{time.time_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            system.worker_cmd(url, concurrency),
            cwd=system.code_root,  # `python -m` puts the cwd first on sys.path
            env=system.env(url),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        """The worker's CPU, its child processes' included (taskiq's CLI runs the worker as a child)."""
        return proc_tree_cpu_seconds(self.pid)

    def rss(self) -> int:
        return proc_rss_bytes(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def tail(self, n: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class Counter:
    """Polls the job body's done counter; counts its own requests so they can be subtracted."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.requests = 0

    def value(self) -> int:
        self.requests += 1
        return int(self.r.get(DONE_KEY) or 0)

    def wait_for(
        self,
        target: int,
        timeout: float,
        workers: list[Worker] = (),
        step: float = 0.005,  # type: ignore[assignment]
        on_tick: Any = None,
    ) -> tuple[float | None, float]:
        """Wait until the counter reaches target: (monotonic time it first moved, time it got there)."""
        first: float | None = None
        deadline = time.monotonic() + timeout
        while True:
            n = self.value()
            now = time.monotonic()
            if first is None and n > 0:
                first = now
            if n >= target:
                return first, now
            if now > deadline:
                raise TimeoutError(f"done counter at {n}/{target} after {timeout}s")
            for w in workers:
                if not w.alive():
                    raise RuntimeError(f"worker {w.system.key} exited with {w.proc.returncode}:\n{w.tail()}")
            if on_tick:
                on_tick()
            time.sleep(step)


def snapshot_scalr(ref: str) -> tuple[Path, str]:
    """Export scalr_queue/ at a git ref to a temp dir, so a long run is not hit by edits in the tree."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = Path(tempfile.mkdtemp(prefix=f"scalr-bench-{commit}-"))
    archive = subprocess.run(["git", "archive", commit, "scalr_queue"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest, commit


def source_hash(code_root: Path) -> str:
    """Short hash of the scalr_queue sources a run used (tells runs on edited trees apart)."""
    h = hashlib.sha256()
    for f in sorted((code_root / "scalr_queue").glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def client(system: System, url: str, *args: Any, timeout: float = 600) -> dict[str, Any]:
    """Run one bench.clients operation in a subprocess and return its JSON answer."""
    cmd = [system.python, "-m", "bench.clients", system.producer, url, *map(str, args)]
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        answer = Path(tmp) / "answer.json"
        env = {**system.env(url), OUT_ENV: str(answer)}
        out = subprocess.run(cmd, cwd=system.code_root, env=env, capture_output=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[2:5])} failed ({out.returncode}): {out.stderr.decode()[-2000:]}")
        return json.loads(answer.read_text())


# Builds a backlog of copies of one real payload: ids "b%031d" (32 chars, like a uuid4 hex),
# scores in the past so every job is ready, in the payload's own TTL (arq) or none (scalr).
# KEYS: queue. ARGV: job prefix, payload, px (0 = none), first index, last index, base score.
BACKLOG = """
local base = tonumber(ARGV[6])
for i = tonumber(ARGV[4]), tonumber(ARGV[5]) do
  local id = string.format('b%031d', i)
  if ARGV[3] ~= '0' then
    redis.call('SET', ARGV[1] .. id, ARGV[2], 'PX', ARGV[3])
  else
    redis.call('SET', ARGV[1] .. id, ARGV[2])
  end
  redis.call('ZADD', KEYS[1], base + i, id)
end
return 1
"""


def build_backlog(system: System, url: str, r: redis.Redis, size: int, chunk: int = 20_000) -> dict[str, Any]:
    """Queue ``size`` ready jobs fast: one real enqueue gives the exact payload, Lua copies it."""
    client(system, url, "enqueue-seq", 1)
    ids = r.zrange(system.queue_key, 0, -1)
    assert len(ids) == 1, ids
    job_key = b"arq:job:" + ids[0]
    payload = r.get(job_key)
    pttl = r.pttl(job_key)
    r.delete(job_key)
    r.zrem(system.queue_key, ids[0])
    for k in r.scan_iter(match="scalr:wake:*"):
        r.delete(k)
    px = max(pttl, 0) + 3_600_000 if pttl > 0 else 0  # the copies outlive the benchmark
    base = int(time.time() * 1000) - size - 60_000
    mem0 = int(r.info("memory")["used_memory"])
    t = time.perf_counter()
    script = r.register_script(BACKLOG)
    for start in range(0, size, chunk):
        script(keys=[system.queue_key], args=["arq:job:", payload, px, start, min(start + chunk, size) - 1, base])
    mem1 = int(r.info("memory")["used_memory"])
    return {
        "size": size,
        "build_seconds": time.perf_counter() - t,
        "payload_bytes": len(payload or b""),
        "bytes_per_job": (mem1 - mem0) / size,
    }
