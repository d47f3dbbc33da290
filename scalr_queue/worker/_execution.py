"""Running one claimed job: decode, check, call the task, and decide what its end means.

Every end becomes one finish op (see :mod:`scalr_queue.worker._finisher`): done with its result,
retried with backoff, put back (shutdown, or a task this worker does not know), or failed with
its reason. A payload that is not our JSON, an expired job or bad arguments never reach the task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from arq.typing import StartupShutdown
from arq.utils import args_to_string, truncate

from .._codec import BadPayload, dumps, error_record, parse_job, result_payload
from .._errors import Fail, TaskArgumentsError
from .._priority import encode, payload_priority
from .._settings import Settings
from .._tasks import TaskSpec, did_you_mean
from ..control._cancel import cancel_suffix
from ..control._failed import failure_record
from ..observe._metrics import TaskMetrics, WorkerMetrics
from ..observe._tracing import TRACE_FIELD, trace_id_of
from ..redis._connection import REDIS_ERRORS
from ..redis._keys import cancels_key
from ._cancel_watch import HeardCancels
from ._deadlines import Deadlines
from ._finisher import Finisher
from ._progress import ProgressReporter
from ._retry import decide

logger = logging.getLogger("scalr_queue.worker")


def now_ms() -> int:
    return int(time.time() * 1000)


def _count_start(metrics: TaskMetrics, late_s: float | None) -> None:
    metrics.started.inc()
    if late_s is not None:
        metrics.punctuality.observe(late_s)


class JobExecution:
    """The per-job half of :class:`scalr_queue.worker._worker.ScalrWorker` (which provides this state)."""

    settings: Settings
    queue: str
    specs: dict[str, TaskSpec]
    ctx: dict[Any, Any]
    metrics: WorkerMetrics
    job_timeout_s: float
    keep_result_s: float
    max_tries: int
    jobs_complete: int
    jobs_failed: int
    jobs_retried: int
    jobs_cancelled: int
    shutdown_requeued: int
    on_job_start: StartupShutdown | None
    _shutting_down: bool
    _cancelling: dict[str, str | None]  # job id -> reason, for jobs whose task this worker is cancelling
    _tries: dict[str, tuple[int, int, str | None]]  # job id -> (try, start epoch-ms, trace id) of the running try
    worker_id: str
    _heard: HeardCancels
    _deadlines: Deadlines

    @property
    def finisher(self) -> Finisher:
        raise NotImplementedError

    def _last_attempt(
        self, job_id: str, job_try: int, outcome: str, error: dict[str, str] | None = None, **extra: Any
    ) -> bytes:
        """A job's last try: none on a first try, whose result (start, end, worker, error) tells it all.

        That keeps the history off the common path: a job that succeeds at once costs FINISH no
        write beyond its result and its line in the finished index.
        """
        if job_try <= 1:
            return b""
        return self._attempt(job_id, outcome, error, **extra)

    def _attempt(self, job_id: str, outcome: str, error: dict[str, str] | None = None, **extra: Any) -> bytes:
        """The JSON record of the try that just ended, for the job's history (see ``Finisher.add``)."""
        job_try, start, trace_id = self._tries.get(job_id, (0, now_ms(), None))
        if trace_id is not None:
            extra["trace_id"] = trace_id
        record: dict[str, Any] = {
            "try": job_try,
            "start_ms": start,
            "end_ms": now_ms(),
            "outcome": outcome,
            "worker": self.worker_id,
            **extra,
        }
        if error is not None:
            record["error"] = error
        return dumps(record)

    async def _refuse(
        self,
        job_id: str,
        job: dict[str, Any] | None,
        job_try: int,
        start: int,
        kind: str,
        reason: str,
        raw: bytes | None = None,
    ) -> None:
        """A job that must not run (no payload, not our JSON, expired): straight to the failed set."""
        await self._fail(
            job_id, job, job_try, reason, {"type": kind, "message": reason, "traceback": ""}, start, raw=raw
        )

    async def _run(self, job_id: str, raw: bytes | None, job_try: int, due_ms: int | None = None) -> None:
        """Run a claimed job; a cancel request, even one heard before the claim's reply, ends it cancelled."""
        self._tries[job_id] = (job_try, now_ms(), None)
        if self._heard.pop(job_id) and await self._still_marked(job_id):
            self._cancelling.setdefault(job_id, None)
            self._finish_cancelled(job_id)
            return
        try:
            await self._run_claimed(job_id, raw, job_try, due_ms)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if job_id not in self._cancelling or task is None:
                raise
            task.uncancel()
            self._finish_cancelled(job_id)

    async def _still_marked(self, job_id: str) -> bool:
        """A cancel heard for this id before we held it: is its mark still there (not an older job's)?

        One HEXISTS, only for a job whose id this worker heard cancelled in the last minute.
        """
        try:
            return bool(await self.ctx["redis"].hexists(cancels_key(self.queue), job_id))
        except REDIS_ERRORS:
            return True  # a cancel was heard: when in doubt, do not run it

    def _finish_cancelled(self, job_id: str) -> None:
        """Record a cancelled job: FINISH splices its cancel mark (or, for arq's abort, this suffix)."""
        reason = self._cancelling.pop(job_id, None)
        self.jobs_cancelled += 1
        logger.info("job %s cancelled%s: not retried", job_id, f" ({reason})" if reason else "")
        suffix = cancel_suffix(job_id, self.queue, reason, now_ms())
        attempt = self._attempt(job_id, "cancelled", reason=reason) if reason else self._attempt(job_id, "cancelled")
        self.finisher.add(("C", job_id, suffix, "", int(self.keep_result_s * 1000)), attempt)

    async def _run_claimed(self, job_id: str, raw: bytes | None, job_try: int, due_ms: int | None = None) -> None:
        start = now_ms()
        if raw is None:
            reason = "job payload is missing (it expired or was deleted before a worker took it)"
            logger.warning("job %s: %s", job_id, reason)
            await self._refuse(job_id, None, job_try, start, "JobExpired", reason)
            return
        try:
            job = parse_job(raw)
        except BadPayload as exc:
            logger.error("job %s refused: %s; moved to the failed set", job_id, exc)
            await self._refuse(job_id, None, job_try, start, "BadPayload", str(exc), raw=raw)
            return
        name = job["f"]
        job_try = max(job_try, int(job.get("t") or 0))
        self._tries[job_id] = (job_try, start, trace_id_of(job.get(TRACE_FIELD)))
        if job.get("x") is not None and start > int(job["x"]):
            reason = "expired: not started before its _expires deadline"
            logger.warning("job %s:%s %s", job_id, name, reason)
            await self._refuse(job_id, job, job_try, start, "JobExpired", reason)
            return
        spec = self.specs.get(name)
        if spec is None:
            await self._unknown_task(job_id, job, job_try, start)
            return
        try:
            kwargs = spec.convert_kwargs(job["k"])
            if not job["a"]:
                spec.signature.check(name, kwargs)
        except TaskArgumentsError as exc:
            logger.error("job %s:%s refused: %s", job_id, name, exc)
            await self._fail(job_id, job, job_try, str(exc), error_record(exc), start)
            return
        # how late this attempt starts; only for attempts that run (not refused or put back)
        late_s = max(0, start - due_ms) / 1000 if due_ms is not None else None
        await self._execute(job_id, job, spec, kwargs, job_try, start, late_s)

    async def _execute(
        self,
        job_id: str,
        job: dict[str, Any],
        spec: TaskSpec,
        kwargs: dict[str, Any],
        job_try: int,
        claimed_ms: int,
        late_s: float | None,
    ) -> None:
        ref = f"{job_id}:{spec.name}"
        timeout_s = spec.timeout_s or self.job_timeout_s or self.settings.job_timeout
        keep = self.keep_result_s if spec.keep_result_s is None else spec.keep_result_s
        progress = ProgressReporter(self.ctx["redis"], self.queue, job_id, ttl_s=timeout_s + keep + 60)
        ctx = {
            **self.ctx,
            "job_id": job_id,
            "job_try": job_try,
            "queue": self.queue,
            "score": claimed_ms,
            "enqueue_time": datetime.fromtimestamp(job["et"] / 1000, tz=UTC),
            "progress": progress,
        }
        if self.on_job_start:
            await self.on_job_start(ctx)
        metrics = self.metrics.task(spec.name)
        # counted once the task has taken its first step: code run cold after an idle spell can take
        # many times its warm time (bench.pickup measures it), so nothing that can wait goes first
        asyncio.get_running_loop().call_soon(_count_start, metrics, late_s)
        start = now_ms()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%6.2fs → %s(%s) try=%d", (start - job["et"]) / 1000, ref, args_to_string(job["a"], kwargs), job_try
            )
        timed_out = False
        self._deadlines.start(job_id, timeout_s)
        try:
            try:
                result = await spec.coroutine(ctx, *job["a"], **kwargs)
            finally:
                try:
                    await progress.close(keep)
                finally:
                    timed_out = self._deadlines.end(job_id, timeout_s)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if timed_out and task is not None and task.cancelling() == 0:
                # cancelled by its deadline alone: a timeout, as asyncio.timeout would have raised
                await self._attempt_failed(job_id, job, spec, job_try, TimeoutError(), True, start, timeout_s)
                return
            if not self._shutting_down or job_id in self._cancelling:
                raise
            if task is not None:
                task.uncancel()
            self.shutdown_requeued += 1
            logger.info("%s cancelled by shutdown: back on the queue, not counted as a try", ref)
            self.finisher.add(
                ("Q", job_id, "", "", encode(now_ms(), payload_priority(job))),
                self._attempt(job_id, "requeued", reason="shutdown"),
            )
            return
        except Exception as exc:  # every task error is handled: retried or recorded, never lost
            await self._attempt_failed(job_id, job, spec, job_try, exc, timed_out, start, timeout_s)
            return
        finish = now_ms()
        self.jobs_complete += 1
        metrics.succeeded.inc()
        metrics.duration.observe((finish - start) / 1000)
        if logger.isEnabledFor(logging.INFO):  # one line per attempt; the start line is DEBUG
            logger.info(
                "%6.2fs ← %s%s waited %.2fs%s",
                (finish - start) / 1000,
                ref,
                f" try={job_try}" if job_try > 1 else "",
                (start - job["et"]) / 1000,
                "" if result is None else f" ● {truncate(repr(result))}",
            )
        data = b""
        if keep > 0:
            data, problem = result_payload(
                job_id=job_id,
                job=job,
                queue=self.queue,
                job_try=job_try,
                success=True,
                result=result,
                start_ms=start,
                finish_ms=finish,
                worker=self.worker_id,
                trace_id=self._tries.get(job_id, (0, 0, None))[2],
            )
            if problem:
                logger.warning("%s: %s; stored an error in its place", ref, problem)
        self.finisher.add(("D", job_id, data, "", int(keep * 1000)), self._last_attempt(job_id, job_try, "complete"))

    async def _attempt_failed(
        self,
        job_id: str,
        job: dict[str, Any],
        spec: TaskSpec,
        job_try: int,
        exc: Exception,
        timed_out: bool,
        start: int,
        timeout_s: float,
    ) -> None:
        ref = f"{job_id}:{spec.name}"
        if job_id in self._cancelling:
            # its cleanup raised while it was being cancelled: the cancel wins, nothing is retried
            logger.info("%s raised %s: %s while being cancelled", ref, type(exc).__name__, exc)
            self._finish_cancelled(job_id)
            return
        if timed_out:
            exc = TimeoutError(f"task exceeded its {timeout_s:g}s timeout")
        decision = decide(exc, spec, job_try, self.settings, timed_out=timed_out, max_tries=self.max_tries)
        took = (now_ms() - start) / 1000
        self.metrics.task(spec.name).duration.observe(took)
        if decision.retry:
            self.jobs_retried += 1
            self.metrics.task(spec.name).retried.inc()
            logger.warning(
                "%6.2fs ↻ %s %s: %s: %s; retrying in %.2fs",
                took,
                ref,
                decision.reason,
                type(exc).__name__,
                exc,
                decision.delay,
            )
            retry_at = now_ms() + int(decision.delay * 1000)
            attempt = self._attempt(job_id, "retry", error_record(exc), reason=decision.reason, retry_at_ms=retry_at)
            self.finisher.add(("R", job_id, "", "", encode(retry_at, payload_priority(job))), attempt)  # same band
            return
        log = logger.error if not isinstance(exc, Fail) else logger.warning
        log(
            "%6.2fs ! %s failed for good (%s): %s: %s; moved to the failed set",
            took,
            ref,
            decision.reason,
            type(exc).__name__,
            exc,
            exc_info=not isinstance(exc, Fail),
        )
        await self._fail(job_id, job, job_try, decision.reason, error_record(exc), start)

    async def _unknown_task(self, job_id: str, job: dict[str, Any], job_try: int, start: int) -> None:
        name = job["f"]
        age = (start - job["et"]) / 1000
        if age > self.settings.unknown_task_max_age:
            reason = (
                f"no worker knows task {name!r}{did_you_mean(name, self.specs)} "
                f"after {age:.0f}s (SCALR_QUEUE_UNKNOWN_TASK_MAX_AGE)"
            )
            logger.error("job %s: %s; moved to the failed set", job_id, reason)
            await self._fail(
                job_id,
                job,
                job_try,
                reason,
                {"type": "UnknownTask", "message": reason, "traceback": ""},
                start,
            )
            return
        logger.warning(
            "job %s: this worker has no task %r%s; put back for %gs (a newer worker may know it)",
            job_id,
            name,
            did_you_mean(name, self.specs),
            self.settings.unknown_task_delay,
        )
        due = now_ms() + int(self.settings.unknown_task_delay * 1000)
        self.finisher.add(("Q", job_id, "", "", encode(due, payload_priority(job))))

    async def _fail(
        self,
        job_id: str,
        job: dict[str, Any] | None,
        job_try: int,
        reason: str,
        error: dict[str, str],
        start: int,
        raw: bytes | None = None,
    ) -> None:
        self.jobs_failed += 1
        self.metrics.task(job.get("f", "?") if job else "?").failed.inc()
        record = failure_record(
            job_id=job_id, queue=self.queue, job=job, tries=job_try, reason=reason, error=error, raw=raw
        )
        keep = self.keep_result_s
        result = b""
        if keep > 0:
            result, _ = result_payload(
                job_id=job_id,
                job=job or {},
                queue=self.queue,
                job_try=job_try,
                success=False,
                result=error,
                start_ms=start,
                finish_ms=now_ms(),
                worker=self.worker_id,
                trace_id=self._tries.get(job_id, (0, 0, None))[2],
            )
        attempt = self._last_attempt(job_id, job_try, "failed", error, reason=reason)
        self.finisher.add(("F", job_id, record, result, int(keep * 1000)), attempt)
