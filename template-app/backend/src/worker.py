"""template-app's background tasks.

Run by the worker process (the ``<app>-worker`` container, or ``make dev``)::

    python -m scalr_queue.worker src.worker

and enqueued by name from the backend: ``await enqueue("send_invoice_email", invoice_id=42)``.
Every task must be listed in ``tasks``; ``tests/test_task_names.py`` checks that every name the
backend enqueues is there.
"""

from __future__ import annotations

import logging
from typing import Any

from .mail import LoggingSender, Sender

logger = logging.getLogger(__name__)


async def on_startup(ctx: dict[str, Any]) -> None:
    """Runs once per worker process: put shared clients in ``ctx`` (swap in a real sender here)."""
    ctx["sender"] = LoggingSender()


async def send_invoice_email(ctx: dict[str, Any], invoice_id: int) -> dict[str, Any]:
    """Email invoice ``invoice_id`` to its customer.

    A negative id stands in for a mail server that keeps refusing: the task raises, is retried
    with backoff (``SCALR_QUEUE_MAX_TRIES``, ``SCALR_QUEUE_RETRY_DELAY``), then lands in the
    failed set (``GET /jobs/{id}``, ``scalr-queue failed list``). Delete that branch in a real app.
    """
    logger.info("sending invoice %s (job %s, try %s)", invoice_id, ctx.get("job_id"), ctx.get("job_try"))
    if invoice_id < 0:
        raise ConnectionRefusedError(f"mail server refused invoice {invoice_id} (example failure)")
    # ... look up the invoice and its customer, render the email ...
    to = f"customer-{invoice_id}@example.com"
    sender: Sender = ctx.get("sender") or LoggingSender()
    await sender.send(to=to, subject=f"Your invoice #{invoice_id}", body=f"Invoice {invoice_id} is attached.")
    return {"invoice_id": invoice_id, "sent_to": to}


tasks = [send_invoice_email]
