"""Hostile and mistaken input, as one table: each row gets one clear line at the earliest point
(enqueue, process start, or the worker's failed set) and nothing else breaks.

Columns: what is done wrong, where it is caught, and the line the user sees. After every row a
good job is enqueued and run to completion, and the session's Redis holds nothing unexpected.
Several rows repeat behaviour proven in detail elsewhere (tests/test_enqueue.py, test_payloads.py,
test_worker_entrypoint.py, test_settings.py); here they are checked side by side.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from arq.jobs import serialize_job
from redis.asyncio import Redis

import scalr_queue
from scalr_queue import (
    EnqueueError,
    JobOptionsError,
    PayloadError,
    QueueUnavailableError,
    TaskArgumentsError,
    UnknownTaskError,
)
from scalr_queue.redis._server import RedisServer, free_port
from tests.support import ROOT, running_worker, spawn_worker, wait_until

from . import hostile_tasks
from .rsupport import start_worker, worker_env

STRICT = "tests.reliability.hostile_tasks"
SECRET = "hunter22-secret"
pytestmark = pytest.mark.timeout(60)


@dataclass
class Env:
    redis: Redis
    url: str
    tmp: Path
    set_env: Callable[..., None]


Action = Callable[[Env], Awaitable[str]]


@dataclass(frozen=True)
class Case:
    what: str  # the mistake
    caught: str  # where: enqueue | worker | start
    action: Action  # does it, returns the one line the user sees
    expect: str  # ...which must contain this


class Opaque:
    pass


class Evil:
    """Unpickling this creates a file: proof that a pickle was (or was not) executed."""

    marker = Path("/nonexistent")

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


# -- actions --------------------------------------------------------------------------------------


def enqueue_fails(error: type[Exception], task: str, /, **kwargs: Any) -> Action:
    """Enqueue (strict: the producer knows the worker's tasks) and expect ``error`` with nothing written."""

    async def act(env: Env) -> str:
        keys_before = await env.redis.dbsize()
        with pytest.raises(error) as info:
            await scalr_queue.enqueue(task, **kwargs)
        assert await env.redis.dbsize() == keys_before, "nothing is written"
        return str(info.value)

    return act


def enqueue_runs(task: str, /, **kwargs: Any) -> Action:
    """Not an error: the job is accepted and runs (the row documents that the odd input is fine)."""

    async def act(env: Env) -> str:
        job = await scalr_queue.enqueue(task, **kwargs)
        status = (await job.status()).value
        async with running_worker(hostile_tasks.tasks):
            await job.result(timeout=5)
        return f"accepted as {job.job_id!r}, {status}, then complete"

    return act


def payload_refused(make_raw: Callable[[Env], bytes], job_id: str = "hostile-1") -> Action:
    """Write a payload straight into ``arq:job:<id>``: it must land in the failed set, never run."""

    async def act(env: Env) -> str:
        await env.redis.set(f"arq:job:{job_id}", make_raw(env))
        await env.redis.zadd("arq:queue:default", {job_id: 1})
        async with running_worker(hostile_tasks.tasks) as worker:
            await wait_until(lambda: env.redis.zscore("scalr:failed:default", job_id), what="failed entry")
            good = await scalr_queue.enqueue("note", marker="after")
            await good.result(timeout=5)  # the same worker keeps running
            assert worker.jobs_failed == 1
        assert await env.redis.lrange("hostile:ran", 0, -1) == [good.job_id.encode()], "the payload never ran"
        failed = await scalr_queue.get_client().failed.get(job_id)
        await scalr_queue.get_client().failed.purge(job_id)
        return f"failed set: {failed.error_type}: {failed.reason}"

    return act


def worker_exits(source: str | None, *, target: str = "bad_mod", env: dict[str, str] | None = None) -> Action:
    """Start the worker process; it must exit 2 with exactly one line."""

    async def act(e: Env) -> str:
        if source is not None:
            (e.tmp / "bad_mod.py").write_text(source)
        proc = spawn_worker(target, e.tmp, env={"REDIS_URL": e.url, **(env or {})})
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 2, out
        lines = out.strip().splitlines()
        assert len(lines) == 1, out
        return lines[0]

    return act


async def worker_waits_for_redis(env: Env) -> str:
    """Redis down at worker start: clear log lines with a growing delay, no exit, then it serves."""
    port = free_port()
    url = f"redis://default:{SECRET}@127.0.0.1:{port}/0"
    proc = start_worker("waiting", ROOT, worker_env(url), env.tmp, module=STRICT)
    server = None
    try:
        await wait_until(lambda: proc.log().count("retrying in") >= 3, timeout=15, what="three connection attempts")
        assert proc.alive(), "no crash loop: the process is still there"
        lines = [line for line in proc.log().splitlines() if "retrying in" in line]
        assert [line.rsplit("retrying in ", 1)[1] for line in lines[:3]] == ["0.5s", "1.0s", "2.0s"], lines
        server = RedisServer(port=port, extra_args=("--requirepass", SECRET)).start()
        await wait_until(lambda: "Starting worker" in proc.log(), timeout=30, what="the worker to connect")
        assert proc.stop(timeout=30) == 0
        return lines[0].split(": ", 1)[1]
    finally:
        proc.stop(timeout=30)
        if server is not None:
            server.close()


async def wrong_password(env: Env) -> str:
    port = int(env.url.rsplit(":", 1)[1].split("/")[0])
    await env.redis.execute_command("ACL", "SETUSER", "app", "on", ">right-password", "~*", "&*", "+@all")
    try:
        env.set_env(REDIS_URL=f"redis://app:{SECRET}@127.0.0.1:{port}/0")
        await scalr_queue.close()
        with pytest.raises(QueueUnavailableError) as info:
            await scalr_queue.enqueue("note")
        return str(info.value)
    finally:
        await scalr_queue.close()
        env.set_env(REDIS_URL=env.url)
        await env.redis.execute_command("ACL", "DELUSER", "app")


def garbage(_: Env) -> bytes:
    return b"\x00\xff\xfe garbage \x13\x37"


def arq_pickle(env: Env) -> bytes:
    Evil.marker = env.tmp / "pickle-was-executed"
    return serialize_job("send_invoice_email", (), {"invoice_id": Evil()}, 1, 1, serializer=pickle.dumps)


def wrong_kwargs_json(_: Env) -> bytes:
    return orjson.dumps(
        {"t": 1, "f": "send_invoice_email", "a": [], "k": {"invoice": 1}, "et": int(time.time() * 1000)}
    )


def removed_task(_: Env) -> bytes:
    two_hours_ago = int((time.time() - 7200) * 1000)  # older than SCALR_QUEUE_UNKNOWN_TASK_MAX_AGE (1 h)
    return orjson.dumps({"t": 1, "f": "send_invoice_fax", "a": [], "k": {}, "et": two_hours_ago})


# -- the table ------------------------------------------------------------------------------------

SYNC = "def send(ctx):\n    pass\ntasks = [send]\n"
DUPLICATE = "async def a(ctx):\n    pass\nasync def b(ctx):\n    pass\nb.__name__ = 'a'\ntasks = [a, b]\n"
GOOD = "async def a(ctx):\n    pass\ntasks = [a]\n"

CASES = [
    Case(
        "unknown task name",
        "enqueue",
        enqueue_fails(UnknownTaskError, "send_invoce_email", invoice_id=1),
        "unknown task 'send_invoce_email' (did you mean 'send_invoice_email'?)",
    ),
    Case(
        "missing kwarg",
        "enqueue",
        enqueue_fails(TaskArgumentsError, "send_invoice_email"),
        "task 'send_invoice_email' is missing required argument(s) 'invoice_id' (it takes: invoice_id, copy_to)",
    ),
    Case(
        "extra kwarg",
        "enqueue",
        enqueue_fails(TaskArgumentsError, "send_invoice_email", invoice_id=1, copy="x"),
        "got unexpected argument(s) 'copy' (did you mean 'copy_to'?)",
    ),
    Case(
        "wrong kwarg type",
        "enqueue",
        enqueue_fails(TaskArgumentsError, "send_invoice_email", invoice_id="forty-two"),
        "argument 'invoice_id' of task 'send_invoice_email' is invalid",
    ),
    Case(
        "bytes value",
        "enqueue",
        enqueue_fails(PayloadError, "note", blob=b"\x00\x01"),
        "argument 'blob' of task 'note' cannot be sent as JSON: bytes have no JSON form",
    ),
    Case(
        "NaN value",
        "enqueue",
        enqueue_fails(PayloadError, "note", ratio=math.nan),
        "argument 'ratio' of task 'note' cannot be sent as JSON: NaN and Infinity have no JSON form",
    ),
    Case(
        "arbitrary object",
        "enqueue",
        enqueue_fails(PayloadError, "note", obj=Opaque()),
        "argument 'obj' of task 'note' cannot be sent as JSON: Opaque has no JSON form",
    ),
    Case(
        "int over 64 bits",
        "enqueue",
        enqueue_fails(PayloadError, "note", n=2**70),
        "argument 'n' of task 'note' cannot be sent as JSON",
    ),
    Case(
        "payload over the cap",
        "enqueue",
        enqueue_fails(PayloadError, "note", text="x" * (1 << 20)),
        "over the SCALR_QUEUE_MAX_PAYLOAD cap of 1048576 bytes: store large data elsewhere and pass a reference",
    ),
    Case(
        "very long task name",
        "enqueue",
        enqueue_fails(EnqueueError, "x" * 5000),
        "is not valid: names are 1-200 printable characters",
    ),
    Case(
        "_job_id with whitespace",
        "enqueue",
        enqueue_fails(JobOptionsError, "note", _job_id="a b\n"),
        "contains whitespace or control characters; use letters, digits and -_.:/",
    ),
    Case(
        "_job_id with odd but printable characters",
        "enqueue",
        enqueue_runs("note", _job_id="order:42/refund#ü@x+1"),
        "accepted as 'order:42/refund#ü@x+1', queued, then complete",
    ),
    Case(
        "naive _defer_until",
        "enqueue",
        enqueue_fails(JobOptionsError, "note", _defer_until=datetime(2030, 1, 1)),
        "_defer_until must be timezone-aware",
    ),
    Case(
        "_defer_until in the past",
        "enqueue",
        enqueue_runs("note", _defer_until=datetime.now(UTC) - timedelta(days=3)),
        "queued, then complete",
    ),
    Case(
        "misspelled enqueue option",
        "enqueue",
        enqueue_fails(JobOptionsError, "note", _defer=5),
        "unknown enqueue option '_defer' (did you mean '_defer_by'?)",
    ),
    Case(
        "wrong password in REDIS_URL",
        "enqueue",
        wrong_password,
        "Redis refused the credentials (check the user and password in REDIS_URL) [redis://app:***@127.0.0.1",
    ),
    Case(
        "garbage bytes in arq:job:<id>",
        "worker",
        payload_refused(garbage),
        "failed set: BadPayload: payload is not valid JSON (starts with b'\\x00\\xff\\xfe garbage",
    ),
    Case(
        "vanilla-arq pickle in arq:job:<id>",
        "worker",
        payload_refused(arq_pickle),
        "failed set: BadPayload: payload is a Python pickle (a vanilla arq producer?); pickles are never executed",
    ),
    Case(
        "kwargs the worker's task does not take",
        "worker",
        payload_refused(wrong_kwargs_json),
        "missing required argument(s) 'invoice_id'",
    ),
    Case(
        "task removed from the worker",
        "worker",
        payload_refused(removed_task),
        "failed set: UnknownTask: no worker knows task 'send_invoice_fax' (did you mean 'send_invoice_email'?)",
    ),
    Case(
        "Redis unreachable at worker start",
        "start",
        worker_waits_for_redis,
        "worker start-up failed: cannot connect to Redis (connection refused: is redis-server running",
    ),
    Case(
        "malformed REDIS_URL",
        "start",
        worker_exits(GOOD, env={"REDIS_URL": f"redis://app:{SECRET}@localhost:notaport/0"}),
        "invalid setting REDIS_URL='redis://app:***@localhost:notaport/0': the port must be a number from 1 to 65535",
    ),
    Case(
        "worker module with an import error",
        "start",
        worker_exits("import not_installed_lib\n"),
        "cannot import worker module 'bad_mod': ModuleNotFoundError: No module named 'not_installed_lib'",
    ),
    Case(
        "worker module without tasks",
        "start",
        worker_exits("x = 1\n"),
        "worker module 'bad_mod' has no 'tasks' list: add tasks = [your_task, ...]",
    ),
    Case(
        "sync task function",
        "start",
        worker_exits(SYNC),
        "task 'send' is a sync function, not an async function: define it with 'async def send(ctx, ...)'",
    ),
    Case(
        "duplicate task names", "start", worker_exits(DUPLICATE), "two tasks are named 'a': task names must be unique"
    ),
    Case(
        "negative setting",
        "start",
        worker_exits(GOOD, env={"SCALR_QUEUE_JOB_TIMEOUT": "-5"}),
        "invalid setting SCALR_QUEUE_JOB_TIMEOUT='-5'",
    ),
    Case(
        "absurd setting",
        "start",
        worker_exits(GOOD, env={"SCALR_QUEUE_CONCURRENCY": "1000000"}),
        "invalid setting SCALR_QUEUE_CONCURRENCY='1000000': expected a number less than or equal to 10000",
    ),
    Case(
        "absurd duration",
        "start",
        worker_exits(GOOD, env={"SCALR_QUEUE_LEASE": "999h"}),
        "invalid setting SCALR_QUEUE_LEASE='999h'",
    ),
]


@pytest.fixture
async def env(redis: Redis, redis_url: str, tmp_path: Path, set_env: Callable[..., None]) -> Env:
    set_env(SCALR_QUEUE_TASKS=STRICT, SCALR_QUEUE_UNKNOWN_TASK_DELAY="100ms")
    await scalr_queue.close()
    return Env(redis, redis_url, tmp_path, set_env)


def test_the_table_has_at_least_twenty_rows() -> None:
    assert len(CASES) >= 20
    assert len({c.what for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
async def test_hostile_input_gets_one_clear_line_and_breaks_nothing(env: Env, case: Case) -> None:
    line = await case.action(env)
    assert case.expect in line, line
    assert "\n" not in line.strip(), "one line"
    assert SECRET not in line and "right-password" not in line
    assert not (env.tmp / "pickle-was-executed").exists()
    # nothing else broke: a good job still goes through end to end
    await env.redis.delete("hostile:ran")
    job = await scalr_queue.enqueue("send_invoice_email", invoice_id=7)
    async with running_worker(hostile_tasks.tasks):
        assert await job.result(timeout=5) == 7
    assert await env.redis.zcard("arq:queue:default") == 0
    assert await env.redis.zcard("scalr:failed:default") == 0
