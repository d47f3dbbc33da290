"""OpenTelemetry: an enqueue span, its trace context in the job, a span per attempt joined to it,
trace ids in the JSON log lines; and without a configured provider, nothing of it at all."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from arq.jobs import Job as ArqJob
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import Fail, JobOptions
from scalr_queue.observe._logging import JsonFormatter
from scalr_queue.observe._tracing import configured_tracing
from scalr_queue.redis._keys import failed_key
from tests.support import ROOT, running_worker, wait_until

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra and opentelemetry-sdk (dev)")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from tests.otel_support import by_name, global_tracer_provider, hex_trace  # noqa: E402

TRIES: list[int] = []


async def flaky_once(ctx: dict[str, Any], invoice_id: int) -> int:
    """Fails its first try, then succeeds: two attempts, two spans."""
    TRIES.append(ctx["job_try"])
    logging.getLogger("tests.tracing").info("sending invoice %s, try %s", invoice_id, ctx["job_try"])
    if ctx["job_try"] == 1:
        raise ConnectionError("mail server busy")
    return invoice_id


async def refuses(ctx: dict[str, Any]) -> None:
    raise Fail("no such customer")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with global_tracer_provider() as exporter:
        yield exporter


async def test_enqueue_makes_a_producer_span_and_carries_its_context_in_the_job(
    spans: InMemorySpanExporter, redis: Redis
) -> None:
    with trace.get_tracer("test").start_as_current_span("POST /invoices/42/send") as request:
        job = await scalr_queue.enqueue(flaky_once, invoice_id=42)

    (producer,) = by_name(spans.get_finished_spans(), "enqueue flaky_once")
    assert producer.kind is SpanKind.PRODUCER
    assert producer.parent is not None and producer.parent.span_id == request.get_span_context().span_id
    assert dict(producer.attributes or {}) == {
        "messaging.system": "scalr_queue",
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue",
        "messaging.destination.name": "default",
        "messaging.message.id": job.job_id,
        "scalr_queue.task": "flaky_once",
        "scalr_queue.job.created": True,
    }
    record = orjson.loads(await redis.get(f"arq:job:{job.job_id}"))
    assert producer.context is not None
    version, trace_id, parent_id, _flags = record["tc"]["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", hex_trace(producer), f"{producer.context.span_id:016x}")

    # arq's own reader still reads the job, the extra field ignored
    info = await ArqJob(
        job.job_id, redis, _queue_name="arq:queue:default", _deserializer=scalr_queue.arq_deserializer
    ).info()
    assert info is not None and info.function == "flaky_once" and info.kwargs == {"invoice_id": 42}


async def test_each_attempt_is_a_consumer_span_child_of_the_enqueue_with_its_try_and_outcome(
    spans: InMemorySpanExporter, redis: Redis
) -> None:
    TRIES.clear()
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    root, level = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with running_worker([flaky_once]) as worker:
            with trace.get_tracer("test").start_as_current_span("POST /invoices/42/send"):
                job = await scalr_queue.enqueue(flaky_once, invoice_id=42)
            assert await job.result(timeout=10) == 42
            await wait_until(lambda: len(by_name(spans.get_finished_spans(), "run flaky_once")) == 2, what="2 spans")
        assert handler.filters == [], "the worker takes its log filter away when it stops"
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert TRIES == [1, 2]

    finished = spans.get_finished_spans()
    (request,) = by_name(finished, "POST /invoices/42/send")
    (producer,) = by_name(finished, "enqueue flaky_once")
    attempts = by_name(finished, "run flaky_once")
    assert {hex_trace(s) for s in (request, producer, *attempts)} == {hex_trace(request)}, "one trace"
    assert producer.context is not None
    for attempt, (try_, outcome) in zip(attempts, [(1, "retry"), (2, "done")], strict=True):
        assert attempt.kind is SpanKind.CONSUMER
        assert attempt.parent is not None and attempt.parent.span_id == producer.context.span_id
        assert dict(attempt.attributes or {}) == {
            "messaging.system": "scalr_queue",
            "messaging.operation.type": "process",
            "messaging.operation.name": "run",
            "messaging.destination.name": "default",
            "messaging.message.id": job.job_id,
            "messaging.client.id": worker.worker_id,
            "scalr_queue.task": "flaky_once",
            "scalr_queue.job.try": try_,
            "scalr_queue.outcome": outcome,
        }
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert attempts[1].status.status_code is StatusCode.UNSET

    # the task's own log lines carry the trace id and the span id of their attempt
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    sending = [r for r in logged if r["msg"].startswith("sending invoice 42")]
    assert [(r["trace_id"], r["span_id"]) for r in sending] == [
        (hex_trace(a), f"{a.context.span_id:016x}") for a in attempts if a.context is not None
    ]
    outside = [r for r in logged if r["msg"].startswith("Starting worker")]
    assert outside and all("trace_id" not in r for r in outside), "only lines logged during an attempt"


async def test_a_job_that_fails_for_good_records_its_error_on_the_attempt_span(
    spans: InMemorySpanExporter, redis: Redis
) -> None:
    async with running_worker([refuses]):
        job = await scalr_queue.enqueue(refuses)
        await wait_until(lambda: by_name(spans.get_finished_spans(), "run refuses"), what="the attempt span")
    (attempt,) = by_name(spans.get_finished_spans(), "run refuses")
    assert attempt.attributes is not None
    assert attempt.attributes["scalr_queue.outcome"] == "failed"
    assert attempt.attributes["error.type"] == "scalr_queue._errors.Fail"
    assert attempt.status.status_code is StatusCode.ERROR and attempt.status.description == "no such customer"
    assert (await job.info()).status == "failed"


async def test_enqueue_many_gives_each_job_its_own_producer_span_under_the_caller(
    spans: InMemorySpanExporter, redis: Redis
) -> None:
    with trace.get_tracer("test").start_as_current_span("batch") as batch:
        jobs = await scalr_queue.enqueue_many([(flaky_once, {"invoice_id": i}) for i in range(3)])
    producers = by_name(spans.get_finished_spans(), "enqueue flaky_once")
    assert sorted(str((s.attributes or {})["messaging.message.id"]) for s in producers) == sorted(
        j.job_id for j in jobs
    )
    assert {s.parent.span_id for s in producers if s.parent} == {batch.get_span_context().span_id}
    for job, producer in zip(jobs, producers, strict=True):
        record = orjson.loads(await redis.get(f"arq:job:{job.job_id}"))
        assert producer.context is not None and f"{producer.context.span_id:016x}" in record["tc"]["traceparent"]


async def test_an_enqueue_that_finds_its_job_id_queued_says_so_and_leaves_the_job_its_own_trace(
    spans: InMemorySpanExporter, redis: Redis
) -> None:
    first = await JobOptions(job_id="invoice-42").enqueue(flaky_once, invoice_id=42)
    record = await redis.get("arq:job:invoice-42")
    again = await JobOptions(job_id="invoice-42").enqueue(flaky_once, invoice_id=42)
    assert first.created and not again.created
    assert await redis.get("arq:job:invoice-42") == record, "the queued job keeps its own trace context"
    created = [
        (s.attributes or {})["scalr_queue.job.created"]
        for s in by_name(spans.get_finished_spans(), "enqueue flaky_once")
    ]
    assert created == [True, False]


async def test_an_enqueue_redis_refuses_ends_its_span_with_the_error(
    spans: InMemorySpanExporter, set_env: Callable[..., None]
) -> None:
    from scalr_queue.testing import free_port

    set_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", SCALR_QUEUE_REDIS_TIMEOUT="200ms")
    await scalr_queue.close()
    with pytest.raises(scalr_queue.QueueUnavailableError):
        await scalr_queue.enqueue(flaky_once, invoice_id=1)
    with pytest.raises(scalr_queue.QueueUnavailableError):
        await scalr_queue.enqueue_many([(flaky_once, {"invoice_id": 2})])
    await scalr_queue.close()
    failed = by_name(spans.get_finished_spans(), "enqueue flaky_once")
    assert len(failed) == 2
    for span in failed:
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "QueueUnavailableError"
        assert [e.name for e in span.events] == ["exception"]


async def test_a_job_enqueued_without_a_trace_gets_a_root_span_per_attempt(
    spans: InMemorySpanExporter, redis: Redis, set_env: Callable[..., None]
) -> None:
    set_env(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="redis, scalr_queue")  # this producer does not trace
    job = await scalr_queue.enqueue(flaky_once, invoice_id=7)
    assert "tc" not in orjson.loads(await redis.get(f"arq:job:{job.job_id}"))
    set_env(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=None)
    async with running_worker([flaky_once]):
        assert await job.result(timeout=10) == 7
        await wait_until(lambda: len(by_name(spans.get_finished_spans(), "run flaky_once")) == 2, what="2 spans")
    assert not by_name(spans.get_finished_spans(), "enqueue flaky_once")
    assert all(s.parent is None for s in by_name(spans.get_finished_spans(), "run flaky_once"))


async def test_a_payload_that_is_not_ours_is_refused_without_a_span(spans: InMemorySpanExporter, redis: Redis) -> None:
    await redis.set("arq:job:hostile", b"\x00\xffgarbage")
    await redis.zadd("arq:queue:default", {"hostile": 1})
    async with running_worker([flaky_once]):
        await wait_until(lambda: redis.zcard(failed_key("default")), what="the refused job in the failed set")
    assert spans.get_finished_spans() == ()


def test_opentelemetrys_switches_turn_tracing_off(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    assert configured_tracing() is not None
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert configured_tracing() is None
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "scalr_queue,redis")
    assert configured_tracing() is None


def test_the_api_without_a_provider_does_not_trace() -> None:
    assert trace.get_tracer_provider().__class__.__name__ == "ProxyTracerProvider"
    assert configured_tracing() is None


# A process that enqueues and runs a job, then reports which OpenTelemetry modules it loaded.
UNTRACED_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys

    if sys.argv[1] == "absent":  # as if the otel extra were not installed
        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "opentelemetry":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None
        sys.meta_path.insert(0, Absent())

    import scalr_queue
    from scalr_queue.worker._loader import WorkerConfig
    from scalr_queue._settings import load_settings
    from scalr_queue._tasks import build_task_map
    from scalr_queue.worker._worker import ScalrWorker

    async def double(ctx, n: int) -> int:
        return 2 * n

    async def main():
        job = await scalr_queue.enqueue(double, n=21)
        after_enqueue = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        config = WorkerConfig(module="untraced", tasks=build_task_map([double]))
        await ScalrWorker(config, load_settings(), burst=True, handle_signals=False).run_async()
        result = await job.result(timeout=10)
        await scalr_queue.close()
        after_worker = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        print(json.dumps({"result": result, "after_enqueue": after_enqueue, "after_worker": after_worker}))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("otel", ["absent", "installed"])
def test_without_a_tracer_provider_nothing_of_opentelemetry_is_imported(redis_url: str, otel: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", UNTRACED_PROCESS, otel],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"result": 42, "after_enqueue": [], "after_worker": []}


def test_the_tracing_bench_runs_both_modes_and_counts_every_span() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tracing", "--jobs", "20", "--rounds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "| off |" in done.stdout and "| on |" in done.stdout and "on minus off, per job" in done.stdout
