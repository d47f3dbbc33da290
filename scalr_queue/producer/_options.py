"""Enqueue options: where a job goes, when it is due, and how long it may wait.

They come in two spellings with one set of checks. By name, as arq spells them, mixed with the
task's own arguments: ``enqueue("send_invoice_email", _job_id="invoice-42", invoice_id=42)``.
Typed, as a value that is checked when it is built and then enqueues a task function with its
arguments checked against the task's signature:
``JobOptions(job_id="invoice-42").enqueue(send_invoice_email, invoice_id=42)``. A typed call
cannot take ``_job_id=`` next to the task's arguments: a ParamSpec describes the task's
arguments exactly, with no room for extra keywords, hence the separate value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from .._errors import JobOptionsError
from .._priority import DEFAULT_PRIORITY, check_priority, encode
from .._settings import QUEUE_NAME_HELP, QUEUE_NAME_RE
from .._tasks import P, R, TaskFn, TaskSpec, did_you_mean
from ._ids import new_job_id

if TYPE_CHECKING:
    from ._job import Job

MAX_JOB_ID = 256
# the keyword spelling: arq's names, which can never clash with a task argument (those cannot start with '_')
OPTION_NAMES = (
    "_job_id",
    "_queue_name",
    "_defer_by",
    "_defer_until",
    "_expires",
    "_debounce",
    "_replace",
    "_job_try",
    "_priority",
)
# a job with an expiry keeps its key at most this long past it, in case no worker ever looks at
# it again (the worker fails expired jobs with a reason long before that)
EXPIRED_KEY_GRACE_MS = 86_400_000


class Placement(NamedTuple):
    """Options resolved against the clock and the settings: what the enqueue script writes.

    A NamedTuple: one is built per enqueue, and a tuple is the cheapest record to build.
    """

    job_id: str
    queue: str
    score: int  # the queue's sorted-set score: the due time in ms, in its priority's band (see _priority)
    expires_ms: int | None
    px: int  # the job key's TTL in ms; 0 keeps it until a worker takes the job
    job_try: int | None
    given_id: bool  # a caller's id: an existing job with that id wins over this one
    replace: bool = False  # _replace or _debounce: this job's arguments and time win over an existing one's
    priority: int = DEFAULT_PRIORITY


def _seconds(label: str, value: object) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise JobOptionsError(f"{label} must be seconds (a number) or a timedelta, not {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise JobOptionsError(f"{label} must be a finite number of seconds >= 0, not {value!r}")
    return seconds


def _check(values: Mapping[str, Any], prefix: str) -> None:
    """One-line JobOptionsError for the first bad value; ``prefix`` spells names as the caller did."""
    queue = values.get("queue_name")
    if queue and (not isinstance(queue, str) or not QUEUE_NAME_RE.match(queue)):
        raise JobOptionsError(f"{prefix}queue_name {queue!r} is not valid: expected {QUEUE_NAME_HELP}")
    job_id = values.get("job_id")
    if job_id is not None:
        if not isinstance(job_id, str) or not job_id:
            raise JobOptionsError(f"{prefix}job_id must be a non-empty string, not {job_id!r}")
        if len(job_id) > MAX_JOB_ID:
            raise JobOptionsError(f"{prefix}job_id is {len(job_id)} characters long; at most {MAX_JOB_ID} are allowed")
        if not job_id.isprintable() or any(c.isspace() for c in job_id):
            raise JobOptionsError(
                f"{prefix}job_id {job_id!r} contains whitespace or control characters; use letters, digits and -_.:/"
            )
    defer_by, defer_until = values.get("defer_by"), values.get("defer_until")
    if defer_by is not None and defer_until is not None:
        raise JobOptionsError(f"use either {prefix}defer_by or {prefix}defer_until, not both")
    if defer_by is not None:
        _seconds(f"{prefix}defer_by", defer_by)
    elif defer_until is not None:
        if not isinstance(defer_until, datetime):
            raise JobOptionsError(f"{prefix}defer_until must be a datetime, not {type(defer_until).__name__}")
        if defer_until.tzinfo is None:
            raise JobOptionsError(
                f"{prefix}defer_until must be timezone-aware, e.g. datetime.now(timezone.utc) + timedelta(hours=1)"
            )
    expires = values.get("expires")
    if expires is not None and _seconds(f"{prefix}expires", expires) <= 0:
        raise JobOptionsError(f"{prefix}expires must be greater than zero")
    job_try = values.get("job_try")
    if job_try is not None and (not isinstance(job_try, int) or job_try < 1):
        raise JobOptionsError(f"{prefix}job_try must be a whole number >= 1, not {job_try!r}")
    replace, debounce = values.get("replace"), values.get("debounce")
    if replace is not None and not isinstance(replace, bool):
        raise JobOptionsError(f"{prefix}replace must be True or False, not {replace!r}")
    if debounce is not None:
        if _seconds(f"{prefix}debounce", debounce) <= 0:
            raise JobOptionsError(f"{prefix}debounce must be greater than zero")
        if defer_by is not None or defer_until is not None:
            raise JobOptionsError(
                f"use either {prefix}debounce or {prefix}defer_by/{prefix}defer_until: a debounced job is due "
                "that long after the last enqueue"
            )
    priority = values.get("priority")
    if priority is not None:
        check_priority(priority, f"{prefix}priority")
    if (replace or debounce is not None) and job_id is None:
        what = f"{prefix}debounce" if debounce is not None else f"{prefix}replace"
        raise JobOptionsError(
            f"{what} needs {prefix}job_id: the key that names the job to replace, "
            f"e.g. {prefix}job_id=f'reindex-{{user_id}}'"
        )


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How one job is enqueued; checked when built, reusable for any number of jobs.

    Attributes:
        job_id: idempotency key: while a job with this id is queued, running or has a kept
            result, enqueueing it again returns that job (``created`` is False).
        queue_name: the queue to put it on (default ``SCALR_QUEUE_QUEUE_NAME``).
        defer_by: seconds or a timedelta from now before it is due.
        defer_until: a timezone-aware datetime when it is due (a past time means now).
        expires: give up if no worker started it within that long: it goes to the failed set.
        job_try: the try number to start counting from (arq's option).
        debounce: seconds or a timedelta: many enqueues of one ``job_id`` within that long give
            one run, that long after the last one, with the last arguments (implies ``replace``).
        replace: the new arguments and due time replace those of a queued or scheduled job with
            this ``job_id``; if it is running, this one runs after it, never beside it.
        priority: 0 to 9, default 5: among jobs that are due, a higher priority starts first
            (FIFO within one priority); a scheduled job takes its priority when it is due.

    Example::

        job = await JobOptions(job_id=f"invoice-{invoice_id}", defer_by=60).enqueue(
            send_invoice_email, invoice_id=invoice_id
        )
    """

    job_id: str | None = None
    queue_name: str | None = None
    defer_by: float | timedelta | None = None
    defer_until: datetime | None = None
    expires: float | timedelta | None = None
    job_try: int | None = None
    debounce: float | timedelta | None = None
    replace: bool = False
    priority: int = DEFAULT_PRIORITY

    def __post_init__(self) -> None:
        _check(
            {
                "job_id": self.job_id,
                "queue_name": self.queue_name,
                "defer_by": self.defer_by,
                "defer_until": self.defer_until,
                "expires": self.expires,
                "job_try": self.job_try,
                "debounce": self.debounce,
                "replace": self.replace,
                "priority": self.priority,
            },
            "",
        )

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> JobOptions:
        """The ``_job_id=...`` spelling; errors name the options as the caller wrote them."""
        for key in options:
            if key not in OPTION_NAMES:
                raise JobOptionsError(
                    f"unknown enqueue option {key!r}{did_you_mean(key, OPTION_NAMES)}; options are "
                    f"{', '.join(OPTION_NAMES[:-1])} (task arguments cannot start with '_')"
                )
        values = {key[1:]: value for key, value in options.items() if value is not None}
        if not values:
            return DEFAULT
        _check(values, "_")
        # checked just above, in the caller's spelling: skip __post_init__'s second check
        checked = object.__new__(cls)
        for name in _FIELDS:
            object.__setattr__(checked, name, values.get(name))
        if checked.replace is None:
            object.__setattr__(checked, "replace", False)
        if checked.priority is None:
            object.__setattr__(checked, "priority", DEFAULT_PRIORITY)
        return checked

    def place(self, default_queue: str, now_ms: int) -> Placement:
        """Resolve against the clock: the queue, the job id (generated if none), the due time and TTL."""
        job_id = self.job_id if self.job_id is not None else new_job_id()
        score = now_ms
        if self.debounce is not None:
            score = now_ms + int(_seconds("debounce", self.debounce) * 1000)
        elif self.defer_by is not None:
            score = now_ms + int(_seconds("defer_by", self.defer_by) * 1000)
        elif self.defer_until is not None:
            # a time in the past is not an error: the job is simply due now
            score = max(now_ms, int(self.defer_until.timestamp() * 1000))
        expires_ms: int | None = None
        px = 0
        if self.expires is not None:
            expires_ms = now_ms + int(_seconds("expires", self.expires) * 1000)
            px = max(expires_ms, score) - now_ms + EXPIRED_KEY_GRACE_MS
        return Placement(
            job_id,
            self.queue_name or default_queue,
            encode(score, self.priority),
            expires_ms,
            px,
            self.job_try,
            self.job_id is not None,
            self.replace or self.debounce is not None,
            self.priority,
        )

    @overload
    async def enqueue(self, task: TaskSpec[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Job[R]: ...

    @overload
    async def enqueue(self, task: TaskFn[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Job[R]: ...

    @overload
    async def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> Job[Any]: ...

    async def enqueue(self, task: Any, /, *args: Any, **kwargs: Any) -> Job[Any]:
        """Enqueue ``task`` with these options on the process's client (see :func:`scalr_queue.enqueue`)."""
        from ._default import get_client

        return await get_client().enqueue_with(self, task, *args, **kwargs)


_FIELDS = tuple(f.name for f in fields(JobOptions))
DEFAULT = JobOptions()
