"""``python -m scalr_queue.cli``: the same as the ``scalr-queue`` command."""

from __future__ import annotations

import sys

from ._app import main

sys.exit(main())
