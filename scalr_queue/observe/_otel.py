"""OpenTelemetry spans for a job: one PRODUCER span at enqueue, one CONSUMER span per attempt.

Imported only once :func:`scalr_queue.observe._tracing.configured_tracing` found a tracer provider, so
a process that does not trace never loads OpenTelemetry. The enqueue span's W3C trace context
travels in the job record (``tc``, see :mod:`scalr_queue._codec`); every attempt's span is its
child, so one trace holds the request that enqueued, the enqueue and each try, with the try's
outcome. Attributes follow OpenTelemetry's messaging conventions where one fits
(``messaging.system``, ``messaging.destination.name``, ``messaging.message.id``) and use
``scalr_queue.*`` for the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar

import orjson
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import __version__
from .._codec import BadPayload, parse_job
from ._tracing import INSTRUMENTATION_NAME, TRACE_FIELD

#: what each finish op (see :mod:`scalr_queue.worker._finisher`) means for the attempt that queued it
OUTCOMES = {"D": "done", "R": "retry", "Q": "requeued", "F": "failed", "C": "cancelled"}
SYSTEM = "scalr_queue"


class _Enqueued(Protocol):
    created: bool


J = TypeVar("J", bound=_Enqueued)


def _producer_attributes(task: str, job_id: str, queue: str) -> dict[str, str]:
    return {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue",
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
        "scalr_queue.task": task,
    }


class Tracing:
    """The spans of one process: made once, when the tracer provider is known to be configured."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__)

    # -- producer -------------------------------------------------------------------------

    def _start_enqueue(self, task: str, job_id: str, queue: str) -> tuple[Span, dict[str, str]]:
        span = self.tracer.start_span(
            f"enqueue {task}", kind=SpanKind.PRODUCER, attributes=_producer_attributes(task, job_id, queue)
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return span, carrier

    @staticmethod
    def _end_enqueue(span: Span, *, created: bool = False, error: BaseException | None = None) -> None:
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.set_attribute("error.type", type(error).__qualname__)
        else:
            # False: a job with this id was already queued; it keeps the trace of its own enqueue
            span.set_attribute("scalr_queue.job.created", created)
        span.end()

    async def enqueue(
        self, task: str, job_id: str, queue: str, payload: bytes, send: Callable[[bytes], Awaitable[J]]
    ) -> J:
        """``send`` the payload with this enqueue's trace context added, inside its PRODUCER span."""
        span, carrier = self._start_enqueue(task, job_id, queue)
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                job = await send(with_trace_context(payload, carrier))
        except BaseException as exc:
            self._end_enqueue(span, error=exc)
            raise
        self._end_enqueue(span, created=job.created)
        return job

    async def enqueue_many(
        self,
        jobs: Sequence[tuple[str, str, str, bytes]],
        send: Callable[[list[bytes]], Awaitable[list[J]]],
    ) -> list[J]:
        """One PRODUCER span per ``(task, job_id, queue, payload)``, siblings under the caller's span."""
        started = [(self._start_enqueue(task, job_id, queue), payload) for task, job_id, queue, payload in jobs]
        try:
            sent = await send([with_trace_context(payload, carrier) for (_, carrier), payload in started])
        except BaseException as exc:
            for (span, _), _payload in started:
                self._end_enqueue(span, error=exc)
            raise
        for ((span, _), _payload), job in zip(started, sent, strict=True):
            self._end_enqueue(span, created=job.created)
        return sent

    # -- consumer -------------------------------------------------------------------------

    async def attempt(
        self, run: Coroutine[Any, Any, None], raw: bytes | None, job_id: str, job_try: int, queue: str, worker_id: str
    ) -> None:
        """Await one attempt (``run``) inside a CONSUMER span that is a child of the job's enqueue.

        A job whose payload cannot be read gets no span: it has no trace to join, and the
        worker refuses it before it runs.
        """
        try:
            job = parse_job(raw) if raw is not None else None
        except BadPayload:
            job = None
        if job is None:
            await run
            return
        task = job["f"]
        carrier = job.get(TRACE_FIELD)
        parent = propagate.extract(carrier, context=Context()) if isinstance(carrier, dict) else Context()
        attributes: dict[str, str | int] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "run",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "messaging.client.id": worker_id,
            "scalr_queue.task": task,
            "scalr_queue.job.try": max(job_try, int(job.get("t") or 0)),
        }
        with self.tracer.start_as_current_span(
            f"run {task}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ):
            await run

    @staticmethod
    def outcome(op: tuple[str, str, bytes | str, bytes | str, int]) -> None:
        """Record how the current attempt ended, from the finish op it queued (``Finisher.on_add``)."""
        span = trace.get_current_span()
        if not span.is_recording():
            return  # not inside an attempt's span (a payload refused unread)
        outcome = OUTCOMES.get(op[0], op[0])
        span.set_attribute("scalr_queue.outcome", outcome)
        if outcome == "failed" and op[2]:
            error = orjson.loads(op[2]).get("error") or {}
            span.set_attribute("error.type", str(error.get("type", "")))
            span.set_status(Status(StatusCode.ERROR, str(error.get("message", ""))[:500]))
        elif outcome in ("retry", "failed"):
            span.set_status(Status(StatusCode.ERROR, outcome))

    # -- logs -----------------------------------------------------------------------------

    @staticmethod
    def attach_log_ids() -> Callable[[], None]:
        """Stamp the trace and span ids on records logged during an attempt, for every root handler.

        The JSON format writes them as ``trace_id`` and ``span_id``. Returns the undo.
        """
        ids = TraceIds()
        handlers = list(logging.getLogger().handlers)
        for handler in handlers:
            handler.addFilter(ids)

        def detach() -> None:
            for handler in handlers:
                handler.removeFilter(ids)

        return detach


class TraceIds(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, as trace back ends show them) to a record in a span."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def with_trace_context(payload: bytes, carrier: dict[str, str]) -> bytes:
    """The job record with its ``tc`` field: the propagator's headers (W3C ``traceparent``...).

    Readers that do not know the field (arq's, older workers) ignore it, as they do ``x``.
    """
    if not carrier:
        return payload
    return payload[:-1] + b',"' + TRACE_FIELD.encode() + b'":' + orjson.dumps(carrier) + b"}"
