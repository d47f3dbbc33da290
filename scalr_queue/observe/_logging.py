"""Log set-up for the worker and CLI: plain or JSON lines, and secrets kept out of both."""

from __future__ import annotations

import logging
import sys
import time
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
    handler = logging.StreamHandler(sys.stderr)
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in ("arq", "scalr_queue"):
        logging.getLogger(name).setLevel(settings.log_level)
