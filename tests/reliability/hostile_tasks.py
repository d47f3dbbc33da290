"""The worker module of the hostile-input table (``SCALR_QUEUE_TASKS=tests.reliability.hostile_tasks``)."""

from __future__ import annotations

from typing import Any


async def send_invoice_email(ctx: dict[str, Any], invoice_id: int, copy_to: str | None = None) -> int:
    await ctx["redis"].rpush("hostile:ran", ctx["job_id"])
    return invoice_id


async def note(ctx: dict[str, Any], **fields: Any) -> None:
    await ctx["redis"].rpush("hostile:ran", ctx["job_id"])


tasks = [send_invoice_email, note]
