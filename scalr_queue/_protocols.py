"""The small typed interfaces that parts of the package need of a client, and nothing more.

``Job`` and ``FailedJobs`` read Redis through whatever created them; the Redis client that arq's
cron and task code call ``enqueue_job`` on enqueues through the client that owns it. Each
depends on one of these protocols rather than on ``QueueClient`` and its private members, so
the client can change inside and a test can hand them any object that fits.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ._settings import Settings
    from .producer._job import Job
    from .redis._connection import ScalrRedis

T = TypeVar("T")


class QueueAccess(Protocol):
    """Redis on the running event loop, Redis errors in our words, and results as the task typed them."""

    @property
    def settings(self) -> Settings: ...

    async def redis(self) -> ScalrRedis:
        """The client for the running event loop (created on first use)."""
        ...

    async def run(self, awaitable: Awaitable[T], doing: str) -> T:
        """Await a Redis call; connection-level failures become QueueUnavailableError naming ``doing``."""
        ...

    def convert_result(self, task: str | None, value: Any) -> Any:
        """A stored JSON result as the task's return annotation describes it, when the task is known here."""
        ...


class Enqueuer(Protocol):
    """What ``ctx["redis"].enqueue_job(...)`` needs: the settings and the untyped enqueue."""

    @property
    def settings(self) -> Settings: ...

    async def enqueue_call(self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Job[Any]:
        """Enqueue ``task`` (a name or a task function); ``_``-prefixed kwargs are the job options."""
        ...
