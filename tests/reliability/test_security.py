"""Security: a least-privilege Redis ACL user and TLS (rediss://) run the whole flow for real,
pickle is nowhere on the read path, the REDIS_URL secret never shows, metrics stay on loopback.
"""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

import scalr_queue
from scalr_queue import JobFailedError, QueueUnavailableError
from scalr_queue.redis._server import RedisServer, free_port
from tests.support import ROOT, run_cli, wait_until
from tests.template.template_support import Stack, base_env

from .rsupport import start_worker, worker_env, write_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DOC = ROOT / "README.md"
# The least-privilege user: scalr_queue's keys only, no channels, and the command categories it uses.
# Each category is needed (see test_each_acl_category_is_needed); -@dangerous drops KEYS, FLUSHALL,
# CONFIG, DEBUG...; INFO is given back for the worker's start-up banner (redis_version).
ACL_RULES = (
    "on >{password} resetkeys ~arq:* ~scalr:* resetchannels &scalr:cancel:* -@all "
    "+@read +@write +@scripting +@transaction +@connection -@dangerous +info +subscribe +publish"
)
ACL_LINE = "ACL SETUSER scalr " + ACL_RULES.format(password="CHANGE-ME")
CATEGORIES = ["+@read", "+@write", "+@scripting", "+@transaction", "+@connection", "+info"]
PASSWORD = "s3cr3t/P@ss:w0rd"  # URL-encoded in REDIS_URL; neither form may ever be shown
PASSWORD_URL = "s3cr3t%2FP%40ss%3Aw0rd"

MODULE = """
import scalr_queue

async def ok(ctx, n: int) -> int:
    return n * 2

async def flaky(ctx, n: int) -> int:
    if ctx["job_try"] < 3:
        raise ConnectionError(f"upstream down (try {ctx['job_try']})")
    return n

async def doomed(ctx) -> None:
    raise scalr_queue.Fail("invoice does not exist")

tasks = [ok, flaky, doomed]
"""
FAST = {
    "SCALR_QUEUE_RETRY_DELAY": "50ms",
    "SCALR_QUEUE_RETRY_MAX_DELAY": "200ms",
    "SCALR_QUEUE_HEALTH_INTERVAL": "1s",
    "SCALR_QUEUE_SHUTDOWN_GRACE": "5s",
}


def assert_no_secret(text: str) -> None:
    assert PASSWORD not in text and PASSWORD_URL not in text, "the REDIS_URL password was shown"


async def end_to_end(url: str, tmp: Path, set_env: Callable[..., None], **extra: str) -> str:
    """Enqueue, a real worker, retries, the failed set and the CLI, all through ``url``.

    Returns everything the user could read on the way (worker log, CLI output), for secret checks.
    """
    set_env(REDIS_URL=url, **FAST, **extra)
    await scalr_queue.close()
    cwd = write_module(tmp / "secure_mod", MODULE, name="secure_jobs")
    worker = start_worker("secure-worker", cwd, worker_env(url, **FAST, **extra), tmp, module="secure_jobs")
    seen: list[str] = []

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = run_cli(*args, env={"REDIS_URL": url, **extra})
        seen.append(done.stdout + done.stderr)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    try:
        ok = await scalr_queue.enqueue("ok", n=21)
        flaky = await scalr_queue.enqueue("flaky", n=5)
        doomed = await scalr_queue.enqueue("doomed")
        assert await ok.result(timeout=20) == 42
        assert await flaky.result(timeout=20) == 5
        assert (await flaky.info()).tries == 3, "retried twice, then succeeded"
        with pytest.raises(JobFailedError, match="invoice does not exist"):
            await doomed.result(timeout=20)

        stats = json.loads(cli("stats", "--json").stdout)
        assert stats["failed"] == 1 and stats["workers"] == 1, stats
        assert doomed.job_id in cli("failed", "list").stdout
        assert "queued again" in cli("failed", "retry", doomed.job_id).stdout
        await wait_until(lambda: _failed_again(doomed.job_id), timeout=20, what="the re-driven job to fail again")
        assert "secure_jobs" in cli("workers").stdout
        assert "status: complete" in cli("job", ok.job_id).stdout
        cli("enqueue", "ok", "n=1")
        check = subprocess.run(
            [sys.executable, "-m", "scalr_queue.worker", "secure_jobs", "--check"],
            cwd=cwd,
            env=worker_env(url, **extra),
            capture_output=True,
            text=True,
            timeout=30,
        )
        seen.append(check.stdout + check.stderr)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "purged 1" in cli("failed", "purge", "--all").stdout
    finally:
        code = worker.stop(timeout=30)
        await scalr_queue.close()
    log = worker.log()
    assert code == 0, log[-3000:]
    assert "redis_version=" in log, "the banner read INFO"
    for bad in ("NOPERM", "no permissions", "Traceback", "lost Redis"):
        assert bad not in log, f"{bad!r} in the worker log:\n{log[-3000:]}"
    return log + "\n".join(seen)


async def _failed_again(job_id: str) -> bool:
    failed = await scalr_queue.get_client().failed.list()
    return any(j.job_id == job_id for j in failed)


# -- ACL --------------------------------------------------------------------------------------------


@pytest.fixture
async def acl_server() -> Any:
    server = RedisServer().start()
    admin = Redis.from_url(server.url)
    await admin.execute_command("ACL", "SETUSER", "scalr", *ACL_RULES.format(password=PASSWORD).split())
    try:
        yield server, admin
    finally:
        await admin.aclose()
        server.close()


async def test_the_docs_give_the_exact_acl_line_the_tests_use() -> None:
    assert ACL_LINE in DOC.read_text()


async def test_a_least_privilege_acl_user_runs_the_whole_flow(
    acl_server: Any, tmp_path: Path, set_env: Callable[..., None]
) -> None:
    server, admin = acl_server
    url = f"redis://scalr:{PASSWORD_URL}@127.0.0.1:{server.port}/0"
    seen = await end_to_end(url, tmp_path, set_env)
    assert_no_secret(seen)
    # ...and the user really is restricted
    restricted = Redis.from_url(url)
    try:
        for command in (
            ("GET", "app:session:1"),
            ("KEYS", "*"),
            ("FLUSHALL",),
            ("CONFIG", "GET", "*"),
            ("PUBLISH", "c", "m"),
        ):
            with pytest.raises(NoPermissionError):
                await restricted.execute_command(*command)
    finally:
        await restricted.aclose()
    assert await admin.dbsize() > 0


@pytest.mark.parametrize("dropped", CATEGORIES)
async def test_each_acl_category_is_needed(acl_server: Any, tmp_path: Path, dropped: str) -> None:
    server, admin = acl_server
    rules = ACL_RULES.format(password=PASSWORD).replace(f" {dropped}", "")
    await admin.execute_command("ACL", "SETUSER", "narrow", "reset", *rules.split())
    url = f"redis://narrow:{PASSWORD_URL}@127.0.0.1:{server.port}/0"
    cwd = write_module(tmp_path / "secure_mod", MODULE, name="secure_jobs")
    env = worker_env(url, **FAST)
    worker = start_worker("narrow", cwd, env, tmp_path, "--burst", module="secure_jobs")
    client = scalr_queue.QueueClient(scalr_queue.Settings(REDIS_URL=url))  # type: ignore[call-arg]
    errors: list[str] = []
    try:
        try:
            await client.enqueue("ok", n=1)
            await client.failed.purge_all()
        except QueueUnavailableError as exc:
            errors.append(str(exc))
        await wait_until(lambda: not worker.alive() or "retrying" in worker.log(), timeout=20, what="worker outcome")
    finally:
        worker.stop(timeout=10)
        await client.close()
    log = worker.log()
    assert "Traceback" not in log, log[-3000:]
    reasons = errors + [line for line in log.splitlines() if "no permissions to" in line or "can't run" in line]
    assert reasons, f"the whole flow works without {dropped}: drop it from the ACL line"
    for reason in reasons:  # one clear line that names the refused command, and never the password
        assert "no permissions to run the '" in reason or "can't run this command" in reason, reason
        assert_no_secret(reason)
    if not worker.alive() and worker.popen.returncode != 0:
        assert worker.popen.returncode == 2 and "see the README's ACL line" in log.splitlines()[-1]


# -- TLS --------------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Any:
    """redis-server with a TLS port and a certificate signed by a throwaway CA made right here."""
    certs = tmp_path / "certs"
    certs.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=certs, check=True, capture_output=True, timeout=60)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=scalr-test-ca",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"
    )
    (certs / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    )
    tls_port = free_port()
    server = RedisServer(
        extra_args=(
            "--tls-port",
            str(tls_port),
            "--tls-cert-file",
            str(certs / "server.crt"),
            "--tls-key-file",
            str(certs / "server.key"),
            "--tls-ca-cert-file",
            str(certs / "ca.crt"),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            PASSWORD,
        )
    ).start()
    try:
        yield f"rediss://default:{PASSWORD_URL}@127.0.0.1:{tls_port}/0", certs / "ca.crt"
    finally:
        server.close()


async def test_rediss_with_a_verified_certificate_runs_the_whole_flow(
    tls_server: Any, tmp_path: Path, set_env: Callable[..., None]
) -> None:
    url, ca = tls_server
    seen = await end_to_end(
        url, tmp_path, set_env, SCALR_QUEUE_TLS_CA_CERTS=str(ca), SCALR_QUEUE_TLS_CHECK_HOSTNAME="true"
    )
    assert_no_secret(seen)


async def test_rediss_without_the_ca_fails_clearly_and_cert_reqs_none_opts_out(
    tls_server: Any, tmp_path: Path, set_env: Callable[..., None]
) -> None:
    url, _ca = tls_server
    set_env(REDIS_URL=url)
    await scalr_queue.close()
    with pytest.raises(QueueUnavailableError) as info:
        await scalr_queue.enqueue("ok", n=1)
    message = str(info.value)
    assert "TLS certificate not trusted: set SCALR_QUEUE_TLS_CA_CERTS" in message and "\n" not in message, message
    assert_no_secret(message)
    cwd = write_module(tmp_path / "secure_mod", MODULE, name="secure_jobs")
    worker = start_worker("unverified", cwd, worker_env(url), tmp_path, module="secure_jobs")
    try:
        await wait_until(lambda: "TLS certificate not trusted" in worker.log(), timeout=20, what="the worker's error")
        assert worker.alive(), "it keeps retrying (and says why) instead of crash-looping"
    finally:
        worker.stop(timeout=10)
    assert_no_secret(worker.log())

    set_env(REDIS_URL=url, SCALR_QUEUE_TLS_CERT_REQS="none")
    await scalr_queue.close()
    job = await scalr_queue.enqueue("ok", n=4)
    burst = start_worker(
        "none", cwd, worker_env(url, SCALR_QUEUE_TLS_CERT_REQS="none"), tmp_path, "--burst", module="secure_jobs"
    )
    try:
        assert await job.result(timeout=20) == 8
        assert await asyncio.to_thread(burst.popen.wait, 30) == 0, burst.log()
    finally:
        await scalr_queue.close()


# -- pickle -----------------------------------------------------------------------------------------


def test_no_pickle_anywhere_in_scalr_queue() -> None:
    """Grep-style, on the syntax tree: no pickle-family import or call in the package."""
    banned = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "jsonpickle"}
    offenders = []
    for path in sorted((ROOT / "scalr_queue").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                names = [node.value.id]
            elif isinstance(node, ast.Name) and node.id in {
                "deserialize_job",
                "deserialize_job_raw",
                "deserialize_result",
            }:
                names = ["arq's pickle deserializer"]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n in banned or n.startswith("arq's")]
    assert not offenders, offenders


def test_every_redis_client_scalr_queue_makes_decodes_json() -> None:
    from scalr_queue._codec import loads
    from scalr_queue._settings import load_settings
    from scalr_queue.redis._connection import create_redis

    redis = create_redis(load_settings())
    assert redis.job_deserializer is loads and redis.job_serializer is None


# -- the secret in REDIS_URL ------------------------------------------------------------------------


async def test_the_redis_url_secret_never_shows_in_logs_errors_cli_or_api(
    tmp_path: Path, set_env: Callable[..., None]
) -> None:
    """Wrong password, Redis down, bad URL, JSON logs, the backend's 503s: the password never shows."""
    server = RedisServer(extra_args=("--requirepass", "the-right-one")).start()
    url = f"redis://default:{PASSWORD_URL}@127.0.0.1:{server.port}/0"
    seen: list[str] = []
    cwd = write_module(tmp_path / "secure_mod", MODULE, name="secure_jobs")
    stack = Stack(redis=server, log_dir=tmp_path, env=base_env(url))
    try:
        # wrong password: library, CLI, worker (plain and JSON logs)
        set_env(REDIS_URL=url)
        await scalr_queue.close()
        with pytest.raises(QueueUnavailableError) as info:
            await scalr_queue.enqueue("ok", n=1)
        seen.append(str(info.value))
        assert "Redis refused the credentials" in str(info.value)
        for args in (("stats",), ("failed", "list"), ("enqueue", "ok", "n=1"), ("workers", "--json")):
            done = run_cli(*args, env={"REDIS_URL": url})
            assert done.returncode != 0
            seen.append(done.stdout + done.stderr)
        for fmt in ("plain", "json"):
            worker = start_worker(
                f"w-{fmt}", cwd, worker_env(url, SCALR_QUEUE_LOG_FORMAT=fmt), tmp_path, module="secure_jobs"
            )
            await wait_until(lambda w=worker: w.log().count("retrying in") >= 2, timeout=20, what="worker retries")
            worker.stop(timeout=10)
            seen.append(worker.log())
        # a malformed URL with the secret in it
        bad = run_cli("stats", env={"REDIS_URL": f"redis://default:{PASSWORD_URL}@127.0.0.1:notaport/0"})
        assert bad.returncode == 2 and "invalid setting REDIS_URL" in bad.stderr
        seen.append(bad.stdout + bad.stderr)
        # the template API: 503 answers while Redis refuses us, and while it is down
        stack.start_backend()
        http = stack.client()
        for path, method in (("/invoices/1/send", "post"), ("/healthz", "get"), ("/jobs/abc", "get")):
            response = getattr(http, method)(path)
            seen.append(response.text)
            assert response.status_code == 503, response.text
        server.stop()
        for path, method in (("/invoices/1/send", "post"), ("/healthz", "get")):
            seen.append(getattr(http, method)(path).text)
        seen.append(stack.procs[0].log())
    finally:
        await scalr_queue.close()
        stack.close()
    text = "\n".join(seen)
    assert "***" in text, "the URL is shown, masked"
    assert_no_secret(text)


# -- HTTP surface -----------------------------------------------------------------------------------


async def test_the_metrics_endpoint_binds_loopback_by_default_and_is_read_only(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    cwd = write_module(tmp_path / "secure_mod", MODULE, name="secure_jobs")
    worker = start_worker(
        "metrics", cwd, worker_env(redis_url, SCALR_QUEUE_METRICS_PORT=str(port)), tmp_path, module="secure_jobs"
    )
    try:
        await wait_until(lambda: f":{port}/metrics" in worker.log(), timeout=20, what="the metrics server")
        listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        bound = {fields[1] for fields in listening if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port}
        assert bound == {f"0100007F:{port:04X}"}, f"bound to {bound}, not 127.0.0.1 only"
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
            assert response.status_code == 200 and "scalr_queue_jobs_started" in response.text
            for method in ("POST", "PUT", "DELETE"):  # nothing to change: any method just reads
                await http.request(method, f"http://127.0.0.1:{port}/metrics", content=b"x")
            assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 200
            assert worker.alive()
    finally:
        worker.stop(timeout=10)
