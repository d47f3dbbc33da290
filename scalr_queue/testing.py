"""Helpers for your own tests: the name check the platform page recommends, and a real Redis.

Example::

    from scalr_queue.testing import assert_task_names

    def test_enqueued_names_exist():
        assert_task_names("src", "src.worker")
"""

from __future__ import annotations

import os

from .producer._names import NameUse, find_enqueued_names, find_unknown_task_names
from .redis._server import RedisServer, free_port

__all__ = [
    "NameUse",
    "RedisServer",
    "assert_task_names",
    "find_enqueued_names",
    "find_unknown_task_names",
    "free_port",
]


def assert_task_names(src_dir: str | os.PathLike[str], worker_module: str) -> None:
    """Fail with one line per ``enqueue("name")`` in ``src_dir`` that the worker module lacks."""
    problems = find_unknown_task_names(src_dir, worker_module)
    if problems:
        raise AssertionError("\n".join(problems))
