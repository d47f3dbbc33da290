"""How the example task sends mail: a small pluggable ``Sender``.

The platform's mail library is not part of this repository, so the default sender only logs.
Plug a real one in from the worker's ``on_startup`` (``ctx["sender"] = MySender()``); tests pass
their own in the ``ctx`` they call the task with.
"""

from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger(__name__)


class Sender(Protocol):
    """Anything that can send one email."""

    async def send(self, *, to: str, subject: str, body: str) -> None: ...


class LoggingSender:
    """The default: logs the email instead of sending it."""

    async def send(self, *, to: str, subject: str, body: str) -> None:
        logger.info("email (not sent, LoggingSender) to=%s subject=%r body=%d chars", to, subject, len(body))
