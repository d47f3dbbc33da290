"""The ``scalr-queue`` Typer app: every command registered, and ``main`` turning errors into one line.

A user's mistake (a bad flag, a bad queue name, an unknown job, Redis unreachable) prints one
line on stderr and exits 1 or 2, never a traceback: ``ScalrQueueError`` carries its exit code,
and Click's usage errors exit 2 as argparse's did, in one line naming the command's --help.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

from .._errors import ScalrQueueError, exit_code
from . import _control, _read, _snapshot
from ._common import PROG

DEFAULT_WATCH = "2"  # seconds between screens of `snapshot --watch` given no number

app = typer.Typer(
    name=PROG,
    help="scalr_queue: background jobs over arq and Redis. Every read command takes --json.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command(
    "worker",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)(_control.worker)
# read
app.command("stats")(_read.stats)
app.command("queues")(_read.queues)
app.command("jobs")(_read.jobs)
app.command("job")(_read.job)
app.command("workers")(_read.workers)
app.command("snapshot")(_snapshot.snapshot)
# act
app.command("enqueue")(_control.enqueue)
app.command("cancel")(_control.cancel)
app.command("failed")(_control.failed)
app.command("pause")(_control.pause)
app.command("resume")(_control.resume)
app.command("hold")(_control.hold)
app.command("release")(_control.release)
app.command("check-names")(_control.check_names)
app.command("dashboard")(_control.dashboard)


def _optional_watch(args: list[str]) -> list[str]:
    """``snapshot --watch`` takes an optional number of seconds: supply the default when it is left out."""
    if not args or args[0] != "snapshot" or "--watch" not in args:
        return args
    at = args.index("--watch")
    following = args[at + 1] if at + 1 < len(args) else None
    try:
        float(following or "")
    except ValueError:
        return [*args[: at + 1], DEFAULT_WATCH, *args[at + 1 :]]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns the exit code (the ``scalr-queue`` entry point)."""
    args = _optional_watch(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=PROG, standalone_mode=False)
    except ScalrQueueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:
        # Click's usage errors (Typer may carry its own copy of Click, so matched by shape)
        message: Any = getattr(exc, "format_message", None)
        if message is None or not isinstance(getattr(exc, "exit_code", None), int):
            if type(exc).__name__ == "Abort":
                print(f"{PROG}: aborted", file=sys.stderr)
                return 1
            raise
        named = args[0] if args and args[0] in getattr(command, "commands", {}) else None
        where = f" (see {PROG} {named} --help)" if named else f" (see {PROG} --help)"
        print(f"{PROG}: error: {message()}{where}", file=sys.stderr)
        return int(exc.exit_code)  # type: ignore[attr-defined]
    return result if isinstance(result, int) else 0
