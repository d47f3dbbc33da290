"""How the CLI prints: JSON for scripts, Rich tables for people, one console per command.

Output that is not a terminal (a pipe, a file, a test) gets no colour and a wide fixed width,
so tables are never cut to 80 columns and a ``grep`` sees whole rows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .._codec import pretty
from .._durations import format_duration

PIPE_WIDTH = 200


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream)
    return Console(file=stream, width=PIPE_WIDTH, no_color=True, highlight=False, emoji=False)


def emit(data: Any, as_json: bool, text: str) -> None:
    """The command's answer: pretty JSON (sorted keys) with ``--json``, else the text."""
    print(pretty(data) if as_json else text)


def print_json(data: Any) -> None:
    print(pretty(data))


def table(title: str | None, *columns: str, right: tuple[str, ...] = ()) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold", show_edge=False, pad_edge=False)
    for name in columns:
        out.add_column(name, justify="right" if name in right else "left", overflow="fold")
    return out


def when(at: datetime | None) -> str:
    """A time as local-free UTC text, to the millisecond."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if at else "-"


def ago(at: datetime | None) -> str:
    if at is None:
        return "-"
    return age((datetime.now(UTC) - at).total_seconds())


def age(seconds: float | None) -> str:
    """``850ms``, ``1.2s``, ``3m 05s``, ``2h 10m``, ``3d 4h`` (``in …`` ahead of now); ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return f"in {format_duration(-seconds)}"
    return format_duration(seconds)


def short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def progress_bar(what: str) -> Iterator[Callable[[int, int], None]]:
    """A ``(done, total)`` callback: a Rich progress bar on a terminal, else a line per 10%.

    Both go to stderr, so the command's answer on stdout stays what scripts parse.
    """
    err = console(stderr=True)
    if err.is_terminal:
        bar = Progress(
            TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True
        )
        task = bar.add_task(what, total=None)
        with bar:

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
        return
    shown = [-1]

    def line(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if total > 1000 and tenth > shown[0]:
            shown[0] = tenth
            print(f"{what}: {done}/{total}", file=sys.stderr, flush=True)

    yield line
