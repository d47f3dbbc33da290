"""Load a worker module (``src.worker`` or ``src.worker:ATTR``) into a checked WorkerConfig.

Every way a module can be wrong becomes one WorkerModuleError line, which the entrypoint
prints before exiting with code 2: not importable (with the import error), no ``tasks``,
an empty list, a sync function, a duplicate name.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from arq.cron import CronJob

from .._errors import WorkerModuleError
from .._tasks import TaskSpec, build_task_map

Hook = Callable[[dict[str, Any]], Awaitable[Any]]
# WorkerSettings attributes (arq's names) that override the environment's defaults
OVERRIDES = {
    "max_jobs": "concurrency",
    "job_timeout": "job_timeout",
    "max_tries": "max_tries",
    "keep_result": "keep_result",
}


@dataclass
class WorkerConfig:
    """What a worker runs: tasks by name, cron jobs, hooks, and settings overrides."""

    module: str
    tasks: dict[str, TaskSpec]
    cron_jobs: list[CronJob] = field(default_factory=list)
    on_startup: Hook | None = None
    on_shutdown: Hook | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    queue_name: str | None = None


def _import(module_name: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise WorkerModuleError(
                f"cannot import worker module {module_name!r}: {exc} (run from the directory that contains "
                f"{module_name.split('.')[0]}/, or add it to PYTHONPATH)"
            ) from None
        raise WorkerModuleError(f"cannot import worker module {module_name!r}: {_origin(exc)}") from None
    except Exception as exc:
        raise WorkerModuleError(f"cannot import worker module {module_name!r}: {_origin(exc)}") from None


def _origin(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError):
        where = f" (at {exc.filename}:{exc.lineno})"
        return f"SyntaxError: {exc.msg}{where}"
    return f"{type(exc).__name__}: {exc}{where}"


def _hook(obj: Any, name: str, label: str) -> Hook | None:
    hook = getattr(obj, name, None)
    if hook is None:
        return None
    if not callable(hook):
        raise WorkerModuleError(f"{label}.{name} must be an async function taking ctx")
    return hook  # type: ignore[no-any-return]


def _cron(obj: Any, label: str) -> list[CronJob]:
    jobs = list(getattr(obj, "cron_jobs", None) or [])
    for job in jobs:
        if not isinstance(job, CronJob):
            raise WorkerModuleError(f"{label}.cron_jobs must contain arq.cron(...) entries, not {job!r}")
    return jobs


def config_from_settings_class(cls: Any, label: str) -> WorkerConfig:
    """A WorkerSettings class (arq's attribute names) as a WorkerConfig."""
    functions = getattr(cls, "functions", None)
    cron_jobs = _cron(cls, label)
    if functions is None and not cron_jobs:
        raise WorkerModuleError(f"{label} has no 'functions' list (arq's WorkerSettings attribute)")
    tasks = build_task_map(functions or [])
    overrides = {OVERRIDES[k]: getattr(cls, k) for k in OVERRIDES if getattr(cls, k, None) is not None}
    queue = getattr(cls, "queue_name", None)
    queue = queue.removeprefix("arq:queue:") if isinstance(queue, str) else None
    return WorkerConfig(
        label,
        tasks,
        cron_jobs,
        _hook(cls, "on_startup", label),
        _hook(cls, "on_shutdown", label),
        overrides,
        queue,
    )


def load_worker_config(target: str) -> WorkerConfig:
    """``module`` (reads ``tasks``) or ``module:ATTR`` (a tasks list or a WorkerSettings class)."""
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise WorkerModuleError("no worker module given: expected e.g. src.worker or src.worker:tasks")
    module = _import(module_name)
    if attr:
        if not hasattr(module, attr):
            raise WorkerModuleError(f"worker module {module_name!r} has no attribute {attr!r}")
        obj = getattr(module, attr)
        if isinstance(obj, type):
            return config_from_settings_class(obj, target)
        entries, label = obj, target
    else:
        if not hasattr(module, "tasks"):
            hint = (
                " (it has a WorkerSettings class: use " + module_name + ":WorkerSettings)"
                if hasattr(module, "WorkerSettings")
                else ""
            )
            raise WorkerModuleError(
                f"worker module {module_name!r} has no 'tasks' list: add tasks = [your_task, ...]{hint}"
            )
        entries, label = module.tasks, f"{module_name}.tasks"
    if not isinstance(entries, list | tuple):
        raise WorkerModuleError(f"{label} must be a list of async functions, not {type(entries).__name__}")
    cron_jobs = _cron(module, module_name)
    if not entries and not cron_jobs:
        raise WorkerModuleError(f"{label} is empty: add at least one async task function")
    tasks = build_task_map(entries)
    return WorkerConfig(
        target,
        tasks,
        cron_jobs,
        _hook(module, "on_startup", module_name),
        _hook(module, "on_shutdown", module_name),
    )
