"""``check-names``: every ``enqueue("name", ...)`` in the backend names a task the worker has.

The platform page's worst pitfall is a misspelled task name that fails only in the worker;
this is the unit test it recommends, shipped as a CLI command and a pytest helper.
"""

from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .._tasks import did_you_mean
from ..worker._loader import load_worker_config

ENQUEUE_FUNCS = {"enqueue", "enqueue_job"}


@dataclass(frozen=True)
class NameUse:
    """One literal task name passed to enqueue, and where."""

    name: str
    path: str
    line: int


def find_enqueued_names(src_dir: str | os.PathLike[str]) -> list[NameUse]:
    """Literal first arguments of ``enqueue(...)``/``x.enqueue(...)`` and ``enqueue_many`` tuples."""
    uses: list[NameUse] = []
    root = Path(src_dir)
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    for path in files:
        if any(part in {".venv", "node_modules", "__pycache__"} for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if fname in ENQUEUE_FUNCS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    uses.append(NameUse(first.value, str(path), node.lineno))
            elif fname == "enqueue_many" and node.args and isinstance(node.args[0], ast.List | ast.Tuple):
                for elt in node.args[0].elts:
                    if (
                        isinstance(elt, ast.Tuple)
                        and elt.elts
                        and isinstance(elt.elts[0], ast.Constant)
                        and isinstance(elt.elts[0].value, str)
                    ):
                        uses.append(NameUse(elt.elts[0].value, str(path), elt.lineno))
    return uses


def find_unknown_task_names(src_dir: str | os.PathLike[str], worker_module: str) -> list[str]:
    """One line per enqueue call whose task name the worker module does not define."""
    parent = str(Path(src_dir).resolve().parent)
    for entry in (os.getcwd(), parent):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    known = load_worker_config(worker_module).tasks
    problems = []
    for use in find_enqueued_names(src_dir):
        if use.name not in known:
            problems.append(
                f"{use.path}:{use.line}: unknown task {use.name!r}{did_you_mean(use.name, known)}"
                f" (not in {worker_module} tasks)"
            )
    return problems
