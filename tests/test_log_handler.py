"""The worker's log handler: lines of one loop tick written in one call, in order, none lost."""

from __future__ import annotations

import asyncio
import io
import logging
import sys

import pytest

from scalr_queue.observe._logging import PlainFormatter, TickHandler
from tests.support import run_in_new_loop


class CountingStream(io.StringIO):
    """A text stream that counts the write calls it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def make_logger(stream: CountingStream) -> tuple[logging.Logger, TickHandler]:
    handler = TickHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger(f"test.tick.{id(stream)}")
    log.propagate = False
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    return log, handler


def test_info_lines_of_one_tick_are_written_at_the_end_of_the_tick_in_one_call() -> None:
    stream = CountingStream()
    log, _ = make_logger(stream)

    async def main() -> tuple[str, int]:
        for i in range(3):
            log.info("line %d", i)
        held = stream.getvalue()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return held, stream.writes

    held, writes = run_in_new_loop(main())
    assert held == ""
    assert stream.getvalue() == "INFO line 0\nINFO line 1\nINFO line 2\n"
    assert writes == 1


def test_a_warning_writes_the_waiting_lines_and_itself_at_once_in_order() -> None:
    stream = CountingStream()
    log, _ = make_logger(stream)

    async def main() -> str:
        log.info("first")
        log.warning("second")
        return stream.getvalue()

    assert run_in_new_loop(main()) == "INFO first\nWARNING second\n"


def test_without_a_running_loop_each_line_is_written_at_once() -> None:
    stream = CountingStream()
    log, _ = make_logger(stream)
    log.info("now")
    assert stream.getvalue() == "INFO now\n"


def test_flush_and_close_write_the_waiting_lines_before_the_tick_ends() -> None:
    stream = CountingStream()
    log, handler = make_logger(stream)

    async def main() -> list[str]:
        seen = []
        log.info("flushed")
        handler.flush()  # what logging.shutdown does at exit
        seen.append(stream.getvalue())
        log.info("closed")
        handler.close()
        seen.append(stream.getvalue())
        return seen

    assert run_in_new_loop(main()) == ["INFO flushed\n", "INFO flushed\nINFO closed\n"]


def test_lines_left_by_a_loop_that_closed_mid_step_go_out_with_the_next_loop_s_lines() -> None:
    stream = CountingStream()
    log, _ = make_logger(stream)
    first = asyncio.new_event_loop()
    first.call_soon(log.info, "from the first loop")
    first.call_soon(first.stop)  # stops before the step's scheduled flush runs
    first.run_forever()
    first.close()
    assert stream.getvalue() == ""

    async def main() -> None:
        log.info("from the second loop")
        await asyncio.sleep(0)

    run_in_new_loop(main())
    assert stream.getvalue() == "INFO from the first loop\nINFO from the second loop\n"


def test_plain_format_matches_the_stock_formatter_text() -> None:
    ours = PlainFormatter()
    stock = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    for msg, args, exc, stack in (
        ("job %s done", ("abc",), None, None),
        ("ends in a newline\n", (), exc_info, None),
        ("with a stack", (), None, "Stack (most recent call last):\n  here"),
    ):
        records = [logging.LogRecord("scalr_queue.worker", logging.WARNING, "f", 1, msg, args, exc, sinfo=stack)]
        records.append(logging.makeLogRecord(records[0].__dict__))
        assert ours.format(records[0]) == stock.format(records[1])


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("the reader went away")


def test_a_stream_that_went_away_loses_the_lines_with_a_note_not_an_exception(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = TickHandler(BrokenStream())
    log = logging.getLogger("test.tick.broken")
    log.propagate = False
    log.handlers[:] = [handler]
    log.warning("nobody reads this")
    assert "could not write 1 log lines" in capsys.readouterr().err


def test_a_record_that_cannot_be_formatted_is_reported_as_logging_does_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = CountingStream()
    log, _ = make_logger(stream)
    log.warning("%d jobs", "not a number")
    assert stream.getvalue() == ""
    assert "--- Logging error ---" in capsys.readouterr().err
