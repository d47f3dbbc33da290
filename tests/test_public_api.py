"""The public surface: a sorted ``__all__`` that matches what ``scalr_queue`` exports, and py.typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import scalr_queue
from tests.support import ROOT


def test_all_is_sorted_and_lists_every_public_name() -> None:
    assert scalr_queue.__all__ == sorted(scalr_queue.__all__)
    # subpackages (producer, worker, cli, dashboard, ...) are folders, not public names
    public = {
        n for n in dir(scalr_queue) if not n.startswith("_") and not isinstance(getattr(scalr_queue, n), ModuleType)
    }
    assert public == set(scalr_queue.__all__)


def test_every_error_derives_from_one_base_except_fail() -> None:
    errors = [getattr(scalr_queue, n) for n in scalr_queue.__all__ if n.endswith("Error")]
    assert all(issubclass(e, scalr_queue.ScalrQueueError) for e in errors)
    assert not issubclass(scalr_queue.Fail, scalr_queue.ScalrQueueError)


def test_package_ships_py_typed() -> None:
    assert (Path(scalr_queue.__file__).parent / "py.typed").exists()


def test_importing_does_not_read_settings_or_configure_logging() -> None:
    code = (
        "import logging, scalr_queue, scalr_queue.worker, scalr_queue.cli; "
        "from scalr_queue._settings import get_settings; "
        "assert get_settings.cache_info().currsize == 0; assert not logging.getLogger().handlers"
    )
    env = {"REDIS_URL": "not a url", "PATH": "/usr/bin"}
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT).returncode == 0
