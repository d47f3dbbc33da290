"""``asyncio.timeout`` as a plain ``with`` block: the same deadline, without its coroutine calls.

Every enqueue pipeline, and every claim and finish batch of a worker, runs under a deadline. Python 3.11's
``asyncio.timeout`` is pure Python entered and left through two coroutines (``__aenter__``,
``__aexit__``); after an idle spell, when code runs many times slower than warm, entering one is
one of the largest single costs on a lone enqueue's way to the socket (``bench.pickup`` measures
the idle penalty). What it does fits in a few C calls: note the task and how many cancels it
already carries, arm one timer that cancels the task, and on the way out take that cancel back
and turn the ``CancelledError`` it caused into ``TimeoutError``.

The semantics are ``asyncio.timeout``'s: a cancel from anywhere else still comes through as
``CancelledError``, even when the deadline passed at the same time, because the task then
carries more cancels than the deadline's one.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadline:
    """``with Deadline(seconds):`` inside a task: ``TimeoutError`` if the block is still running then.

    ``None`` sets no deadline. One object per block; it may be entered again once left.
    """

    __slots__ = ("_cancelling", "_delay", "_expired", "_handle", "_task")

    def __init__(self, delay: float | None) -> None:
        self._delay = delay
        self._expired = False
        self._handle: asyncio.TimerHandle | None = None

    def __enter__(self) -> Deadline:
        if self._delay is None:
            return self
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._expired = False
        self._handle = loop.call_at(loop.time() + self._delay, self._expire)
        return self

    def _expire(self) -> None:
        self._handle = None
        self._expired = True
        self._task.cancel()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        elif self._expired:
            self._expired = False
            # the deadline's cancel is taken back; only when no other cancel is pending is it a timeout
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc
