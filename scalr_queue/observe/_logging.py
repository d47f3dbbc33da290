"""Log set-up for the worker and CLI: plain or JSON lines, and secrets kept out of both."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from typing import TextIO
from urllib.parse import urlsplit

import orjson

from .._settings import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (``SCALR_QUEUE_LOG_FORMAT=json``)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace_id = record.__dict__.get("trace_id")  # set during a traced attempt (scalr_queue.observe._otel)
        if trace_id is not None:
            data["trace_id"] = trace_id
            data["span_id"] = str(record.__dict__.get("span_id", ""))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data).decode()


class PlainFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message``, with the time text built once per second.

    The stock ``formatTime`` calls ``localtime`` and ``strftime`` for every record; a draining
    worker writes one line per job, thousands a second, all within a handful of seconds.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.datefmt or "%H:%M:%S", self.converter(record.created))
            self._second = second
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        """The stock ``format`` in one f-string: the same text, without its style object's steps."""
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        text = f"{record.asctime} {record.levelname:<7} {record.name}: {record.message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = text + record.exc_text if text[-1:] == "\n" else f"{text}\n{record.exc_text}"
        if record.stack_info:
            stack = self.formatStack(record.stack_info)
            text = text + stack if text[-1:] == "\n" else f"{text}\n{stack}"
        return text


class TickHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes the lines of one event-loop tick in one call.

    A draining worker logs a line per job, thousands a second, and every line written on its own
    is a system call (stderr flushes at each newline). Lines logged on a thread running an event
    loop wait for the end of the loop's current step (``call_soon``), at most that long; a warning
    or worse, a line from any other thread, ``flush()`` and the handler's close write everything
    at once, in order. The stream is the one given at construction, as for ``StreamHandler``.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        if record.levelno < logging.WARNING:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass  # no loop on this thread: write it now
            else:
                if self._flush_on is not loop:  # none yet, or on a loop that may have closed since
                    self._flush_on = loop
                    loop.call_soon(self.flush)
                return
        self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._flush_on = None
            if self._lines:
                lines, self._lines = self._lines, []
                try:
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
                except Exception:  # the stream went away (a closed pipe): say so where we still can
                    if logging.raiseExceptions and sys.stderr is not None and sys.stderr is not self.stream:
                        with contextlib.suppress(Exception):
                            sys.stderr.write(f"--- scalr_queue: could not write {len(lines)} log lines\n")

    def close(self) -> None:
        self.flush()
        super().close()


class RedactSecret(logging.Filter):
    """Last line of defence: the REDIS_URL password never reaches a log line, whoever logs it."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg = message.replace(self.secret, "***")
            record.args = None
        return True


def configure_logging(settings: Settings) -> None:
    handler = TickHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter())
    try:
        password = urlsplit(settings.redis_url).password
    except ValueError:
        password = None
    if password and len(password) >= 3:
        handler.addFilter(RedactSecret(password))
    # neither format shows threads, processes or source lines: a record need not collect them
    # (this is the worker's or the CLI's own process, whose logging this function sets up)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # nor the caller's file and line: ``_srcfile = None`` is the logging module's own switch (its
    # source says so) to skip the stack walk it does for every record
    logging._srcfile = None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in ("arq", "scalr_queue"):
        logging.getLogger(name).setLevel(settings.log_level)
