"""JSON, never pickle: what goes into Redis and how it comes back.

Whoever can write to Redis must not be able to run code in a worker, so payloads and results
are JSON (orjson) and a payload that is not our JSON is refused, never executed.

How values travel (the documented round trip):

============================  ===========================  ==================================
Python value                  JSON                         back in the task
============================  ===========================  ==================================
str, int, float, bool, None   as is                        as is
list, tuple, set              array                        list, or the annotated type
dict                          object (keys become str)     dict, or the annotated type
datetime / date / time        ISO 8601 string              the annotated type (else str)
UUID                          string                       UUID if annotated (else str)
Decimal                       string ("12.30", exact)      Decimal if annotated (else str)
Enum                          its value                    the Enum if annotated
timedelta                     seconds (float)              timedelta if annotated
pydantic model / dataclass    object                       the model if annotated (else dict)
============================  ===========================  ==================================

The worker converts arguments with pydantic using the task's annotations, so
``async def task(ctx, when: datetime, amount: Decimal)`` receives a ``datetime`` and a
``Decimal``. Results use the task's return annotation the same way when the caller knows
the task (it enqueued the function itself, or ``SCALR_QUEUE_TASKS`` names the worker module).
Values JSON cannot carry (bytes, NaN, arbitrary objects, ints over 64 bits) are refused at
enqueue time, naming the argument.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import traceback as tb
from datetime import timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import orjson
from pydantic import BaseModel

from ._errors import PayloadError

_DUMPS_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS
MAX_TRACEBACK = 32 * 1024


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError("Decimal NaN/Infinity has no JSON form")
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, str):  # str subclasses (passthrough)
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("bytes have no JSON form (encode them as base64 text, or store them elsewhere)")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, BaseException):  # arq stores a failed job's exception as its result
        return error_record(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_non_finite(v) for v in value)
    return False


def dumps(value: Any) -> bytes:
    """Encode to JSON bytes; raise TypeError for anything JSON cannot carry faithfully."""
    try:
        data = orjson.dumps(value, default=_default, option=_DUMPS_OPTS)
    except orjson.JSONEncodeError as exc:
        cause = exc.__cause__ or exc.__context__
        reason = str(cause) if isinstance(cause, TypeError) and str(cause) else str(exc)
        raise TypeError(reason.removeprefix("Type is not JSON serializable: ")) from None
    # orjson writes NaN/Infinity as null: refuse rather than change the value silently
    if b"null" in data and _has_non_finite(value):
        raise TypeError("NaN and Infinity have no JSON form")
    return data


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def encode_kwargs(task: str, kwargs: dict[str, Any]) -> bytes:
    """Encode keyword arguments, naming the first argument that cannot be encoded."""
    try:
        return dumps(kwargs)
    except TypeError:
        pass
    for name, value in kwargs.items():
        try:
            dumps(value)
        except TypeError as exc:
            raise PayloadError(f"argument {name!r} of task {task!r} cannot be sent as JSON: {exc}") from None
    raise PayloadError(f"the arguments of task {task!r} cannot be sent as JSON")  # pragma: no cover


@functools.lru_cache(maxsize=1024)
def _plain_head(task: str) -> bytes:
    """``{"t":null,"f":<task>,"a":[],"et":`` for one task name, built once instead of per enqueue."""
    return orjson.dumps({"t": None, "f": task, "a": []}, option=_DUMPS_OPTS)[:-1] + b',"et":'


def job_payload(
    task: str,
    kwargs_json: bytes,
    enqueue_ms: int,
    *,
    args: list[Any] | None = None,
    job_try: int | None = None,
    expires_ms: int | None = None,
    priority: int | None = None,
) -> bytes:
    """Build arq's job record (``t f a k et``) around already-encoded kwargs, plus ``x`` (expiry)
    and ``p`` (priority, left out at the default 5: retries and re-drives keep it).

    Splicing the pre-encoded kwargs avoids encoding them twice on the enqueue hot path. A traced
    enqueue adds ``tc``, its trace context (:func:`scalr_queue.observe._otel.with_trace_context`).
    """
    # args were checked by encode_kwargs already; the rest are ints and a str: no NaN walk needed
    if job_try is None and not args and type(enqueue_ms) is int:  # the usual enqueue: one head per task name
        head = _plain_head(task) + str(enqueue_ms).encode() + b"}"
    else:
        head = orjson.dumps({"t": job_try, "f": task, "a": args or [], "et": enqueue_ms}, option=_DUMPS_OPTS)
    extra = b"" if expires_ms is None else b',"x":' + str(int(expires_ms)).encode()
    if priority is not None and priority != 5:
        extra += b',"p":' + str(int(priority)).encode()
    return head[:-1] + b',"k":' + kwargs_json + extra + b"}"


class BadPayload(ValueError):
    """A job record that is not ours (garbage, a pickle from a vanilla arq producer, wrong shape)."""


def parse_job(raw: bytes) -> dict[str, Any]:
    """Decode a job record, refusing anything that is not a well-formed JSON job."""
    if raw[:1] == b"\x80":
        raise BadPayload("payload is a Python pickle (a vanilla arq producer?); pickles are never executed")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        preview = raw[:40]
        raise BadPayload(f"payload is not valid JSON (starts with {preview!r})") from None
    if not isinstance(data, dict):
        raise BadPayload(f"payload is JSON but not an object ({type(data).__name__})")
    if not isinstance(data.get("f"), str):
        raise BadPayload("payload has no task name ('f')")
    if not isinstance(data.get("k", {}), dict) or not isinstance(data.get("a", []), list):
        raise BadPayload("payload arguments have the wrong shape ('a' must be a list, 'k' an object)")
    if not isinstance(data.get("et", 0), int | float):
        raise BadPayload("payload enqueue time ('et') is not a number")
    data.setdefault("a", [])
    data.setdefault("k", {})
    data.setdefault("et", 0)
    return data


def error_record(exc: BaseException, *, reason: str | None = None) -> dict[str, str]:
    """Type, message and traceback text of an exception: what a failed job keeps."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    text = "".join(tb.format_exception(exc))
    if len(text) > MAX_TRACEBACK:
        text = text[:1000] + "\n...\n" + text[-(MAX_TRACEBACK - 1100) :]
    return {"type": name, "message": reason or str(exc), "traceback": text}


def result_payload(
    *,
    job_id: str,
    job: dict[str, Any],
    queue: str,
    job_try: int,
    success: bool,
    result: Any,
    start_ms: int,
    finish_ms: int,
    worker: str | None = None,
    trace_id: str | None = None,
) -> tuple[bytes, str | None]:
    """arq's result record (``t f a k et s r st ft q id``) as JSON, and why the result was dropped.

    ``w`` (the worker) and ``ti`` (the trace id), when given, let the job's last try be read from
    its result alone: the worker writes no separate try record for a job that ends on its first try.

    A result that cannot be encoded is replaced by an error record, so that the job's outcome
    (it ran) is still stored; the caller logs the reason. Only the result is checked for NaN:
    the rest came out of JSON a moment ago.
    """
    problem = None
    try:
        encoded = b"null" if result is None else dumps(result)  # most tasks return nothing
    except TypeError as exc:
        problem = f"the task's result cannot be stored as JSON: {exc}"
        encoded = orjson.dumps({"type": "ResultEncodingError", "message": problem, "traceback": ""})
        success = False
    record = {
        "t": job_try,
        "f": job.get("f"),
        "a": job.get("a", []),
        "k": job.get("k", {}),
        "et": job.get("et", 0),
        "s": success,
        "st": start_ms,
        "ft": finish_ms,
        "q": queue,
        "id": job_id,
    }
    if worker is not None:
        record["w"] = worker
    if trace_id is not None:
        record["ti"] = trace_id
    if problem:
        record["re"] = True
    if job.get("p") is not None:
        record["p"] = job["p"]
    head = orjson.dumps(record, option=_DUMPS_OPTS)
    return head[:-1] + b',"r":' + encoded + b"}", problem


def pretty(value: Any) -> str:
    """Human-readable JSON for the CLI."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)
