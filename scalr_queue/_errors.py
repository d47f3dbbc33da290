"""Exceptions raised by scalr_queue.

Every error a user can catch derives from one base::

    ScalrQueueError
    ├── ConfigurationError        a setting (env var) has an invalid value
    ├── QueueUnavailableError     Redis cannot be reached, refuses auth, or refuses writes (OOM)
    │   └── NotReplicatedError    the master took the job, too few replicas confirmed it in time
    ├── EnqueueError              the job was rejected before anything was written
    │   ├── UnknownTaskError      no task of that name (with a did-you-mean)
    │   ├── TaskArgumentsError    missing, unexpected or ill-typed keyword arguments
    │   ├── PayloadError          a value JSON cannot carry, or the payload is over the size cap
    │   └── JobOptionsError       a bad ``_job_id``, ``_queue_name``, ``_defer_*`` or ``_expires``
    ├── JobNotFoundError          no such job (never queued, or its result has expired)
    ├── JobFailedError            ``await job.result()`` of a job that failed for good
    ├── JobCancelledError         ``await job.result()`` of a job that was cancelled
    └── WorkerModuleError         the worker module cannot be loaded (bad import, no ``tasks``...)

``Fail`` is not in this tree on purpose: it is raised *by task code* to stop retrying, not by
scalr_queue, so ``except ScalrQueueError`` around an ``enqueue`` inside a task never swallows it.
"""

from __future__ import annotations


class ScalrQueueError(Exception):
    """Base class of every error scalr_queue raises."""


class ConfigurationError(ScalrQueueError):
    """A setting has an invalid value; the message names the variable and what it accepts."""


class QueueUnavailableError(ScalrQueueError):
    """Redis could not take the request (down, unreachable, wrong password, out of memory).

    Nothing was written when this is raised from ``enqueue``.
    """


class NotReplicatedError(QueueUnavailableError):
    """Fewer than ``SCALR_QUEUE_MIN_REPLICAS`` replicas confirmed the enqueue within its timeout.

    Unlike its base class, the job *was* written, on the master only: it runs unless the master
    fails before a replica copies it. Retrying with the same ``_job_id`` cannot run it twice.
    """


class EnqueueError(ScalrQueueError):
    """The job was rejected at enqueue time; nothing was written to Redis."""


class UnknownTaskError(EnqueueError):
    """The task name is not in the worker's task list."""


class TaskArgumentsError(EnqueueError):
    """The keyword arguments do not match the task's signature."""


class PayloadError(EnqueueError):
    """An argument cannot be encoded as JSON, or the encoded payload is over the size cap."""


class JobOptionsError(EnqueueError):
    """An ``_``-prefixed enqueue option has an invalid value."""


class JobNotFoundError(ScalrQueueError):
    """No job with that id is queued, running, failed, or has a kept result."""


class JobFailedError(ScalrQueueError):
    """The job ended in the failed set; carries the last error's type, message and traceback."""

    def __init__(self, job_id: str, error_type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"job {job_id} failed: {error_type}: {message}")
        self.job_id = job_id
        self.error_type = error_type
        self.message = message
        self.traceback = traceback


class JobCancelledError(ScalrQueueError):
    """The job was cancelled (``Job.cancel()``, ``scalr-queue cancel``, or arq's ``Job.abort()``)."""

    def __init__(self, job_id: str, reason: str | None = None) -> None:
        super().__init__(f"job {job_id} was cancelled" + (f": {reason}" if reason else ""))
        self.job_id = job_id
        self.reason = reason


class WorkerModuleError(ScalrQueueError):
    """The worker module cannot be imported or does not define a usable task list."""


class Fail(Exception):
    """Raise inside a task to send the job straight to the failed set, without more retries.

    Example::

        if invoice is None:
            raise Fail(f"invoice {invoice_id} does not exist")
    """


def exit_code(exc: ScalrQueueError) -> int:
    """Exit status for a command that stopped on ``exc``: 2 for a user's mistake, 1 otherwise."""
    return 2 if isinstance(exc, ConfigurationError | WorkerModuleError) else 1
