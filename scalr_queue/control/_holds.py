"""Holds: keep a task's jobs (or those whose keyword argument matches) in Redis, unrun, until released.

A hold is a rule in the queue's holds hash (``scalr:holds:<queue>``). Workers read the rules inside
``CLAIM`` and move a due job that matches into the held set (``scalr:held:<queue>``) instead of
running it: it burns no try and the jobs behind it still run. ``release`` removes the rule and puts
the jobs no other hold matches back on the queue at their due time, or deletes them if asked.

A ``where`` clause compares one keyword argument with a value: ``customer_id == 42``. The value
is read as JSON (``42``, ``"a b"``, ``true``, ``null``) and otherwise taken as text (``eu-west``).
The match itself runs in Lua on the JSON payload, so what Redis holds is what is compared: numbers
with numbers, text with text; a job without that argument never matches.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigurationError

OPERATORS = ("==", "!=", "<", "<=", ">", ">=")
_WHERE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|<=|>=|<|>)\s*(.*?)\s*$")
WHERE_HELP = "expected KEYWORD OP VALUE with OP one of == != < <= > >=, e.g. 'customer_id == 42'"


@dataclass(frozen=True)
class Where:
    """One comparison of a keyword argument with a value."""

    keyword: str
    op: str
    value: Any

    def __str__(self) -> str:
        return f"{self.keyword} {self.op} {json.dumps(self.value)}"


@dataclass(frozen=True)
class Released:
    """What ``release`` did: holds removed, jobs back on the queue, jobs dropped, jobs still held."""

    holds_removed: int
    released: int
    dropped: list[str]
    still_held: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_where(text: str) -> Where:
    """Parse ``KEYWORD OP VALUE``, raising ConfigurationError (one line) for anything else."""
    m = _WHERE_RE.match(text)
    if m is None or not m.group(3):
        raise ConfigurationError(f"--where {text!r} is not a comparison: {WHERE_HELP}")
    keyword, op, raw = m.groups()
    if raw[:1] in "=<>!":
        raise ConfigurationError(f"--where {text!r} has an unknown operator: {WHERE_HELP}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw  # plain text: eu-west, an unquoted name
    if isinstance(value, list | dict):
        raise ConfigurationError(f"--where {text!r} compares with a list or object: use a number, text, true or null")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigurationError(f"--where {text!r} compares with a number JSON cannot carry")
    if op not in ("==", "!=") and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        raise ConfigurationError(f"--where {text!r}: {op} orders numbers or text, not {json.dumps(value)}")
    return Where(keyword, op, value)


def hold_field(task: str, where: Where | None) -> str:
    """The hold's name in the holds hash: the same task and clause always name the same hold."""
    return task if where is None else f"{task} where {where}"


def hold_rule(task: str, where: Where | None) -> str:
    """The rule ``CLAIM`` reads (see ``_lua.HOLD_MATCH``)."""
    rule: dict[str, Any] = {"f": task}
    if where is not None:
        rule.update(k=where.keyword, op=where.op, v=where.value)
    return json.dumps(rule)


def check_task(task: str) -> None:
    if not task or task != task.strip():
        raise ConfigurationError(f"task name {task!r} is not valid: give the task's name, e.g. send_invoice_email")
