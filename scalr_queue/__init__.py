"""scalr_queue: background jobs for SCALR apps, over arq and Redis.

Example::

    from scalr_queue import enqueue

    job = await enqueue(send_invoice_email, invoice_id=42)  # checked against the task's signature
    job = await enqueue("send_invoice_email", invoice_id=42)  # by name
"""

from ._errors import (
    ConfigurationError,
    EnqueueError,
    Fail,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobOptionsError,
    NotReplicatedError,
    PayloadError,
    QueueUnavailableError,
    ScalrQueueError,
    TaskArgumentsError,
    UnknownTaskError,
    WorkerModuleError,
)
from ._settings import Settings, get_settings
from ._tasks import TaskSpec, task
from .arq_compat._deserializer import arq_deserializer
from .arq_compat._worker_settings import WorkerSettings
from .control._cancel import CancelOutcome
from .control._failed import FailedJob, FailedJobs, PurgeAllReport, RetryAllReport
from .control._holds import Released
from .observe._producer_metrics import metrics_registry
from .producer._client import QueueClient, QueueStats
from .producer._default import (
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
from .producer._job import Job, JobInfo, JobStatus
from .producer._options import JobOptions
from .worker._registry import WorkerInfo

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
    "NotReplicatedError",
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
