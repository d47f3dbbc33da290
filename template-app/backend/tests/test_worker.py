"""The example task, called directly with a hand-made ctx (no Redis needed)."""

from __future__ import annotations

from typing import Any

import pytest
from src import worker
from src.mail import LoggingSender


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def send(self, *, to: str, subject: str, body: str) -> None:
        self.sent.append({"to": to, "subject": subject, "body": body})


def ctx(**extra: Any) -> dict[str, Any]:
    return {"job_id": "test-job", "job_try": 1, **extra}


def test_tasks_lists_send_invoice_email() -> None:
    assert worker.tasks == [worker.send_invoice_email]


async def test_send_invoice_email_uses_the_plugged_sender() -> None:
    sender = RecordingSender()
    result = await worker.send_invoice_email(ctx(sender=sender), invoice_id=42)
    assert result == {"invoice_id": 42, "sent_to": "customer-42@example.com"}
    assert len(sender.sent) == 1
    assert sender.sent[0]["to"] == "customer-42@example.com"
    assert "#42" in sender.sent[0]["subject"]


async def test_on_startup_installs_the_logging_sender_by_default() -> None:
    worker_ctx: dict[str, Any] = {}
    await worker.on_startup(worker_ctx)
    assert isinstance(worker_ctx["sender"], LoggingSender)


async def test_negative_invoice_raises_so_the_job_is_retried() -> None:
    sender = RecordingSender()
    with pytest.raises(ConnectionRefusedError, match="invoice -1"):
        await worker.send_invoice_email(ctx(sender=sender), invoice_id=-1)
    assert sender.sent == []
