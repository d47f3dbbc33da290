"""``scalr-queue snapshot``: queues, workers, running and recently failed jobs on one screen.

With ``--watch`` it refreshes in place (Rich Live) until Ctrl-C, which ends it with exit 0;
``--count N`` stops after N screens (for scripts and tests). Off a terminal each screen is
printed after the previous one instead of redrawn.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from ._common import JsonOpt, QueueOpt, run
from ._output import console, print_json
from ._read import jobs_table, queues_table, workers_table

if TYPE_CHECKING:
    from ..producer._client import QueueClient

ROWS = 10  # running and failed jobs shown per queue


async def gather(client: QueueClient, queue: str | None) -> dict[str, Any]:
    """Everything one screen shows, read once."""
    names = [queue] if queue else None
    overview = await client.list_queues(names)
    workers = await client.worker_details([q.queue for q in overview])
    running, failed = [], []
    for q in overview:
        if q.running:
            running.append(await client.list_jobs(q.queue, "running", limit=ROWS))
        if q.failed:
            failed.append(await client.list_jobs(q.queue, "failed", limit=ROWS))
    return {"at": datetime.now(UTC), "queues": overview, "workers": workers, "running": running, "failed": failed}


def render(shot: dict[str, Any]) -> Group:
    parts: list[Any] = [
        Text(f"scalr-queue snapshot at {shot['at']:%Y-%m-%d %H:%M:%S} UTC", style="bold"),
        queues_table(shot["queues"]),
    ]
    parts.append(workers_table(shot["workers"]) if shot["workers"] else Text("no live workers"))
    for page in shot["running"]:
        parts.append(jobs_table(page, f"running on {page.queue}"))
    for page in shot["failed"]:
        parts.append(jobs_table(page, f"recently failed on {page.queue}"))
    return Group(*parts)


def as_json(shot: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": shot["at"].isoformat(),
        "queues": [q.to_json() for q in shot["queues"]],
        "workers": [w.to_json() for w in shot["workers"]],
        "running": [j.to_json() for page in shot["running"] for j in page.jobs],
        "failed": [j.to_json() for page in shot["failed"] for j in page.jobs],
    }


def snapshot(
    queue: QueueOpt = None,
    watch: Annotated[
        float | None, typer.Option("--watch", help="refresh every SECONDS (default 2) until Ctrl-C", show_default=False)
    ] = None,
    count: Annotated[int | None, typer.Option("--count", help="with --watch: stop after this many screens")] = None,
    json_out: JsonOpt = False,
) -> None:
    """One screen with queues, workers, running and failed jobs; --watch [SECONDS] keeps it live."""
    if watch is not None and watch <= 0:
        from .._errors import ConfigurationError

        raise ConfigurationError(f"--watch {watch:g} is not valid: give a refresh interval in seconds above 0")
    if count is not None and count < 1:
        from .._errors import ConfigurationError

        raise ConfigurationError(f"--count {count} is not valid: give 1 or more")

    async def go(client: QueueClient) -> int:
        out = console()
        screens = 1 if watch is None else count
        shown = 0
        live: Live | None = None
        try:
            while screens is None or shown < screens:
                if shown:
                    await asyncio.sleep(watch or 0)
                shot = await gather(client, queue)
                shown += 1
                if json_out:
                    print_json(as_json(shot))
                elif watch is not None and out.is_terminal:
                    if live is None:
                        live = Live(render(shot), console=out, auto_refresh=False)
                        live.start()
                    else:
                        live.update(render(shot), refresh=True)
                else:
                    if shown > 1:
                        out.print()
                    out.print(render(shot))
        finally:
            if live is not None:
                live.stop()
        return 0

    try:
        run(go)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a watch ends
