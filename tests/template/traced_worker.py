"""template-app's worker with OpenTelemetry configured, as an app would do it in ``on_startup``.

Test only: spans go, one JSON object per line, to the file named by ``SPANS_FILE``, which the
test reads back (a worker is another process: an in-memory exporter there is out of reach). The
invoice task fails its first try so that a job has two attempts.
"""

from __future__ import annotations

import json
import os
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from src import worker as app


def span_line(span: ReadableSpan) -> str:
    context, parent = span.context, span.parent
    return (
        json.dumps(
            {
                "name": span.name,
                "kind": span.kind.name,
                "trace_id": f"{context.trace_id:032x}" if context else None,
                "span_id": f"{context.span_id:016x}" if context else None,
                "parent_span_id": f"{parent.span_id:016x}" if parent else None,
                "status": span.status.status_code.name,
                "attributes": dict(span.attributes or {}),
            }
        )
        + "\n"
    )


async def on_startup(ctx: dict[str, Any]) -> None:
    provider = TracerProvider()
    out = open(os.environ["SPANS_FILE"], "a", encoding="utf-8")  # noqa: SIM115 - open for the worker's life
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=span_line)))
    trace.set_tracer_provider(provider)
    await app.on_startup(ctx)


async def send_invoice_email(ctx: dict[str, Any], invoice_id: int) -> dict[str, Any]:
    if ctx["job_try"] == 1:
        raise ConnectionRefusedError("mail server busy (the first try fails, on purpose)")
    return await app.send_invoice_email(ctx, invoice_id)


tasks = [send_invoice_email]
