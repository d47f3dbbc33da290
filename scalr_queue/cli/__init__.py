"""``scalr-queue``: run workers, look into queues and act on them from a shell (Typer + Rich).

Read: ``stats``, ``queues``, ``jobs``, ``job``, ``workers``, ``snapshot [--watch]``, each with
``--json``. Act: ``enqueue``, ``cancel``, ``failed list|show|retry|purge``, ``pause``, ``resume``,
``hold``, ``release``. Also ``worker``, ``check-names`` and ``dashboard``. Bulk actions on the failed set need
``--all``, name what they touched and show a progress bar on a terminal. Shell completion:
``scalr-queue --install-completion``. The manual is docs/cli.md.
"""

from __future__ import annotations

from ._app import app, main

__all__ = ["app", "main"]
