"""What every command shares: the options ``--queue`` and ``--json``, and running against a client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ..producer._client import QueueClient

PROG = "scalr-queue"

QueueOpt = Annotated[
    str | None, typer.Option("--queue", help="queue name (default: SCALR_QUEUE_QUEUE_NAME or 'default')")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output (pretty JSON, sorted keys)")]


async def _with_client(fn: Callable[[QueueClient], Awaitable[int]]) -> int:
    from ..producer._client import QueueClient

    client = QueueClient()
    try:
        return await fn(client)
    finally:
        await client.close()


def run(fn: Callable[[QueueClient], Awaitable[int]]) -> None:
    """Run ``fn`` with a fresh client on a fresh event loop; a non-zero answer is the exit code."""
    code = asyncio.run(_with_client(fn))
    if code:
        raise typer.Exit(code)
