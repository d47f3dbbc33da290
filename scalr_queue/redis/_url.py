"""``REDIS_URL`` for Redis Sentinel (``redis+sentinel://[user:password@]h1:26379,h2:26379/mymaster[/db]``)
and Redis Cluster (``redis+cluster://[user:password@]h1:7000,h2:7001``).

A plain ``redis://`` URL names one server; a Sentinel URL names the sentinels that know which
server is the master of a service, so a failover moves every client to the new master without a
configuration change. This module only parses the URL (settings validate with it at start-up,
``_connection`` builds the clients from it); the failover itself is redis-py's Sentinel client.

``rediss+sentinel://`` uses TLS to the sentinels and to the servers. The user and password
are the servers' (as for ``redis://``); the sentinels are asked without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_FORM = "redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]"


@dataclass(frozen=True)
class SentinelTarget:
    """Where the sentinels are, which service's master to use, and how to talk to it."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def _host_port(item: str, what: str = "sentinel address", default_port: int = DEFAULT_SENTINEL_PORT) -> tuple[str, int]:
    if item.startswith("["):  # [::1]:26379
        host, sep, rest = item[1:].partition("]")
        if not sep or not host or (rest and not rest.startswith(":")):
            raise ValueError(f"{what} {item!r} is not [ipv6]:port")
        port_text = rest[1:]
    else:
        host, _, port_text = item.partition(":")
        if not host:
            raise ValueError(f"{what} {item!r} has no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{what} {item!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def _split_url(
    url: str, schemes: tuple[str, ...], kind: str, form: str, listed: str
) -> tuple[bool, str, str | None, str | None, list[str]]:
    """The parts a Sentinel and a Cluster URL share: (TLS, path, username, password, host items)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in schemes:
        raise ValueError(f"not a {kind} URL (expected {form})")
    if "?" in rest or "#" in rest:
        raise ValueError(f"a {kind} URL takes no query or fragment (expected {form})")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    items = [h.strip() for h in hosts.split(",")]
    if not hosts or not all(items):
        raise ValueError(f"it lists no {listed}, or an empty one (expected {form})")
    return scheme.lower().startswith("rediss"), path, username, password, items


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse a Sentinel URL; a ``ValueError`` says in one line what is wrong with it."""
    tls, path, username, password, items = _split_url(url, SENTINEL_SCHEMES, "Sentinel", SENTINEL_FORM, "sentinel host")
    parts = path.strip("/").split("/") if path.strip("/") else []
    if not parts:
        raise ValueError(f"it names no service after the sentinels (expected {SENTINEL_FORM})")
    if len(parts) > 2:
        raise ValueError(f"too many parts after the sentinels: {path!r} (expected /service[/db])")
    db = parts[1] if len(parts) == 2 else "0"
    if not db.isdigit():
        raise ValueError(f"the database must be a number, not {db!r}")
    return SentinelTarget(
        sentinels=tuple(_host_port(item) for item in items),
        service=unquote(parts[0]),
        db=int(db),
        username=username,
        password=password,
        tls=tls,
    )


# -- Redis Cluster ------------------------------------------------------------------------------

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
DEFAULT_CLUSTER_PORT = 6379
CLUSTER_FORM = "redis+cluster://[user:password@]host:port[,host:port...]"


@dataclass(frozen=True)
class ClusterTarget:
    """Some nodes of a Redis Cluster (redis-py learns the rest from them) and how to talk to them."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterTarget:
    """Parse a Cluster URL; a ``ValueError`` says in one line what is wrong with it.

    A cluster has one database (0), so the URL takes no ``/db`` path.
    """
    tls, path, username, password, items = _split_url(url, CLUSTER_SCHEMES, "Cluster", CLUSTER_FORM, "cluster node")
    if path.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has only database 0, so the URL takes no {path!r} (expected {CLUSTER_FORM})")
    nodes = tuple(_host_port(item, "cluster node", DEFAULT_CLUSTER_PORT) for item in items)
    return ClusterTarget(nodes=nodes, username=username, password=password, tls=tls)
