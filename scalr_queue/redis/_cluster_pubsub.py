"""Pub/sub on a Redis Cluster: redis-py's asyncio cluster client has none, so listen on one node.

A classic ``PUBLISH`` on a cluster (our CANCEL script's) reaches every node over the cluster bus,
so a subscriber on any node hears it. This holds one plain connection to one node and, when that
node fails, subscribes again on another: the cancel watcher re-reads the cancel marks after every
(re)subscribe, so a cancel published while no node was heard is not lost.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

# connection options a node's plain client may take from the cluster client's
_PASSED = (
    "username",
    "password",
    "socket_connect_timeout",
    "socket_keepalive",
    "ssl",
    "ssl_ca_certs",
    "ssl_cert_reqs",
    "ssl_check_hostname",
)


class NodePubSub:
    """The part of redis-py's ``PubSub`` the cancel watcher uses, on one node at a time."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self._turn = itertools.count()
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None

    @property
    def subscribed(self) -> bool:
        return self._pubsub is not None and bool(self._pubsub.subscribed)

    async def subscribe(self, *channels: str) -> None:
        await self.aclose()
        nodes = self.cluster.get_nodes()
        if not nodes:  # not initialised yet: the first command learns the slots
            await self.cluster.initialize()
            nodes = self.cluster.get_nodes()
        node = nodes[next(self._turn) % len(nodes)]
        kwargs: dict[str, Any] = {k: v for k, v in node.connection_kwargs.items() if k in _PASSED}
        self._client = Redis(host=node.host, port=int(node.port), lib_name=None, lib_version=None, **kwargs)
        self._pubsub = self._client.pubsub()
        await self._pubsub.subscribe(*channels)

    async def get_message(self, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109 - as PubSub
        if self._pubsub is None:
            return None
        try:
            message: dict[str, Any] | None = await self._pubsub.get_message(timeout=timeout)
        except BaseException:
            await self.aclose()  # the next subscribe goes to another node
            raise
        return message

    async def aclose(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        # a dead node's socket: nothing to close cleanly
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await cast(Any, pubsub).aclose()  # redis-py leaves PubSub.aclose untyped
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
