# pyright: strict
"""What a user's type checker sees of enqueue: checked by mypy and pyright in ``make lint``, never run.

The first half must type-check cleanly. Each line of the second half ends in
``# type: ignore[<mypy code>]`` and must be an error under both checkers: an ignore that
silences nothing is itself an error (mypy's ``warn_unused_ignores`` under strict, pyright's
``reportUnnecessaryTypeIgnoreComment``), so a check that stops catching a mistake fails the lint.
Pyright reads this file in strict mode: nothing the public API returns may be partly unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, assert_type

from scalr_queue import (
    FailedJob,
    Job,
    JobInfo,
    JobOptions,
    JobStatus,
    QueueClient,
    TaskSpec,
    enqueue,
    get_client,
    get_job,
    task,
)


async def send_invoice_email(ctx: dict[str, Any], invoice_id: int, copy_to: str | None = None) -> None: ...


async def render_report(ctx: dict[str, Any], day: str) -> dict[str, int]:
    return {day: 1}


async def ctx_as_mapping(ctx: Mapping[str, Any], n: int) -> int:
    return n


async def ctx_as_object_dict(ctx: dict[str, object], *, flag: bool) -> bool:
    return flag


async def ctx_as_any(ctx: Any, *values: int) -> list[int]:
    return list(values)


@task(timeout=30, max_tries=2)
async def resize(ctx: dict[str, Any], image_id: int, width: int = 800) -> str:
    return f"{image_id}@{width}"


report_task = task(render_report, name="report", keep_result=timedelta(days=1))


def sync_task(ctx: dict[str, Any], n: int) -> int:
    return n


async def no_ctx(invoice_id: int) -> None: ...


# -- must type-check ----------------------------------------------------------------------


async def typed_calls_give_typed_handles(client: QueueClient) -> None:
    job = await enqueue(send_invoice_email, invoice_id=42)
    assert_type(job, Job[None])
    assert_type(await job.result(), None)
    assert_type(await enqueue(send_invoice_email, 42, "copy@example.com"), Job[None])
    report = await enqueue(render_report, day="2026-12-01")
    assert_type(await report.result(timeout=5), dict[str, int])
    assert_type(await enqueue(ctx_as_mapping, n=1), Job[int])
    assert_type(await enqueue(ctx_as_object_dict, flag=True), Job[bool])
    assert_type(await enqueue(ctx_as_any, 1, 2, 3), Job[list[int]])
    assert_type(await client.enqueue(render_report, day="x"), Job[dict[str, int]])


async def task_specs_stay_typed() -> None:
    assert_type(await enqueue(resize, image_id=1), Job[str])
    assert_type(await enqueue(resize, 1, width=10), Job[str])
    assert_type(await enqueue(report_task, day="d"), Job[dict[str, int]])
    spec: TaskSpec = resize  # a bare TaskSpec is any task
    assert_type(await enqueue(spec, anything=1), Job[Any])


async def options_on_the_typed_path(client: QueueClient) -> None:
    options = JobOptions(job_id="invoice-42", defer_by=timedelta(minutes=5), queue_name="billing")
    assert_type(await options.enqueue(send_invoice_email, invoice_id=42), Job[None])
    assert_type(await options.enqueue(resize, 7, width=100), Job[str])
    assert_type(await client.enqueue_with(options, resize, image_id=1), Job[str])
    later = JobOptions(defer_until=datetime.now(UTC) + timedelta(hours=1), expires=3600, job_try=2)
    assert_type(await later.enqueue("send_invoice_email", invoice_id=42), Job[Any])


async def by_name_stays_as_it_was(client: QueueClient) -> None:
    job = await enqueue("send_invoice_email", invoice_id=42)
    assert_type(job, Job[Any])
    assert_type(await job.result(), Any)
    assert_type(await enqueue("send_invoice_email", _job_id="invoice-42", _defer_by=60, invoice_id=42), Job[Any])
    assert_type(await client.enqueue("send_invoice_email", 42, _queue_name="billing"), Job[Any])


async def handles_and_lookups_are_typed() -> None:
    job = await enqueue(render_report, day="d")
    assert_type((job.job_id, job.queue, job.created, job.task), tuple[str, str, bool, str | None])
    assert_type(await job.status(), JobStatus)
    assert_type(await job.info(), JobInfo)
    assert_type(get_job("invoice-42"), Job[Any])
    assert_type(await get_client().failed.list(), list[FailedJob])


# -- must fail ----------------------------------------------------------------------------


async def mistakes_are_caught(client: QueueClient) -> None:
    await enqueue(send_invoice_email)  # type: ignore[call-overload]
    await enqueue(send_invoice_email, invoice_id="42")  # type: ignore[call-overload]
    await enqueue(send_invoice_email, invoice_id=42, copy="x")  # type: ignore[call-overload]
    await enqueue(send_invoice_email, 1, 2, 3)  # type: ignore[call-overload]
    await enqueue(resize, image_id="1")  # type: ignore[call-overload]
    await enqueue(resize, width=1)  # type: ignore[call-overload]
    await enqueue(ctx_as_object_dict, True)  # type: ignore[call-overload]
    await client.enqueue(render_report, day=1)  # type: ignore[call-overload]


async def options_are_not_task_arguments() -> None:
    await enqueue(send_invoice_email, invoice_id=42, _job_id="x")  # type: ignore[call-overload]
    await JobOptions(job_id="x").enqueue(send_invoice_email, invoice_id="42")  # type: ignore[call-overload]
    JobOptions(job_id=42)  # type: ignore[arg-type]
    JobOptions(defer_until="tomorrow")  # type: ignore[arg-type]


async def not_a_task() -> None:
    await enqueue(sync_task, n=1)  # type: ignore[call-overload]
    await enqueue(no_ctx, invoice_id=1)  # type: ignore[call-overload]
    task(sync_task)  # type: ignore[arg-type]


async def results_keep_their_type() -> None:
    count: int = await (await enqueue(render_report, day="d")).result()  # type: ignore[assignment]
    name: int = await (await enqueue(resize, image_id=1)).result()  # type: ignore[assignment]
    await enqueue("send_invoice_email", 42)  # type: ignore[call-overload]
    del count, name
