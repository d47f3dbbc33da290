"""Job deadlines: each attempt is cancelled at its own deadline, whatever ends before it."""

from __future__ import annotations

import asyncio
import time

import pytest

from scalr_queue.worker._deadlines import Deadlines
from tests.support import run_in_new_loop


async def attempt(deadlines: Deadlines, job_id: str, timeout_s: float, runs_s: float, log: list[str]) -> None:
    timed_out = False
    deadlines.start(job_id, timeout_s)
    try:
        try:
            await asyncio.sleep(runs_s)
        finally:
            timed_out = deadlines.end(job_id, timeout_s)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        assert task is not None
        log.append(f"{job_id} timed out" if timed_out and task.cancelling() == 0 else f"{job_id} cancelled")
        return
    log.append(f"{job_id} {'late' if timed_out else 'done'}")


@pytest.mark.timeout(10)
def test_each_attempt_ends_at_its_own_deadline_with_one_timer_per_timeout() -> None:
    async def main() -> list[str]:
        deadlines, log = Deadlines(), list[str]()
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(attempt(deadlines, "a", 0.05, 0.01, log)),  # ends before its deadline
            loop.create_task(attempt(deadlines, "b", 0.05, 1.0, log)),  # expires at 0.05
            loop.create_task(attempt(deadlines, "c", 0.2, 1.0, log)),  # another timeout: expires at 0.2
        ]
        await asyncio.sleep(0.02)
        tasks.append(loop.create_task(attempt(deadlines, "d", 0.05, 1.0, log)))  # expires at 0.07
        await asyncio.gather(*tasks)
        return log

    assert run_in_new_loop(main()) == ["a done", "b timed out", "d timed out", "c timed out"]


@pytest.mark.timeout(10)
def test_another_cancel_during_an_expired_attempt_is_not_a_timeout() -> None:
    async def main() -> list[str]:
        deadlines, log = Deadlines(), list[str]()
        task = asyncio.get_running_loop().create_task(attempt(deadlines, "x", 0.01, 1.0, log))
        await asyncio.sleep(0)  # the attempt starts and waits
        task.cancel()  # a cancel request (or a shutdown)...
        time.sleep(0.03)  # ...and the deadline passes before the attempt runs again
        await asyncio.gather(task, return_exceptions=True)
        return log

    assert run_in_new_loop(main()) == ["x cancelled"]


@pytest.mark.timeout(10)
def test_an_attempt_that_ends_before_its_deadline_is_never_cancelled() -> None:
    async def main() -> list[str]:
        deadlines, log = Deadlines(), list[str]()
        for i in range(50):
            await attempt(deadlines, f"j{i}", 0.05, 0, log)
        await asyncio.sleep(0.1)  # the timer set for the first fires with nothing left to cancel
        await attempt(deadlines, "last", 0.05, 0.01, log)
        return log

    log = run_in_new_loop(main())
    assert log == [f"j{i} done" for i in range(50)] + ["last done"]
