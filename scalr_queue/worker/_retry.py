"""When a failed attempt runs again: exponential backoff with jitter, and what never retries.

Vanilla arq retries only on ``arq.Retry`` and cancellation; a plain exception or a timeout
fails the job on the spot. The platform page promises retries, so every exception retries
here, except ``Fail`` and the task's ``no_retry`` types.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from arq.worker import Retry

from .._errors import Fail
from .._settings import Settings
from .._tasks import TaskSpec


def backoff_delay(job_try: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``job_try + 1``: delay * 2**(try-1), capped, then jittered.

    With the defaults (1 s, 60 s cap, 10% jitter) the waits are about 1, 2, 4 and 8 s.
    """
    base = min(settings.retry_max_delay, settings.retry_delay * (2 ** max(0, job_try - 1)))
    jitter = settings.retry_jitter
    if jitter:
        base *= 1 + (rng or random).uniform(-jitter, jitter)
    return max(0.0, float(base))


@dataclass(frozen=True)
class Decision:
    """What to do after an attempt raised."""

    retry: bool
    delay: float
    reason: str


def decide(
    exc: BaseException, spec: TaskSpec, job_try: int, settings: Settings, *, timed_out: bool, max_tries: int
) -> Decision:
    """``max_tries`` is the worker's default (settings or a WorkerSettings class); the task's own wins."""
    max_tries = spec.max_tries if spec.max_tries is not None else max_tries
    if isinstance(exc, Fail):
        return Decision(False, 0.0, "Fail raised: not retried")
    if spec.no_retry and isinstance(exc, spec.no_retry):
        return Decision(False, 0.0, f"{type(exc).__name__} is in the task's no_retry list")
    what = "timed out" if timed_out else "raised"
    if job_try >= max_tries:
        return Decision(False, 0.0, f"{what} on its last attempt ({job_try} of {max_tries})")
    if isinstance(exc, Retry):
        delay = (exc.defer_score or 0) / 1000
        return Decision(True, delay, "Retry requested")
    return Decision(True, backoff_delay(job_try, settings), f"{what}; attempt {job_try} of {max_tries}")
