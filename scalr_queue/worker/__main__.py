"""``python -m scalr_queue.worker MODULE[:ATTR] ...``: start a worker."""

import sys

from ._main import main

sys.exit(main())
