"""``scalr-queue``: run workers and look after queues from a shell.

Commands: ``worker``, ``stats``, ``workers``, ``job``, ``enqueue``, ``cancel``,
``failed list|show|retry|purge``, ``pause``, ``resume``, ``hold``, ``release``, ``check-names``, ``dashboard``.
Bulk actions on the failed set need ``--all`` and name what they touched.
Every command takes ``--queue``; the read commands take ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._codec import loads, pretty
from ._errors import ConfigurationError, JobNotFoundError, ScalrQueueError, exit_code

PROG = "scalr-queue"
EXIT_ALREADY_FINISHED = 3  # `cancel` of a job that had already finished: nothing changed
SHOWN_IDS = 20  # job ids a bulk command names in text output; --json names more (all for retry --all)


def _print(data: Any, as_json: bool, text: str) -> None:
    print(pretty(data) if as_json else text)


async def _with_client(fn: Callable[[Any], Awaitable[int]]) -> int:
    from .producer._client import QueueClient

    client = QueueClient()
    try:
        return await fn(client)
    finally:
        await client.close()


def cmd_stats(args: argparse.Namespace) -> int:
    async def go(client: Any) -> int:
        stats = await client.queue_stats(args.queue)
        _print(
            stats.to_json(),
            args.json,
            f"queue {stats.queue}: ready={stats.ready} scheduled={stats.scheduled} "
            f"in_progress={stats.in_progress} failed={stats.failed} workers={stats.workers}"
            + (f" held={stats.held}" if stats.held else "")
            + (" paused" if stats.paused else ""),
        )
        return 0

    return asyncio.run(_with_client(go))


def cmd_workers(args: argparse.Namespace) -> int:
    async def go(client: Any) -> int:
        workers = await client.workers(args.queue)
        if args.json:
            print(pretty([{**w.__dict__, "tasks": sorted(w.tasks)} for w in workers]))
        elif not workers:
            print(f"no live workers on queue {args.queue or client.settings.queue_name!r}")
        for w in workers if not args.json else []:
            print(
                f"{w.worker_id} module={w.module} running={w.running}/{w.concurrency} complete={w.complete} "
                f"failed={w.failed} retried={w.retried} tasks={','.join(sorted(w.tasks))}"
            )
        return 0

    return asyncio.run(_with_client(go))


def cmd_job(args: argparse.Namespace) -> int:
    async def go(client: Any) -> int:
        info = await client.job(args.job_id, args.queue).info()
        data = info.to_json()
        _print(
            data,
            args.json,
            "\n".join(f"{k}: {v}" for k, v in data.items() if k != "error")
            + (f"\nerror: {info.error.get('type')}: {info.error.get('message')}" if info.error else ""),
        )
        return 0

    return asyncio.run(_with_client(go))


def cmd_cancel(args: argparse.Namespace) -> int:
    async def go(client: Any) -> int:
        from .control._cancel import CancelOutcome

        job = client.job(args.job_id, args.queue)
        outcome = await job.cancel(args.reason)
        data: dict[str, Any] = {"job_id": job.job_id, "queue": job.queue, "outcome": outcome.value}
        if outcome is CancelOutcome.FINISHED:
            data["status"] = (await job.status()).value
            _print(data, args.json, f"job {job.job_id} had already finished ({data['status']}): nothing changed")
            return EXIT_ALREADY_FINISHED
        text = {
            CancelOutcome.CANCELLED: f"cancelled {job.job_id}: it had not started and will not run",
            CancelOutcome.CANCELLING: f"cancelling {job.job_id}: the worker running it was told and stops it now",
        }[outcome]
        _print(data, args.json, text)
        return 0

    return asyncio.run(_with_client(go))


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


def cmd_enqueue(args: argparse.Namespace) -> int:
    kwargs = _parse_kv(args.kwargs)

    async def go(client: Any) -> int:
        options: dict[str, Any] = {}
        if args.queue:
            options["_queue_name"] = args.queue
        if args.job_id:
            options["_job_id"] = args.job_id
        if args.defer:
            options["_defer_by"] = args.defer
        if args.debounce:
            options["_debounce"] = args.debounce
        if args.replace:
            options["_replace"] = True
        job = await client.enqueue(args.task, **kwargs, **options)
        if job.created:
            print(job.job_id)
        elif args.replace or args.debounce:
            print(f"{job.job_id} (replaced the waiting job, or queued to run after the running one)")
        else:
            print(f"{job.job_id} (already exists; not enqueued twice)")
        return 0

    return asyncio.run(_with_client(go))


def cmd_hold(args: argparse.Namespace) -> int:
    from .control._holds import check_task, parse_where

    check_task(args.task)  # a bad name or --where stops here, before any connection
    if args.where is not None:
        parse_where(args.where)

    async def go(client: Any) -> int:
        queue = args.queue or client.settings.queue_name
        name = args.task if args.where is None else f"{args.task} where {args.where}"
        if args.command == "hold":
            changed = await client.hold(args.task, args.where, args.queue)
            text = f"holding {name!r} on queue {queue!r}" if changed else f"{name!r} was held already on {queue!r}"
            text += ": matching jobs stay queued, unrun, until `scalr-queue release`"
            _print({"queue": queue, "task": args.task, "where": args.where, "changed": changed}, args.json, text)
            return 0
        out = await client.release(args.task, args.where, args.queue, drop=args.drop)
        if not out.holds_removed:
            holds = await client.holds(args.queue)
            text = f"no hold {name!r} on queue {queue!r} (holds: {', '.join(holds) or 'none'})"
        elif args.drop:
            text = f"released {name!r}: dropped {len(out.dropped)} job(s)" + "".join(f"\n  {i}" for i in out.dropped)
        else:
            text = f"released {name!r}: {out.released} job(s) back on queue {queue!r}"
        if out.still_held:
            text += f"\n{out.still_held} job(s) still held by other holds"
        _print({"queue": queue, "task": args.task, "where": args.where, **out.to_json()}, args.json, text)
        return 0

    return asyncio.run(_with_client(go))


def cmd_pause(args: argparse.Namespace) -> int:
    pausing = args.command == "pause"

    async def go(client: Any) -> int:
        queue = args.queue or client.settings.queue_name
        changed = await (client.pause(queue) if pausing else client.resume(queue))
        if pausing:
            text = f"queue {queue!r} paused" if changed else f"queue {queue!r} was paused already"
            text += ": workers claim nothing until `scalr-queue resume`; running jobs finish, enqueues are kept"
        else:
            text = f"queue {queue!r} resumed" if changed else f"queue {queue!r} was not paused"
        _print({"queue": queue, "paused": pausing, "changed": changed}, args.json, text)
        return 0

    return asyncio.run(_with_client(go))


def _check_failed_args(args: argparse.Namespace) -> None:
    """Refuse a bad combination before connecting: a bulk action is only ever asked for by name."""
    if args.action not in ("retry", "purge"):
        return
    if args.all and args.job_id:
        raise ConfigurationError(f"failed {args.action} takes a JOB_ID or --all, not both")
    if not args.all and not args.job_id:
        what = "re-drive" if args.action == "retry" else "remove"
        raise ConfigurationError(
            f"failed {args.action} needs a JOB_ID, or --all to {what} every failed job of the queue"
        )


def cmd_failed(args: argparse.Namespace) -> int:
    _check_failed_args(args)

    async def go(client: Any) -> int:
        failed = client.failed
        if args.action == "list":
            jobs = await failed.list(args.queue, limit=args.limit)
            if args.json:
                print(pretty([j.to_json() for j in jobs]))
            elif not jobs:
                print(f"no failed jobs on queue {args.queue or client.settings.queue_name!r}")
            for j in jobs if not args.json else []:
                when = j.failed_at.strftime("%Y-%m-%d %H:%M:%S") if j.failed_at else "?"
                print(f"{j.job_id}  {when}  {j.task}  tries={j.tries}  {j.error_type}: {j.error_message[:80]}")
            return 0
        if args.action == "show":
            if not args.job_id:
                raise ConfigurationError("failed show needs a JOB_ID")
            job = await failed.get(args.job_id, args.queue)
            data = job.to_json()
            _print(
                data,
                args.json,
                "\n".join(f"{k}: {v}" for k, v in data.items() if k != "traceback") + f"\ntraceback:\n{job.traceback}",
            )
            return 0
        if args.action == "retry":
            if args.all:
                report = await failed.retry_all(args.queue)
                lines = [f"retried {len(report.retried)} failed job(s)"]
                if report.not_retried:
                    lines.append(f"not retried {len(report.not_retried)} (still in the failed set):")
                    shown = list(report.not_retried.items())[:SHOWN_IDS]
                    lines += [f"  {job_id}: {why}" for job_id, why in shown]
                    if len(report.not_retried) > len(shown):
                        lines.append(f"  ... and {len(report.not_retried) - len(shown)} more (scalr-queue failed list)")
                _print({"retried": report.retried, "not_retried": report.not_retried}, args.json, "\n".join(lines))
                return 0
            job = await failed.retry(args.job_id, args.queue)
            _print(
                {"retried": job.job_id},
                args.json,
                f"retried {job.job_id}: queued again with a fresh try count",
            )
            return 0
        if args.all:
            report = await failed.purge_all(args.queue)
            count, ids = report.count, report.job_ids
        else:
            if not await failed.purge(args.job_id, args.queue):
                queue = args.queue or client.settings.queue_name
                raise JobNotFoundError(f"job {args.job_id!r} is not in the failed set of queue {queue!r}")
            count, ids = 1, [args.job_id]
        shown = ids[:SHOWN_IDS]
        lines = [f"purged {count} failed job(s)" + (":" if count else ""), *(f"  {job_id}" for job_id in shown)]
        if count > len(shown):
            lines.append(f"  ... and {count - len(shown)} more")
        _print({"purged": count, "job_ids": ids}, args.json, "\n".join(lines))
        return 0

    return asyncio.run(_with_client(go))


def cmd_check_names(args: argparse.Namespace) -> int:
    from .producer._names import find_enqueued_names, find_unknown_task_names

    problems = find_unknown_task_names(args.src_dir, args.worker_module)
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} enqueue call(s) name tasks that {args.worker_module} does not define")
        return 1
    print(
        f"ok: all {len(find_enqueued_names(args.src_dir))} enqueue call(s) in {args.src_dir} name tasks "
        f"of {args.worker_module}"
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker._main import run

    return run(args, prog=f"{PROG} worker")


def cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        from .dashboard._serve import serve
    except ImportError as exc:
        need = f"the dashboard needs the web extra ({exc.name} is missing): pip install 'scalr-queue[web]'"
        raise ConfigurationError(need) from None
    return serve(args.port, args.host, args.read_only)


def build_parser() -> argparse.ArgumentParser:
    from .worker._main import add_worker_arguments

    parser = argparse.ArgumentParser(prog=PROG, description="scalr_queue: background jobs over arq and Redis.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, json: bool = True) -> None:
        p.add_argument("--queue", help="queue name (default: SCALR_QUEUE_QUEUE_NAME or 'default')")
        if json:
            p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("worker", help="run a worker (same as python -m scalr_queue.worker)")
    add_worker_arguments(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("stats", help="ready / scheduled / in-progress / failed counts and live workers")
    common(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("workers", help="live workers and the tasks they run")
    common(p)
    p.set_defaults(func=cmd_workers)

    p = sub.add_parser("job", help="everything known about one job")
    p.add_argument("job_id")
    common(p)
    p.set_defaults(func=cmd_job)

    p = sub.add_parser("enqueue", help="enqueue a job: scalr-queue enqueue TASK key=value ...")
    p.add_argument("task")
    p.add_argument("kwargs", nargs="*", help="key=value (value parsed as JSON, else text)")
    p.add_argument("--job-id")
    p.add_argument("--defer", type=float, help="seconds before it may run")
    p.add_argument("--debounce", type=float, help="with --job-id: one run, this many seconds after the last enqueue")
    p.add_argument("--replace", action="store_true", help="with --job-id: replace the waiting job's arguments")
    common(p, json=False)
    p.set_defaults(func=cmd_enqueue)

    p = sub.add_parser(
        "cancel", help="cancel a job: queued or scheduled ones never run, a running one is stopped (exit 3: finished)"
    )
    p.add_argument("job_id")
    p.add_argument("--reason", help="kept with the cancelled job (Job.info().cancel_reason)")
    common(p)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("failed", help="failed jobs: list | show ID | retry ID|--all | purge ID|--all")
    p.add_argument("action", choices=["list", "show", "retry", "purge"])
    p.add_argument("job_id", nargs="?")
    p.add_argument("--all", action="store_true", help="with retry or purge: every failed job of the queue")
    p.add_argument("--limit", type=int, default=100)
    common(p)
    p.set_defaults(func=cmd_failed)

    p = sub.add_parser("pause", help="workers stop claiming from the queue; running jobs finish, enqueues are kept")
    common(p)
    p.set_defaults(func=cmd_pause)

    p = sub.add_parser("resume", help="workers claim from a paused queue again")
    common(p)
    p.set_defaults(func=cmd_pause)

    where_help = "only jobs whose keyword argument compares true: 'customer_id == 42' (== != < <= > >=)"
    p = sub.add_parser("hold", help="keep a task's jobs queued and unrun (counted as held) until release")
    p.add_argument("task")
    p.add_argument("--where", help=where_help)
    common(p)
    p.set_defaults(func=cmd_hold)

    p = sub.add_parser("release", help="remove a hold: its held jobs run (or, with --drop, are deleted and listed)")
    p.add_argument("task")
    p.add_argument("--where", help="release only the hold with this clause (default: every hold on the task)")
    p.add_argument("--drop", action="store_true", help="delete the released jobs instead of running them")
    common(p)
    p.set_defaults(func=cmd_hold)

    p = sub.add_parser("dashboard", help="serve the web dashboard (loopback only unless credentials are set)")
    p.add_argument("--port", type=int, default=8100, help="port to serve on (default 8100)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--read-only", action="store_true", help="hide every action (or SCALR_QUEUE_DASHBOARD_READ_ONLY=1)")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("check-names", help='exit 1 if an enqueue("name") in SRC_DIR is not in the worker\'s tasks')
    p.add_argument("src_dir")
    p.add_argument("worker_module")
    p.set_defaults(func=cmd_check_names)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ScalrQueueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
