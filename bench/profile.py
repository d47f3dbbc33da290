"""Where a worker's time goes while it drains: py-spy on a real worker process.

    python -m bench.profile [--system scalr|arq-0.01|arq-0.5] [--jobs 50000] [--seconds 8]

Queues ``--jobs`` no-op jobs on a fresh Redis, starts one worker process (concurrency 10),
lets it warm up, samples it with ``py-spy record`` for ``--seconds`` (needs py-spy:
``.venv/bin/pip install py-spy``), and prints the functions holding the most samples, by
self time and by inclusive time. The collapsed stacks are kept for flame graphs.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._systems import ALL, Counter, Worker, build_backlog
from bench.scenarios import fresh_redis


def summarize(collapsed: Path, top: int = 25) -> str:
    """Self and inclusive sample counts per function from py-spy's raw (collapsed) output."""
    self_c: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        total += count
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")" for f in stack.split(";")
        ]
        self_c[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    out = [f"{total} samples", "", "self %  function"]
    out += [f"{100 * c / total:6.1f}  {f}" for f, c in self_c.most_common(top)]
    out += ["", "incl %  function"]
    out += [f"{100 * c / total:6.1f}  {f}" for f, c in incl.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", default="scalr", choices=[s.key for s in ALL if not s.is_peer])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=None, help="collapsed stacks file")
    parser.add_argument("--native", action="store_true", help="include native (C) frames")
    args = parser.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    system = next(s for s in ALL if s.key == args.system)
    log_dir = Path(tempfile.mkdtemp(prefix="scalr-profile-"))
    out = args.out or log_dir / f"{system.key}.collapsed"
    with fresh_redis() as (server, r):
        build_backlog(system, server.url, r, args.jobs)
        counter = Counter(r)
        w = Worker(system, server.url, log_dir, tag="profile")
        try:
            counter.wait_for(min(1000, args.jobs // 10), timeout=60, workers=[w], step=0.05)
            before, t = counter.value(), time.monotonic()
            cmd = [
                pyspy,
                "record",
                "--pid",
                str(w.pid),
                "--duration",
                str(int(args.seconds)),
                "--rate",
                str(args.rate),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ]
            if args.native:
                cmd.append("--native")
            subprocess.run(cmd, check=True, capture_output=True, timeout=args.seconds + 60)
            done = counter.value() - before
            secs = time.monotonic() - t
        finally:
            w.stop()
    print(f"{system.label}: {done} jobs in {secs:.1f}s under py-spy ({done / secs:.0f} jobs/s, sampled)")
    print(summarize(out))
    print(f"\ncollapsed stacks: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
