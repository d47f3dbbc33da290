"""Mistakes fail at enqueue time: unknown names and bad arguments, strictly or from live workers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import TaskArgumentsError, UnknownTaskError
from scalr_queue.testing import assert_task_names, find_unknown_task_names
from tests.support import run_cli, running_worker, wait_until

WORKER_SOURCE = """
from datetime import date

async def send_invoice_email(ctx, invoice_id: int, copy_to: str | None = None) -> None:
    pass

async def nightly_report(ctx, day: date, **options) -> None:
    pass

tasks = [send_invoice_email, nightly_report]
"""


@pytest.fixture
def strict(worker_module: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, set_env: Callable[..., None]) -> Path:
    cwd = worker_module(WORKER_SOURCE, name="shop_worker")
    monkeypatch.syspath_prepend(str(cwd))
    set_env(SCALR_QUEUE_TASKS="shop_worker")
    return cwd


async def test_strict_unknown_name_fails_with_did_you_mean(redis: Redis, strict: Path) -> None:
    with pytest.raises(UnknownTaskError) as info:
        await scalr_queue.enqueue("send_invoce_email", invoice_id=1)
    assert str(info.value) == (
        "unknown task 'send_invoce_email' (did you mean 'send_invoice_email'?): SCALR_QUEUE_TASKS=shop_worker "
        "has nightly_report, send_invoice_email"
    )
    assert await redis.dbsize() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "task 'send_invoice_email' is missing required argument(s) 'invoice_id' (it takes: invoice_id, copy_to)"),
        ({"invoice_id": 1, "copy": "x"}, "got unexpected argument(s) 'copy' (did you mean 'copy_to'?)"),
        ({"invoiceid": 1}, "missing required argument(s) 'invoice_id'"),
        ({"invoice_id": "forty-two"}, "argument 'invoice_id' of task 'send_invoice_email' is invalid"),
    ],
)
async def test_strict_wrong_arguments_fail_at_enqueue(
    redis: Redis, strict: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TaskArgumentsError) as info:
        await scalr_queue.enqueue("send_invoice_email", **kwargs)
    assert message in str(info.value)
    assert await redis.dbsize() == 0


async def test_strict_accepts_var_kwargs_and_coercible_values(redis: Redis, strict: Path) -> None:
    assert (await scalr_queue.enqueue("nightly_report", day="2026-11-25", region="eu")).created
    assert (await scalr_queue.enqueue("send_invoice_email", invoice_id="42")).created


async def registered_task(ctx: dict[str, Any], order_id: int) -> None:
    pass


async def test_without_strict_mode_live_workers_signatures_are_checked(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_worker([registered_task]):
        await wait_until(lambda: redis.exists("scalr:workers:default"), what="worker registry")
        with pytest.raises(TaskArgumentsError, match="unexpected argument"):
            await scalr_queue.enqueue("registered_task", order_id=1, extra=2)
        # an unknown name must not fail during a rolling deploy: warn with a did-you-mean, enqueue
        with caplog.at_level(logging.WARNING, logger="scalr_queue"):
            job = await scalr_queue.enqueue("registered_tsk", order_id=1, _defer_by=3600)
        assert job.created
        assert (
            "no live worker on queue 'default' knows task 'registered_tsk' (did you mean 'registered_task'?)"
            in caplog.text
        )


def test_check_names_cli_lists_missing_names(worker_module: Callable[..., Path]) -> None:
    cwd = worker_module(WORKER_SOURCE, name="shop_worker")
    src = cwd / "src"
    src.mkdir()
    (src / "routes.py").write_text(
        "from scalr_queue import enqueue\n"
        "async def a():\n    await enqueue('send_invoice_email', invoice_id=1)\n"
        "async def b(q):\n    await q.enqueue('send_invoce_email', invoice_id=1)\n"
    )
    result = run_cli("check-names", "src", "shop_worker", cwd=cwd)
    assert result.returncode == 1
    assert "src/routes.py:5: unknown task 'send_invoce_email' (did you mean 'send_invoice_email'?)" in result.stdout
    (src / "routes.py").write_text("from scalr_queue import enqueue\nenqueue('nightly_report', day=1)\n")
    ok = run_cli("check-names", "src", "shop_worker", cwd=cwd)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok: all 1 enqueue call(s)" in ok.stdout


def test_testing_helper_raises_assertion_listing_missing_names(
    worker_module: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = worker_module(WORKER_SOURCE, name="shop_worker2")
    monkeypatch.chdir(cwd)
    (cwd / "api.py").write_text("enqueue('nope')\nenqueue_many([('send_invoice_email', {}), ('gone', {})])\n")
    assert len(find_unknown_task_names(cwd / "api.py", "shop_worker2")) == 2
    with pytest.raises(AssertionError, match="unknown task 'gone'"):
        assert_task_names(cwd / "api.py", "shop_worker2")


async def test_published_signatures_are_read_once_then_checked_without_a_round_trip(redis: Redis) -> None:
    async with running_worker([registered_task]):
        await wait_until(lambda: redis.exists("scalr:workers:default"), what="worker registry")
        catalog = scalr_queue.get_client()._catalog
        # nothing read yet: the check must go to Redis (the caller awaits check())
        assert catalog.check_known("registered_task", "default", (), {"order_id": 1}) is None
        assert await catalog.check("registered_task", "default", (), {"order_id": 1}) == "registered_task"
        # now in the cache: the enqueue checks arguments with no await, and still refuses bad ones
        assert catalog.check_known("registered_task", "default", (), {"order_id": 1}) == "registered_task"
        assert await catalog.check("registered_task", "default", (), {"order_id": 1}) == "registered_task"
        with pytest.raises(TaskArgumentsError, match="unexpected argument"):
            catalog.check_known("registered_task", "default", (), {"order_id": 1, "extra": 2})
