"""The commands that only read: stats, queues, jobs, job, workers (the read model, as tables).

Each takes ``--json``. ``stats`` keeps its one-line text; ``job`` keeps its ``key: value`` lines
and adds the tries below them; JSON output only ever gains keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..observe._views import JOB_STATES, JobPage, JobTimeline, QueueOverview, WorkerDetail
from ._common import JsonOpt, QueueOpt, run
from ._output import age, ago, console, emit, print_json, short, table, when

if TYPE_CHECKING:
    from ..producer._client import QueueClient


def stats(queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """Ready / scheduled / in-progress / failed counts and live workers of one queue."""

    async def go(client: QueueClient) -> int:
        s = await client.queue_stats(queue)
        emit(
            s.to_json(),
            as_json,
            f"queue {s.queue}: ready={s.ready} scheduled={s.scheduled} "
            f"in_progress={s.in_progress} failed={s.failed} workers={s.workers}"
            + (f" held={s.held}" if s.held else "")
            + (f" parked={s.parked}" if s.parked else "")
            + (" paused" if s.paused else ""),
        )
        return 0

    run(go)


def queues_table(rows: list[QueueOverview]) -> Table:
    out = table(
        "Queues",
        "queue",
        "ready",
        "scheduled",
        "running",
        "held",
        "failed",
        "oldest ready",
        "workers",
        "paused",
        "done 1h",
        "failed 1h",
        right=("ready", "scheduled", "running", "held", "failed", "workers", "done 1h", "failed 1h"),
    )
    for q in rows:
        out.add_row(
            q.queue,
            str(q.ready),
            str(q.scheduled),
            str(q.running),
            str(q.held),
            str(q.failed),
            age(q.oldest_ready_age),
            str(q.workers),
            "paused" if q.paused else "",
            str(q.complete_last_hour),
            str(q.failed_last_hour),
        )
    return out


def queues(
    queue: Annotated[Optional[list[str]], typer.Option("--queue", help="only these queues (repeat the option)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every queue found (SCAN): ready, scheduled, running, held, failed, oldest ready age, workers."""

    async def go(client: QueueClient) -> int:
        rows = await client.list_queues(queue or None)
        if as_json:
            print_json([q.to_json() for q in rows])
        else:
            console().print(queues_table(rows))
        return 0

    run(go)


def jobs_table(page: JobPage, title: str | None = None) -> Table:
    at_label = {
        "ready": "due",
        "scheduled": "due",
        "running": "lease until",
        "held": "due",
        "failed": "failed at",
        "complete": "finished",
        "cancelled": "cancelled",
    }[page.state]
    out = table(title, "job id", "task", "arguments", "enqueued", at_label, "tries", "worker / error")
    for j in page.jobs:
        args = ", ".join([*(short(a, 30) for a in j.args), *(f"{k}={short(v, 30)}" for k, v in j.kwargs.items())])
        out.add_row(
            j.job_id,
            j.task or "?",
            short(args, 60),
            when(j.enqueued_at),
            when(j.at),
            "" if j.tries is None else str(j.tries),
            short(j.error or j.worker or "", 80),
        )
    return out


def jobs(
    queue: QueueOpt = None,
    state: Annotated[str, typer.Option("--state", help=f"one of: {', '.join(JOB_STATES)}")] = "ready",
    task: Annotated[Optional[str], typer.Option("--task", help="only this task's jobs")] = None,
    limit: Annotated[int, typer.Option("--limit", help="jobs per page (1-1000)")] = 50,
    cursor: Annotated[
        Optional[str], typer.Option("--cursor", help="the next page: the cursor the last page printed")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A page of one queue's jobs in one state, fast at any queue size (--cursor for the next)."""

    async def go(client: QueueClient) -> int:
        page = await client.list_jobs(queue, state, task=task, limit=limit, cursor=cursor)
        if as_json:
            print_json(page.to_json())
            return 0
        out = console()
        title = f"{page.state} jobs on queue {page.queue}" + (f" (task {task})" if task else "")
        if page.jobs:
            out.print(jobs_table(page, title))
        else:
            out.print(f"no {page.state} jobs on queue {page.queue!r}" + (f" for task {task!r}" if task else ""))
        if page.next_cursor is not None:
            more = f"--queue {page.queue} --state {page.state} --limit {limit}" + (f" --task {task}" if task else "")
            out.print(f"next page: scalr-queue jobs {more} --cursor '{page.next_cursor}'", soft_wrap=True)
        return 0

    run(go)


def _info_lines(data: dict[str, Any], timeline: JobTimeline) -> str:
    skip = {"error", "attempts", "events", "trace_id"}
    lines = [f"{k}: {v}" for k, v in data.items() if k not in skip]
    error = timeline.info.error
    if error:
        lines.append(f"error: {error.get('type')}: {error.get('message')}")
    if timeline.trace_id:
        lines.append(f"trace_id: {timeline.trace_id}")
    return "\n".join(lines)


def timeline_renderable(timeline: JobTimeline) -> Group:
    tries = table("Tries", "try", "started", "ended", "took", "outcome", "worker", "error / reason", right=("try",))
    for a in timeline.attempts:
        why = f"{a.error.get('type', '')}: {a.error.get('message', '')}" if a.error else (a.reason or "")
        tries.add_row(
            str(a.try_number),
            when(a.started_at),
            when(a.ended_at),
            age(a.duration),
            a.outcome,
            a.worker or "-",
            short(why, 100),
        )
    events = table("Timeline", "at", "event")
    for at, what in timeline.events():
        events.add_row(when(at), what)
    parts: list[Any] = [events, tries]
    for a in timeline.attempts:
        if a.error and a.error.get("traceback"):
            parts.append(Text(f"traceback of try {a.try_number}:\n{a.error['traceback'].rstrip()}"))
    return Group(*parts)


def job(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    queue: QueueOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything about one job: status, arguments, result or error, progress, and every try."""

    async def go(client: QueueClient) -> int:
        timeline = await client.job_timeline(job_id, queue)
        data = timeline.to_json()
        if as_json:
            print_json(data)
            return 0
        print(_info_lines(data, timeline))
        out = console()
        out.print()
        out.print(timeline_renderable(timeline))
        return 0

    run(go)


def workers_table(rows: list[WorkerDetail]) -> Table:
    out = table(
        "Workers",
        "worker",
        "queue",
        "host",
        "pid",
        "running",
        "jobs",
        "heartbeat",
        "up",
        "done / failed / retried",
        "module",
        "limits",
        right=("pid", "running"),
    )
    for w in rows:
        i = w.info
        limits = " ".join(f"{name}:{_limits_text(lim)}" for name, lim in sorted(i.limits.items()))
        out.add_row(
            i.worker_id,
            i.queue,
            i.host,
            str(i.pid),
            f"{len(w.running_jobs)}/{i.concurrency}",
            short(", ".join(w.running_jobs), 60) or "-",
            ago(_dt(i.seen_ms)) + " ago",
            ago(_dt(i.started_ms)),
            f"{i.complete} / {i.failed} / {i.retried}",
            i.module,
            limits or "-",
        )
    return out


def _limits_text(limits: dict[str, Any]) -> str:
    """``max_concurrent=1,concurrency_key=customer_id``: the limits a worker declared for one task."""
    return ",".join(f"{k}={v}" for k, v in limits.items() if v is not None)


def _dt(ms: int) -> Any:
    from ..producer._job import ms_to_datetime

    return ms_to_datetime(ms) if ms else None


def workers(queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """Live workers: host, pid, concurrency, the jobs they run now, last heartbeat (all queues by default)."""

    async def go(client: QueueClient) -> int:
        rows = await client.worker_details([queue] if queue else None)
        if as_json:
            # the fields this command always printed, plus what the read model adds
            print_json([{**w.info.__dict__, "tasks": sorted(w.info.tasks), **_extra(w)} for w in rows])
        elif not rows:
            where = f"queue {queue!r}" if queue else "any queue"
            print(f"no live workers on {where}")
        else:
            console().print(workers_table(rows))
        return 0

    run(go)


def _extra(w: WorkerDetail) -> dict[str, Any]:
    data = w.to_json()
    return {"running_jobs": data["running_jobs"], "last_heartbeat": data["last_heartbeat"]}
