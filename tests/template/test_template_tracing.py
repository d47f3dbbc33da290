"""One trace from the HTTP request to every try of its job: template-app's backend with the
FastAPI instrumentation (in-process, in-memory exporter) and its worker as a real process
(spans written to a file), on a real redis-server."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from template_support import BACKEND, Proc, Stack, wait_until, worker_argv

import scalr_queue

pytest.importorskip("opentelemetry.instrumentation.fastapi", reason="opentelemetry-instrumentation-fastapi (dev)")

from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import SpanKind

from tests.otel_support import global_tracer_provider, hex_trace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]
HERE = Path(__file__).resolve().parent


@pytest.fixture
def backend_app(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The template's FastAPI app in this process, pointed at the stack's Redis."""
    monkeypatch.syspath_prepend(str(BACKEND))
    for key in ("REDIS_URL", "SCALR_QUEUE_TASKS", "SCALR_QUEUE_MAX_TRIES"):
        monkeypatch.setenv(key, stack.env[key])
    from src.main import app

    yield app
    for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
        del sys.modules[name]


def read_spans(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_the_request_its_enqueue_and_every_try_of_the_job_share_one_trace(
    stack: Stack, backend_app: Any, tmp_path: Path
) -> None:
    spans_file = tmp_path / "worker-spans.jsonl"
    env = {
        **stack.env,
        "SPANS_FILE": str(spans_file),
        "SCALR_QUEUE_LOG_FORMAT": "json",
        "PYTHONPATH": os.pathsep.join([str(HERE), stack.env.get("PYTHONPATH", "")]),
    }
    argv = worker_argv()
    argv[argv.index("src.worker")] = "traced_worker"
    worker = Proc("worker", argv, BACKEND, env, stack.log_dir)
    stack.procs.append(worker)

    with global_tracer_provider() as exporter:
        FastAPIInstrumentor.instrument_app(backend_app)
        try:
            await scalr_queue.close()
            transport = httpx.ASGITransport(app=backend_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                response = await http.post("/invoices/42/send")
                assert response.status_code == 202, response.text
            job_id = response.json()["job_id"]
        finally:
            FastAPIInstrumentor.uninstrument_app(backend_app)
            await scalr_queue.close()
        backend_spans = exporter.get_finished_spans()

    (server,) = [s for s in backend_spans if s.kind is SpanKind.SERVER]
    (producer,) = [s for s in backend_spans if s.kind is SpanKind.PRODUCER]
    assert server.name == "POST /invoices/{invoice_id}/send"
    assert producer.name == "enqueue send_invoice_email"
    assert producer.parent is not None and server.context is not None
    assert producer.parent.span_id == server.context.span_id, "the enqueue is a child of the request"
    assert (producer.attributes or {})["messaging.message.id"] == job_id

    def attempts() -> list[dict[str, Any]]:
        assert worker.alive(), worker.log()[-3000:]
        return [s for s in read_spans(spans_file) if s["name"] == "run send_invoice_email"]

    first, second = wait_until(lambda: len(attempts()) == 2 and attempts(), 30, "two attempt spans")
    assert producer.context is not None
    for attempt, (try_, outcome) in zip((first, second), [(1, "retry"), (2, "done")], strict=True):
        assert attempt["kind"] == "CONSUMER"
        assert attempt["trace_id"] == hex_trace(server), "one trace: request, enqueue, every try"
        assert attempt["parent_span_id"] == f"{producer.context.span_id:016x}"
        assert attempt["attributes"]["messaging.message.id"] == job_id
        assert attempt["attributes"]["scalr_queue.job.try"] == try_
        assert attempt["attributes"]["scalr_queue.outcome"] == outcome

    # the worker's JSON log lines written during each try carry that try's trace and span ids
    def logged() -> list[dict[str, Any]]:
        return [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]

    def sending_lines() -> list[dict[str, Any]]:
        return [r for r in logged() if r["msg"].startswith("sending invoice 42")]

    # an info line is written at the end of its event-loop step, which may be after the span is exported
    (sending,) = wait_until(sending_lines, 10, "the task's log line of try 2")
    (retrying,) = [r for r in logged() if "↻" in r["msg"] and job_id in r["msg"]]  # try 1, the worker's line
    assert (retrying["trace_id"], retrying["span_id"]) == (first["trace_id"], first["span_id"])
    assert (sending["trace_id"], sending["span_id"]) == (second["trace_id"], second["span_id"])
