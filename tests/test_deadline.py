"""The Deadline block behaves as asyncio.timeout does: a timeout is a timeout, a cancel a cancel."""

from __future__ import annotations

import asyncio
import time

import pytest

from scalr_queue._deadline import Deadline
from tests.support import run_in_new_loop


async def guarded(delay: float | None, runs_s: float) -> str:
    try:
        with Deadline(delay):
            await asyncio.sleep(runs_s)
    except TimeoutError:
        return "timed out"
    return "done"


@pytest.mark.timeout(10)
def test_a_block_still_running_at_its_deadline_raises_timeout_error_and_leaves_the_task_uncancelled() -> None:
    async def main() -> tuple[str, int]:
        outcome = await guarded(0.02, 5.0)
        task = asyncio.current_task()
        assert task is not None
        return outcome, task.cancelling()

    assert run_in_new_loop(main()) == ("timed out", 0)


@pytest.mark.timeout(10)
def test_a_block_that_ends_in_time_leaves_no_timer_behind() -> None:
    async def main() -> tuple[str, str]:
        deadline = Deadline(0.05)
        with deadline:
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # past the deadline: nothing fires into this task any more
        again = await guarded(0.05, 0.0)
        return "done", again

    assert run_in_new_loop(main()) == ("done", "done")


@pytest.mark.timeout(10)
def test_none_sets_no_deadline() -> None:
    assert run_in_new_loop(guarded(None, 0.05)) == "done"


@pytest.mark.timeout(10)
def test_a_cancel_from_elsewhere_is_a_cancel_even_when_the_deadline_passes_too() -> None:
    async def main() -> str:
        task = asyncio.get_running_loop().create_task(guarded(0.01, 5.0))
        await asyncio.sleep(0)  # the block starts and waits
        task.cancel()  # a shutdown, say...
        time.sleep(0.03)  # ...and the deadline passes before the task runs again
        try:
            return await task
        except asyncio.CancelledError:
            return "cancelled"

    assert run_in_new_loop(main()) == "cancelled"


@pytest.mark.timeout(10)
def test_errors_inside_the_block_pass_through() -> None:
    async def main() -> None:
        with Deadline(1.0):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_in_new_loop(main())


def test_outside_a_running_loop_it_raises_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"), Deadline(1.0):
        pass
