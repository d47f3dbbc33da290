"""Through the web stack: the template backend's enqueue route against its no-op route.

One ``uvicorn src.main:app`` process (from template-app/backend, no access log) on a free
loopback port, a fresh Redis behind it, and a bounded load: ``wrk`` (one thread, C keep-alive
connections, T seconds) when it is installed, else an httpx asyncio client with the same
connections and duration. Routes alternate within each repeat; only 2xx answers count. The
uvicorn process's CPU time per request is read from /proc around each route's load.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._systems import ROOT
from scalr_queue.redis._server import RedisServer, free_port

BACKEND = ROOT / "template-app" / "backend"
ENQUEUE_PATH = "/invoices/{n}/send"
NOOP_PATH = "/noop"
# the enqueue route's exact shape (POST, int path parameter, 202, response model) minus the
# enqueue: the baseline that isolates what enqueueing costs inside a request
SHAPED_NOOP_PATH = "/invoices/{n}/noop"
ROUTES = {"GET": NOOP_PATH, "POST": ENQUEUE_PATH, "POST-NOOP": SHAPED_NOOP_PATH}

_WRK_POST = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/invoices/" .. n .. "/%s")
end
"""


def _wrk(port: int, method: str, seconds: float, conns: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write("" if method == "GET" else _WRK_POST % ("send" if method == "POST" else "noop"))
        script = fh.name
    try:
        path = NOOP_PATH if method == "GET" else "/"
        cmd = [
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            script,
            f"http://127.0.0.1:{port}{path}",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout
    finally:
        os.unlink(script)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    secs_m = re.search(r"requests in ([\d.]+)(m?s)", out)
    secs = float(secs_m.group(1)) / (1000 if secs_m.group(2) == "ms" else 1) if secs_m else seconds  # type: ignore[union-attr]
    bad_m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs_m = re.search(r"Socket errors: (.*)", out)
    bad = int(bad_m.group(1)) if bad_m else 0
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)

    def ms(m: re.Match[str] | None) -> float | None:
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return {
        "tool": "wrk -t1",
        "requests": total,
        "non_2xx": bad,
        "socket_errors": errs_m.group(1) if errs_m else "",
        "seconds": secs,
        "rps": (total - bad) / secs,
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
    }


async def _httpx(port: int, method: str, seconds: float, conns: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    ok = bad = 0
    n = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10) as c:
        deadline = time.monotonic() + seconds

        async def one() -> None:
            nonlocal ok, bad, n
            while time.monotonic() < deadline:
                n += 1
                path = ROUTES[method].format(n=n)
                r = await (c.get(path) if method == "GET" else c.post(path))
                if 200 <= r.status_code < 300:
                    ok += 1
                else:
                    bad += 1

        t = time.monotonic()
        await asyncio.gather(*(one() for _ in range(conns)))
        secs = time.monotonic() - t
    return {"tool": "httpx", "requests": ok + bad, "non_2xx": bad, "seconds": secs, "rps": ok / secs}


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(port: int, method: str, seconds: float, conns: int, pid: int | None = None) -> dict[str, Any]:
    """One route's load; with ``pid``, also the server's CPU per request (steadier than req/s when
    other work shares the cores: it counts the server's own work, not its share of the machine)."""
    before = _cpu_seconds(pid) if pid is not None else None
    if shutil.which("wrk"):
        out = _wrk(port, method, seconds, conns)
    else:
        out = asyncio.run(_httpx(port, method, seconds, conns))
    after = _cpu_seconds(pid) if pid is not None else None
    if before is not None and after is not None and out["requests"]:
        out["cpu_us_per_request"] = (after - before) / out["requests"] * 1e6
    return out


def run(plan: Any) -> dict[str, Any]:
    if not (BACKEND / "src" / "main.py").exists():
        return {"skipped": "template-app/backend/src/main.py does not exist yet"}
    port = free_port()
    with RedisServer() as server:
        env = dict(os.environ)
        code = getattr(plan, "code_root", ROOT)
        env.update(REDIS_URL=server.url, PYTHONPATH=os.pathsep.join([str(code), str(ROOT), env.get("PYTHONPATH", "")]))
        log = Path(plan.log_dir) / "uvicorn.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "src.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=BACKEND,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}{NOOP_PATH}", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start: {log.read_text(errors='replace')[-1500:]}")
                time.sleep(0.1)
            check = httpx.post(f"http://127.0.0.1:{port}" + ENQUEUE_PATH.format(n=0), timeout=5)
            if check.status_code != 202:
                raise RuntimeError(f"enqueue route answered {check.status_code}: {check.text[:300]}")
            reps: list[dict[str, Any]] = []
            for _ in range(plan.repeats):
                noop = _load(port, "GET", plan.web_seconds, plan.web_concurrency, proc.pid)
                shaped = _load(port, "POST-NOOP", plan.web_seconds, plan.web_concurrency, proc.pid)
                enq = _load(port, "POST", plan.web_seconds, plan.web_concurrency, proc.pid)
                rep = {
                    "noop": noop,
                    "shaped_noop": shaped,
                    "enqueue": enq,
                    "ratio": enq["rps"] / shaped["rps"],
                    "ratio_get_noop": enq["rps"] / noop["rps"],
                }
                if "cpu_us_per_request" in shaped and "cpu_us_per_request" in enq:
                    # the same sense as ratio: the no-op route's CPU per request over the enqueue route's
                    rep["cpu_ratio"] = shaped["cpu_us_per_request"] / enq["cpu_us_per_request"]
                reps.append(rep)
            queued = server and int(__import__("redis").Redis(port=server.port).zcard("arq:queue:default"))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    cpu: dict[str, float] = {}
    if all("cpu_ratio" in r for r in reps):
        cpu = {
            "shaped_noop_cpu_us": statistics.median(r["shaped_noop"]["cpu_us_per_request"] for r in reps),
            "enqueue_cpu_us": statistics.median(r["enqueue"]["cpu_us_per_request"] for r in reps),
            "cpu_ratio": statistics.median(r["cpu_ratio"] for r in reps),
        }
    return {
        "repeats": reps,
        "jobs_queued_by_enqueue_route": queued,
        "summary": {
            "template": {
                **cpu,
                "noop_rps": statistics.median(r["noop"]["rps"] for r in reps),
                "shaped_noop_rps": statistics.median(r["shaped_noop"]["rps"] for r in reps),
                "enqueue_rps": statistics.median(r["enqueue"]["rps"] for r in reps),
                "ratio": statistics.median(r["ratio"] for r in reps),
                "ratio_get_noop": statistics.median(r["ratio_get_noop"] for r in reps),
                "tool": reps[0]["noop"]["tool"],
                "connections": plan.web_concurrency,
                "seconds": plan.web_seconds,
                "non_2xx": sum(
                    r["noop"]["non_2xx"] + r["shaped_noop"]["non_2xx"] + r["enqueue"]["non_2xx"] for r in reps
                ),
            }
        },
    }
