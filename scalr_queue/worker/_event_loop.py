"""The worker's event loop: uvloop when it is installed (``SCALR_QUEUE_EVENT_LOOP=auto``), else asyncio's.

uvloop runs the same asyncio code on libuv. A worker spends much of each job in the loop itself:
polling sockets, waking tasks, writing small commands. Measured in ``bench.hotpath`` on this
project's 2-core machine, uvloop cut the worker's CPU per no-op job by about a fifth, and Redis's
by a tenth (its commands arrive in fuller batches). It is a dependency wherever it builds (not
on Windows). ``asyncio`` is there for a task library that only works on the standard loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._errors import ConfigurationError

T = TypeVar("T")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``SCALR_QUEUE_EVENT_LOOP``'s choice; None: asyncio's own loop."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigurationError(
                "SCALR_QUEUE_EVENT_LOOP=uvloop but uvloop is not installed: "
                "pip install uvloop, or set SCALR_QUEUE_EVENT_LOOP=auto (or asyncio)"
            ) from None
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], factory: Callable[[], asyncio.AbstractEventLoop] | None) -> T:
    """``asyncio.run`` on the loop ``factory`` makes (from ``loop_factory``; None: asyncio's)."""
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def loop_name() -> str:
    """What the running loop is, for the worker's banner: ``uvloop`` or ``asyncio``."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
