"""``scalr_queue.WorkerSettings`` reads the settings when a worker starts, not when the class is defined."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from arq.worker import get_kwargs
from redis.asyncio import Redis

import scalr_queue
from scalr_queue.worker._loader import config_from_settings_class
from tests.support import ROOT


async def resize(ctx: dict[str, Any], image_id: int) -> str:
    return str(image_id)


def test_arqs_runner_sees_the_environment_as_it_is_when_it_reads_the_class(set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_QUEUE_NAME="early", SCALR_QUEUE_CONCURRENCY="3")

    class WorkerSettings(scalr_queue.WorkerSettings):
        functions: ClassVar[list[Any]] = [resize]
        job_timeout = 1800

    set_env(SCALR_QUEUE_QUEUE_NAME="late", SCALR_QUEUE_CONCURRENCY="7")
    kwargs = get_kwargs(WorkerSettings)  # what `python -m arq module.WorkerSettings` builds its Worker from
    assert kwargs["queue_name"] == "arq:queue:late"
    assert kwargs["max_jobs"] == 7
    assert kwargs["job_timeout"] == 1800, "what the class declares wins over the settings"
    assert [f.name for f in kwargs["functions"]] == ["resize"]
    assert kwargs["functions"][0].coroutine is not resize, "functions are wrapped to retry the scalr_queue way"


def test_subclasses_inherit_declared_values_and_functions(set_env: Callable[..., None]) -> None:
    set_env(SCALR_QUEUE_MAX_TRIES="9")

    class Base(scalr_queue.WorkerSettings):
        functions: ClassVar[list[Any]] = [resize]
        max_tries = 2

    class Bulk(Base):
        queue_name = "arq:queue:bulk"

    kwargs = get_kwargs(Bulk)
    assert (kwargs["max_tries"], kwargs["queue_name"]) == (2, "arq:queue:bulk")
    assert [f.name for f in kwargs["functions"]] == ["resize"]


def test_scalr_runner_takes_only_what_the_class_declares_as_overrides(set_env: Callable[..., None]) -> None:
    class WorkerSettings(scalr_queue.WorkerSettings):
        functions: ClassVar[list[Any]] = [resize]
        max_jobs = 50

    config = config_from_settings_class(WorkerSettings, "jobs_mod:WorkerSettings")
    assert list(config.tasks) == ["resize"] and config.tasks["resize"].coroutine is resize
    # concurrency comes from the class; everything else from the settings the worker loads at start
    assert config.overrides == {"concurrency": 50} and config.queue_name is None


def test_defining_a_settings_class_reads_no_settings() -> None:
    code = (
        "import scalr_queue\n"
        "from scalr_queue._settings import get_settings\n"
        "async def t(ctx) -> None: ...\n"
        "class WorkerSettings(scalr_queue.WorkerSettings):\n"
        "    functions = [t]\n"
        "assert get_settings.cache_info().currsize == 0, 'settings were read at class definition'\n"
    )
    # an invalid REDIS_URL: reading the settings would raise ConfigurationError
    env = {"REDIS_URL": "not a url", "PATH": "/usr/bin"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


LATE_QUEUE_MODULE = """
import os
import scalr_queue

async def resize(ctx, image_id: int) -> str:
    return f"resized {image_id}"

class WorkerSettings(scalr_queue.WorkerSettings):
    functions = [resize]

# set after the class exists: a settings class that read the environment as it was defined would miss it
os.environ["SCALR_QUEUE_QUEUE_NAME"] = "late"
"""


async def test_arqs_own_runner_serves_the_queue_set_after_the_class_was_defined(
    redis: Redis, redis_url: str, worker_module: Callable[..., Path]
) -> None:
    cwd = worker_module(LATE_QUEUE_MODULE)
    job = await scalr_queue.enqueue("resize", _queue_name="late", image_id=3)
    env = {k: v for k, v in os.environ.items() if k != "SCALR_QUEUE_QUEUE_NAME"}
    proc = subprocess.run(
        [sys.executable, "-m", "arq", "jobs_mod.WorkerSettings", "--burst"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert await job.result(timeout=1) == "resized 3"
