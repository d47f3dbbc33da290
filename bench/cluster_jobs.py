"""The job body of ``make bench-cluster``: an empty task, so only the queue's own cost is measured."""

from __future__ import annotations

from typing import Any


async def empty(ctx: dict[str, Any]) -> None:
    return None


tasks = [empty]
