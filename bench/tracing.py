"""What tracing costs per job: enqueue and drain with OpenTelemetry off and on, in one run.

    python -m bench.tracing [--jobs 2000] [--rounds 5]      (make bench-tracing)

One process, one redis-server on a free 127.0.0.1 port. An OpenTelemetry SDK provider is set
once, exporting to a sink that keeps nothing (the SDK's span cost without any I/O); "off"
switches scalr_queue's tracing off with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=scalr_queue``,
which takes the same path as a process with no provider: one cached ``None`` per job. Each
round runs both modes, alternating which goes first: sequential awaited ``enqueue`` of N jobs,
then an in-process worker (concurrency 10, burst) draining them. Medians over the rounds; only
the ratio and the difference inside one run mean anything on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from scalr_queue._settings import load_settings
from scalr_queue._tasks import build_task_map
from scalr_queue.producer._client import QueueClient
from scalr_queue.redis._server import RedisServer
from scalr_queue.worker._loader import WorkerConfig
from scalr_queue.worker._worker import ScalrWorker

SWITCH = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


class Sink(SpanExporter):
    """Counts the spans it is given and keeps none."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def noop(ctx: dict[str, Any], n: int) -> None:
    return None


async def one_mode(traced: bool, jobs: int) -> tuple[float, float]:
    """Seconds to enqueue ``jobs`` one by one, and for a worker to drain them."""
    if traced:
        os.environ.pop(SWITCH, None)
    else:
        os.environ[SWITCH] = "scalr_queue"
    settings = load_settings()
    client = QueueClient(settings)
    await (await client.redis()).flushdb()
    start = time.perf_counter()
    for i in range(jobs):
        await client.enqueue(noop, n=i)
    enqueue_s = time.perf_counter() - start
    await client.close()
    config = WorkerConfig(module="bench.tracing", tasks=build_task_map([noop]))
    worker = ScalrWorker(config, settings, concurrency=10, burst=True, handle_signals=False)
    start = time.perf_counter()
    await worker.run_async()
    drain_s = time.perf_counter() - start
    assert worker.jobs_complete == jobs, (worker.jobs_complete, jobs)
    assert (worker._tracing is not None) is traced
    return enqueue_s, drain_s


async def run(jobs: int, rounds: int) -> dict[str, dict[str, float]]:
    sink = Sink()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(sink))
    trace.set_tracer_provider(provider)
    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for r in range(rounds):
        for traced in (False, True) if r % 2 == 0 else (True, False):
            times[traced].append(await one_mode(traced, jobs))
    assert sink.spans == 2 * jobs * rounds, sink.spans  # an enqueue span and one attempt span per traced job
    report: dict[str, dict[str, float]] = {}
    for traced, runs in times.items():
        enqueue_s = statistics.median(e for e, _ in runs)
        drain_s = statistics.median(d for _, d in runs)
        report["on" if traced else "off"] = {
            "enqueue_per_s": jobs / enqueue_s,
            "enqueue_us_per_job": enqueue_s / jobs * 1e6,
            "drain_per_s": jobs / drain_s,
            "drain_us_per_job": drain_s / jobs * 1e6,
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per mode and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each runs both modes")
    args = parser.parse_args(argv)
    with RedisServer() as server:
        os.environ["REDIS_URL"] = server.url
        report = asyncio.run(run(args.jobs, args.rounds))
    off, on = report["off"], report["on"]
    print(f"tracing cost, {args.jobs} jobs x {args.rounds} rounds (medians)\n")
    print("| tracing | enqueue jobs/s | µs/job | drain jobs/s | µs/job |")
    print("|---|---:|---:|---:|---:|")
    for name, row in report.items():
        print(
            f"| {name} | {row['enqueue_per_s']:,.0f} | {row['enqueue_us_per_job']:.1f} "
            f"| {row['drain_per_s']:,.0f} | {row['drain_us_per_job']:.1f} |"
        )
    print(
        f"\non minus off, per job: enqueue {on['enqueue_us_per_job'] - off['enqueue_us_per_job']:+.1f} µs, "
        f"drain {on['drain_us_per_job'] - off['drain_us_per_job']:+.1f} µs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
