"""``REDIS_URL=redis+sentinel://...``: parsed once, refused in one line when malformed, honoured everywhere."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection

from scalr_queue import ConfigurationError, QueueUnavailableError
from scalr_queue._settings import load_settings, mask_url
from scalr_queue.arq_compat._worker_settings import redis_settings
from scalr_queue.redis._connection import create_redis
from scalr_queue.redis._url import SentinelTarget, is_sentinel_url, parse_sentinel_url
from tests.support import run_cli

URL = "redis+sentinel://h1:26379,h2:26380,[::1]/mymaster/2"


def test_sentinel_url_names_every_sentinel_the_service_and_the_database() -> None:
    assert parse_sentinel_url(URL) == SentinelTarget(
        sentinels=(("h1", 26379), ("h2", 26380), ("::1", 26379)), service="mymaster", db=2
    )


def test_credentials_are_the_servers_and_rediss_means_tls() -> None:
    target = parse_sentinel_url("rediss+sentinel://app:p%40ss@h1:26379/queue-master")
    assert (target.username, target.password, target.tls, target.db) == ("app", "p@ss", True, 0)
    assert parse_sentinel_url("redis+sentinel://:secret@h1/m/").password == "secret"
    assert is_sentinel_url("REDIS+SENTINEL://h/m") and not is_sentinel_url("redis://h:6379/0")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+sentinel:///mymaster", "lists no sentinel host"),
        ("redis+sentinel://h1:26379,,h2/mymaster", "lists no sentinel host, or an empty one"),
        ("redis+sentinel://h1:26379", "names no service after the sentinels"),
        ("redis+sentinel://h1:26379/", "names no service after the sentinels"),
        ("redis+sentinel://h1:sentinel/mymaster", "sentinel address 'h1:sentinel': the port must be a number"),
        ("redis+sentinel://h1:70000/mymaster", "the port must be a number from 1 to 65535"),
        ("redis+sentinel://:26379/mymaster", "sentinel address ':26379' has no host"),
        ("redis+sentinel://[::1/mymaster", "is not [ipv6]:port"),
        ("redis+sentinel://h1/mymaster/zero", "the database must be a number, not 'zero'"),
        ("redis+sentinel://h1/mymaster/0/extra", "too many parts after the sentinels"),
        ("redis+sentinel://h1/mymaster?db=1", "takes no query or fragment"),
    ],
)
def test_malformed_sentinel_url_is_one_line_naming_what_is_wrong(
    set_env: Callable[..., None], url: str, expected: str
) -> None:
    set_env(REDIS_URL=url)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert message.startswith("invalid setting REDIS_URL=")


def test_not_a_sentinel_scheme_is_refused_by_the_parser() -> None:
    with pytest.raises(ValueError, match="not a Sentinel URL"):
        parse_sentinel_url("redis://h1:6379/0")


def test_password_in_a_sentinel_url_is_masked() -> None:
    assert (
        mask_url("redis+sentinel://app:hunter2@h1:26379,h2:26379/m/0")
        == "redis+sentinel://app:***@h1:26379,h2:26379/m/0"
    )


async def test_client_asks_the_sentinels_for_the_service_master_with_the_servers_credentials() -> None:
    settings = load_settings(REDIS_URL="redis+sentinel://app:pw@127.0.0.1:1,127.0.0.1:2/mymaster/3")
    redis = create_redis(settings)
    pool = redis.connection_pool
    assert pool.service_name == "mymaster"  # type: ignore[attr-defined]
    assert issubclass(pool.connection_class, SentinelManagedConnection)
    assert {k: pool.connection_kwargs[k] for k in ("db", "username", "password")} == {
        "db": 3,
        "username": "app",
        "password": "pw",
    }
    assert redis.sentinel_manager is not None
    sentinels = redis.sentinel_manager.sentinels
    assert [(s.connection_pool.connection_kwargs["port"]) for s in sentinels] == [1, 2]
    # the sentinels are asked without the servers' password, and always with the producer timeout
    assert all(s.connection_pool.connection_kwargs.get("password") is None for s in sentinels)
    await redis.aclose()


async def test_rediss_sentinel_uses_tls_to_the_sentinels_and_the_master() -> None:
    settings = load_settings(
        REDIS_URL="rediss+sentinel://127.0.0.1:1/mymaster", tls_cert_reqs="none", tls_ca_certs="/tmp/ca.pem"
    )
    redis = create_redis(settings, blocking=True)
    assert issubclass(redis.connection_pool.connection_class, SentinelManagedSSLConnection)
    assert redis.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"
    assert redis.connection_pool.connection_kwargs["socket_timeout"] is None  # a worker's client blocks
    assert redis.sentinel_manager is not None
    (sentinel,) = redis.sentinel_manager.sentinels
    kwargs = sentinel.connection_pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["socket_timeout"]) == ("/tmp/ca.pem", settings.redis_timeout)
    await redis.aclose()


async def test_no_sentinel_answering_is_a_clear_queue_unavailable_error(set_env: Callable[..., None]) -> None:
    import scalr_queue
    from scalr_queue.redis._server import free_port

    set_env(REDIS_URL=f"redis+sentinel://127.0.0.1:{free_port()}/mymaster", SCALR_QUEUE_REDIS_TIMEOUT="1s")
    client = scalr_queue.QueueClient()
    try:
        with pytest.raises(QueueUnavailableError) as info:
            await client.enqueue("send_invoice_email", invoice_id=1)
    finally:
        await client.close()
    message = str(info.value)
    assert "the sentinels know no master for this service now" in message and "\n" not in message


def test_arq_worker_settings_use_arqs_own_sentinel_support() -> None:
    rs = redis_settings(load_settings(REDIS_URL="rediss+sentinel://u:p@h1:26379,h2:26379/svc/4"))
    assert (rs.sentinel, rs.sentinel_master, rs.host, rs.database) == (True, "svc", [("h1", 26379), ("h2", 26379)], 4)
    assert (rs.username, rs.password, rs.ssl) == ("u", "p", True)


def test_cli_refuses_a_malformed_sentinel_url_in_one_line() -> None:
    result = run_cli("stats", env={"REDIS_URL": "redis+sentinel://h1:26379"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "names no service after the sentinels" in result.stderr


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "redis+sentinel://127.0.0.1:1/mymaster"])
async def test_a_connection_whose_transport_closed_under_it_is_forgotten_and_not_connected(url: str) -> None:
    """uvloop closes a transport under redis-py (a write to a killed Redis failed) without redis-py
    noticing; a pool lending it, or a send on it, would then raise RuntimeError instead of reconnecting."""
    redis = create_redis(load_settings(REDIS_URL=url), blocking=True)
    conn = redis.connection_pool.make_connection()

    class Transport:
        closing = False

        def is_closing(self) -> bool:
            return self.closing

    transport = Transport()
    closed: list[bool] = []
    writer = SimpleNamespace(transport=transport, close=lambda: closed.append(True))
    conn._reader, conn._writer = object(), writer  # type: ignore[assignment]
    assert conn.is_connected
    transport.closing = True
    assert not conn.is_connected
    # forgotten as disconnect() would: redis-py's sentinel connection reconnects only without a reader
    assert (conn._reader, conn._writer, closed) == (None, None, [True])
    await redis.aclose()
