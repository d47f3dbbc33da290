"""Which tasks exist and what they take, as far as this process can tell: checked at enqueue time.

A misspelled task name or a wrong argument should fail in the web request that made it, not
later in a worker. Three sources, best first: the task function itself (``enqueue(fn, ...)``);
the worker's module when ``SCALR_QUEUE_TASKS`` names it (strict: unknown names are errors); else
the signatures that live workers publish to Redis (read at most every few seconds, and an
unknown name only warns: a newer worker may know it). The same knowledge turns a stored JSON
result back into the type the task's return annotation names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from .._errors import EnqueueError
from .._tasks import TaskSignature, TaskSpec, as_task_spec, did_you_mean, unknown_task
from ..worker._registry import live_workers
from ._pool import LoopPool

logger = logging.getLogger("scalr_queue")
MAX_TASK_NAME = 200
REGISTRY_CACHE_S = 5.0
UNKNOWN_NAME_WARN_EVERY_S = 60.0


class TaskCatalog:
    """The tasks this process knows of, and the enqueue-time checks of names and arguments."""

    def __init__(self, pool: LoopPool, tasks: Mapping[str, TaskSpec] | None = None) -> None:
        """``tasks``: the tasks this process already has loaded (a worker's own), used for strict
        checks instead of importing the ``SCALR_QUEUE_TASKS`` module; strict checks stay off
        unless that setting is given.
        """
        self._pool = pool
        self._preloaded = dict(tasks) if tasks is not None else None
        self._strict: dict[str, TaskSpec] | None = None
        self._specs: dict[int, TaskSpec] = {}
        self._registry: dict[str, tuple[float, dict[str, TaskSignature]]] = {}
        self._registry_reads: dict[str, asyncio.Future[dict[str, TaskSignature]]] = {}
        self._warned: dict[str, float] = {}

    def _strict_tasks(self) -> dict[str, TaskSpec] | None:
        module = self._pool.settings.tasks
        if module is None:
            return None
        if self._strict is None:
            if self._preloaded is not None:
                self._strict = self._preloaded
            else:
                from ..worker._loader import load_worker_config

                self._strict = load_worker_config(module).tasks
        return self._strict

    def spec_for(self, fn: Any) -> TaskSpec:
        """The TaskSpec of a task function (or arq Function), built once per function."""
        spec = self._specs.get(id(fn))
        if spec is None or (spec.coroutine is not fn and spec is not fn):
            spec = as_task_spec(fn)
            self._specs[id(fn)] = spec
        return spec

    def spec(self, name: str | None) -> TaskSpec | None:
        """The TaskSpec for a name when this process knows the worker's tasks (for results)."""
        if not name:
            return None
        for spec in self._specs.values():
            if spec.name == name:
                return spec
        strict = self._strict_tasks()
        return strict.get(name) if strict is not None else None

    def convert_result(self, name: str | None, value: Any) -> Any:
        spec = self.spec(name)
        return spec.convert_result(value) if spec is not None else value

    async def _published(self, queue: str, task: str) -> dict[str, TaskSignature]:
        """Live workers' task signatures, cached briefly; concurrent misses share one read."""
        cached = self._registry.get(queue)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._registry_reads.get(queue)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = self._registry_reads[queue] = asyncio.ensure_future(self._read_registry(queue))
            pending.add_done_callback(lambda _f: self._registry_reads.pop(queue, None))
        return await self._pool.run(asyncio.shield(pending), f"enqueue {task!r}")

    async def _read_registry(self, queue: str) -> dict[str, TaskSignature]:
        redis = await self._pool.redis()
        merged: dict[str, TaskSignature] = {}
        for worker in await live_workers(redis, queue):
            merged.update(worker.tasks)
        self._registry[queue] = (time.monotonic() + REGISTRY_CACHE_S, merged)
        return merged

    def check_known(self, task: Any, queue: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
        """:meth:`check` without an await: the task's name once checked, or None when the workers'
        published signatures must be read first (then await :meth:`check`)."""
        if not isinstance(task, str):
            spec = self.spec_for(task)
            if not args:
                spec.check_call(kwargs)
            return spec.name
        if not task or len(task) > MAX_TASK_NAME or not task.isprintable():
            shown = task if len(task) <= 60 else task[:57] + "..."
            raise EnqueueError(f"task name {shown!r} is not valid: names are 1-{MAX_TASK_NAME} printable characters")
        strict = self._strict_tasks()
        if strict is not None:
            known = strict.get(task)
            if known is None:
                raise unknown_task(task, strict, f"SCALR_QUEUE_TASKS={self._pool.settings.tasks}")
            if not args:
                known.check_call(kwargs)
            return task
        cached = self._registry.get(queue)
        if cached is None or cached[0] <= time.monotonic():
            return None
        return self._check_published(cached[1], queue, task, args, kwargs)

    async def check(self, task: Any, queue: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """The task's name, once the name and (keyword-only calls) the arguments are known good."""
        name = self.check_known(task, queue, args, kwargs)
        if name is not None:
            return name
        return self._check_published(await self._published(queue, task), queue, task, args, kwargs)

    def _check_published(
        self,
        published: dict[str, TaskSignature],
        queue: str,
        task: str,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> str:
        if not published:
            return task
        sig = published.get(task)
        if sig is None:
            key = f"{queue}:{task}"
            if self._warned.get(key, 0) < time.monotonic():
                self._warned[key] = time.monotonic() + UNKNOWN_NAME_WARN_EVERY_S
                logger.warning(
                    "no live worker on queue %r knows task %r%s; enqueued anyway (a newer worker may run it; "
                    "set SCALR_QUEUE_TASKS to make this an error)",
                    queue,
                    task,
                    did_you_mean(task, published),
                )
        elif not args:
            sig.check(task, kwargs)
        return task
