"""scalr_queue: background jobs for SCALR apps, over arq and Redis.

Example::

    from scalr_queue import enqueue

    job = await enqueue(send_invoice_email, invoice_id=42)  # checked against the task's signature
    job = await enqueue("send_invoice_email", invoice_id=42)  # by name
"""

from ._arq_compat import WorkerSettings
from ._arq_read import arq_deserializer
from ._cancel import CancelOutcome
from ._client import (
    QueueClient,
    QueueStats,
    cancel,
    close,
    enqueue,
    enqueue_many,
    get_client,
    get_job,
    hold,
    pause,
    queue_stats,
    release,
    resume,
)
from ._errors import (
    ConfigurationError,
    EnqueueError,
    Fail,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobOptionsError,
    PayloadError,
    QueueUnavailableError,
    ScalrQueueError,
    TaskArgumentsError,
    UnknownTaskError,
    WorkerModuleError,
)
from ._failed import FailedJob, FailedJobs, PurgeAllReport, RetryAllReport
from ._holds import Released
from ._job import Job, JobInfo, JobStatus
from ._options import JobOptions
from ._producer_metrics import metrics_registry
from ._registry import WorkerInfo
from ._settings import Settings, get_settings
from ._tasks import TaskSpec, task

__version__ = "0.1.0"

__all__ = [
    "CancelOutcome",
    "ConfigurationError",
    "EnqueueError",
    "Fail",
    "FailedJob",
    "FailedJobs",
    "Job",
    "JobCancelledError",
    "JobFailedError",
    "JobInfo",
    "JobNotFoundError",
    "JobOptions",
    "JobOptionsError",
    "JobStatus",
    "PayloadError",
    "PurgeAllReport",
    "QueueClient",
    "QueueStats",
    "QueueUnavailableError",
    "Released",
    "RetryAllReport",
    "ScalrQueueError",
    "Settings",
    "TaskArgumentsError",
    "TaskSpec",
    "UnknownTaskError",
    "WorkerInfo",
    "WorkerModuleError",
    "WorkerSettings",
    "arq_deserializer",
    "cancel",
    "close",
    "enqueue",
    "enqueue_many",
    "get_client",
    "get_job",
    "get_settings",
    "hold",
    "metrics_registry",
    "pause",
    "queue_stats",
    "release",
    "resume",
    "task",
]
