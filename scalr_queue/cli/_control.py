"""The commands that change something: enqueue, cancel, the failed set, pause, hold, and the worker.

Their text and ``--json`` output are what scripts have parsed since before the CLI moved to
Typer: keep them byte for byte. Bulk actions on the failed set need ``--all``, name what they
touched, and show their progress on stderr.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .._codec import loads
from .._errors import ConfigurationError, JobNotFoundError
from ._common import PROG, JsonOpt, QueueOpt, run
from ._output import emit, print_json, progress_bar

if TYPE_CHECKING:
    from ..producer._client import QueueClient

EXIT_ALREADY_FINISHED = 3  # `cancel` of a job that had already finished: nothing changed
SHOWN_IDS = 20  # job ids a bulk command names in text output; --json names more (all for retry --all)
BULK_BATCH = 1000  # failed jobs per round trip of `failed retry --all` / `failed purge --all`


def worker(ctx: typer.Context) -> None:
    """Run a worker (same as python -m scalr_queue.worker; `scalr-queue worker --help` for its flags)."""
    from ..worker._main import build_parser
    from ..worker._main import run as run_worker

    args = build_parser(prog=f"{PROG} worker").parse_args(ctx.args)
    code = run_worker(args, prog=f"{PROG} worker")
    if code:
        raise typer.Exit(code)


def _parse_kv(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"argument {pair!r} is not key=value (values are JSON, or plain text)")
        try:
            out[key] = loads(raw)
        except ValueError:
            out[key] = raw
    return out


def enqueue(
    task: Annotated[str, typer.Argument(help="task name")],
    kwargs: Annotated[Optional[list[str]], typer.Argument(help="key=value (value parsed as JSON, else text)")] = None,
    job_id: Annotated[Optional[str], typer.Option("--job-id", help="the job's id (one job per id)")] = None,
    defer: Annotated[Optional[float], typer.Option("--defer", help="seconds before it may run")] = None,
    debounce: Annotated[
        Optional[float],
        typer.Option("--debounce", help="with --job-id: one run, this many seconds after the last enqueue"),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="with --job-id: replace the waiting job's arguments")
    ] = False,
    priority: Annotated[
        Optional[int], typer.Option("--priority", help="0-9, default 5: among due jobs, a higher priority starts first")
    ] = None,
    queue: QueueOpt = None,
) -> None:
    """Enqueue a job: scalr-queue enqueue TASK key=value ..."""
    values = _parse_kv(kwargs or [])

    async def go(client: QueueClient) -> int:
        options: dict[str, Any] = {}
        if queue:
            options["_queue_name"] = queue
        if job_id:
            options["_job_id"] = job_id
        if defer:
            options["_defer_by"] = defer
        if debounce:
            options["_debounce"] = debounce
        if replace:
            options["_replace"] = True
        if priority is not None:
            options["_priority"] = priority
        job = await client.enqueue(task, **values, **options)
        if job.created:
            print(job.job_id)
        elif replace or debounce:
            print(f"{job.job_id} (replaced the waiting job, or queued to run after the running one)")
        else:
            print(f"{job.job_id} (already exists; not enqueued twice)")
        return 0

    run(go)


def cancel(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    reason: Annotated[Optional[str], typer.Option("--reason", help="kept with the cancelled job")] = None,
    queue: QueueOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a job: queued or scheduled ones never run, a running one is stopped (exit 3: finished)."""

    async def go(client: QueueClient) -> int:
        from ..control._cancel import CancelOutcome

        job = client.job(job_id, queue)
        outcome = await job.cancel(reason)
        data: dict[str, Any] = {"job_id": job.job_id, "queue": job.queue, "outcome": outcome.value}
        if outcome is CancelOutcome.FINISHED:
            data["status"] = (await job.status()).value
            emit(data, as_json, f"job {job.job_id} had already finished ({data['status']}): nothing changed")
            return EXIT_ALREADY_FINISHED
        text = {
            CancelOutcome.CANCELLED: f"cancelled {job.job_id}: it had not started and will not run",
            CancelOutcome.CANCELLING: f"cancelling {job.job_id}: the worker running it was told and stops it now",
        }[outcome]
        emit(data, as_json, text)
        return 0

    run(go)


class FailedAction(enum.StrEnum):
    LIST = "list"
    SHOW = "show"
    RETRY = "retry"
    PURGE = "purge"


def _check_failed_args(action: FailedAction, job_id: str | None, every: bool) -> None:
    """Refuse a bad combination before connecting: a bulk action is only ever asked for by name."""
    if action not in (FailedAction.RETRY, FailedAction.PURGE):
        return
    if every and job_id:
        raise ConfigurationError(f"failed {action} takes a JOB_ID or --all, not both")
    if not every and not job_id:
        what = "re-drive" if action is FailedAction.RETRY else "remove"
        raise ConfigurationError(f"failed {action} needs a JOB_ID, or --all to {what} every failed job of the queue")


def failed(
    action: Annotated[FailedAction, typer.Argument(help="list | show ID | retry ID|--all | purge ID|--all")],
    job_id: Annotated[Optional[str], typer.Argument(help="the failed job's id")] = None,
    every: Annotated[bool, typer.Option("--all", help="with retry or purge: every failed job of the queue")] = False,
    limit: Annotated[int, typer.Option("--limit", help="list: how many, newest first")] = 100,
    queue: QueueOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Failed jobs: list | show ID | retry ID|--all | purge ID|--all."""
    _check_failed_args(action, job_id, every)

    async def go(client: QueueClient) -> int:
        jobs = client.failed
        if action is FailedAction.LIST:
            rows = await jobs.list(queue, limit=limit)
            if as_json:
                print_json([j.to_json() for j in rows])
            elif not rows:
                print(f"no failed jobs on queue {queue or client.settings.queue_name!r}")
            for j in rows if not as_json else []:
                at = j.failed_at.strftime("%Y-%m-%d %H:%M:%S") if j.failed_at else "?"
                print(f"{j.job_id}  {at}  {j.task}  tries={j.tries}  {j.error_type}: {j.error_message[:80]}")
            return 0
        if action is FailedAction.SHOW:
            if not job_id:
                raise ConfigurationError("failed show needs a JOB_ID")
            job = await jobs.get(job_id, queue)
            data = job.to_json()
            emit(
                data,
                as_json,
                "\n".join(f"{k}: {v}" for k, v in data.items() if k != "traceback") + f"\ntraceback:\n{job.traceback}",
            )
            return 0
        if action is FailedAction.RETRY:
            return await _retry(client, job_id, every, queue, as_json)
        return await _purge(client, job_id, every, queue, as_json)

    run(go)


async def _retry(client: QueueClient, job_id: str | None, every: bool, queue: str | None, as_json: bool) -> int:
    if every:
        with progress_bar("retrying failed jobs") as bar:
            report = await client.failed.retry_all(queue, batch_size=BULK_BATCH, progress=bar)
        lines = [f"retried {len(report.retried)} failed job(s)"]
        if report.not_retried:
            lines.append(f"not retried {len(report.not_retried)} (still in the failed set):")
            shown = list(report.not_retried.items())[:SHOWN_IDS]
            lines += [f"  {i}: {why}" for i, why in shown]
            if len(report.not_retried) > len(shown):
                lines.append(f"  ... and {len(report.not_retried) - len(shown)} more (scalr-queue failed list)")
        emit({"retried": report.retried, "not_retried": report.not_retried}, as_json, "\n".join(lines))
        return 0
    assert job_id is not None
    job = await client.failed.retry(job_id, queue)
    emit({"retried": job.job_id}, as_json, f"retried {job.job_id}: queued again with a fresh try count")
    return 0


async def _purge(client: QueueClient, job_id: str | None, every: bool, queue: str | None, as_json: bool) -> int:
    if every:
        with progress_bar("purging failed jobs") as bar:
            report = await client.failed.purge_all(queue, batch_size=BULK_BATCH, progress=bar)
        count, ids = report.count, report.job_ids
    else:
        assert job_id is not None
        if not await client.failed.purge(job_id, queue):
            name = queue or client.settings.queue_name
            raise JobNotFoundError(f"job {job_id!r} is not in the failed set of queue {name!r}")
        count, ids = 1, [job_id]
    shown = ids[:SHOWN_IDS]
    lines = [f"purged {count} failed job(s)" + (":" if count else ""), *(f"  {i}" for i in shown)]
    if count > len(shown):
        lines.append(f"  ... and {count - len(shown)} more")
    emit({"purged": count, "job_ids": ids}, as_json, "\n".join(lines))
    return 0


def _pause_or_resume(pausing: bool, queue: str | None, as_json: bool) -> None:
    async def go(client: QueueClient) -> int:
        name = queue or client.settings.queue_name
        changed = await (client.pause(name) if pausing else client.resume(name))
        if pausing:
            text = f"queue {name!r} paused" if changed else f"queue {name!r} was paused already"
            text += ": workers claim nothing until `scalr-queue resume`; running jobs finish, enqueues are kept"
        else:
            text = f"queue {name!r} resumed" if changed else f"queue {name!r} was not paused"
        emit({"queue": name, "paused": pausing, "changed": changed}, as_json, text)
        return 0

    run(go)


def pause(queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """Workers stop claiming from the queue; running jobs finish, enqueues are kept."""
    _pause_or_resume(True, queue, as_json)


def resume(queue: QueueOpt = None, as_json: JsonOpt = False) -> None:
    """Workers claim from a paused queue again."""
    _pause_or_resume(False, queue, as_json)


WHERE_HELP = "only jobs whose keyword argument compares true: 'customer_id == 42' (== != < <= > >=)"


def hold(
    task: Annotated[str, typer.Argument(help="task name")],
    where: Annotated[Optional[str], typer.Option("--where", help=WHERE_HELP)] = None,
    queue: QueueOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep a task's jobs queued and unrun (counted as held) until release."""
    from ..control._holds import check_task, parse_where

    check_task(task)  # a bad name or --where stops here, before any connection
    if where is not None:
        parse_where(where)

    async def go(client: QueueClient) -> int:
        name = queue or client.settings.queue_name
        what = task if where is None else f"{task} where {where}"
        changed = await client.hold(task, where, queue)
        text = f"holding {what!r} on queue {name!r}" if changed else f"{what!r} was held already on {name!r}"
        text += ": matching jobs stay queued, unrun, until `scalr-queue release`"
        emit({"queue": name, "task": task, "where": where, "changed": changed}, as_json, text)
        return 0

    run(go)


def release(
    task: Annotated[str, typer.Argument(help="task name")],
    where: Annotated[
        Optional[str], typer.Option("--where", help="release only the hold with this clause (default: every hold)")
    ] = None,
    drop: Annotated[bool, typer.Option("--drop", help="delete the released jobs instead of running them")] = False,
    queue: QueueOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a hold: its held jobs run (or, with --drop, are deleted and listed)."""
    from ..control._holds import check_task, parse_where

    check_task(task)
    if where is not None:
        parse_where(where)

    async def go(client: QueueClient) -> int:
        name = queue or client.settings.queue_name
        what = task if where is None else f"{task} where {where}"
        out = await client.release(task, where, queue, drop=drop)
        if not out.holds_removed:
            holds = await client.holds(queue)
            text = f"no hold {what!r} on queue {name!r} (holds: {', '.join(holds) or 'none'})"
        elif drop:
            text = f"released {what!r}: dropped {len(out.dropped)} job(s)" + "".join(f"\n  {i}" for i in out.dropped)
        else:
            text = f"released {what!r}: {out.released} job(s) back on queue {name!r}"
        if out.still_held:
            text += f"\n{out.still_held} job(s) still held by other holds"
        emit({"queue": name, "task": task, "where": where, **out.to_json()}, as_json, text)
        return 0

    run(go)


def dashboard(
    port: Annotated[int, typer.Option("--port", help="port to serve on")] = 8100,
    host: Annotated[str, typer.Option("--host", help="address to bind (loopback unless credentials are set)")] = (
        "127.0.0.1"
    ),
    read_only: Annotated[
        bool, typer.Option("--read-only", help="hide every action (or SCALR_QUEUE_DASHBOARD_READ_ONLY=1)")
    ] = False,
) -> None:
    """Serve the web dashboard (loopback only unless credentials are set; docs/dashboard.md)."""
    try:
        from ..dashboard._serve import serve
    except ImportError as exc:
        need = f"the dashboard needs the web extra ({exc.name} is missing): pip install 'scalr-queue[web]'"
        raise ConfigurationError(need) from None
    serve(port, host, read_only)


def check_names(
    src_dir: Annotated[str, typer.Argument(help="the web code's source folder")],
    worker_module: Annotated[str, typer.Argument(help="the worker module, e.g. src.worker")],
) -> None:
    """Exit 1 if an enqueue("name") in SRC_DIR is not in the worker's tasks."""
    from ..producer._names import find_enqueued_names, find_unknown_task_names

    problems = find_unknown_task_names(src_dir, worker_module)
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} enqueue call(s) name tasks that {worker_module} does not define")
        raise typer.Exit(1)
    print(f"ok: all {len(find_enqueued_names(src_dir))} enqueue call(s) in {src_dir} name tasks of {worker_module}")
