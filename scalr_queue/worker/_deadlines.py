"""Job timeouts: one timer per distinct timeout instead of one per attempt.

``asyncio.timeout`` schedules and cancels a timer handle for every attempt, the largest single
cost of a no-op job after its Redis calls. Attempts with the same timeout that start in order
also expire in that order, so each distinct timeout keeps its running attempts in an
insertion-ordered dict and one timer, set for the oldest: when it fires it cancels the attempts
past their deadline and sets itself for the next one. An attempt that ends just leaves its dict.

What an expired attempt sees is what ``asyncio.timeout`` gives it (Python 3.11): its task is
cancelled at the deadline, and once it ends the cancel is taken back (``uncancel``); a
``CancelledError`` that came from the deadline alone is then the timeout.
"""

from __future__ import annotations

import asyncio


class _Lane:
    """The running attempts of one timeout value, oldest first, and the timer for the oldest."""

    __slots__ = ("running", "timer")

    def __init__(self) -> None:
        self.running: dict[str, tuple[float, asyncio.Task[object]]] = {}
        self.timer: asyncio.TimerHandle | None = None


class Deadlines:
    """Cancels running attempts at their deadline: ``start`` when one starts, ``end`` when it ends."""

    def __init__(self) -> None:
        self._lanes: dict[float, _Lane] = {}
        self._expired: dict[str, asyncio.Task[object]] = {}

    def start(self, job_id: str, timeout_s: float) -> None:
        """The current task runs ``job_id`` for at most ``timeout_s`` seconds from now."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None, "an attempt runs in a task"
        lane = self._lanes.get(timeout_s)
        if lane is None:
            lane = self._lanes[timeout_s] = _Lane()
        deadline = loop.time() + timeout_s
        lane.running[job_id] = (deadline, task)
        if lane.timer is None:
            lane.timer = loop.call_at(deadline, self._expire, lane)

    def end(self, job_id: str, timeout_s: float) -> bool:
        """The attempt ended: True when its deadline passed (its task's cancel is taken back)."""
        lane = self._lanes[timeout_s]
        lane.running.pop(job_id, None)
        task = self._expired.pop(job_id, None)
        if task is None:
            return False
        task.uncancel()
        return True

    def _expire(self, lane: _Lane) -> None:
        lane.timer = None
        running = lane.running
        loop = asyncio.get_running_loop()
        now = loop.time()
        while running:
            job_id = next(iter(running))
            deadline, task = running[job_id]
            if deadline > now:
                lane.timer = loop.call_at(deadline, self._expire, lane)
                return
            del running[job_id]
            if not task.done():
                self._expired[job_id] = task
                task.cancel()
