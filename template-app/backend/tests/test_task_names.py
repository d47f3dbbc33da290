"""The platform page's advice, automated: every name the backend enqueues is in the worker's tasks."""

from __future__ import annotations

from pathlib import Path

from scalr_queue.testing import assert_task_names

BACKEND_DIR = Path(__file__).resolve().parents[1]


def test_every_enqueued_name_is_in_worker_tasks() -> None:
    assert_task_names(BACKEND_DIR / "src", "src.worker")
