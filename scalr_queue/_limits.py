"""Concurrency and rate limits of a task, checked where the task is declared.

``task(fn, max_concurrent=N)`` lets at most N jobs of the task run at once across every worker;
with ``concurrency_key="customer_id"``, at most N per value of that keyword argument.
``task(fn, rate_limit="100/m")`` lets at most 100 of its jobs start in any minute (``/s``, ``/h``).
The worker hands its limited tasks' rules to ``CLAIM`` (see ``LIMITS`` in
:mod:`scalr_queue.redis._scripts`), which counts slots and starts in Redis, so every worker and host
shares one count. A worker without limited tasks passes nothing and pays nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import WorkerModuleError

if TYPE_CHECKING:
    from ._tasks import TaskSignature

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*([smh])\s*$")
_WINDOWS = {"s": 1_000, "m": 60_000, "h": 3_600_000}
RATE_HELP = "write it as COUNT/UNIT with UNIT s, m or h, e.g. rate_limit='100/m'"


@dataclass(frozen=True)
class Limits:
    """A task's limits; ``rate`` is (starts, window in ms)."""

    max_concurrent: int | None = None
    concurrency_key: str | None = None
    rate: tuple[int, int] | None = None

    def rule(self) -> dict[str, Any]:
        """The task's entry in the rules CLAIM reads: n, k, r, w (absent when unset)."""
        out: dict[str, Any] = {}
        if self.max_concurrent is not None:
            out["n"] = self.max_concurrent
        if self.concurrency_key is not None:
            out["k"] = self.concurrency_key
        if self.rate is not None:
            out["r"], out["w"] = self.rate
        return out

    def to_json(self) -> dict[str, Any]:
        """As workers publish it in their registry entry and ``scalr-queue workers --json`` shows it."""
        out: dict[str, Any] = {"max_concurrent": self.max_concurrent, "concurrency_key": self.concurrency_key}
        out["rate_limit"] = None if self.rate is None else rate_text(*self.rate)
        return out


def rate_text(count: int, window_ms: int) -> str:
    unit = {v: k for k, v in _WINDOWS.items()}[window_ms]
    return f"{count}/{unit}"


def parse_rate(task: str, text: object) -> tuple[int, int]:
    """``"100/m"`` -> (100, 60000); WorkerModuleError (one line) for anything else."""
    m = _RATE_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise WorkerModuleError(f"task {task!r}: rate_limit={text!r} is not a rate: {RATE_HELP}")
    count = int(m.group(1))
    if count < 1:
        raise WorkerModuleError(f"task {task!r}: rate_limit={text!r} allows no start: use a count of at least 1")
    return count, _WINDOWS[m.group(2)]


def build_limits(
    task: str,
    signature: TaskSignature,
    *,
    max_concurrent: int | None,
    concurrency_key: str | None,
    rate_limit: str | None,
) -> Limits | None:
    """Check the declaration against the task's signature; None when the task has no limit."""
    if max_concurrent is not None and (
        isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1
    ):
        raise WorkerModuleError(
            f"task {task!r}: max_concurrent={max_concurrent!r} must be a whole number of at least 1"
        )
    if concurrency_key is not None:
        if max_concurrent is None:
            raise WorkerModuleError(
                f"task {task!r}: concurrency_key={concurrency_key!r} needs max_concurrent (e.g. max_concurrent=1)"
            )
        if concurrency_key not in signature.params:
            raise WorkerModuleError(
                f"task {task!r}: concurrency_key={concurrency_key!r} is not one of its keyword arguments"
                f" ({', '.join(signature.params) or 'it takes none'})"
            )
    rate = None if rate_limit is None else parse_rate(task, rate_limit)
    if max_concurrent is None and rate is None:
        return None
    return Limits(max_concurrent, concurrency_key, rate)


def rules_json(limits: Mapping[str, Limits | None]) -> str | None:
    """The rules CLAIM reads, for the tasks that have limits; None when none has (nothing is passed)."""
    rules = {name: lim.rule() for name, lim in sorted(limits.items()) if lim is not None}
    return json.dumps(rules, separators=(",", ":")) if rules else None
