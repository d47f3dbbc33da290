"""Whether to trace: the one check the enqueue and run paths make, without importing OpenTelemetry.

Tracing is on when the process has configured an OpenTelemetry tracer provider (the SDK, or
``opentelemetry-instrument``) before the queue's first use: a client decides at its first
enqueue, a worker after its ``on_startup``, and each keeps the answer. Configuring a provider
means importing ``opentelemetry.trace``, so a process where that module was never imported is
answered from ``sys.modules`` alone: nothing of OpenTelemetry is imported, and the enqueue and
run paths cost one ``is None`` test per job. OpenTelemetry's own switches turn it off:
``OTEL_SDK_DISABLED=true``, or ``scalr_queue`` in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``.

The span code itself lives in :mod:`scalr_queue.observe._otel`, imported only once tracing is on.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._otel import Tracing

#: the job record's field with the W3C trace context (``traceparent``, ``tracestate``) of its enqueue
TRACE_FIELD = "tc"
INSTRUMENTATION_NAME = "scalr_queue"


def trace_id_of(context: object) -> str | None:
    """The trace id in a job's W3C trace context (``tc``: ``{"traceparent": "00-<trace>-<span>-01"}``)."""
    if not isinstance(context, dict):
        return None
    parts = str(context.get("traceparent", "")).split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def disabled_by_environment() -> bool:
    """OpenTelemetry's documented switches, read the way its SDK and auto-instrumentation read them."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return True
    names = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return INSTRUMENTATION_NAME in {name.strip() for name in names.split(",")}


def configured_tracing() -> Tracing | None:
    """A :class:`~scalr_queue.observe._otel.Tracing` when this process has a tracer provider, else None.

    Call it once and keep the answer: it is the whole cost of tracing for a process that
    does not trace.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None or disabled_by_environment():
        return None
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None  # the API without a provider: every span would be a no-op
    from ._otel import Tracing

    return Tracing()
